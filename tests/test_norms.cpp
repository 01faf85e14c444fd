// LayerNorm, BatchNorm1d and Dropout beyond the conformance files: forward and
// backward against a double-precision reference of CONFORMANCE.md 9.2 / 9.3
// written here (odd widths, batch 1, batches larger than an evaluation tile),
// BatchNorm's running statistics, counter, evaluation mode, batch-of-1 error
// and state_dict names, and Dropout's semantics (9.6): identity in evaluation
// mode, inverted dropout in training mode with a mask drawn from the model's
// seeded generator and reused by backward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <ratio>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

constexpr double eps = 1e-5;

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

template <std::size_t W>
Batch<W> random_batch(std::size_t rows, std::mt19937& rng, float mean, float spread) {
  std::normal_distribution<float> dist(mean, spread);
  Batch<W> b(rows);
  for (float& v : b) v = dist(rng);
  return b;
}

void fill_random(std::span<float> values, std::mt19937& rng, float mean, float spread) {
  std::normal_distribution<float> dist(mean, spread);
  for (float& v : values) v = dist(rng);
}

/// Output, input gradient and affine-parameter gradients of a normalisation.
struct NormReference {
  std::vector<double> y, dx, dweight, dbias;
};

// ---- LayerNorm (9.3) -----------------------------------------------------------

NormReference layer_norm_reference(std::span<const float> x, std::span<const float> w, std::span<const float> b,
                                   std::span<const float> dy, std::size_t rows, std::size_t F) {
  NormReference r{std::vector<double>(rows * F), std::vector<double>(rows * F), std::vector<double>(F, 0.0),
                  std::vector<double>(F, 0.0)};
  for (std::size_t n = 0; n < rows; ++n) {
    const std::size_t o = n * F;
    double mean = 0.0;
    for (std::size_t i = 0; i < F; ++i) mean += x[o + i];
    mean /= double(F);
    double var = 0.0;
    for (std::size_t i = 0; i < F; ++i) var += (x[o + i] - mean) * (x[o + i] - mean);
    var /= double(F);  // biased
    const double rstd = 1.0 / std::sqrt(var + eps);
    std::vector<double> xhat(F), gxhat(F);
    double mean_g = 0.0, mean_gx = 0.0;
    for (std::size_t i = 0; i < F; ++i) {
      xhat[i] = (x[o + i] - mean) * rstd;
      r.y[o + i] = xhat[i] * w[i] + b[i];
      gxhat[i] = double(dy[o + i]) * w[i];
      mean_g += gxhat[i] / double(F);
      mean_gx += gxhat[i] * xhat[i] / double(F);
      r.dweight[i] += double(dy[o + i]) * xhat[i];
      r.dbias[i] += dy[o + i];
    }
    for (std::size_t i = 0; i < F; ++i) r.dx[o + i] = (gxhat[i] - mean_g - xhat[i] * mean_gx) * rstd;
  }
  return r;
}

template <std::size_t F>
void expect_layer_norm_matches(std::size_t rows, std::uint32_t seed_value) {
  SCOPED_TRACE("LayerNorm<" + std::to_string(F) + ">, rows " + std::to_string(rows));
  std::mt19937 rng(seed_value);
  Model<LayerNorm<F>> model;
  // Non-trivial affine parameters, set through their names.
  fill_random(model.parameter("weight").span(), rng, 1.0f, 0.5f);
  fill_random(model.parameter("bias").span(), rng, 0.0f, 0.5f);
  auto w = model.parameter("weight").span();
  auto b = model.parameter("bias").span();

  Batch<F> x = random_batch<F>(rows, rng, 3.0f, 2.0f);  // an offset, so the mean matters
  if (rows >= 4)
    for (std::size_t i = 0; i < F; ++i) x(3, i) = 3.25f;  // a constant row: x̂ = 0, y = bias
  const Batch<F> dy = random_batch<F>(rows, rng, 0.0f, 1.0f);
  const NormReference ref = layer_norm_reference(x.values(), w, b, dy.values(), rows, F);

  model.zero_grad();
  const Batch<F> y = model(x);
  ASSERT_EQ(y.rows(), rows);
  EXPECT_TRUE(all_close("output", y.values(), to_float(ref.y), forward_tolerance));
  const Batch<F> dx = model.backward(dy);
  EXPECT_TRUE(all_close("grad.input", dx.values(), to_float(ref.dx), gradient_tolerance));
  EXPECT_TRUE(all_close("grad.weight", model.parameter("weight").grad_span(), to_float(ref.dweight),
                        gradient_tolerance));
  EXPECT_TRUE(all_close("grad.bias", model.parameter("bias").grad_span(), to_float(ref.dbias), gradient_tolerance));
  if (rows >= 4) {
    for (std::size_t i = 0; i < F; ++i) EXPECT_NEAR(y(3, i), b[i], 1e-6) << "constant row, feature " << i;
  }

  // Gradients accumulate over a second backward.
  (void)model(x);
  (void)model.backward(dy);
  std::vector<double> twice_w, twice_b;
  for (double v : ref.dweight) twice_w.push_back(2 * v);
  for (double v : ref.dbias) twice_b.push_back(2 * v);
  EXPECT_TRUE(all_close("grad.weight (accumulated)", model.parameter("weight").grad_span(), to_float(twice_w),
                        gradient_tolerance));
  EXPECT_TRUE(all_close("grad.bias (accumulated)", model.parameter("bias").grad_span(), to_float(twice_b),
                        gradient_tolerance));

  // Evaluation mode is the same function.
  model.eval();
  const Batch<F> ye = model(x);
  EXPECT_TRUE(all_close("output (eval)", ye.values(), to_float(ref.y), forward_tolerance));
}

TEST(LayerNorm, Width5) {
  expect_layer_norm_matches<5>(1, 1);
  expect_layer_norm_matches<5>(7, 2);
}
TEST(LayerNorm, Width13) {
  expect_layer_norm_matches<13>(1, 3);
  expect_layer_norm_matches<13>(7, 4);
}
TEST(LayerNorm, Width37) {
  expect_layer_norm_matches<37>(1, 5);
  expect_layer_norm_matches<37>(7, 6);
}
TEST(LayerNorm, BatchesLargerThanAnEvaluationTile) {
  expect_layer_norm_matches<13>(300, 7);
  expect_layer_norm_matches<37>(600, 8);
}

TEST(LayerNorm, DefaultParametersAndNames) {
  Model<Sequential<Linear<3, 5>, LayerNorm<5>>> model;
  std::vector<std::string> names;
  for (auto&& p : model.named_parameters()) names.emplace_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  for (float v : model.parameter("1.weight").span()) EXPECT_EQ(v, 1.0f);
  for (float v : model.parameter("1.bias").span()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(std::distance(model.named_buffers().begin(), model.named_buffers().end()), 0);
  EXPECT_EQ(repr<LayerNorm<5>>(), "LayerNorm((5,), eps=1e-05, elementwise_affine=True)");
}

// ---- BatchNorm1d (9.2) ------------------------------------------------------------

constexpr std::size_t C = 13;
using BN = Sequential<BatchNorm1d<C>>;

/// The running statistics of a BatchNorm1d, tracked in double.
struct RunningStats {
  std::vector<double> mean, var;
  std::int64_t batches = 0;
};

/// One train-mode BatchNorm1d: output and gradients, and the running statistics updated.
NormReference batch_norm_train_reference(std::span<const float> x, std::span<const float> w,
                                         std::span<const float> b, std::span<const float> dy, std::size_t N,
                                         RunningStats& stats) {
  NormReference r{std::vector<double>(N * C), std::vector<double>(N * C), std::vector<double>(C, 0.0),
                  std::vector<double>(C, 0.0)};
  for (std::size_t c = 0; c < C; ++c) {
    double mean = 0.0;
    for (std::size_t n = 0; n < N; ++n) mean += x[n * C + c];
    mean /= double(N);
    double var = 0.0;
    for (std::size_t n = 0; n < N; ++n) var += (x[n * C + c] - mean) * (x[n * C + c] - mean);
    var /= double(N);  // biased, to normalise
    const double rstd = 1.0 / std::sqrt(var + eps);
    double mean_g = 0.0, mean_gx = 0.0;
    std::vector<double> xhat(N), gxhat(N);
    for (std::size_t n = 0; n < N; ++n) {
      xhat[n] = (x[n * C + c] - mean) * rstd;
      r.y[n * C + c] = xhat[n] * w[c] + b[c];
      if (!dy.empty()) {
        gxhat[n] = double(dy[n * C + c]) * w[c];
        mean_g += gxhat[n] / double(N);
        mean_gx += gxhat[n] * xhat[n] / double(N);
        r.dweight[c] += double(dy[n * C + c]) * xhat[n];
        r.dbias[c] += dy[n * C + c];
      }
    }
    if (!dy.empty())
      for (std::size_t n = 0; n < N; ++n) r.dx[n * C + c] = (gxhat[n] - mean_g - xhat[n] * mean_gx) * rstd;
    stats.mean[c] = 0.9 * stats.mean[c] + 0.1 * mean;
    stats.var[c] = 0.9 * stats.var[c] + 0.1 * var * double(N) / double(N - 1);  // unbiased
  }
  ++stats.batches;
  return r;
}

std::vector<double> batch_norm_eval_reference(std::span<const float> x, std::span<const float> w,
                                              std::span<const float> b, std::size_t N, const RunningStats& stats) {
  std::vector<double> y(N * C);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      y[n * C + c] = (x[n * C + c] - stats.mean[c]) / std::sqrt(stats.var[c] + eps) * w[c] + b[c];
  return y;
}

BufferRef buffer(Model<BN>& model, std::string_view name) {
  for (auto&& b : model.named_buffers())
    if (b.name == name) return b;
  ADD_FAILURE() << "no buffer " << name;
  return {};
}

/// A BatchNorm1d<13> with random affine parameters and running statistics; `stats` mirrors the buffers.
void randomize(Model<BN>& model, RunningStats& stats, std::mt19937& rng) {
  fill_random(model.parameter("0.weight").span(), rng, 1.0f, 0.3f);
  fill_random(model.parameter("0.bias").span(), rng, 0.0f, 0.3f);
  auto mean = buffer(model, "0.running_mean");
  auto var = buffer(model, "0.running_var");
  fill_random({mean.data(), C}, rng, 0.0f, 0.2f);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (std::size_t c = 0; c < C; ++c) var.data()[c] = u(rng);
  stats.mean.assign(mean.data(), mean.data() + C);
  stats.var.assign(var.data(), var.data() + C);
  stats.batches = *buffer(model, "0.num_batches_tracked").integer_data();
}

void expect_buffers_match(Model<BN>& model, const RunningStats& stats, const std::string& what) {
  EXPECT_TRUE(all_close(what + " running_mean", {buffer(model, "0.running_mean").data(), C}, to_float(stats.mean),
                        forward_tolerance));
  EXPECT_TRUE(all_close(what + " running_var", {buffer(model, "0.running_var").data(), C}, to_float(stats.var),
                        forward_tolerance));
  EXPECT_EQ(*buffer(model, "0.num_batches_tracked").integer_data(), stats.batches) << what;
}

void expect_batch_norm_train_matches(std::size_t N, std::uint32_t seed_value) {
  SCOPED_TRACE("BatchNorm1d<13>, batch " + std::to_string(N));
  std::mt19937 rng(seed_value);
  Model<BN> model;
  RunningStats stats;
  randomize(model, stats, rng);
  EXPECT_EQ(stats.batches, 0);
  const auto w = model.parameter("0.weight").span();
  const auto b = model.parameter("0.bias").span();
  const Batch<C> x = random_batch<C>(N, rng, 1.5f, 2.0f);
  const Batch<C> dy = random_batch<C>(N, rng, 0.0f, 1.0f);
  const NormReference ref = batch_norm_train_reference(x.values(), w, b, dy.values(), N, stats);

  ASSERT_TRUE(model.is_training());
  model.zero_grad();
  const Batch<C> y = model(x);
  EXPECT_TRUE(all_close("output", y.values(), to_float(ref.y), forward_tolerance));
  expect_buffers_match(model, stats, "after one forward:");
  const Batch<C> dx = model.backward(dy);
  EXPECT_TRUE(all_close("grad.input", dx.values(), to_float(ref.dx), gradient_tolerance));
  EXPECT_TRUE(all_close("grad.0.weight", model.parameter("0.weight").grad_span(), to_float(ref.dweight),
                        gradient_tolerance));
  EXPECT_TRUE(all_close("grad.0.bias", model.parameter("0.bias").grad_span(), to_float(ref.dbias),
                        gradient_tolerance));
  // Backward does not touch the running statistics.
  expect_buffers_match(model, stats, "after backward:");

  // Per feature, the output has batch mean ≈ bias (train mode normalises with the batch).
  for (std::size_t c = 0; c < C; ++c) {
    double m = 0.0;
    for (std::size_t n = 0; n < N; ++n) m += y(n, c);
    EXPECT_NEAR(m / double(N), b[c], 1e-5) << "feature " << c;
  }
}

TEST(BatchNorm1d, TrainForwardBackwardBatch2) { expect_batch_norm_train_matches(2, 1); }
TEST(BatchNorm1d, TrainForwardBackwardBatch5) { expect_batch_norm_train_matches(5, 2); }
TEST(BatchNorm1d, TrainForwardBackwardBatch37) { expect_batch_norm_train_matches(37, 3); }
TEST(BatchNorm1d, TrainForwardBackwardBatch300) { expect_batch_norm_train_matches(300, 4); }

TEST(BatchNorm1d, RunningStatisticsAfterOneAndThreeForwardsThenEval) {
  std::mt19937 rng(10);
  Model<BN> model;
  RunningStats stats;
  randomize(model, stats, rng);
  const auto w = model.parameter("0.weight").span();
  const auto b = model.parameter("0.bias").span();
  const std::vector<std::size_t> batch_sizes = {5, 2, 37};
  for (std::size_t k = 0; k < batch_sizes.size(); ++k) {
    const std::size_t N = batch_sizes[k];
    const Batch<C> x = random_batch<C>(N, rng, -0.5f + float(k), 1.0f + float(k));
    const NormReference ref = batch_norm_train_reference(x.values(), w, b, {}, N, stats);
    const Batch<C> y = model(x);
    EXPECT_TRUE(all_close("output of forward " + std::to_string(k + 1), y.values(), to_float(ref.y),
                          forward_tolerance));
    expect_buffers_match(model, stats, "after " + std::to_string(k + 1) + " forwards:");
  }
  EXPECT_EQ(stats.batches, 3);

  // Evaluation: normalised with the running statistics; the buffers stay as they are.
  model.eval();
  for (std::size_t N : {1u, 4u, 300u}) {
    const Batch<C> x = random_batch<C>(N, rng, 0.5f, 2.0f);
    const Batch<C> y = model(x);
    EXPECT_TRUE(all_close("eval output, batch " + std::to_string(N), y.values(),
                          to_float(batch_norm_eval_reference(x.values(), w, b, N, stats)), forward_tolerance));
    expect_buffers_match(model, stats, "after an eval forward:");
  }

  // Back in training mode, statistics move again.
  model.train();
  const Batch<C> x = random_batch<C>(4, rng, 0.0f, 1.0f);
  (void)batch_norm_train_reference(x.values(), w, b, {}, 4, stats);
  (void)model(x);
  expect_buffers_match(model, stats, "after a fourth train forward:");
}

TEST(BatchNorm1d, UnbiasedVarianceInRunningVar) {
  // Two rows per feature: 0 and 2 -> batch mean 1, biased var 1, unbiased var 2.
  Model<BN> model;
  Batch<C> x(2);
  for (std::size_t c = 0; c < C; ++c) x(0, c) = 0.0f, x(1, c) = 2.0f;
  const Batch<C> y = model(x);
  for (std::size_t c = 0; c < C; ++c) {
    EXPECT_NEAR(buffer(model, "0.running_mean").data()[c], 0.1, 1e-7);          // 0.9·0 + 0.1·1
    EXPECT_NEAR(buffer(model, "0.running_var").data()[c], 0.9 + 0.1 * 2, 1e-6);  // 0.9·1 + 0.1·2
    EXPECT_NEAR(y(0, c), -1.0 / std::sqrt(1.0 + eps), 1e-6);
    EXPECT_NEAR(y(1, c), 1.0 / std::sqrt(1.0 + eps), 1e-6);
  }
  EXPECT_EQ(*buffer(model, "0.num_batches_tracked").integer_data(), 1);
}

TEST(BatchNorm1d, BatchOfOneInTrainingModeThrows) {
  std::mt19937 rng(20);
  Model<BN> model;
  RunningStats stats;
  randomize(model, stats, rng);
  const Batch<C> x = random_batch<C>(1, rng, 0.0f, 1.0f);
  try {
    (void)model(x);
    ADD_FAILURE() << "a batch of 1 in training mode did not throw";
  } catch (const ValueError& e) {
    std::string message = e.what();
    // Leave out the layer's name, whose "1d" would satisfy the check on its own.
    for (std::size_t at; (at = message.find("BatchNorm1d")) != std::string::npos;) message.erase(at, 11);
    EXPECT_NE(message.find('1'), std::string::npos) << e.what();
  }
  // Nothing changed.
  expect_buffers_match(model, stats, "after the failed forward:");
  // The same row is fine in evaluation mode.
  model.eval();
  const auto w = model.parameter("0.weight").span();
  const auto b = model.parameter("0.bias").span();
  EXPECT_TRUE(all_close("eval output, batch 1", model(x).values(),
                        to_float(batch_norm_eval_reference(x.values(), w, b, 1, stats)), forward_tolerance));
}

TEST(BatchNorm1d, DefaultsNamesAndStateDict) {
  Model<BN> model;
  std::vector<std::string> params, buffers;
  for (auto&& p : model.named_parameters()) params.emplace_back(p.name);
  for (auto&& b : model.named_buffers()) buffers.emplace_back(b.name);
  EXPECT_EQ(params, (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(buffers, (std::vector<std::string>{"0.running_mean", "0.running_var", "0.num_batches_tracked"}));
  for (float v : model.parameter("0.weight").span()) EXPECT_EQ(v, 1.0f);
  for (float v : model.parameter("0.bias").span()) EXPECT_EQ(v, 0.0f);
  for (std::size_t c = 0; c < C; ++c) {
    EXPECT_EQ(buffer(model, "0.running_mean").data()[c], 0.0f);
    EXPECT_EQ(buffer(model, "0.running_var").data()[c], 1.0f);
  }
  EXPECT_EQ(*buffer(model, "0.num_batches_tracked").integer_data(), 0);
  EXPECT_TRUE(buffer(model, "0.num_batches_tracked").is_integer());
  EXPECT_FALSE(buffer(model, "0.running_var").is_integer());

  const auto sd = state_dict_tensors(model);
  ASSERT_EQ(sd.size(), 5u);
  const std::vector<std::string> keys = {"0.weight", "0.bias", "0.running_mean", "0.running_var",
                                         "0.num_batches_tracked"};
  for (std::size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(sd[i].name, keys[i]);
    if (i < 4) {
      EXPECT_EQ(sd[i].dtype, DType::F32) << keys[i];
      EXPECT_EQ(sd[i].shape, (std::vector<std::int64_t>{13})) << keys[i];
    } else {
      EXPECT_EQ(sd[i].dtype, DType::I64);
      EXPECT_TRUE(sd[i].shape.empty());  // a scalar, as PyTorch's
    }
  }

  // Further into a pipeline the index moves, as PyTorch's.
  Model<Sequential<Linear<4, C>, BatchNorm1d<C>, ReLU>> deeper;
  std::vector<std::string> deeper_keys;
  for (const auto& t : state_dict_tensors(deeper)) deeper_keys.push_back(t.name);
  EXPECT_EQ(deeper_keys, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                                   "1.running_var", "1.num_batches_tracked"}));
  EXPECT_EQ(repr<BatchNorm1d<C>>(),
            "BatchNorm1d(13, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
}

// ---- Dropout (9.6) -------------------------------------------------------------

constexpr std::size_t DW = 1000;  // 100 rows of 1000: 100000 elements
constexpr std::size_t DRows = 100;
template <class P>
using DropoutNet = Sequential<Flatten<DW>, Dropout<P>>;

/// Values away from 0, so that a zero in the output can only come from the mask.
Batch<DW> dropout_input(std::uint32_t seed_value) {
  std::mt19937 rng(seed_value);
  std::uniform_real_distribution<float> mag(0.5f, 1.5f);
  std::bernoulli_distribution sign(0.5);
  Batch<DW> x(DRows);
  for (float& v : x) v = sign(rng) ? mag(rng) : -mag(rng);
  return x;
}

template <class P>
void expect_inverted_dropout(std::uint64_t model_seed) {
  constexpr double p = double(P::num) / double(P::den);
  SCOPED_TRACE("p = " + std::to_string(p));
  Model<DropoutNet<P>> model{seed(model_seed)};
  static_assert(Model<DropoutNet<P>>::num_params == 0);
  const Batch<DW> x = dropout_input(1);
  Batch<DW> dy(DRows);
  {
    std::mt19937 rng(2);
    std::normal_distribution<float> n(0.0f, 1.0f);
    for (float& v : dy) v = n(rng);
  }
  ASSERT_TRUE(model.is_training());
  const Batch<DW> y = model(x);
  const Batch<DW> dx = model.backward(dy);
  const double scale = 1.0 / (1.0 - p);
  std::size_t zeros = 0, bad_values = 0, bad_grads = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double xi = x.data()[i], yi = y.data()[i], gi = dx.data()[i], dyi = dy.data()[i];
    if (yi == 0.0) {
      ++zeros;
      if (gi != 0.0) ++bad_grads;  // dropped: no gradient
    } else {
      if (std::fabs(yi - xi * scale) > 1e-6 * std::fabs(xi * scale)) ++bad_values;
      if (std::fabs(gi - dyi * scale) > 1e-6 * std::fabs(dyi * scale) + 1e-30) ++bad_grads;
    }
  }
  EXPECT_EQ(bad_values, 0u) << "every element is 0 or x/(1-p)";
  EXPECT_EQ(bad_grads, 0u) << "backward uses the forward's mask and scale";
  const double n = double(y.size());
  const double fraction = double(zeros) / n;
  const double sigma = std::sqrt(p * (1.0 - p) / n);
  EXPECT_NEAR(fraction, p, 4.0 * sigma) << zeros << " zeros of " << y.size();

  // Evaluation mode is the identity, bit for bit, and so is its input gradient's absence of scaling.
  model.eval();
  const Batch<DW> ye = model(x);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(ye.data()[i], x.data()[i]) << i;
}

TEST(Dropout, HalfIsInvertedDropout) { expect_inverted_dropout<std::ratio<1, 2>>(1); }
TEST(Dropout, TenthIsInvertedDropout) { expect_inverted_dropout<std::ratio<1, 10>>(2); }
TEST(Dropout, OtherSeedsToo) {
  expect_inverted_dropout<std::ratio<1, 2>>(12345);
  expect_inverted_dropout<std::ratio<1, 10>>(987654321);
}

TEST(Dropout, DefaultIsOneHalf) {
  static_assert(std::is_same_v<Dropout<>, Dropout<std::ratio<1, 2>>>);
  EXPECT_EQ((DropoutLayer<std::ratio<1, 2>, 4>::p), 0.5);
}

TEST(Dropout, EvalIsIdentity) {
  Model<Sequential<Flatten<7>, Dropout<>>> model{seed(3)};
  model.eval();
  Batch<7> x(3);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) - 10.5f;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const Batch<7> y = model(x);
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y.data()[i], x.data()[i]);
  }
  // Large batches run in tiles: still the identity.
  const Batch<DW> big = dropout_input(5);
  Model<DropoutNet<std::ratio<1, 10>>> m2;
  m2.eval();
  const Batch<DW> ybig = m2(big);
  for (std::size_t i = 0; i < big.size(); ++i) ASSERT_EQ(ybig.data()[i], big.data()[i]);
}

TEST(Dropout, SameSeedSameMaskOtherSeedOtherMask) {
  const Batch<DW> x = dropout_input(3);
  Model<DropoutNet<std::ratio<1, 2>>> a{seed(42)}, b{seed(42)}, c{seed(43)};
  const Batch<DW> ya = a(x), yb = b(x), yc = c(x);
  std::size_t same_ab = 0, same_ac = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    same_ab += (ya.data()[i] == 0.0f) == (yb.data()[i] == 0.0f);
    same_ac += (ya.data()[i] == 0.0f) == (yc.data()[i] == 0.0f);
  }
  EXPECT_EQ(same_ab, x.size()) << "the same seed gives the same mask";
  // Independent masks agree on about half the elements.
  EXPECT_LT(same_ac, x.size() * 6 / 10) << "another seed gives another mask";
  EXPECT_GT(same_ac, x.size() * 4 / 10);

  // The next forward of the same model draws a fresh mask.
  const Batch<DW> ya2 = a(x);
  std::size_t same_again = 0;
  for (std::size_t i = 0; i < x.size(); ++i) same_again += (ya.data()[i] == 0.0f) == (ya2.data()[i] == 0.0f);
  EXPECT_LT(same_again, x.size() * 6 / 10);

  // A copy carries the generator: it draws the same next mask as the original.
  Model<DropoutNet<std::ratio<1, 2>>> copy = b;
  const Batch<DW> yb2 = b(x), ycopy = copy(x);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(yb2.data()[i], ycopy.data()[i]) << i;
  // And b's second mask is a's second mask.
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(yb2.data()[i], ya2.data()[i]) << i;
}

TEST(Dropout, BackwardUsesTheMaskOfTheLastForward) {
  Model<DropoutNet<std::ratio<1, 2>>> model{seed(9)};
  const Batch<DW> x = dropout_input(4);
  Batch<DW> ones(DRows);
  for (float& v : ones) v = 1.0f;
  const Batch<DW> y = model(x);
  const Batch<DW> dx = model.backward(ones);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(dx.data()[i], y.data()[i] == 0.0f ? 0.0f : 2.0f) << i;
  // A second forward draws a new mask, and backward follows it.
  const Batch<DW> y2 = model(x);
  const Batch<DW> dx2 = model.backward(ones);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(dx2.data()[i], y2.data()[i] == 0.0f ? 0.0f : 2.0f) << i;
}

TEST(Dropout, ProbabilityZeroIsIdentityInTraining) {
  Model<DropoutNet<std::ratio<0>>> model{seed(1)};
  const Batch<DW> x = dropout_input(6);
  Batch<DW> dy(DRows);
  for (std::size_t i = 0; i < dy.size(); ++i) dy.data()[i] = float(i % 17) - 8.0f;
  const Batch<DW> y = model(x);
  const Batch<DW> dx = model.backward(dy);
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y.data()[i], x.data()[i]) << i;
    ASSERT_EQ(dx.data()[i], dy.data()[i]) << i;
  }
}

TEST(Dropout, ProbabilityOneDropsEverything) {
  Model<Sequential<Flatten<16>, Dropout<std::ratio<1>>>> model;
  Batch<16> x(4);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) + 1.0f;
  Batch<16> dy(4);
  for (float& v : dy) v = 1.0f;
  const Batch<16> y = model(x);
  const Batch<16> dx = model.backward(dy);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(y.data()[i], 0.0f);
    EXPECT_TRUE(std::isfinite(dx.data()[i]));
    EXPECT_EQ(dx.data()[i], 0.0f);
  }
}

TEST(Dropout, Repr) {
  Model<Sequential<Flatten<4>, Dropout<>>> half;
  std::ostringstream os;
  os << half;
  EXPECT_NE(os.str().find("(1): Dropout(p=0.5, inplace=False)"), std::string::npos) << os.str();
  EXPECT_EQ((repr<Sequential<Flatten<4>, Dropout<>>>()),
            "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Dropout(p=0.5, inplace=False)\n)");
  std::ostringstream one;
  DropoutLayer<std::ratio<1, 2>, 4>::print(one, 0);
  EXPECT_EQ(one.str(), "Dropout(p=0.5, inplace=False)");
  std::ostringstream tenth;
  DropoutLayer<std::ratio<1, 10>, 4>::print(tenth, 0);
  EXPECT_EQ(tenth.str(), "Dropout(p=0.1, inplace=False)");
}

TEST(Dropout, InANetworkBetweenLinearLayers) {
  // Linear -> Dropout -> Linear: in training mode the hidden units that were
  // dropped give no gradient to the first layer's rows.
  using Net = Sequential<Linear<3, 64>, Dropout<>, Linear<64, 1>>;
  Model<Net> model{seed(5)};
  const Batch<3> x(1, {0.5f, -1.0f, 2.0f});
  const Batch<1> y = model(x);
  (void)y;
  model.zero_grad();
  (void)model.backward(Batch<1>(1, {1.0f}));
  const auto w2 = model.parameter("2.weight").span();
  const auto g1 = model.parameter("0.bias").grad_span();
  const auto g2 = model.parameter("2.weight").grad_span();
  std::size_t dropped = 0;
  for (std::size_t h = 0; h < 64; ++h) {
    // dL/dw2[h] = dropout(hidden)[h]: 0 exactly where h was dropped.
    if (g2[h] == 0.0f) {
      ++dropped;
      EXPECT_EQ(g1[h], 0.0f) << h;
    } else {
      EXPECT_NEAR(g1[h], 2.0 * w2[h], 1e-6) << h;  // dL/db1[h] = w2[h] · 1/(1-p)
    }
  }
  EXPECT_GT(dropped, 10u);
  EXPECT_LT(dropped, 54u);
  // Evaluation mode: deterministic and unscaled.
  model.eval();
  const Batch<1> e1 = model(x), e2 = model(x);
  EXPECT_EQ(e1(0, 0), e2(0, 0));
}

}  // namespace
}  // namespace ctnn::test

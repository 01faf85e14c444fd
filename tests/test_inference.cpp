// InferenceModel (core/inference_model.hpp): the packed single-row path and its
// batch path against the conformance data, against double-precision references
// at odd sizes (every Linear shape the row kernel distinguishes: dot products
// for Out <= 4, broadcasts over wᵀ otherwise, blocks of output vectors, tails),
// under every architecture this CPU has; layers the row path runs through their
// own forward (norms, dropout, softmax, custom modules); refresh(); and zero
// allocations per call.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "conformance.hpp"
#include "test_inputs.hpp"
#include "networks.hpp"

#include "allocation_counter.hpp"

namespace ctnn::test {
namespace {

/// Every row through the row path (one Vec at a time, and forward_into with
/// up to row_path_max_rows rows) and the whole batch through the batch path.
template <class Net>
void expect_all_paths_close(InferenceModel<Net>& fast, std::span<const float> x, std::size_t rows,
                            std::span<const float> ref, Tolerance tol, const std::string& what) {
  constexpr std::size_t in = InferenceModel<Net>::in_features, out = InferenceModel<Net>::out_features;
  std::vector<float> y(rows * out);
  for (std::size_t r = 0; r < rows; ++r) {
    Vec<in> v;
    std::copy_n(x.data() + r * in, in, v.data());
    const Vec<out> yr = fast(v);
    std::copy_n(yr.data(), out, y.data() + r * out);
  }
  EXPECT_TRUE(all_close(what + " (rows one by one)", y, ref, tol));
  for (std::size_t r0 = 0; r0 < rows; r0 += InferenceModel<Net>::row_path_max_rows) {
    const std::size_t n = std::min(InferenceModel<Net>::row_path_max_rows, rows - r0);
    fast.forward_into(x.data() + r0 * in, y.data() + r0 * out, n);
  }
  EXPECT_TRUE(all_close(what + " (forward_into, a few rows)", y, ref, tol));
  fast.forward_into(x.data(), y.data(), rows);
  EXPECT_TRUE(all_close(what + " (forward_into, " + std::to_string(rows) + " rows)", y, ref, tol));
}

template <class Net>
void expect_conformance(const std::string& case_name, const LoadOptions& options = conformance_options()) {
  SCOPED_TRACE(case_name);
  const Case c(case_name);
  Model<Net> model;
  load_safetensors(model, c.path(), options);
  InferenceModel<Net> fast(model);
  const std::vector<float> x = c.f32("input"), ref = c.f32("output");
  for (kernels::Arch a : available_archs()) {
    fast.set_arch(a);
    expect_all_paths_close(fast, x, c.rows("input"), ref, forward_tolerance,
                           case_name + " on " + std::string(kernels::arch_name(a)));
  }
}

TEST(Inference, TinyLinear) { expect_conformance<TinyLinear>("tiny_linear"); }
TEST(Inference, Mlp381) { expect_conformance<Mlp381>("mlp_3_8_1"); }
TEST(Inference, SeedResidualMlp) { expect_conformance<SeedResidualMlp>("seed_residual_mlp", seed_residual_options()); }
TEST(Inference, SimpleNet) { expect_conformance<SimpleNet>("simplenet"); }
TEST(Inference, SineNet) { expect_conformance<SineNet>("sinenet"); }
TEST(Inference, MnistMlp) { expect_conformance<MnistMlp>("mnist_mlp"); }
TEST(Inference, ResBlocks) { expect_conformance<ResBlocks>("resblocks"); }
TEST(Inference, Autoencoder) { expect_conformance<Autoencoder>("autoencoder"); }
TEST(Inference, DynamicMlp) { expect_conformance<DynamicMlp>("dynamic_mlp"); }

// ---- odd sizes against a double-precision reference ------------------------

/// y = act(x · wᵀ + b) in double for one Linear of `model`'s parameters at `offset`.
std::vector<double> linear_reference(std::span<const double> x, std::size_t rows, std::size_t in, std::size_t out,
                                     const float* w, const float* b) {
  std::vector<double> y(rows * out);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < out; ++j) {
      double s = b ? b[j] : 0.0;
      for (std::size_t k = 0; k < in; ++k) s += double(w[j * in + k]) * x[r * in + k];
      y[r * out + j] = s;
    }
  return y;
}

/// One Linear<In, Out> (with ReLU after it when Relu) on every architecture,
/// at 1..5, 13 and 37 rows, against double.
template <std::size_t In, std::size_t Out, bool Relu, bool Bias = true>
void expect_linear_shape() {
  using L = Linear<In, Out, Bias>;
  using Net = std::conditional_t<Relu, Sequential<L, ReLU>, Sequential<L>>;
  SCOPED_TRACE("Linear<" + std::to_string(In) + ", " + std::to_string(Out) + (Bias ? "" : ", false") + ">" +
               (Relu ? " + ReLU" : ""));
  Model<Net> model{seed(In * 100 + Out)};
  InferenceModel<Net> fast(model);
  const float* w = model.parameters().data();
  for (std::size_t rows : {1u, 2u, 3u, 4u, 5u, 13u, 37u}) {
    const std::vector<float> x = random_values(rows * In, unsigned(rows), -2.0f, 2.0f);
    const std::vector<double> xd(x.begin(), x.end());
    std::vector<double> ref = linear_reference(xd, rows, In, Out, w, Bias ? w + In * Out : nullptr);
    if (Relu)
      for (double& v : ref) v = std::max(v, 0.0);
    const std::vector<float> ref_f(ref.begin(), ref.end());
    for (kernels::Arch a : available_archs()) {
      fast.set_arch(a);
      expect_all_paths_close(fast, x, rows, ref_f, forward_tolerance,
                             "rows=" + std::to_string(rows) + " on " + std::string(kernels::arch_name(a)));
    }
  }
}

TEST(Inference, EveryLinearShapeMatchesDoubleReference) {
  // Dot products (Out <= 4 with enough inputs), with and without an input tail.
  static_assert(kernels::row_uses_dots<16, 1> && kernels::row_uses_dots<37, 3> && kernels::row_uses_dots<128, 4>);
  expect_linear_shape<16, 1, false>();
  expect_linear_shape<37, 3, true>();
  expect_linear_shape<128, 4, false>();
  expect_linear_shape<37, 1, false, false>();
  // Broadcasts over wᵀ: one partial output vector, several chains of k.
  static_assert(!kernels::row_uses_dots<3, 1> && !kernels::row_uses_dots<5, 13>);
  expect_linear_shape<3, 1, false>();
  expect_linear_shape<1, 5, true>();
  expect_linear_shape<5, 13, true>();
  expect_linear_shape<13, 37, false>();
  expect_linear_shape<37, 5, true, false>();
  // More output vectors than one block of accumulators (16 vectors on
  // AVX-512, 8 on the others), with a partial last vector.
  expect_linear_shape<7, 300, true>();
  expect_linear_shape<64, 257, false>();
  // Quads (inputs in groups of four, rotated within 128-bit lanes): one
  // group; whole vectors of x on every architecture; a last partial vector of
  // x (20 = 16 + 4 on AVX-512, 2·8 + 4 on AVX2); W2's 64 -> 64 at the size
  // limit; several blocks of output vectors with a partial last one.
  static_assert(kernels::row_uses_quads<4, 5> && kernels::row_uses_quads<16, 16> && kernels::row_uses_quads<20, 13> &&
                kernels::row_uses_quads<64, 64> && kernels::row_uses_quads<12, 300>);
  static_assert(!kernels::row_uses_quads<13, 37> && !kernels::row_uses_quads<68, 64> &&
                !kernels::row_uses_quads<16, 1>);
  expect_linear_shape<4, 5, true>();
  expect_linear_shape<16, 16, true>();
  expect_linear_shape<8, 37, false>();
  expect_linear_shape<20, 13, true>();
  expect_linear_shape<64, 64, false, false>();
  expect_linear_shape<12, 300, true>();
  expect_linear_shape<68, 64, true>();  // just past the limit: columns
}

// A residual pipeline of odd widths; its reference in double.
using OddResidual = Sequential<Linear<5, 13>, Tanh, Residual<Linear<13, 13>, Sigmoid>, Linear<13, 37>, ReLU,
                               Named<"out", Linear<37, 7>>>;

std::vector<double> odd_residual_reference(Model<OddResidual>& m, std::span<const float> x, std::size_t rows) {
  const float* p = m.parameters().data();
  const std::vector<double> xd(x.begin(), x.end());
  auto h = linear_reference(xd, rows, 5, 13, p, p + 65);
  for (double& v : h) v = std::tanh(v);
  p += 65 + 13;
  auto g = linear_reference(h, rows, 13, 13, p, p + 169);
  for (std::size_t i = 0; i < g.size(); ++i) h[i] += 1.0 / (1.0 + std::exp(-g[i]));
  p += 169 + 13;
  auto z = linear_reference(h, rows, 13, 37, p, p + 481);
  for (double& v : z) v = std::max(v, 0.0);
  p += 481 + 37;
  return linear_reference(z, rows, 37, 7, p, p + 259);
}

TEST(Inference, OddResidualPipelineMatchesDoubleReference) {
  Model<OddResidual> model{seed(11)};
  static_assert(Model<OddResidual>::num_params == 65 + 13 + 169 + 13 + 481 + 37 + 259 + 7);
  InferenceModel<OddResidual> fast(model);
  for (std::size_t rows : {1u, 4u, 5u, 37u, 300u, 600u}) {  // 600: two evaluation tiles
    const std::vector<float> x = random_values(rows * 5, 100 + unsigned(rows), -2.0f, 2.0f);
    const auto ref = odd_residual_reference(model, x, rows);
    const std::vector<float> ref_f(ref.begin(), ref.end());
    for (kernels::Arch a : available_archs()) {
      fast.set_arch(a);
      expect_all_paths_close(fast, x, rows, ref_f, forward_tolerance,
                             "rows=" + std::to_string(rows) + " on " + std::string(kernels::arch_name(a)));
    }
  }
}

// ---- layers the row path runs through their own forward --------------------

using WithNorms = Sequential<Linear<5, 13>, LayerNorm<13>, GELU, Dropout<std::ratio<1, 4>>, Linear<13, 13>,
                             BatchNorm1d<13>, Residual<Linear<13, 13>, SiLU>, Linear<13, 6>, Softmax>;

TEST(Inference, NormsDropoutAndSoftmaxMatchTheModelInEvaluation) {
  Model<WithNorms> model{seed(5)};
  // Running statistics that are not the defaults, from a few training batches.
  for (unsigned s = 0; s < 3; ++s) model(Batch<5>(16, random_values(16 * 5, s, -2.0f, 2.0f)));
  model.eval();
  InferenceModel<WithNorms> fast(model);
  for (std::size_t rows : {1u, 3u, 37u}) {
    const std::vector<float> x = random_values(rows * 5, 40 + unsigned(rows), -2.0f, 2.0f);
    const Batch<6> ref = model(Batch<5>(rows, x));
    for (kernels::Arch a : available_archs()) {
      fast.set_arch(a);
      expect_all_paths_close(fast, x, rows, ref.values(), forward_tolerance,
                             "rows=" + std::to_string(rows) + " on " + std::string(kernels::arch_name(a)));
    }
  }
}

struct TwoPaths {
  CTNN_MODULE(TwoPaths, (Linear<5, 13>, a), (Linear<5, 13>, b), (Linear<13, 3>, out));
  constexpr auto forward(auto x) const { return out(relu(a(x)) * tanh(b(x))); }
};

TEST(Inference, CustomModulesRunTheirOwnForward) {
  Model<TwoPaths> model{seed(8)};
  model.eval();
  InferenceModel<TwoPaths> fast(model);
  const std::vector<float> x = random_values(13 * 5, 9, -2.0f, 2.0f);
  const Batch<3> ref = model(Batch<5>(13, x));
  expect_all_paths_close(fast, x, 13, ref.values(), forward_tolerance, "TwoPaths");
}

// ---- snapshot semantics -------------------------------------------------------

TEST(Inference, IsASnapshotUntilRefreshed) {
  Model<OddResidual> model{seed(2)};
  model.eval();
  InferenceModel<OddResidual> fast(model);
  const std::vector<float> xs = random_values(5, 1, -2.0f, 2.0f);
  Vec<5> x;
  std::copy(xs.begin(), xs.end(), x.data());
  const Vec<7> before = fast(x);

  // An SGD step changes the model, not the snapshot.
  model.train();
  optim::SGD opt(model, {.lr = 0.1f});
  opt.zero_grad();
  auto loss = MSELoss{}(model(Batch<5>(1, xs)), Batch<7>(1, std::vector<float>(7, 3.0f)));
  loss.backward();
  opt.step();
  model.eval();
  const Vec<7> stale = fast(x);
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(stale[i], before[i]);

  // refresh() copies the new parameters: the outputs follow the model again.
  EXPECT_EQ(count_allocations([&] { fast.refresh(model); }), 0) << "refresh() allocated";
  const Vec<7> now = fast(x);
  const Vec<7> expected = model(x);
  bool changed = false;
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_NEAR(now[i], expected[i], 1e-5 + 1e-4 * std::fabs(expected[i]));
    changed = changed || now[i] != before[i];
  }
  EXPECT_TRUE(changed) << "the step did not change the outputs";
  for (std::size_t i = 0; i < Model<OddResidual>::num_params; ++i)
    ASSERT_EQ(fast.parameters()[i], model.parameters()[i]);
}

TEST(Inference, SetArchRejectsWhatThisCpuCannotRun) {
  Model<Mlp381> model;
  InferenceModel<Mlp381> fast(model);
  EXPECT_EQ(fast.arch(), model.arch());
  for (kernels::Arch a : {kernels::Arch::sse4_2, kernels::Arch::avx2, kernels::Arch::avx512})
    if (!kernels::available(a)) {
      EXPECT_THROW(fast.set_arch(a), ValueError);
    }
}

TEST(Inference, CallsAllocateNothing) {
  Model<ResBlocks> model{seed(4)};
  InferenceModel<ResBlocks> fast(model);
  Vec<128> x;
  constexpr std::size_t two_tiles = InferenceModel<ResBlocks>::tile_rows + 44;
  const std::vector<float> xs = random_values(128 * two_tiles, 3, -2.0f, 2.0f);
  std::copy_n(xs.data(), 128, x.data());
  std::vector<float> y(128 * two_tiles);
  EXPECT_EQ(count_allocations([&] {
  for (int i = 0; i < 1000; ++i) {
    const Vec<128> out = fast(x);
    x[0] = xs[0] + 1e-3f * out[0];
  }
  for (int i = 0; i < 10; ++i) {
    fast.forward_into(xs.data(), y.data(), 3);    // the row path
    fast.forward_into(xs.data(), y.data(), two_tiles);  // the batch path, two tiles
  }
  }), 0);
}

}  // namespace
}  // namespace ctnn::test

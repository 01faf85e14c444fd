// Forward outputs of every model case in tests/data against PyTorch, in
// training mode (as the references) and in evaluation mode (tiled rows), plus
// nets of odd sizes against a double-precision reference computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

template <class Net>
void expect_forward_matches(const std::string& case_name, const LoadOptions& options = conformance_options()) {
  SCOPED_TRACE(case_name);
  const Case c(case_name);
  Model<Net> model;
  load_safetensors(model, c.path(), options);
  const typename Model<Net>::input_type x(c.rows("input"), c.f32("input"));

  const auto train_out = model(x);
  EXPECT_TRUE(all_close(case_name + " output", train_out.values(), c.f32("output"), forward_tolerance));

  model.eval();
  const auto eval_out = model(x);
  EXPECT_TRUE(all_close(case_name + " output (eval)", eval_out.values(), c.f32("output"), forward_tolerance));
}

TEST(Forward, TinyLinear) { expect_forward_matches<TinyLinear>("tiny_linear"); }
TEST(Forward, Mlp381) { expect_forward_matches<Mlp381>("mlp_3_8_1"); }
TEST(Forward, SeedResidualMlp) { expect_forward_matches<SeedResidualMlp>("seed_residual_mlp", seed_residual_options()); }
TEST(Forward, SimpleNet) { expect_forward_matches<SimpleNet>("simplenet"); }
TEST(Forward, SineNet) { expect_forward_matches<SineNet>("sinenet"); }
TEST(Forward, MnistMlp) { expect_forward_matches<MnistMlp>("mnist_mlp"); }
TEST(Forward, ResBlocks) { expect_forward_matches<ResBlocks>("resblocks"); }
TEST(Forward, Autoencoder) { expect_forward_matches<Autoencoder>("autoencoder"); }
TEST(Forward, DynamicMlp) { expect_forward_matches<DynamicMlp>("dynamic_mlp"); }

TEST(Forward, AutoencoderEncoderAlone) {
  const Case c("autoencoder");
  Model<Autoencoder> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<20> x(c.rows("input"), c.f32("input"));
  auto encoder = model.submodule<"encoder">();
  const Batch<4> code = encoder(x);
  EXPECT_TRUE(all_close("encode.output", code.values(), c.f32("encode.output"), forward_tolerance));
  model.eval();
  const Batch<4> code_eval = model.submodule<"encoder">()(x);
  EXPECT_TRUE(all_close("encode.output (eval)", code_eval.values(), c.f32("encode.output"), forward_tolerance));
}

TEST(Forward, MultiTaskBothHeads) {
  const Case c("multitask");
  Model<MultiTask> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<16> x(c.rows("input"), c.f32("input"));
  for (bool training : {true, false}) {
    model.train(training);
    auto out = model(x);
    const auto classify = out.get<"classify">();
    const auto regress = get<"regress">(out);
    static_assert(decltype(classify)::row_size == 10 && decltype(regress)::row_size == 1);
    EXPECT_TRUE(all_close("output.classify", {classify.data(), classify.size()}, c.f32("output.classify"),
                          forward_tolerance));
    EXPECT_TRUE(all_close("output.regress", {regress.data(), regress.size()}, c.f32("output.regress"),
                          forward_tolerance));
  }
}

// ---- beyond the reference files: odd widths, batch 1, batches larger than a tile

using OddNet = Sequential<Linear<5, 13>, GELU, Residual<Linear<13, 13>, Tanh>, Linear<13, 37>, LeakyReLU<>,
                          Linear<37, 7, false>, Softmax>;

/// The same network in double precision, straight from its parameters.
std::vector<double> odd_net_reference(Model<OddNet>& m, const std::vector<float>& x, std::size_t rows) {
  auto p = [&](const char* name) { return m.parameter(name).span(); };
  auto linear = [&](const std::vector<double>& in, std::size_t n_in, std::size_t n_out, std::span<float> w,
                    std::span<float> b) {
    std::vector<double> out(rows * n_out);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t o = 0; o < n_out; ++o) {
        double acc = b.empty() ? 0.0 : b[o];
        for (std::size_t i = 0; i < n_in; ++i) acc += in[r * n_in + i] * double(w[o * n_in + i]);
        out[r * n_out + o] = acc;
      }
    return out;
  };
  std::vector<double> h(x.begin(), x.end());
  h = linear(h, 5, 13, p("0.weight"), p("0.bias"));
  for (auto& v : h) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  auto body = linear(h, 13, 13, p("2.0.weight"), p("2.0.bias"));
  for (std::size_t i = 0; i < h.size(); ++i) h[i] += std::tanh(body[i]);
  h = linear(h, 13, 37, p("3.weight"), p("3.bias"));
  for (auto& v : h) v = v > 0 ? v : 0.01 * v;
  h = linear(h, 37, 7, p("5.weight"), {});
  for (std::size_t r = 0; r < rows; ++r) {
    double mx = -1e300, sum = 0;
    for (std::size_t i = 0; i < 7; ++i) mx = std::max(mx, h[r * 7 + i]);
    for (std::size_t i = 0; i < 7; ++i) sum += std::exp(h[r * 7 + i] - mx);
    for (std::size_t i = 0; i < 7; ++i) h[r * 7 + i] = std::exp(h[r * 7 + i] - mx) / sum;
  }
  return h;
}

TEST(Forward, OddSizesMatchDoubleReferenceForEveryBatchSize) {
  Model<OddNet> model{seed(7)};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (std::size_t rows : {1u, 2u, 5u, 13u, 37u, 300u, 600u}) {
    std::vector<float> x(rows * 5);
    for (auto& v : x) v = u(rng);
    const auto ref = odd_net_reference(model, x, rows);
    const std::vector<float> ref_f(ref.begin(), ref.end());
    for (bool training : {true, false}) {
      model.train(training);
      const Batch<7> y = model(Batch<5>(rows, x));
      EXPECT_TRUE(all_close("rows=" + std::to_string(rows), y.values(), ref_f, forward_tolerance));
    }
  }
}

TEST(Forward, SingleSampleVecMatchesBatch) {
  Model<OddNet> model{seed(1)};
  model.eval();
  Vec<5> v;
  for (std::size_t i = 0; i < 5; ++i) v[i] = 0.3f * float(i) - 0.7f;
  const Vec<7> out = model(v);
  const Batch<7> batch_out = model(Batch<5>(1, std::span<const float>(v.values)));
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(out[i], batch_out(0, i));
}

TEST(Forward, EmptyBatchGivesEmptyOutput) {
  Model<OddNet> model;
  EXPECT_EQ(model(Batch<5>(0)).rows(), 0u);
}

}  // namespace
}  // namespace ctnn::test

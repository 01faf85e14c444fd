// Training against PyTorch: for every model case, the loss, dLoss/dInput and
// dLoss/dParam of one forward/backward, then three optimizer steps (the
// protocol of CONFORMANCE.md 4.2), the sinenet 300-step curve, and the norm
// cases' buffers and evaluation outputs.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

template <class Net>
std::vector<float> param_values(Model<Net>& model, const std::string& name) {
  auto p = model.parameter(name);
  return {p.data(), p.data() + p.size()};
}

template <class Net>
void expect_params_match(Model<Net>& model, const Case& c, const std::string& prefix, Tolerance tol) {
  for (auto&& p : model.named_parameters()) {
    const std::string key = prefix + std::string(p.name);
    ASSERT_TRUE(c.has(key)) << key;
    EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), tol));
  }
}

/// The model's key in the file for a parameter (undoes a rename).
using KeyMap = std::function<std::string(const std::string&)>;
const KeyMap same_key = [](const std::string& k) { return k; };

template <class Net, class LossFn, class Target, class MakeOptimizer>
void expect_training_matches(const std::string& case_name, const LoadOptions& options, LossFn loss_fn,
                             const Target& target, MakeOptimizer make_optimizer, const std::string& optimizer_repr,
                             const KeyMap& file_key = same_key) {
  SCOPED_TRACE(case_name);
  const Case c(case_name);
  EXPECT_EQ(c.meta("optimizer"), optimizer_repr);
  Model<Net> model;
  load_safetensors(model, c.path(), options);
  const typename Model<Net>::input_type x(c.rows("input"), c.f32("input"));

  // One forward and backward: loss, dLoss/dInput, dLoss/dParam.
  auto y = model(x);
  EXPECT_TRUE(all_close("output", y.values(), c.f32("output"), forward_tolerance));
  Batch<Model<Net>::out_features> dy(y.rows());
  const double loss = loss_fn.compute(y.data(), target.data(), y.rows(), Model<Net>::out_features, dy.data());
  EXPECT_TRUE(all_close("loss", std::vector<float>{float(loss)}, c.f32("loss"), forward_tolerance));
  model.zero_grad();
  const auto dx = model.backward(dy);
  EXPECT_TRUE(all_close("grad.input", dx.values(), c.f32("grad.input"), gradient_tolerance));
  for (auto&& p : model.named_parameters()) {
    const std::string key = "grad." + file_key(std::string(p.name));
    EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
  }

  // Three steps from the initial state with a fresh optimizer, through loss.backward().
  Model<Net> fresh;
  load_safetensors(fresh, c.path(), options);
  auto opt = make_optimizer(fresh);
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto l = loss_fn(fresh(x), target);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{l.item()}, c.f32(step + "loss"), gradient_tolerance));
    l.backward();
    opt.step();
    for (auto&& p : fresh.named_parameters()) {
      const std::string key = step + file_key(std::string(p.name));
      EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
    }
  }
}

Batch<1> regression_target(const Case& c, const char* name = "target") {
  return Batch<1>(c.rows(name), c.f32(name));
}
Labels class_target(const Case& c, const char* name = "target") {
  const auto v = c.i64(name);
  Labels l(v.size());
  std::copy(v.begin(), v.end(), l.data());
  return l;
}

TEST(Training, TinyLinear) {
  const Case c("tiny_linear");
  expect_training_matches<TinyLinear>(
      "tiny_linear", conformance_options(), MSELoss{}, regression_target(c),
      [](auto& m) { return optim::SGD(m, {.lr = 0.1f}); },
      "SGD(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)");
}

TEST(Training, Mlp381) {
  const Case c("mlp_3_8_1");
  expect_training_matches<Mlp381>(
      "mlp_3_8_1", conformance_options(), MSELoss{}, regression_target(c),
      [](auto& m) { return optim::SGD(m, {.lr = 0.05f, .momentum = 0.9f}); },
      "SGD(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)");
}

TEST(Training, SeedResidualMlp) {
  const Case c("seed_residual_mlp");
  expect_training_matches<SeedResidualMlp>(
      "seed_residual_mlp", seed_residual_options(), MSELoss{}, regression_target(c),
      [](auto& m) { return optim::Adam(m, {.lr = 1e-2f}); },
      "Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)",
      [](const std::string& k) { return k.starts_with("2.fc2.") ? k.substr(2) : k; });
}

TEST(Training, SimpleNet) {
  const Case c("simplenet");
  expect_training_matches<SimpleNet>(
      "simplenet", conformance_options(), CrossEntropyLoss{}, class_target(c),
      [](auto& m) { return optim::SGD(m, {.lr = 0.1f}); },
      "SGD(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)");
}

TEST(Training, SineNet) {
  const Case c("sinenet");
  expect_training_matches<SineNet>(
      "sinenet", conformance_options(), MSELoss{}, regression_target(c),
      [](auto& m) { return optim::SGD(m, {.lr = 0.01f}); },
      "SGD(lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)");
}

TEST(Training, SineNetCurveOf300Steps) {
  const Case c("sinenet");
  Model<SineNet> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<1> x(c.rows("input"), c.f32("input"));
  const Batch<1> y = regression_target(c);
  optim::SGD opt(model, {.lr = 0.01f});
  MSELoss loss_fn;
  std::vector<float> curve;
  for (int epoch = 0; epoch < 300; ++epoch) {
    opt.zero_grad();
    auto loss = loss_fn(model(x), y);
    curve.push_back(loss.item());
    loss.backward();
    opt.step();
  }
  EXPECT_TRUE(all_close("curve.loss", curve, c.f32("curve.loss"), curve_tolerance));
  for (auto&& p : model.named_parameters()) {
    const std::string key = "curve.final." + std::string(p.name);
    EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
  }
}

TEST(Training, MnistMlp) {
  const Case c("mnist_mlp");
  expect_training_matches<MnistMlp>(
      "mnist_mlp", conformance_options(), CrossEntropyLoss{}, class_target(c),
      [](auto& m) { return optim::AdamW(m, {.lr = 1e-3f, .weight_decay = 0.01f}); },
      "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False)");
}

TEST(Training, ResBlocks) {
  const Case c("resblocks");
  expect_training_matches<ResBlocks>(
      "resblocks", conformance_options(), MSELoss{}, Batch<128>(c.rows("target"), c.f32("target")),
      [](auto& m) { return optim::SGD(m, {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true}); },
      "SGD(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0001, nesterov=True)");
}

TEST(Training, Autoencoder) {
  const Case c("autoencoder");
  expect_training_matches<Autoencoder>(
      "autoencoder", conformance_options(), MSELoss{}, Batch<20>(c.rows("target"), c.f32("target")),
      [](auto& m) { return optim::Adam(m, {.lr = 1e-3f}); },
      "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)");
}

TEST(Training, DynamicMlp) {
  const Case c("dynamic_mlp");
  expect_training_matches<DynamicMlp>(
      "dynamic_mlp", conformance_options(), CrossEntropyLoss{}, class_target(c),
      [](auto& m) { return optim::SGD(m, {.lr = 0.1f, .momentum = 0.5f, .dampening = 0.1f}); },
      "SGD(lr=0.1, momentum=0.5, dampening=0.1, weight_decay=0.0, nesterov=False)");
}

TEST(Training, MultiTaskSummedLoss) {
  const Case c("multitask");
  const Batch<16> x(c.rows("input"), c.f32("input"));
  const Labels classes = class_target(c, "target.classify");
  const Batch<1> values = regression_target(c, "target.regress");
  CrossEntropyLoss ce;
  MSELoss mse;

  Model<MultiTask> model;
  load_safetensors(model, c.path(), conformance_options());
  {  // gradients of the summed loss, through backward(dy) of both heads
    auto out = model(x);
    auto dy = out;  // same layout: one block per head
    auto gc = dy.get<"classify">();
    auto gr = dy.get<"regress">();
    const double loss = ce.compute(out.get<"classify">().data(), classes.data(), 4, 10, gc.data()) +
                        mse.compute(out.get<"regress">().data(), values.data(), 4, 1, gr.data());
    EXPECT_TRUE(all_close("loss", std::vector<float>{float(loss)}, c.f32("loss"), forward_tolerance));
    model.zero_grad();
    const Batch<16> dx = model.backward(dy);
    EXPECT_TRUE(all_close("grad.input", dx.values(), c.f32("grad.input"), gradient_tolerance));
    for (auto&& p : model.named_parameters()) {
      const std::string key = "grad." + std::string(p.name);
      EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
    }
  }
  Model<MultiTask> fresh;
  load_safetensors(fresh, c.path(), conformance_options());
  optim::SGD opt(fresh, {.lr = 0.1f});
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto out = fresh(x);
    auto loss = ce(out.get<"classify">(), classes) + mse(out.get<"regress">(), values);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{loss.item()}, c.f32(step + "loss"), gradient_tolerance));
    loss.backward();
    opt.step();
    expect_params_match(fresh, c, step, gradient_tolerance);
  }
}

TEST(Training, LayerNorm) {
  const Case c("layernorm");
  using Net = LayerNorm<16>;
  Model<Net> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<16> x(c.rows("input"), c.f32("input"));
  const Batch<16> upstream(c.rows("upstream"), c.f32("upstream"));
  auto y = model(x);
  EXPECT_TRUE(all_close("output", y.values(), c.f32("output"), forward_tolerance));
  const auto dx = model.backward(upstream);  // loss = sum(out * upstream)
  EXPECT_TRUE(all_close("grad.input", dx.values(), c.f32("grad.input"), gradient_tolerance));
  for (auto&& p : model.named_parameters())
    EXPECT_TRUE(all_close("grad." + std::string(p.name), {p.grad(), p.size()}, c.f32("grad." + std::string(p.name)),
                          gradient_tolerance));
  model.eval();
  const Batch<16> ex(c.rows("eval.input"), c.f32("eval.input"));
  EXPECT_TRUE(all_close("eval.output", model(ex).values(), c.f32("eval.output"), forward_tolerance));

  Model<Net> fresh;
  load_safetensors(fresh, c.path(), conformance_options());
  optim::SGD opt(fresh, {.lr = 0.1f});
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto out = fresh(x);
    double loss = 0;
    for (std::size_t i = 0; i < out.size(); ++i) loss += double(out.data()[i]) * upstream.data()[i];
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{float(loss)}, c.f32(step + "loss"), gradient_tolerance));
    fresh.backward(upstream);
    opt.step();
    expect_params_match(fresh, c, step, gradient_tolerance);
  }
}

using BatchNormNet = Sequential<Linear<16, 16>, BatchNorm1d<16>, ReLU>;

template <class Net>
void expect_buffers_match(Model<Net>& model, const Case& c, const std::string& prefix) {
  for (auto&& b : model.named_buffers()) {
    const std::string key = prefix + std::string(b.name);
    if (b.is_integer())
      EXPECT_EQ(*b.integer_data(), c.i64(key).at(0)) << key;
    else
      EXPECT_TRUE(all_close(key, {b.data(), b.size()}, c.f32(key),
                            prefix == "after." ? forward_tolerance : gradient_tolerance));
  }
}

TEST(Training, BatchNorm1d) {
  const Case c("batchnorm1d");
  Model<BatchNormNet> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<16> x(c.rows("input"), c.f32("input"));
  const Batch<16> target(c.rows("target"), c.f32("target"));
  auto y = model(x);
  EXPECT_TRUE(all_close("output", y.values(), c.f32("output"), forward_tolerance));
  expect_buffers_match(model, c, "after.");
  Batch<16> dy(y.rows());
  const double loss = MSELoss{}.compute(y.data(), target.data(), y.rows(), 16, dy.data());
  EXPECT_TRUE(all_close("loss", std::vector<float>{float(loss)}, c.f32("loss"), forward_tolerance));
  const auto dx = model.backward(dy);
  EXPECT_TRUE(all_close("grad.input", dx.values(), c.f32("grad.input"), gradient_tolerance));
  for (auto&& p : model.named_parameters())
    EXPECT_TRUE(all_close("grad." + std::string(p.name), {p.grad(), p.size()}, c.f32("grad." + std::string(p.name)),
                          gradient_tolerance));
  model.eval();  // initial parameters, buffers after one train forward
  const Batch<16> ex(c.rows("eval.input"), c.f32("eval.input"));
  EXPECT_TRUE(all_close("eval.output", model(ex).values(), c.f32("eval.output"), forward_tolerance));

  Model<BatchNormNet> fresh;
  load_safetensors(fresh, c.path(), conformance_options());
  optim::SGD opt(fresh, {.lr = 0.1f});
  MSELoss mse;
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto l = mse(fresh(x), target);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{l.item()}, c.f32(step + "loss"), gradient_tolerance));
    l.backward();
    opt.step();
    expect_params_match(fresh, c, step, gradient_tolerance);
    expect_buffers_match(fresh, c, step);
  }
}

}  // namespace
}  // namespace ctnn::test

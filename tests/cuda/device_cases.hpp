// Test cases of the device path, written once over the backend: the host
// emulation runs them in test_cuda_emulation.cpp (g++ / clang++, every
// machine), the GPU runs the same ones in test_cuda_device.cu (nvcc, skipped
// without a device). Each compares the device model with the CPU Model of the
// same type, or with PyTorch's conformance data.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda/loss.hpp>
#include <ctnn/cuda/model.hpp>
#include <ctnn/cuda/optim.hpp>

#include "../conformance.hpp"
#include "../networks.hpp"

namespace ctnn::test::device {

// ---- networks of odd widths ----------------------------------------------------

// Linear + activation fusion at every tile shape (outputs 13, 37, 50, 5); the
// whole forward is one fused kernel unless that is switched off.
using OddMlp = Sequential<Linear<5, 13>, ReLU, Linear<13, 37>, Tanh, Linear<37, 50>, GELU, Linear<50, 5>>;
// Named and Functional children, a residual whose body ends in a Linear, an
// activation after a residual (not fused), a Linear without bias.
using OddResidual = Sequential<Named<"inp", Linear<13, 37>>, SiLU, Residual<Linear<37, 37>, Sigmoid, Linear<37, 37>>,
                               Functional<LeakyReLU<>>, Named<"out", Linear<37, 5, false>>>;
// A projection shortcut, the ModuleList MLP, and the remaining activations.
using OddProjected =
    Sequential<ProjectedResidual<Linear<5, 13, false>, Sequential<Linear<5, 13>, ELU<>>>, Softplus<>,
               Named<"mlp", MLP<13, 37, 13>>, Hardtanh<>, Linear<13, 13>, GELUTanh, Linear<13, 1>, Identity>;

/// The state tolerance of centered RMSprop (see expect_mse_training_matches_cpu).
inline constexpr Tolerance centered_rmsprop_state{1e-3, 1e-2};

// ---- helpers ---------------------------------------------------------------------

inline std::vector<float> random_values(std::size_t n, std::uint64_t s, float lo = -1.0f, float hi = 1.0f) {
  Generator g(seed(s));
  std::vector<float> v(n);
  for (float& x : v) x = g.uniform(lo, hi);
  return v;
}

template <std::size_t F>
Batch<F> random_batch(std::size_t rows, std::uint64_t s, float lo = -1.0f, float hi = 1.0f) {
  return Batch<F>(rows, random_values(rows * F, s, lo, hi));
}

inline Labels random_labels(std::size_t rows, std::size_t classes, std::uint64_t s) {
  Generator g(seed(s));
  Labels l(rows);
  for (std::size_t i = 0; i < rows; ++i) l[i] = static_cast<std::int64_t>(g.uniform() * float(classes)) % classes;
  return l;
}

template <class Net>
std::vector<float> grads_of(Model<Net>& m) {
  auto g = m.gradients();
  return {g.begin(), g.end()};
}
template <class Net>
std::vector<float> params_of(Model<Net>& m) {
  auto p = m.parameters();
  return {p.begin(), p.end()};
}

// ---- forward and backward against the CPU Model -------------------------------------

/// Training-mode forward, backward with a random output gradient (input and
/// parameter gradients), and an evaluation-mode forward, on `rows` rows.
template <class Backend, class Net>
void expect_forward_backward_match_cpu(std::size_t rows, std::uint64_t s, bool fused_mlp = true) {
  SCOPED_TRACE("rows = " + std::to_string(rows) + (fused_mlp ? "" : ", one kernel per layer"));
  constexpr std::size_t In = Model<Net>::in_features, Out = Model<Net>::out_features;
  Model<Net> cpu{seed(s)};
  auto dev = cuda::to_backend<Backend>(cpu);
  dev.fused_mlp(fused_mlp);

  const Batch<In> x = random_batch<In>(rows, s + 1, -2.0f, 2.0f);
  const auto y = cpu(x);
  const auto yd = dev(cuda::to_backend<Backend>(x));
  ASSERT_TRUE(yd.link());
  EXPECT_TRUE(all_close("output", cuda::to_host(yd).values(), y.values(), forward_tolerance));

  const Batch<Out> dy = random_batch<Out>(rows, s + 2);
  cpu.zero_grad();
  dev.zero_grad();
  const auto dx = cpu.backward(dy);
  const auto dxd = dev.backward(cuda::to_backend<Backend>(dy));
  EXPECT_TRUE(all_close("grad.input", cuda::to_host(dxd).values(), dx.values(), gradient_tolerance));
  Model<Net> back = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grad.params", grads_of(back), grads_of(cpu), gradient_tolerance));

  cpu.eval();
  dev.eval();
  const Batch<In> xe = random_batch<In>(rows, s + 3, -2.0f, 2.0f);
  const auto ye = dev(cuda::to_backend<Backend>(xe));
  EXPECT_FALSE(ye.link());
  EXPECT_TRUE(all_close("eval output", cuda::to_host(ye).values(), cpu(xe).values(), forward_tolerance));
}

// ---- losses and optimizer steps against the CPU -----------------------------------------

/// `steps` training steps of the same model on the CPU and on the device, with
/// a regression (MSE) loss; compares every step's loss and parameters, then
/// the optimizer state (within `state_tolerance`).
///
/// Centered RMSprop's momentum buffer is a sum of g / sqrt(E[g^2] - E[g]^2):
/// where a gradient is small the variance is a difference of nearly equal
/// numbers, and rounding differences in g (another summation order, FMA on a
/// GPU) come out amplified. After three steps its worst element used 83% of
/// gradient_tolerance on the host emulation and 176% on an H100, while the
/// parameters stayed within gradient_tolerance; callers pass centered_rmsprop_state.
template <class Backend, class Net, class MakeHost, class MakeDevice>
void expect_mse_training_matches_cpu(std::size_t rows, MakeHost make_host, MakeDevice make_device,
                                     Reduction reduction = Reduction::mean, int steps = 3,
                                     const std::string& freeze_before_step2 = {},
                                     Tolerance state_tolerance = gradient_tolerance) {
  constexpr std::size_t In = Model<Net>::in_features, Out = Model<Net>::out_features;
  Model<Net> cpu{seed(11)};
  auto dev = cuda::to_backend<Backend>(cpu);
  auto host_opt = make_host(cpu);
  auto dev_opt = make_device(dev);
  EXPECT_EQ(dev_opt.repr(), host_opt.repr());
  const Batch<In> x = random_batch<In>(rows, 12);
  const Batch<Out> t = random_batch<Out>(rows, 13);
  const auto xd = cuda::to_backend<Backend>(x);
  const auto td = cuda::to_backend<Backend>(t);
  for (int k = 1; k <= steps; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    if (k == 2 && !freeze_before_step2.empty()) {
      cpu.freeze(freeze_before_step2);
      dev.freeze(freeze_before_step2);
    }
    host_opt.zero_grad();
    dev_opt.zero_grad();
    auto hl = MSELoss{reduction}(cpu(x), t);
    auto dl = cuda::MSELoss{reduction}(dev(xd), td);
    EXPECT_TRUE(all_close("loss", std::vector<float>{dl.item()}, std::vector<float>{hl.item()}, forward_tolerance));
    hl.backward();
    dl.backward();
    host_opt.step();
    dev_opt.step();
    Model<Net> back = cuda::to_host(dev);
    EXPECT_TRUE(all_close("grads", grads_of(back), grads_of(cpu), gradient_tolerance));
    EXPECT_TRUE(all_close("params", params_of(back), params_of(cpu), gradient_tolerance));
  }
  EXPECT_EQ(dev_opt.steps(), host_opt.steps());
  const auto hs = host_opt.state_dict();
  const auto ds = dev_opt.state_dict();
  ASSERT_EQ(ds.size(), hs.size());
  for (std::size_t i = 0; i < hs.size(); ++i) {
    EXPECT_EQ(ds[i].name, hs[i].name);
    EXPECT_TRUE(all_close(ds[i].name, ds[i].values, hs[i].values, state_tolerance));
  }

  // The state goes back into a fresh device optimizer, and the next step is the same.
  auto dev2_cpu = cuda::to_host(dev);
  auto dev2 = cuda::to_backend<Backend>(dev2_cpu);
  auto dev2_opt = make_device(dev2);
  dev2_opt.load_state_dict(ds);
  EXPECT_EQ(dev2_opt.steps(), dev_opt.steps());
  dev_opt.zero_grad();
  dev2_opt.zero_grad();
  auto l1 = cuda::MSELoss{reduction}(dev(xd), td);
  auto l2 = cuda::MSELoss{reduction}(dev2(xd), td);
  l1.backward();
  l2.backward();
  dev_opt.step();
  dev2_opt.step();
  Model<Net> a = cuda::to_host(dev), b = cuda::to_host(dev2);
  EXPECT_TRUE(all_close("params after reload", params_of(b), params_of(a), {0.0, 0.0}));
}

/// CrossEntropyLoss (label smoothing, reductions) on the device against the
/// host loss: values, and parameter gradients through loss.backward().
template <class Backend, class Net>
void expect_cross_entropy_matches_cpu(std::size_t rows, CrossEntropyLoss host_loss) {
  constexpr std::size_t In = Model<Net>::in_features, C = Model<Net>::out_features;
  Model<Net> cpu{seed(21)};
  auto dev = cuda::to_backend<Backend>(cpu);
  const Batch<In> x = random_batch<In>(rows, 22, -3.0f, 3.0f);
  const Labels labels = random_labels(rows, C, 23);
  const cuda::CrossEntropyLoss dev_loss{host_loss.reduction, host_loss.label_smoothing};
  cpu.zero_grad();
  dev.zero_grad();
  auto hl = host_loss(cpu(x), labels);
  auto dl = dev_loss(dev(cuda::to_backend<Backend>(x)), cuda::to_backend<Backend>(labels));
  EXPECT_TRUE(all_close("loss", std::vector<float>{dl.item()}, std::vector<float>{hl.item()}, forward_tolerance));
  hl.backward();
  dl.backward();
  Model<Net> back = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grads", grads_of(back), grads_of(cpu), gradient_tolerance));

  // Without a training-mode model behind the predictions: a value, no backward.
  dev.eval();
  auto ev = dev_loss(dev(cuda::to_backend<Backend>(x)), cuda::to_backend<Backend>(labels));
  EXPECT_FALSE(ev.requires_grad());
  EXPECT_TRUE(all_close("eval loss", std::vector<float>{ev.item()}, std::vector<float>{hl.item()}, forward_tolerance));
  EXPECT_THROW(ev.backward(), Error);
}

// ---- PyTorch's conformance data ---------------------------------------------------------

using KeyMap = std::function<std::string(const std::string&)>;
inline std::string same_key(const std::string& k) { return k; }

/// One case of tests/data (CONFORMANCE.md 6): output, loss, parameter
/// gradients through loss.backward(), dLoss/dInput through the lower-level
/// backward, then three optimizer steps from the initial state.
template <class Backend, class Net, class DeviceLoss, class HostLoss, class Target, class MakeOptimizer>
void expect_conformance(const std::string& case_name, const LoadOptions& options, DeviceLoss dev_loss,
                        HostLoss host_loss, const Target& target, MakeOptimizer make_optimizer,
                        const KeyMap& file_key = same_key) {
  SCOPED_TRACE(case_name);
  const Case c(case_name);
  Model<Net> cpu;
  load_safetensors(cpu, c.path(), options);
  auto dev = cuda::to_backend<Backend>(cpu);
  const typename Model<Net>::input_type x(c.rows("input"), c.f32("input"));
  const auto xd = cuda::to_backend<Backend>(x);
  const auto td = cuda::to_backend<Backend>(target);

  auto y = dev(xd);
  EXPECT_TRUE(all_close("output", cuda::to_host(y).values(), c.f32("output"), forward_tolerance));
  dev.zero_grad();
  auto loss = dev_loss(y, td);
  EXPECT_TRUE(all_close("loss", std::vector<float>{loss.item()}, c.f32("loss"), forward_tolerance));
  loss.backward();
  {
    Model<Net> back = cuda::to_host(dev);
    for (auto&& p : back.named_parameters()) {
      const std::string key = "grad." + file_key(std::string(p.name));
      EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
    }
  }
  // dLoss/dInput: the host loss's output gradient through the device backward.
  {
    auto y2 = dev(xd);
    const Batch<Model<Net>::out_features> yh = cuda::to_host(y2);
    Batch<Model<Net>::out_features> dy(yh.rows());
    host_loss.compute(yh.data(), target.data(), yh.rows(), Model<Net>::out_features, dy.data());
    const auto dx = dev.backward(cuda::to_backend<Backend>(dy));
    EXPECT_TRUE(all_close("grad.input", cuda::to_host(dx).values(), c.f32("grad.input"), gradient_tolerance));
  }

  Model<Net> fresh_cpu;
  load_safetensors(fresh_cpu, c.path(), options);
  auto fresh = cuda::to_backend<Backend>(fresh_cpu);
  auto opt = make_optimizer(fresh);
  EXPECT_EQ(opt.repr(), c.meta("optimizer"));
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto l = dev_loss(fresh(xd), td);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{l.item()}, c.f32(step + "loss"), gradient_tolerance));
    l.backward();
    opt.step();
    Model<Net> back = cuda::to_host(fresh);
    for (auto&& p : back.named_parameters()) {
      const std::string key = step + file_key(std::string(p.name));
      EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
    }
  }
}

inline Batch<1> regression_target(const Case& c) { return Batch<1>(c.rows("target"), c.f32("target")); }
template <std::size_t F>
Batch<F> regression_target_of(const Case& c) {
  return Batch<F>(c.rows("target"), c.f32("target"));
}
inline Labels class_target(const Case& c) {
  const auto v = c.i64("target");
  Labels l(v.size());
  std::copy(v.begin(), v.end(), l.data());
  return l;
}

/// Every model case of tests/data whose layers the device runs.
template <class Backend>
struct ConformanceCases {
  static void tiny_linear() {
    const Case c("tiny_linear");
    expect_conformance<Backend, TinyLinear>("tiny_linear", conformance_options(), cuda::MSELoss{}, MSELoss{},
                                            regression_target(c),
                                            [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.1f}); });
  }
  static void mlp_3_8_1() {
    const Case c("mlp_3_8_1");
    expect_conformance<Backend, Mlp381>("mlp_3_8_1", conformance_options(), cuda::MSELoss{}, MSELoss{},
                                        regression_target(c), [](auto& m) {
                                          return cuda::optim::SGD(m, {.lr = 0.05f, .momentum = 0.9f});
                                        });
  }
  static void seed_residual_mlp() {
    const Case c("seed_residual_mlp");
    expect_conformance<Backend, SeedResidualMlp>(
        "seed_residual_mlp", seed_residual_options(), cuda::MSELoss{}, MSELoss{}, regression_target(c),
        [](auto& m) { return cuda::optim::Adam(m, {.lr = 1e-2f}); },
        [](const std::string& k) { return k.starts_with("2.fc2.") ? k.substr(2) : k; });
  }
  static void simplenet() {
    const Case c("simplenet");
    expect_conformance<Backend, SimpleNet>("simplenet", conformance_options(), cuda::CrossEntropyLoss{},
                                           CrossEntropyLoss{}, class_target(c),
                                           [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.1f}); });
  }
  static void sinenet() {
    const Case c("sinenet");
    expect_conformance<Backend, SineNet>("sinenet", conformance_options(), cuda::MSELoss{}, MSELoss{},
                                         regression_target(c),
                                         [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.01f}); });
  }
  static void mnist_mlp() {
    const Case c("mnist_mlp");
    expect_conformance<Backend, MnistMlp>("mnist_mlp", conformance_options(), cuda::CrossEntropyLoss{},
                                          CrossEntropyLoss{}, class_target(c), [](auto& m) {
                                            return cuda::optim::AdamW(m, {.lr = 1e-3f, .weight_decay = 0.01f});
                                          });
  }
  static void resblocks() {
    const Case c("resblocks");
    expect_conformance<Backend, ResBlocks>(
        "resblocks", conformance_options(), cuda::MSELoss{}, MSELoss{}, regression_target_of<128>(c), [](auto& m) {
          return cuda::optim::SGD(m, {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true});
        });
  }
  static void autoencoder() {
    const Case c("autoencoder");
    expect_conformance<Backend, Autoencoder>("autoencoder", conformance_options(), cuda::MSELoss{}, MSELoss{},
                                             regression_target_of<20>(c),
                                             [](auto& m) { return cuda::optim::Adam(m, {.lr = 1e-3f}); });
  }
  static void dynamic_mlp() {
    const Case c("dynamic_mlp");
    expect_conformance<Backend, DynamicMlp>("dynamic_mlp", conformance_options(), cuda::CrossEntropyLoss{},
                                            CrossEntropyLoss{}, class_target(c), [](auto& m) {
                                              return cuda::optim::SGD(m, {.lr = 0.1f, .momentum = 0.5f,
                                                                          .dampening = 0.1f});
                                            });
  }
};

}  // namespace ctnn::test::device

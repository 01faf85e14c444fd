// Test cases of the device path, written once over the backend: the host
// emulation runs them in test_cuda_emulation.cpp (g++ / clang++, every
// machine), the GPU runs the same ones in test_cuda_device.cu (nvcc, skipped
// without a device). Each compares the device model with the CPU Model of the
// same type, or with PyTorch's conformance data.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
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

// Normalisation layers between Linear layers (no fused pipeline around them),
// at a width W of the tests' odd sizes.
template <std::size_t W>
using NormPipeline =
    Sequential<Linear<5, W>, LayerNorm<W>, ReLU, Named<"mid", Linear<W, W>>, BatchNorm1d<W>, Tanh, Linear<W, 3>>;
// Heads over a trunk: a Linear head, a pipeline head with a LayerNorm, and a
// BatchNorm1d head; the output is the CPU's NamedOutputs layout (3 + 5 + 13).
using OddHeads = Sequential<Linear<5, 13>, ReLU,
                            Named<"heads", Heads<Named<"a", Linear<13, 3>>,
                                                 Named<"b", Sequential<Linear<13, 37>, LayerNorm<37>, GELU,
                                                                       Linear<37, 5>>>,
                                                 Named<"c", BatchNorm1d<13>>>>>;

/// The state tolerance of centered RMSprop (see expect_mse_training_matches_cpu).
inline constexpr Tolerance centered_rmsprop_state{1e-3, 1e-2};
/// The parameter-gradient tolerance of NormPipeline on 9000 rows on a GPU. Its
/// LayerNorm's bias gradient is a sum over the rows of a gradient that came
/// back through BatchNorm1d, whose input gradient sums to zero over the batch
/// in every feature: after the Linear and the ReLU between them, 9000 terms
/// still nearly cancel (one sum was 1.9e-4), so rounding differences upstream
/// (FMA, another summation order, the CPU's sequential float sum over the
/// rows) come out amplified. On the H100 one of 4995 gradients used 135% of
/// gradient_tolerance there, while every single layer on 9000 rows and the
/// pipeline on up to 300 rows stayed within it.
inline constexpr Tolerance cancelling_gradient_sums{1e-3, 1e-2};

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

// ---- layers with state (LayerNorm, BatchNorm1d) and several outputs (Heads) -------------

/// The floats of a batch or of NamedOutputs, in their layout.
template <class T>
std::vector<float> flat_values(const T& t, std::size_t width) {
  return std::vector<float>(t.data(), t.data() + t.rows() * width);
}
template <class Net>
std::vector<float> buffers_of(Model<Net>& m) {
  std::vector<float> v(Model<Net>::num_buffers);
  if constexpr (Model<Net>::num_buffers > 0) std::copy_n(m.buffer_values().data(), v.size(), v.data());
  return v;
}
template <class Net>
std::vector<std::int64_t> counters_of(Model<Net>& m) {
  std::vector<std::int64_t> v(Model<Net>::num_counters);
  if constexpr (Model<Net>::num_counters > 0) std::copy_n(m.counter_values().data(), v.size(), v.data());
  return v;
}
/// Parameters in [-1.5, 1.5] (LayerNorm's weight 1 and bias 0 would hide
/// mistakes), running statistics in [0.25, 2], counters 3.
template <class Net>
void randomize_state(Model<Net>& m, std::uint64_t s) {
  auto p = m.parameters();
  const auto pv = random_values(p.size(), s, -1.5f, 1.5f);
  std::copy(pv.begin(), pv.end(), p.begin());
  if constexpr (Model<Net>::num_buffers > 0) {
    auto b = m.buffer_values();
    const auto bv = random_values(b.size(), s + 1, 0.25f, 2.0f);
    std::copy(bv.begin(), bv.end(), b.begin());
  }
  if constexpr (Model<Net>::num_counters > 0)
    for (auto& c : m.counter_values()) c = 3;
}

/// As expect_forward_backward_match_cpu, for networks with LayerNorm,
/// BatchNorm1d or Heads, from random parameters and running statistics: the
/// training forward (output, running statistics, num_batches_tracked),
/// backward with a random output gradient (input and parameter gradients;
/// with the tensors under `frozen` frozen), and the evaluation forward. With
/// BatchNorm1d, a training batch of one row is refused on both sides.
template <class Backend, class Net>
void expect_stateful_match_cpu(std::size_t rows, std::uint64_t s, bool fused_mlp = true,
                               const std::string& frozen = {}, Tolerance param_gradient = gradient_tolerance) {
  SCOPED_TRACE("rows = " + std::to_string(rows) + (fused_mlp ? "" : ", one kernel per layer") +
               (frozen.empty() ? "" : ", frozen " + frozen));
  constexpr std::size_t In = Model<Net>::in_features, Out = Model<Net>::out_features;
  Model<Net> cpu{seed(s)};
  randomize_state(cpu, s + 10);
  if (!frozen.empty()) cpu.freeze(frozen);
  auto dev = cuda::to_backend<Backend>(cpu);
  dev.fused_mlp(fused_mlp);

  const Batch<In> x = random_batch<In>(rows, s + 1, -2.0f, 2.0f);
  const auto xd = cuda::to_backend<Backend>(x);
  if (Model<Net>::num_buffers > 0 && rows < 2) {
    EXPECT_THROW((void)cpu(x), ValueError);
    EXPECT_THROW((void)dev(xd), ValueError);
  } else {
    const auto y = cpu(x);
    const auto yd = dev(xd);
    ASSERT_TRUE(yd.link());
    EXPECT_TRUE(all_close("output", flat_values(cuda::to_host(yd), Out), flat_values(y, Out), forward_tolerance));
    {
      Model<Net> back = cuda::to_host(dev);
      EXPECT_TRUE(all_close("buffers", buffers_of(back), buffers_of(cpu), forward_tolerance));
      EXPECT_EQ(counters_of(back), counters_of(cpu));
    }
    const Batch<Out> dy = random_batch<Out>(rows, s + 2);
    cpu.zero_grad();
    dev.zero_grad();
    const auto dx = cpu.backward(dy);
    const auto dxd = dev.backward(cuda::to_backend<Backend>(dy));
    EXPECT_TRUE(all_close("grad.input", cuda::to_host(dxd).values(), dx.values(), gradient_tolerance));
    Model<Net> back = cuda::to_host(dev);
    EXPECT_TRUE(all_close("grad.params", grads_of(back), grads_of(cpu), param_gradient));
  }

  cpu.eval();
  dev.eval();
  const Batch<In> xe = random_batch<In>(rows, s + 3, -2.0f, 2.0f);
  const auto ye = dev(cuda::to_backend<Backend>(xe));
  EXPECT_FALSE(ye.link());
  EXPECT_TRUE(all_close("eval output", flat_values(cuda::to_host(ye), Out), flat_values(cpu(xe), Out),
                        forward_tolerance));
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
  /// CONFORMANCE.md's LayerNorm case: loss = sum(out * upstream), so the
  /// output gradient is `upstream`; three SGD steps.
  static void layernorm() {
    SCOPED_TRACE("layernorm");
    using Net = LayerNorm<16>;
    const Case c("layernorm");
    Model<Net> cpu;
    load_safetensors(cpu, c.path(), conformance_options());
    auto dev = cuda::to_backend<Backend>(cpu);
    const Batch<16> x(c.rows("input"), c.f32("input"));
    const Batch<16> upstream(c.rows("upstream"), c.f32("upstream"));
    const auto xd = cuda::to_backend<Backend>(x);
    const auto ud = cuda::to_backend<Backend>(upstream);
    auto y = dev(xd);
    EXPECT_TRUE(all_close("output", cuda::to_host(y).values(), c.f32("output"), forward_tolerance));
    dev.zero_grad();
    const auto dx = dev.backward(ud);
    EXPECT_TRUE(all_close("grad.input", cuda::to_host(dx).values(), c.f32("grad.input"), gradient_tolerance));
    {
      Model<Net> back = cuda::to_host(dev);
      for (auto&& p : back.named_parameters()) {
        const std::string key = "grad." + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
      }
    }
    dev.eval();
    const Batch<16> ex(c.rows("eval.input"), c.f32("eval.input"));
    EXPECT_TRUE(all_close("eval.output", cuda::to_host(dev(cuda::to_backend<Backend>(ex))).values(),
                          c.f32("eval.output"), forward_tolerance));

    Model<Net> fresh_cpu;
    load_safetensors(fresh_cpu, c.path(), conformance_options());
    auto fresh = cuda::to_backend<Backend>(fresh_cpu);
    cuda::optim::SGD opt(fresh, {.lr = 0.1f});
    for (int k = 1; k <= 3; ++k) {
      const std::string step = "step" + std::to_string(k) + ".";
      opt.zero_grad();
      const Batch<16> out = cuda::to_host(fresh(xd));
      double loss = 0;
      for (std::size_t i = 0; i < out.size(); ++i) loss += double(out.data()[i]) * upstream.data()[i];
      EXPECT_TRUE(all_close(step + "loss", std::vector<float>{float(loss)}, c.f32(step + "loss"),
                            gradient_tolerance));
      fresh.backward(ud);
      opt.step();
      Model<Net> back = cuda::to_host(fresh);
      for (auto&& p : back.named_parameters()) {
        const std::string key = step + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
      }
    }
  }

  template <class Net>
  static void expect_buffers_match(Model<Net>& m, const Case& c, const std::string& prefix, Tolerance tol) {
    for (auto&& b : m.named_buffers()) {
      const std::string key = prefix + std::string(b.name);
      if (b.is_integer())
        EXPECT_EQ(*b.integer_data(), c.i64(key).at(0)) << key;
      else
        EXPECT_TRUE(all_close(key, {b.data(), b.size()}, c.f32(key), tol));
    }
  }

  /// CONFORMANCE.md's BatchNorm1d case: output and running statistics after
  /// one training forward, gradients of MSELoss, the evaluation output with
  /// the updated statistics, then three SGD steps (parameters and buffers).
  static void batchnorm1d() {
    SCOPED_TRACE("batchnorm1d");
    using Net = Sequential<Linear<16, 16>, BatchNorm1d<16>, ReLU>;
    const Case c("batchnorm1d");
    Model<Net> cpu;
    load_safetensors(cpu, c.path(), conformance_options());
    auto dev = cuda::to_backend<Backend>(cpu);
    const Batch<16> x(c.rows("input"), c.f32("input"));
    const Batch<16> target(c.rows("target"), c.f32("target"));
    const auto xd = cuda::to_backend<Backend>(x);
    const auto td = cuda::to_backend<Backend>(target);
    auto y = dev(xd);
    const Batch<16> yh = cuda::to_host(y);
    EXPECT_TRUE(all_close("output", yh.values(), c.f32("output"), forward_tolerance));
    {
      Model<Net> back = cuda::to_host(dev);
      expect_buffers_match(back, c, "after.", forward_tolerance);
    }
    Batch<16> dy(yh.rows());
    const double loss = MSELoss{}.compute(yh.data(), target.data(), yh.rows(), 16, dy.data());
    EXPECT_TRUE(all_close("loss", std::vector<float>{float(loss)}, c.f32("loss"), forward_tolerance));
    dev.zero_grad();
    const auto dx = dev.backward(cuda::to_backend<Backend>(dy));
    EXPECT_TRUE(all_close("grad.input", cuda::to_host(dx).values(), c.f32("grad.input"), gradient_tolerance));
    {
      Model<Net> back = cuda::to_host(dev);
      for (auto&& p : back.named_parameters()) {
        const std::string key = "grad." + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
      }
    }
    dev.eval();  // initial parameters, buffers after one training forward
    const Batch<16> ex(c.rows("eval.input"), c.f32("eval.input"));
    EXPECT_TRUE(all_close("eval.output", cuda::to_host(dev(cuda::to_backend<Backend>(ex))).values(),
                          c.f32("eval.output"), forward_tolerance));

    Model<Net> fresh_cpu;
    load_safetensors(fresh_cpu, c.path(), conformance_options());
    auto fresh = cuda::to_backend<Backend>(fresh_cpu);
    cuda::optim::SGD opt(fresh, {.lr = 0.1f});
    for (int k = 1; k <= 3; ++k) {
      const std::string step = "step" + std::to_string(k) + ".";
      opt.zero_grad();
      auto l = cuda::MSELoss{}(fresh(xd), td);
      EXPECT_TRUE(all_close(step + "loss", std::vector<float>{l.item()}, c.f32(step + "loss"), gradient_tolerance));
      l.backward();
      opt.step();
      Model<Net> back = cuda::to_host(fresh);
      for (auto&& p : back.named_parameters()) {
        const std::string key = step + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
      }
      expect_buffers_match(back, c, step, gradient_tolerance);
    }
  }

  /// CONFORMANCE.md's two-head case: CrossEntropyLoss on "classify" plus
  /// MSELoss on "regress". A device loss is one loss on one batch, so the
  /// summed loss's output gradient is computed by the host losses from the
  /// device output (the NamedOutputs layout: classify's block, then
  /// regress's) and goes through backward(dy); three SGD steps the same way.
  static void multitask() {
    SCOPED_TRACE("multitask");
    using Net = MultiTask;
    const Case c("multitask");
    Model<Net> cpu;
    load_safetensors(cpu, c.path(), conformance_options());
    auto dev = cuda::to_backend<Backend>(cpu);
    const Batch<16> x(c.rows("input"), c.f32("input"));
    const std::size_t n = x.rows();
    const auto xd = cuda::to_backend<Backend>(x);
    const auto labels = c.i64("target.classify");
    const auto values = c.f32("target.regress");
    // dy of the summed loss for output `out`; returns the loss.
    auto summed_loss = [&](const Batch<11>& out, Batch<11>& dy) {
      return CrossEntropyLoss{}.compute(out.data(), labels.data(), n, 10, dy.data()) +
             MSELoss{}.compute(out.data() + n * 10, values.data(), n, 1, dy.data() + n * 10);
    };
    for (bool training : {true, false}) {
      dev.train(training);
      const Batch<11> out = cuda::to_host(dev(xd));
      const auto v = out.values();
      EXPECT_TRUE(all_close("output.classify", {v.data(), n * 10}, c.f32("output.classify"), forward_tolerance));
      EXPECT_TRUE(all_close("output.regress", {v.data() + n * 10, n}, c.f32("output.regress"), forward_tolerance));
    }
    dev.train();
    const Batch<11> out = cuda::to_host(dev(xd));
    Batch<11> dy(n);
    const double loss = summed_loss(out, dy);
    EXPECT_TRUE(all_close("loss", std::vector<float>{float(loss)}, c.f32("loss"), forward_tolerance));
    dev.zero_grad();
    const auto dx = dev.backward(cuda::to_backend<Backend>(dy));
    EXPECT_TRUE(all_close("grad.input", cuda::to_host(dx).values(), c.f32("grad.input"), gradient_tolerance));
    {
      Model<Net> back = cuda::to_host(dev);
      for (auto&& p : back.named_parameters()) {
        const std::string key = "grad." + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.grad(), p.size()}, c.f32(key), gradient_tolerance));
      }
    }

    Model<Net> fresh_cpu;
    load_safetensors(fresh_cpu, c.path(), conformance_options());
    auto fresh = cuda::to_backend<Backend>(fresh_cpu);
    cuda::optim::SGD opt(fresh, {.lr = 0.1f});
    for (int k = 1; k <= 3; ++k) {
      const std::string step = "step" + std::to_string(k) + ".";
      opt.zero_grad();
      const Batch<11> o = cuda::to_host(fresh(xd));
      Batch<11> g(n);
      const double l = summed_loss(o, g);
      EXPECT_TRUE(all_close(step + "loss", std::vector<float>{float(l)}, c.f32(step + "loss"), gradient_tolerance));
      (void)fresh.backward(cuda::to_backend<Backend>(g));
      opt.step();
      Model<Net> back = cuda::to_host(fresh);
      for (auto&& p : back.named_parameters()) {
        const std::string key = step + std::string(p.name);
        EXPECT_TRUE(all_close(key, {p.data(), p.size()}, c.f32(key), gradient_tolerance));
      }
    }
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

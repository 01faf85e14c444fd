// Optimizers against optimizers.safetensors (CONFORMANCE.md 8.3, 9.1), plus
// frozen tensors, zero_grad, state_dict round trips and error handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/train/optim.hpp"

// Counts heap allocations so the tests can prove that step() makes none.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// None of these is inlined: GCC would otherwise see free() meet a pointer from
// operator new (or malloc meet delete) at call sites and warn
// (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using ctnn::ParameterView;
using ctnn::ParamRange;
using ctnn::optim::Adam;
using ctnn::optim::AdamW;
using ctnn::optim::NamedState;
using ctnn::optim::RMSprop;
using ctnn::optim::SGD;

constexpr double kAtol = 1e-4, kRtol = 1e-3;

const ctnn::SafetensorsFile& opt_file() {
  static const ctnn::SafetensorsFile f =
      ctnn::SafetensorsFile::read(std::string(CTNN_TEST_DATA) + "/optimizers.safetensors");
  return f;
}

std::vector<float> tensor(const std::string& name) { return opt_file().to_f32(name); }

std::vector<std::vector<float>> gradients() {
  std::vector<std::vector<float>> g;
  // Literal names: GCC 12 warns falsely (-Wrestrict) on "g" + std::to_string(k).
  for (const char* name : {"g1", "g2", "g3", "g4", "g5"}) g.push_back(tensor(name));
  return g;
}

/// A stand-in model: one flat parameter vector with its gradient, split into
/// tensors as a real model would be.
struct Flat {
  std::vector<float> p, g;
  std::vector<ParamRange> ranges;

  explicit Flat(std::vector<float> init, std::vector<ParamRange> r = {})
      : p(std::move(init)), g(p.size(), 0.0f), ranges(std::move(r)) {}

  ParameterView parameter_view() { return {p.data(), g.data(), p.size(), ranges}; }
  void set_grad(const std::vector<float>& src) { std::copy(src.begin(), src.end(), g.begin()); }
};

static_assert(ctnn::HasParameterView<Flat>);
static_assert(!ctnn::HasParameterView<int>);

/// Three tensors over the 37 values: 0..9, 10..19 (frozen in some tests), 20..36.
std::vector<ParamRange> three_tensors(bool freeze_middle) {
  return {{0, 10, true}, {10, 10, !freeze_middle}, {20, 17, true}};
}

/// Any optimizer behind one interface, so that every test below can run all
/// sixteen configurations of the file.
struct AnyOptimizer {
  std::function<void()> step;
  std::function<void()> zero_grad;
  std::function<std::int64_t()> steps;
  std::function<std::vector<NamedState>()> state_dict;
  std::function<void(std::span<const NamedState>)> load_state_dict;
  std::function<std::string()> repr;
};

struct Config {
  std::string name;
  std::function<AnyOptimizer(Flat&)> make;
};

template <class Opt>
Config make(std::string name, typename Opt::Options o) {
  return {std::move(name), [o](Flat& f) {
            auto opt = std::make_shared<Opt>(f, o);
            return AnyOptimizer{[opt] { opt->step(); },
                                [opt] { opt->zero_grad(); },
                                [opt] { return opt->steps(); },
                                [opt] { return opt->state_dict(); },
                                [opt](std::span<const NamedState> s) { opt->load_state_dict(s); },
                                [opt] { return opt->repr(); }};
          }};
}

/// Runs `opt` over grads[from, to), returning the parameters after each step.
std::vector<std::vector<float>> run_steps(AnyOptimizer& opt, Flat& f,
                                          const std::vector<std::vector<float>>& grads,
                                          std::size_t from, std::size_t to) {
  std::vector<std::vector<float>> traj;
  for (std::size_t k = from; k < to; ++k) {
    f.set_grad(grads[k]);
    opt.step();
    traj.push_back(f.p);
  }
  return traj;
}

const std::vector<Config>& configs() {
  static const std::vector<Config> all = {
      make<SGD>("sgd", {.lr = 0.1f}),
      make<SGD>("sgd_momentum", {.lr = 0.1f, .momentum = 0.9f}),
      make<SGD>("sgd_nesterov", {.lr = 0.1f, .momentum = 0.9f, .nesterov = true}),
      make<SGD>("sgd_full",
                {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f, .weight_decay = 0.01f}),
      make<Adam>("adam", {.lr = 0.01f}),
      make<Adam>("adam_amsgrad", {.lr = 0.01f, .amsgrad = true}),
      make<Adam>("adam_wd", {.lr = 0.01f, .weight_decay = 0.01f}),
      make<AdamW>("adamw", {.lr = 0.01f, .weight_decay = 0.01f}),
      make<RMSprop>("rmsprop", {.lr = 0.01f}),
      make<RMSprop>("rmsprop_momentum", {.lr = 0.01f, .momentum = 0.9f}),
      make<Adam>("adam_amsgrad_strong", {.lr = 0.1f, .betas = {0.9f, 0.9f}, .amsgrad = true}),
      make<Adam>("adam_wd_strong", {.lr = 0.1f, .weight_decay = 0.5f}),
      make<AdamW>("adamw_strong", {.lr = 0.1f, .weight_decay = 0.5f}),
      make<Adam>("adam_eps_betas", {.lr = 0.1f, .betas = {0.8f, 0.99f}, .eps = 1e-3f}),
      make<RMSprop>(
          "rmsprop_full",
          {.lr = 0.01f, .alpha = 0.9f, .eps = 1e-3f, .weight_decay = 0.1f, .momentum = 0.5f}),
      make<RMSprop>("rmsprop_centered", {.lr = 0.01f, .alpha = 0.9f, .centered = true}),
  };
  return all;
}

const Config& config(const std::string& name) {
  for (const Config& c : configs()) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("no config " + name);
}

::testing::AssertionResult close(double got, double ref) {
  if (!std::isfinite(got)) return ::testing::AssertionFailure() << "got non-finite " << got;
  const double diff = std::fabs(got - ref);
  if (diff <= kAtol + kRtol * std::fabs(ref)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", ref " << ref << ", |diff| " << diff;
}

TEST(OptimizersFile, CoversEveryConfiguration) {
  std::vector<std::string> in_file, ours;
  for (const auto& [key, value] : opt_file().metadata()) {
    if (key.rfind("opt.", 0) == 0) in_file.push_back(key.substr(4));
  }
  for (const Config& c : configs()) ours.push_back(c.name);
  std::sort(in_file.begin(), in_file.end());
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(in_file, ours);
}

class OptimizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimizerGolden, FiveStepsMatchPyTorch) {
  const Config& c = config(GetParam());
  Flat f(tensor("p0"));
  ASSERT_EQ(f.p.size(), 37u);
  AnyOptimizer opt = c.make(f);
  const auto traj = run_steps(opt, f, gradients(), 0, 5);
  EXPECT_EQ(opt.steps(), 5);
  for (std::size_t k = 1; k <= 5; ++k) {
    const std::string key = c.name + ".p" + std::to_string(k);
    const std::vector<float> ref = tensor(key);
    ASSERT_EQ(ref.size(), 37u);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      EXPECT_TRUE(close(traj[k - 1][i], ref[i])) << key << "[" << i << "]";
    }
  }
}

TEST_P(OptimizerGolden, ReprIsTheConstructorInTheMetadata) {
  const Config& c = config(GetParam());
  Flat f(tensor("p0"));
  EXPECT_EQ(c.make(f).repr(), opt_file().metadata().at("opt." + c.name));
}

TEST_P(OptimizerGolden, SameResultWithTensorsListed) {
  // Splitting the buffer into tensors changes nothing when all are trainable.
  const Config& c = config(GetParam());
  Flat whole(tensor("p0")), split(tensor("p0"), three_tensors(false));
  AnyOptimizer a = c.make(whole), b = c.make(split);
  run_steps(a, whole, gradients(), 0, 5);
  run_steps(b, split, gradients(), 0, 5);
  EXPECT_EQ(whole.p, split.p);
}

TEST_P(OptimizerGolden, FrozenTensorIsUntouched) {
  const Config& c = config(GetParam());
  const std::vector<float> p0 = tensor("p0");
  Flat f(p0, three_tensors(true));
  AnyOptimizer opt = c.make(f);
  run_steps(opt, f, gradients(), 0, 5);
  // Every update is elementwise, so the trainable tensors still follow the
  // reference while the frozen one keeps its initial values exactly, and its
  // slice of every state buffer stays at its initial zero.
  const std::vector<float> ref = tensor(c.name + ".p5");
  for (std::size_t i = 0; i < 37; ++i) {
    if (i >= 10 && i < 20) {
      EXPECT_EQ(f.p[i], p0[i]) << i;
    } else {
      EXPECT_TRUE(close(f.p[i], ref[i])) << i;
    }
  }
  for (const NamedState& s : opt.state_dict()) {
    if (s.name == "step") {
      EXPECT_EQ(s.values, std::vector<float>{5.0f});
    } else if (s.name == "tensor_steps") {
      EXPECT_EQ(s.values, (std::vector<float>{5.0f, 0.0f, 5.0f}));
    } else {
      ASSERT_EQ(s.values.size(), 37u) << s.name;
      for (std::size_t i = 10; i < 20; ++i)
        EXPECT_EQ(s.values[i], 0.0f) << s.name << "[" << i << "]";
      EXPECT_NE(s.values[0], 0.0f) << s.name;
    }
  }
}

TEST_P(OptimizerGolden, UnfrozenTensorStartsItsOwnHistory) {
  // PyTorch keeps state per parameter: a tensor frozen for two steps and then
  // trained moves exactly like under a fresh optimizer fed g3, g4, g5 (Adam's
  // bias correction uses the tensor's own t; SGD's buffer starts undamped).
  const Config& c = config(GetParam());
  const auto grads = gradients();
  const std::vector<float> p0 = tensor("p0");
  Flat fresh(p0);
  AnyOptimizer fresh_opt = c.make(fresh);
  run_steps(fresh_opt, fresh, grads, 2, 5);

  Flat f(p0, three_tensors(true));
  AnyOptimizer opt = c.make(f);
  run_steps(opt, f, grads, 0, 2);
  f.ranges[1].requires_grad = true;  // seen through the view by the next step
  run_steps(opt, f, grads, 2, 5);
  for (std::size_t i = 10; i < 20; ++i) EXPECT_EQ(f.p[i], fresh.p[i]) << i;
  EXPECT_EQ(opt.steps(), 5);
}

TEST_P(OptimizerGolden, StateDictRoundTripContinuesBitIdentically) {
  const Config& c = config(GetParam());
  const auto grads = gradients();
  for (bool split : {false, true}) {
    const std::string what = split ? "with a frozen tensor" : "one tensor";
    Flat a(tensor("p0"), split ? three_tensors(true) : std::vector<ParamRange>{});
    AnyOptimizer opt_a = c.make(a);
    run_steps(opt_a, a, grads, 0, 2);
    const std::vector<NamedState> saved = opt_a.state_dict();

    Flat b(a);  // the model as it was saved
    AnyOptimizer opt_b = c.make(b);
    opt_b.load_state_dict(saved);
    EXPECT_EQ(opt_b.steps(), 2) << what;
    run_steps(opt_a, a, grads, 2, 5);
    run_steps(opt_b, b, grads, 2, 5);
    EXPECT_EQ(a.p, b.p) << what;
    EXPECT_EQ(opt_b.steps(), 5) << what;
    const auto sa = opt_a.state_dict(), sb = opt_b.state_dict();
    ASSERT_EQ(sa.size(), sb.size()) << what;
    for (std::size_t i = 0; i < sa.size(); ++i) {
      EXPECT_EQ(sa[i].name, sb[i].name) << what;
      EXPECT_EQ(sa[i].values, sb[i].values) << what << " " << sa[i].name;
    }
  }
}

TEST_P(OptimizerGolden, ZeroGradClearsGradientsOnly) {
  const Config& c = config(GetParam());
  Flat f(tensor("p0"), three_tensors(true));
  AnyOptimizer opt = c.make(f);
  run_steps(opt, f, gradients(), 0, 2);
  const auto params = f.p;
  const auto state = opt.state_dict();
  opt.zero_grad();
  EXPECT_EQ(f.g, std::vector<float>(37, 0.0f));  // the frozen tensor's too
  EXPECT_EQ(f.p, params);
  const auto after = opt.state_dict();
  ASSERT_EQ(after.size(), state.size());
  for (std::size_t i = 0; i < state.size(); ++i) EXPECT_EQ(after[i].values, state[i].values);
  // A step on zero gradients is still a step (momentum keeps moving).
  opt.step();
  EXPECT_EQ(opt.steps(), 3);
}

TEST_P(OptimizerGolden, StepAllocatesNothing) {
  const Config& c = config(GetParam());
  Flat f(tensor("p0"), three_tensors(true));
  AnyOptimizer opt = c.make(f);
  const auto grads = gradients();
  f.set_grad(grads[0]);
  const long before = g_allocations.load();
  for (int k = 0; k < 5; ++k) opt.step();  // std::function calls allocate nothing
  opt.zero_grad();
  EXPECT_EQ(g_allocations.load() - before, 0);
}

INSTANTIATE_TEST_SUITE_P(All, OptimizerGolden, ::testing::ValuesIn([] {
                           std::vector<std::string> names;
                           for (const Config& c : configs()) names.push_back(c.name);
                           return names;
                         }()),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------

template <class Fn>
void expect_value_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no ValueError (expected one mentioning '" << needle << "')";
  } catch (const ctnn::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(OptimizerOptions, BadValuesThrowWithTheValue) {
  Flat f(std::vector<float>(4, 1.0f));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_value_error([&] { SGD(f, {.lr = -0.5f}); }, "-0.5");
  expect_value_error([&] { SGD(f, {.lr = nan}); }, "nan");
  expect_value_error([&] { SGD(f, {.momentum = -0.25f}); }, "-0.25");
  expect_value_error([&] { SGD(f, {.weight_decay = -1.0f}); }, "-1.0");
  expect_value_error([&] { SGD(f, {.nesterov = true}); }, "Nesterov");
  expect_value_error([&] { SGD(f, {.momentum = 0.9f, .dampening = 0.1f, .nesterov = true}); },
                     "dampening=0.1");
  expect_value_error([&] { Adam(f, {.lr = -0.5f}); }, "-0.5");
  expect_value_error([&] { Adam(f, {.betas = {1.0f, 0.999f}}); }, "index 0: 1.0");
  expect_value_error([&] { Adam(f, {.betas = {0.9f, -0.1f}}); }, "index 1: -0.1");
  expect_value_error([&] { Adam(f, {.eps = -1e-8f}); }, "-1e-08");
  expect_value_error([&] { Adam(f, {.weight_decay = -0.01f}); }, "-0.01");
  expect_value_error([&] { AdamW(f, {.lr = -2.0f}); }, "-2.0");
  expect_value_error([&] { AdamW(f, {.betas = {0.9f, 1.5f}}); }, "1.5");
  expect_value_error([&] { AdamW(f, {.weight_decay = -0.01f}); }, "-0.01");
  expect_value_error([&] { RMSprop(f, {.lr = -0.5f}); }, "-0.5");
  expect_value_error([&] { RMSprop(f, {.alpha = -0.9f}); }, "-0.9");
  expect_value_error([&] { RMSprop(f, {.eps = -1.0f}); }, "-1.0");
  expect_value_error([&] { RMSprop(f, {.weight_decay = -0.1f}); }, "-0.1");
  expect_value_error([&] { RMSprop(f, {.momentum = -0.5f}); }, "-0.5");
  // Valid edge cases construct.
  EXPECT_NO_THROW(SGD(f, {.lr = 0.0f, .momentum = 0.9f, .nesterov = true}));
  EXPECT_NO_THROW(Adam(f, {.betas = {0.0f, 0.0f}, .eps = 0.0f}));
}

TEST(OptimizerOptions, DefaultsAreTorchDefaults) {
  constexpr SGD::Options sgd{};
  static_assert(sgd.lr == 1e-3f && sgd.momentum == 0 && sgd.dampening == 0 &&
                sgd.weight_decay == 0 && !sgd.nesterov);
  constexpr Adam::Options adam{};
  static_assert(adam.lr == 1e-3f && adam.betas.first == 0.9f && adam.betas.second == 0.999f &&
                adam.eps == 1e-8f && adam.weight_decay == 0 && !adam.amsgrad);
  constexpr AdamW::Options adamw{};
  static_assert(adamw.weight_decay == 1e-2f && adamw.lr == 1e-3f);
  constexpr RMSprop::Options rms{};
  static_assert(rms.lr == 1e-2f && rms.alpha == 0.99f && rms.eps == 1e-8f &&
                rms.weight_decay == 0 && rms.momentum == 0 && !rms.centered);
  Flat f(std::vector<float>(3, 0.0f));
  EXPECT_EQ(SGD(f).repr(),
            "SGD(lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)");
  EXPECT_EQ(AdamW(f).repr(),
            "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False)");
  EXPECT_EQ(SGD(f, {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true}).repr(),
            "SGD(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0001, nesterov=True)");
  EXPECT_EQ(SGD(f, {.lr = 1e-5f}).repr().substr(0, 13), "SGD(lr=1e-05,");
}

TEST(OptimizerOptions, LearningRateCanChangeBetweenSteps) {
  // A scheduler halves lr after the first step: the result equals plain SGD
  // steps with the two learning rates.
  Flat f(std::vector<float>{1.0f, 2.0f});
  SGD sgd(f, {.lr = 0.5f});
  f.g = {1.0f, -1.0f};
  sgd.step();
  sgd.options().lr = 0.25f;
  sgd.step();
  EXPECT_EQ(f.p, (std::vector<float>{0.25f, 2.75f}));
  EXPECT_EQ(static_cast<const SGD&>(sgd).options().lr, 0.25f);
}

TEST(OptimizerView, BadViewsAreRejected) {
  Flat f(std::vector<float>(10, 0.0f));
  const std::vector<ParamRange> outside = {{0, 5, true}, {5, 6, true}};
  const std::vector<ParamRange> overlap = {{0, 6, true}, {5, 5, true}};
  EXPECT_THROW(SGD(ParameterView{f.p.data(), f.g.data(), 10, outside}), ctnn::ShapeError);
  EXPECT_THROW(Adam(ParameterView{f.p.data(), f.g.data(), 10, overlap}), ctnn::ShapeError);
  EXPECT_THROW(RMSprop(ParameterView{nullptr, f.g.data(), 10, {}}), ctnn::ValueError);
  EXPECT_NO_THROW(AdamW(ParameterView{}));  // an empty model is fine
  AdamW empty{ParameterView{}};
  empty.step();
  EXPECT_EQ(empty.steps(), 1);
}

template <class Opt>
void expect_load_error(Opt& opt, const std::vector<NamedState>& bad,
                       const std::vector<std::string>& needles) {
  const auto before = opt.state_dict();
  try {
    opt.load_state_dict(bad);
    ADD_FAILURE() << "no LoadError";
  } catch (const ctnn::LoadError& e) {
    for (const std::string& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << n << " in: " << e.what();
    }
  }
  const auto after = opt.state_dict();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].name, before[i].name);
    EXPECT_EQ(after[i].values, before[i].values) << after[i].name;
  }
  EXPECT_EQ(opt.steps(), 2);
}

TEST(OptimizerState, LoadErrorsLeaveTheOptimizerUnchanged) {
  const auto grads = gradients();
  Flat f(tensor("p0"), three_tensors(false));
  Adam adam(f, {.lr = 0.1f, .amsgrad = true});
  for (int k = 0; k < 2; ++k) {
    f.set_grad(grads[static_cast<std::size_t>(k)]);
    adam.step();
  }
  // A state to corrupt: different values everywhere, so a partial load would show.
  std::vector<NamedState> good = adam.state_dict();
  for (NamedState& s : good) {
    for (float& v : s.values) v += 1.0f;
  }
  auto without = [&](const std::string& name) {
    std::vector<NamedState> out;
    for (const NamedState& s : good) {
      if (s.name != name) out.push_back(s);
    }
    return out;
  };
  auto with = [&](const std::string& name, std::vector<float> values) {
    std::vector<NamedState> out = without(name);
    out.push_back({name, std::move(values)});
    return out;
  };
  expect_load_error(adam, without("exp_avg_sq"), {"Adam", "missing entry 'exp_avg_sq'"});
  expect_load_error(adam, without("step"), {"missing entry 'step'"});
  expect_load_error(adam, with("exp_avg", std::vector<float>(36, 0.0f)),
                    {"'exp_avg' has 36 values, expected 37"});
  expect_load_error(adam, with("tensor_steps", {1.0f, 2.0f}),
                    {"'tensor_steps' has 2 values, expected 3"});
  expect_load_error(adam, with("step", {1.5f}), {"'step' is 1.5"});
  auto extra = good;
  extra.push_back({"momentum_buffer", std::vector<float>(37, 0.0f)});
  expect_load_error(adam, extra, {"unexpected entry 'momentum_buffer'"});
  auto dup = good;
  dup.push_back(good[2]);
  expect_load_error(adam, dup, {"duplicate entry '" + good[2].name + "'"});
  // Several problems are all listed.
  expect_load_error(adam, with("max_exp_avg_sq", {}),
                    {"'max_exp_avg_sq' has 0 values", "Adam.load_state_dict"});
  auto many = without("exp_avg");
  many.push_back({"bogus", {}});
  expect_load_error(adam, many, {"missing entry 'exp_avg'", "unexpected entry 'bogus'"});

  // Plain Adam's state lacks max_exp_avg_sq, which AMSGrad needs.
  Flat g(tensor("p0"));
  Adam plain(g);
  EXPECT_THROW(adam.load_state_dict(plain.state_dict()), ctnn::LoadError);
  // SGD without momentum has nothing but "step".
  SGD sgd(g);
  EXPECT_EQ(sgd.state_dict().size(), 1u);
  const std::vector<NamedState> just_step = {{"step", {7.0f}}};
  sgd.load_state_dict(just_step);
  EXPECT_EQ(sgd.steps(), 7);

  // After all that, the good state still loads.
  adam.load_state_dict(good);
  EXPECT_EQ(adam.steps(), 3);
}

template <class Opt>
std::map<std::string, std::vector<float>> state_map(const Opt& opt) {
  std::map<std::string, std::vector<float>> m;
  for (const NamedState& s : opt.state_dict()) m[s.name] = s.values;
  return m;
}

TEST(OptimizerState, TensorStepsMayBeLeftOut) {
  // A state without per-tensor counters means every tensor took every step.
  const auto grads = gradients();
  Flat a(tensor("p0"), three_tensors(false));
  RMSprop opt_a(a, {.momentum = 0.5f});
  for (std::size_t k = 0; k < 2; ++k) {
    a.set_grad(grads[k]);
    opt_a.step();
  }
  std::vector<NamedState> saved;
  for (const NamedState& s : opt_a.state_dict()) {
    if (s.name != "tensor_steps") saved.push_back(s);
  }
  Flat b(a);
  RMSprop opt_b(b, {.momentum = 0.5f});
  opt_b.load_state_dict(saved);
  EXPECT_EQ(state_map(opt_b).at("tensor_steps"), (std::vector<float>{2.0f, 2.0f, 2.0f}));
}

}  // namespace

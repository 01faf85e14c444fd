// Activations against PyTorch (tests/data/activations.safetensors,
// CONFORMANCE.md 8.1): each of the 13 functions as a layer of width 37, its
// output and its vector-Jacobian product with `upstream`, in training and
// evaluation mode; the derivative conventions at the kinks (9.5); and, beyond
// the file, softmax / log_softmax at odd widths and batch 1 and every
// activation at large inputs, against a double-precision reference written
// here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

// ---- a double-precision reference of every activation --------------------------

struct Reference {
  std::vector<double> output;  // f(x)
  std::vector<double> grad;    // d sum(f(x) * u) / dx
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// One elementwise activation: f(x) and f'(x), with PyTorch's kink conventions.
std::pair<double, double> elementwise_reference(const std::string& name, double x) {
  constexpr double pi = 3.14159265358979323846;
  if (name == "relu") return {x > 0 ? x : 0.0, x > 0 ? 1.0 : 0.0};
  if (name == "leaky_relu_0.01") return {x > 0 ? x : 0.01 * x, x > 0 ? 1.0 : 0.01};
  if (name == "leaky_relu_0.2") return {x > 0 ? x : 0.2 * x, x > 0 ? 1.0 : 0.2};
  if (name == "gelu") {
    const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * pi);
    return {x * cdf, cdf + x * pdf};
  }
  if (name == "gelu_tanh") {
    const double k = std::sqrt(2.0 / pi), c = 0.044715;
    const double t = std::tanh(k * (x + c * x * x * x));
    return {0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x)};
  }
  if (name == "sigmoid") {
    const double s = sigmoid(x);
    return {s, s * (1.0 - s)};
  }
  if (name == "tanh") {
    const double t = std::tanh(x);
    return {t, 1.0 - t * t};
  }
  if (name == "silu") {
    const double s = sigmoid(x);
    return {x * s, s * (1.0 + x * (1.0 - s))};
  }
  if (name == "elu") return {x > 0 ? x : std::expm1(x), x > 0 ? 1.0 : std::exp(x)};
  if (name == "softplus") return {x > 20.0 ? x : std::log1p(std::exp(x)), x > 20.0 ? 1.0 : sigmoid(x)};
  if (name == "hardtanh") return {std::clamp(x, -1.0, 1.0), (x > -1.0 && x < 1.0) ? 1.0 : 0.0};
  ADD_FAILURE() << "no reference for " << name;
  return {0.0, 0.0};
}

/// `name` applied to rows × width values x, and its VJP with u.
Reference reference(const std::string& name, std::span<const float> x, std::span<const float> u, std::size_t width) {
  Reference r{std::vector<double>(x.size()), std::vector<double>(x.size())};
  if (name == "softmax" || name == "log_softmax") {
    for (std::size_t row = 0; row * width < x.size(); ++row) {
      const std::size_t o = row * width;
      double mx = -std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < width; ++i) mx = std::max(mx, double(x[o + i]));
      double sum = 0.0;
      for (std::size_t i = 0; i < width; ++i) sum += std::exp(double(x[o + i]) - mx);
      const double lse = mx + std::log(sum);
      double dot = 0.0, total = 0.0;
      std::vector<double> s(width);
      for (std::size_t i = 0; i < width; ++i) {
        s[i] = std::exp(double(x[o + i]) - lse);
        dot += s[i] * u[o + i];
        total += u[o + i];
      }
      for (std::size_t i = 0; i < width; ++i) {
        if (name == "softmax") {
          r.output[o + i] = s[i];
          r.grad[o + i] = s[i] * (u[o + i] - dot);
        } else {
          r.output[o + i] = double(x[o + i]) - lse;
          r.grad[o + i] = u[o + i] - s[i] * total;
        }
      }
    }
    return r;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto [f, df] = elementwise_reference(name, x[i]);
    r.output[i] = f;
    r.grad[i] = df * u[i];
  }
  return r;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

template <std::size_t W>
Batch<W> random_batch(std::size_t rows, std::mt19937& rng, float low, float high) {
  std::uniform_real_distribution<float> dist(low, high);
  Batch<W> b(rows);
  for (float& v : b) v = dist(rng);
  return b;
}

// ---- the 13 activations of activations.safetensors ---------------------------

constexpr std::size_t width = 37;

/// The activation alone at width 37 (Flatten<37> fixes the input width and is
/// the identity): forward and backward in training mode against the file, the
/// double reference against the file, evaluation mode, and the spec's static
/// f / df against the layer.
template <class Act>
void expect_activation_matches(const std::string& name) {
  SCOPED_TRACE(name);
  const Case c("activations");
  ASSERT_TRUE(c.has(name + ".output") && c.has(name + ".grad"));
  ASSERT_EQ(c.file().entry(name + ".output").shape, (std::vector<std::int64_t>{7, 37}));
  using Net = Sequential<Flatten<width>, Act>;
  Model<Net> model;
  static_assert(Model<Net>::in_features == width && Model<Net>::out_features == width);
  static_assert(Model<Net>::num_params == 0);
  const Batch<width> x(c.rows("input"), c.f32("input"));
  const Batch<width> u(c.rows("upstream"), c.f32("upstream"));
  const std::vector<float> ref_out = c.f32(name + ".output"), ref_grad = c.f32(name + ".grad");

  ASSERT_TRUE(model.is_training());
  const Batch<width> y = model(x);
  ASSERT_EQ(y.rows(), 7u);
  EXPECT_TRUE(all_close(name + ".output", y.values(), ref_out, forward_tolerance));
  const Batch<width> dx = model.backward(u);
  ASSERT_EQ(dx.rows(), 7u);
  EXPECT_TRUE(all_close(name + ".grad", dx.values(), ref_grad, gradient_tolerance));

  // The reference of this file agrees with PyTorch, so it can be trusted for the extras below.
  const Reference ref = reference(name, x.values(), u.values(), width);
  EXPECT_TRUE(all_close(name + ".output (double reference vs file)", to_float(ref.output), ref_out, forward_tolerance));
  EXPECT_TRUE(all_close(name + ".grad (double reference vs file)", to_float(ref.grad), ref_grad, gradient_tolerance));

  // A second training-mode pass gives the same numbers.
  const Batch<width> y2 = model(x);
  const Batch<width> dx2 = model.backward(u);
  for (std::size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(y2.data()[i], y.data()[i]) << i;
    EXPECT_EQ(dx2.data()[i], dx.data()[i]) << i;
  }

  // The spec's static function and derivative are what the layer runs: exactly,
  // except where the kernels evaluate an approximation on whole vectors (tanh,
  // sigmoid, SiLU, GELU-tanh, ELU: kernels/activation_forms.hpp), which must
  // agree within the forward and gradient tolerances.
  if constexpr (requires { Act::f(0.0f); }) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float xi = x.data()[i];
      const float f = Act::f(xi), g = u.data()[i] * Act::df(xi, Act::f(xi));
      if constexpr (!kernels::has_vector_form<Act> || kernels::vector_form_is_exact<Act>) {
        EXPECT_EQ(f, y.data()[i]) << "f at x = " << xi;
        EXPECT_EQ(g, dx.data()[i]) << "df at x = " << xi;
      } else {
        EXPECT_LE(std::fabs(f - y.data()[i]), forward_tolerance.atol + forward_tolerance.rtol * std::fabs(f))
            << "f at x = " << xi;
        EXPECT_LE(std::fabs(g - dx.data()[i]), gradient_tolerance.atol + gradient_tolerance.rtol * std::fabs(g))
            << "df at x = " << xi;
      }
    }
  }

  model.eval();
  const Batch<width> ye = model(x);
  EXPECT_TRUE(all_close(name + ".output (eval)", ye.values(), ref_out, forward_tolerance));
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(ye.data()[i], y.data()[i]) << "eval differs from train at " << i;
}

TEST(Activations, ReLU) { expect_activation_matches<ReLU>("relu"); }
TEST(Activations, LeakyReLUDefaultSlope) { expect_activation_matches<LeakyReLU<>>("leaky_relu_0.01"); }
TEST(Activations, LeakyReLUSlopeOneFifth) { expect_activation_matches<LeakyReLU<std::ratio<1, 5>>>("leaky_relu_0.2"); }
TEST(Activations, GELU) { expect_activation_matches<GELU>("gelu"); }
TEST(Activations, GELUTanh) { expect_activation_matches<GELUTanh>("gelu_tanh"); }
TEST(Activations, Sigmoid) { expect_activation_matches<Sigmoid>("sigmoid"); }
TEST(Activations, Tanh) { expect_activation_matches<Tanh>("tanh"); }
TEST(Activations, SiLU) { expect_activation_matches<SiLU>("silu"); }
TEST(Activations, ELU) { expect_activation_matches<ELU<>>("elu"); }
TEST(Activations, Softplus) { expect_activation_matches<Softplus<>>("softplus"); }
TEST(Activations, Hardtanh) { expect_activation_matches<Hardtanh<>>("hardtanh"); }
TEST(Activations, Softmax) { expect_activation_matches<Softmax>("softmax"); }
TEST(Activations, LogSoftmax) { expect_activation_matches<LogSoftmax>("log_softmax"); }

TEST(Activations, FileHasExactlyTheThirteenFunctions) {
  const Case c("activations");
  const std::vector<std::string> names = {"relu",    "leaky_relu_0.01", "leaky_relu_0.2", "gelu", "gelu_tanh",
                                          "sigmoid", "tanh",            "silu",           "elu",  "softplus",
                                          "hardtanh", "softmax",        "log_softmax"};
  std::size_t act_keys = 0;
  for (const auto& [key, value] : c.file().metadata())
    if (key.starts_with("act.")) ++act_keys;
  EXPECT_EQ(act_keys, names.size());
  for (const auto& n : names) {
    EXPECT_TRUE(c.has(n + ".output")) << n;
    EXPECT_TRUE(c.has(n + ".grad")) << n;
  }
}

// ---- kinks (CONFORMANCE.md 9.5) ---------------------------------------------

/// Positions of `value` in the activations input.
std::vector<std::size_t> positions_of(const std::vector<float>& x, float value) {
  std::vector<std::size_t> at;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i] == value) at.push_back(i);
  return at;
}

/// dx of Act at width 37 for the activations input and upstream.
template <class Act>
std::vector<float> activation_grad(const Case& c) {
  Model<Sequential<Flatten<width>, Act>> model;
  (void)model(Batch<width>(c.rows("input"), c.f32("input")));
  const Batch<width> dx = model.backward(Batch<width>(c.rows("upstream"), c.f32("upstream")));
  return {dx.begin(), dx.end()};
}

TEST(ActivationKinks, InputHoldsTheKinks) {
  const Case c("activations");
  const auto x = c.f32("input");
  EXPECT_EQ(positions_of(x, 0.0f).size(), 3u);
  EXPECT_GE(positions_of(x, 1.0f).size(), 1u);
  EXPECT_GE(positions_of(x, -1.0f).size(), 1u);
}

TEST(ActivationKinks, ReLUHasDerivativeZeroAtZero) {
  const Case c("activations");
  const auto x = c.f32("input"), u = c.f32("upstream"), ref = c.f32("relu.grad");
  const auto dx = activation_grad<ReLU>(c);
  for (std::size_t i : positions_of(x, 0.0f)) {
    ASSERT_NE(u[i], 0.0f);
    EXPECT_EQ(ref[i], 0.0f) << i;
    EXPECT_EQ(dx[i], 0.0f) << i;
  }
  EXPECT_EQ(ReLU::df(0.0f, 0.0f), 0.0f);
  EXPECT_EQ(ReLU::df(-0.0f, 0.0f), 0.0f);
  EXPECT_EQ(ReLU::df(1e-6f, 1e-6f), 1.0f);
  EXPECT_EQ(ReLU::f(-0.0f), 0.0f);
}

TEST(ActivationKinks, LeakyReLUHasTheSlopeAtZero) {
  const Case c("activations");
  const auto x = c.f32("input"), u = c.f32("upstream");
  const auto ref01 = c.f32("leaky_relu_0.01.grad"), ref02 = c.f32("leaky_relu_0.2.grad");
  const auto dx01 = activation_grad<LeakyReLU<>>(c);
  const auto dx02 = activation_grad<LeakyReLU<std::ratio<1, 5>>>(c);
  for (std::size_t i : positions_of(x, 0.0f)) {
    EXPECT_NEAR(ref01[i], 0.01 * u[i], 1e-7) << i;
    EXPECT_NEAR(ref02[i], 0.2 * u[i], 1e-7) << i;
    EXPECT_NEAR(dx01[i], 0.01 * u[i], 1e-7) << i;
    EXPECT_NEAR(dx02[i], 0.2 * u[i], 1e-7) << i;
  }
  EXPECT_EQ(LeakyReLU<>::df(0.0f, 0.0f), 0.01f);
  EXPECT_EQ((LeakyReLU<std::ratio<1, 5>>::df(0.0f, 0.0f)), 0.2f);
  EXPECT_EQ(LeakyReLU<>::negative_slope, 0.01f);
  EXPECT_EQ((LeakyReLU<std::ratio<1, 5>>::negative_slope), 0.2f);
}

TEST(ActivationKinks, HardtanhHasDerivativeZeroAtPlusMinusOne) {
  const Case c("activations");
  const auto x = c.f32("input"), u = c.f32("upstream"), ref = c.f32("hardtanh.grad"), out = c.f32("hardtanh.output");
  const auto dx = activation_grad<Hardtanh<>>(c);
  for (float kink : {1.0f, -1.0f}) {
    const auto at = positions_of(x, kink);
    ASSERT_FALSE(at.empty());
    for (std::size_t i : at) {
      ASSERT_NE(u[i], 0.0f);
      EXPECT_EQ(ref[i], 0.0f) << i;
      EXPECT_EQ(dx[i], 0.0f) << "hardtanh'(" << kink << ")";
      EXPECT_EQ(out[i], kink);
    }
  }
  // Just inside the interval the derivative is 1; at 0 too.
  for (std::size_t i : positions_of(x, 0.0f)) EXPECT_EQ(dx[i], u[i]);
  EXPECT_EQ(Hardtanh<>::df(1.0f, 1.0f), 0.0f);
  EXPECT_EQ(Hardtanh<>::df(-1.0f, -1.0f), 0.0f);
  EXPECT_EQ(Hardtanh<>::df(0.999f, 0.999f), 1.0f);
  EXPECT_EQ(Hardtanh<>::df(-0.999f, -0.999f), 1.0f);
  EXPECT_EQ(Hardtanh<>::df(1.001f, 1.0f), 0.0f);
  EXPECT_EQ(Hardtanh<>::f(2.0f), 1.0f);
  EXPECT_EQ(Hardtanh<>::f(-2.0f), -1.0f);
}

TEST(ActivationKinks, EluHasDerivativeOneAtZero) {
  const Case c("activations");
  const auto x = c.f32("input"), u = c.f32("upstream"), ref = c.f32("elu.grad");
  const auto dx = activation_grad<ELU<>>(c);
  for (std::size_t i : positions_of(x, 0.0f)) {
    EXPECT_NEAR(ref[i], u[i], 1e-7) << i;
    EXPECT_NEAR(dx[i], u[i], 1e-7) << i;
  }
  EXPECT_EQ(ELU<>::df(0.0f, 0.0f), 1.0f);
}

TEST(ActivationKinks, SmoothFunctionsAtZero) {
  EXPECT_EQ(GELU::f(0.0f), 0.0f);
  EXPECT_NEAR(GELU::df(0.0f, 0.0f), 0.5, 1e-7);
  EXPECT_NEAR(GELUTanh::df(0.0f, 0.0f), 0.5, 1e-7);
  EXPECT_NEAR(Sigmoid::f(0.0f), 0.5, 1e-7);
  EXPECT_NEAR(Sigmoid::df(0.0f, 0.5f), 0.25, 1e-7);
  EXPECT_NEAR(Tanh::df(0.0f, 0.0f), 1.0, 1e-7);
  EXPECT_NEAR(SiLU::df(0.0f, 0.0f), 0.5, 1e-7);
  EXPECT_NEAR(Softplus<>::f(0.0f), std::log(2.0), 1e-7);
  EXPECT_NEAR(Softplus<>::df(0.0f, 0.0f), 0.5, 1e-7);
}

// ---- softmax and log_softmax at odd widths and batch 1 ------------------------

template <std::size_t W, class Act>
void expect_row_function_matches(const std::string& name, std::size_t rows, std::uint32_t seed_value) {
  SCOPED_TRACE(name + " width " + std::to_string(W) + " rows " + std::to_string(rows));
  std::mt19937 rng(seed_value);
  const Batch<W> x = random_batch<W>(rows, rng, -8.0f, 8.0f);
  const Batch<W> u = random_batch<W>(rows, rng, -1.0f, 1.0f);
  const Reference ref = reference(name, x.values(), u.values(), W);

  Model<Sequential<Flatten<W>, Act>> model;
  const Batch<W> y = model(x);
  ASSERT_EQ(y.rows(), rows);
  EXPECT_TRUE(all_close("output", y.values(), to_float(ref.output), forward_tolerance));
  const Batch<W> dx = model.backward(u);
  EXPECT_TRUE(all_close("grad", dx.values(), to_float(ref.grad), gradient_tolerance));

  for (std::size_t r = 0; r < rows; ++r) {
    double sum = 0.0, grad_sum = 0.0;
    for (std::size_t i = 0; i < W; ++i) {
      const double v = y(r, i);
      ASSERT_TRUE(std::isfinite(v));
      sum += name == "softmax" ? v : std::exp(v);
      if (name == "softmax") {
        EXPECT_TRUE(v >= 0.0 && v <= 1.0) << v;
      } else {
        EXPECT_LE(v, 0.0);
      }
      grad_sum += dx(r, i);
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << r;
    // Softmax's VJP sums to 0 per row (the output sum is constant).
    if (name == "softmax") {
      EXPECT_NEAR(grad_sum, 0.0, 1e-5) << "row " << r;
    }
  }

  model.eval();
  const Batch<W> ye = model(x);
  EXPECT_TRUE(all_close("output (eval)", ye.values(), to_float(ref.output), forward_tolerance));
}

TEST(RowFunctions, SoftmaxOddWidthsAndBatchOne) {
  for (std::size_t rows : {1u, 7u, 300u}) {
    expect_row_function_matches<5, Softmax>("softmax", rows, 11);
    expect_row_function_matches<13, Softmax>("softmax", rows, 12);
    expect_row_function_matches<1, Softmax>("softmax", rows, 13);
  }
}

TEST(RowFunctions, LogSoftmaxOddWidthsAndBatchOne) {
  for (std::size_t rows : {1u, 7u, 300u}) {
    expect_row_function_matches<5, LogSoftmax>("log_softmax", rows, 21);
    expect_row_function_matches<13, LogSoftmax>("log_softmax", rows, 22);
    expect_row_function_matches<1, LogSoftmax>("log_softmax", rows, 23);
  }
}

TEST(RowFunctions, WidthOneSoftmaxIsOneAndLogSoftmaxIsZero) {
  Model<Sequential<Flatten<1>, Softmax>> s;
  Model<Sequential<Flatten<1>, LogSoftmax>> ls;
  const Batch<1> x(3, {-50.0f, 0.0f, 70.0f});
  const Batch<1> ys = s(x), yls = ls(x);
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(ys(r, 0), 1.0f);
    EXPECT_EQ(yls(r, 0), 0.0f);
  }
}

TEST(RowFunctions, SoftmaxIsShiftInvariant) {
  Model<Sequential<Flatten<5>, Softmax>> model;
  const Batch<5> x(1, {0.125f, -0.375f, 2.0f, 0.0f, 1.5f});  // exact after the shift too
  Batch<5> shifted(1);
  for (std::size_t i = 0; i < 5; ++i) shifted(0, i) = x(0, i) + 1000.0f;
  const Batch<5> a = model(x);
  const Batch<5> b = model(shifted);
  EXPECT_TRUE(all_close("softmax(x + 1000)", b.values(), a.values(), forward_tolerance));
}

// ---- large inputs --------------------------------------------------------------

constexpr std::size_t large_width = 8;

/// Rows of ±100 and friends: finite outputs and gradients that match the reference.
Batch<large_width> large_inputs() {
  return Batch<large_width>(5, {
                                   100.0f,  -100.0f, 0.0f,    1.0f,    -1.0f,   99.0f,   -99.0f,  20.0f,   //
                                   -100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f,  //
                                   100.0f,  100.0f,  100.0f,  100.0f,  100.0f,  100.0f,  100.0f,  100.0f,   //
                                   100.0f,  -100.0f, 100.0f,  -100.0f, 100.0f,  -100.0f, 100.0f,  -100.0f,  //
                                   88.0f,   -88.0f,  21.0f,   -21.0f,  19.5f,   20.5f,   -30.0f,  30.0f,    //
                               });
}

template <class Act>
void expect_finite_and_correct_at_large_inputs(const std::string& name) {
  SCOPED_TRACE(name);
  const Batch<large_width> x = large_inputs();
  Batch<large_width> u(x.rows());
  for (std::size_t i = 0; i < u.size(); ++i) u.data()[i] = 0.25f + 0.1f * float(i % 7) - 0.3f * float(i % 2);
  const Reference ref = reference(name, x.values(), u.values(), large_width);

  Model<Sequential<Flatten<large_width>, Act>> model;
  const Batch<large_width> y = model(x);
  const Batch<large_width> dx = model.backward(u);
  for (std::size_t i = 0; i < y.size(); ++i) {
    EXPECT_TRUE(std::isfinite(y.data()[i])) << name << "(" << x.data()[i] << ") = " << y.data()[i];
    EXPECT_TRUE(std::isfinite(dx.data()[i])) << name << "'(" << x.data()[i] << ") gives " << dx.data()[i];
  }
  EXPECT_TRUE(all_close(name + " output", y.values(), to_float(ref.output), forward_tolerance));
  EXPECT_TRUE(all_close(name + " grad", dx.values(), to_float(ref.grad), gradient_tolerance));
  model.eval();
  const Batch<large_width> ye = model(x);
  EXPECT_TRUE(all_close(name + " output (eval)", ye.values(), to_float(ref.output), forward_tolerance));
}

TEST(LargeInputs, Sigmoid) { expect_finite_and_correct_at_large_inputs<Sigmoid>("sigmoid"); }
TEST(LargeInputs, Softmax) { expect_finite_and_correct_at_large_inputs<Softmax>("softmax"); }
TEST(LargeInputs, LogSoftmax) { expect_finite_and_correct_at_large_inputs<LogSoftmax>("log_softmax"); }
TEST(LargeInputs, Softplus) { expect_finite_and_correct_at_large_inputs<Softplus<>>("softplus"); }
TEST(LargeInputs, SiLU) { expect_finite_and_correct_at_large_inputs<SiLU>("silu"); }
TEST(LargeInputs, TheOtherActivations) {
  expect_finite_and_correct_at_large_inputs<ReLU>("relu");
  expect_finite_and_correct_at_large_inputs<LeakyReLU<>>("leaky_relu_0.01");
  expect_finite_and_correct_at_large_inputs<GELU>("gelu");
  expect_finite_and_correct_at_large_inputs<GELUTanh>("gelu_tanh");
  expect_finite_and_correct_at_large_inputs<Tanh>("tanh");
  expect_finite_and_correct_at_large_inputs<ELU<>>("elu");
  expect_finite_and_correct_at_large_inputs<Hardtanh<>>("hardtanh");
}

TEST(LargeInputs, SoftplusIsLinearAboveTheThreshold) {
  // PyTorch returns x where beta·x > threshold (20), and the derivative there is 1.
  for (float v : {20.5f, 21.0f, 100.0f, 1e6f}) {
    EXPECT_EQ(Softplus<>::f(v), v);
    EXPECT_EQ(Softplus<>::df(v, v), 1.0f);
  }
  // At the threshold itself it is still log1p(exp(x)).
  EXPECT_NEAR(Softplus<>::f(20.0f), std::log1p(std::exp(20.0)), 1e-5);
  EXPECT_NEAR(Softplus<>::f(-100.0f), 0.0, 1e-30);
  EXPECT_TRUE(std::isfinite(Softplus<>::f(-1e6f)));
  EXPECT_EQ(Softplus<>::df(-1e6f, 0.0f), 0.0f);
}

TEST(LargeInputs, SigmoidAndSiluSaturate) {
  EXPECT_EQ(Sigmoid::f(100.0f), 1.0f);
  EXPECT_EQ(Sigmoid::f(-100.0f), 0.0f);
  EXPECT_EQ(Sigmoid::df(100.0f, 1.0f), 0.0f);
  EXPECT_EQ(SiLU::f(100.0f), 100.0f);
  EXPECT_EQ(SiLU::f(-100.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(SiLU::df(-100.0f, 0.0f)));
  EXPECT_NEAR(SiLU::df(100.0f, 100.0f), 1.0, 1e-6);
  EXPECT_TRUE(std::isfinite(SiLU::df(-1e6f, 0.0f)));
  EXPECT_TRUE(std::isfinite(Sigmoid::f(-1e6f)));
}

}  // namespace
}  // namespace ctnn::test

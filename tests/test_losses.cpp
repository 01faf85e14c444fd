// Losses against losses.safetensors (CONFORMANCE.md 8.2, 9.4), against a
// double-precision reference on other shapes, and their error handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/train/losses.hpp"

// Counts heap allocations so the tests can prove that compute() makes none.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// None of these is inlined: GCC would otherwise see free() meet a pointer from
// operator new (or malloc meet delete) at call sites and warn
// (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using ctnn::Reduction;

constexpr double kValueAtol = 1e-5, kValueRtol = 1e-4;
constexpr double kGradAtol = 1e-4, kGradRtol = 1e-3;

::testing::AssertionResult close(double got, double ref, double atol, double rtol) {
  if (!std::isfinite(got)) return ::testing::AssertionFailure() << "got non-finite " << got;
  const double diff = std::fabs(got - ref);
  if (diff <= atol + rtol * std::fabs(ref)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", ref " << ref << ", |diff| " << diff
                                       << " > " << atol + rtol * std::fabs(ref);
}

template <class Got, class Ref>
void expect_all_close(const std::vector<Got>& got, const std::vector<Ref>& ref, double atol,
                      double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(close(static_cast<double>(got[i]), static_cast<double>(ref[i]), atol, rtol))
        << what << " element " << i;
  }
}

const ctnn::SafetensorsFile& losses_file() {
  static const ctnn::SafetensorsFile f =
      ctnn::SafetensorsFile::read(std::string(CTNN_TEST_DATA) + "/losses.safetensors");
  return f;
}

/// The inputs of CONFORMANCE.md 8.2.
struct Inputs {
  std::vector<float> pred, regress, binary, nll_input;
  std::vector<std::int64_t> labels;
  std::size_t rows = 0, cols = 0;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    const auto& f = losses_file();
    Inputs r;
    r.pred = f.to_f32("predictions");
    r.regress = f.to_f32("target.regress");
    r.binary = f.to_f32("target.binary");
    r.nll_input = f.to_f32("nll.input");
    r.labels = f.to_i64("target.class");
    const auto& shape = f.entry("predictions").shape;
    r.rows = static_cast<std::size_t>(shape.at(0));
    r.cols = static_cast<std::size_t>(shape.at(1));
    return r;
  }();
  return in;
}

/// Runs the loss named as in the file on the file's inputs.
double run_named(const std::string& loss, Reduction red, float* grad) {
  const Inputs& in = inputs();
  const std::size_t n = in.rows, c = in.cols;
  if (loss == "mse")
    return ctnn::MSELoss{red}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  if (loss == "l1") return ctnn::L1Loss{red}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  if (loss == "smooth_l1") {
    return ctnn::SmoothL1Loss{red, 1.0f}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  }
  if (loss == "smooth_l1_beta0.5") {
    return ctnn::SmoothL1Loss{red, 0.5f}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  }
  if (loss == "huber") {
    return ctnn::HuberLoss{red, 1.0f}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  }
  if (loss == "huber_delta2") {
    return ctnn::HuberLoss{red, 2.0f}.compute(in.pred.data(), in.regress.data(), n, c, grad);
  }
  if (loss == "cross_entropy") {
    return ctnn::CrossEntropyLoss{red}.compute(in.pred.data(), in.labels.data(), n, c, grad);
  }
  if (loss == "cross_entropy_ls0.1") {
    return ctnn::CrossEntropyLoss{red, 0.1f}.compute(in.pred.data(), in.labels.data(), n, c, grad);
  }
  if (loss == "nll")
    return ctnn::NLLLoss{red}.compute(in.nll_input.data(), in.labels.data(), n, c, grad);
  if (loss == "bce_with_logits") {
    return ctnn::BCEWithLogitsLoss{red}.compute(in.pred.data(), in.binary.data(), n, c, grad);
  }
  ADD_FAILURE() << "unknown loss " << loss;
  return 0.0;
}

const std::vector<std::string> kLosses = {"mse",           "l1",
                                          "smooth_l1",     "smooth_l1_beta0.5",
                                          "huber",         "huber_delta2",
                                          "cross_entropy", "cross_entropy_ls0.1",
                                          "nll",           "bce_with_logits"};

TEST(LossesFile, CoversEveryLossInTheFile) {
  std::vector<std::string> in_file;
  for (const auto& [key, value] : losses_file().metadata()) {
    if (key.rfind("loss.", 0) == 0) in_file.push_back(key.substr(5));
  }
  std::vector<std::string> ours = kLosses;
  std::sort(in_file.begin(), in_file.end());
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(in_file, ours);
}

class LossGolden : public ::testing::TestWithParam<std::tuple<std::string, Reduction>> {};

TEST_P(LossGolden, ValueAndGradient) {
  const auto& [loss, red] = GetParam();
  const std::string key = loss + (red == Reduction::mean ? ".mean" : ".sum");
  const auto& f = losses_file();
  ASSERT_TRUE(f.contains(key + ".value"));
  EXPECT_TRUE(f.entry(key + ".value").shape.empty());
  EXPECT_EQ(f.entry(key + ".grad").shape, (std::vector<std::int64_t>{6, 5}));
  const double ref_value = f.to_f32(key + ".value").at(0);
  const std::vector<float> ref_grad = f.to_f32(key + ".grad");

  std::vector<float> grad(ref_grad.size(), std::nanf(""));
  const double value = run_named(loss, red, grad.data());
  EXPECT_TRUE(close(value, ref_value, kValueAtol, kValueRtol)) << key << ".value";
  expect_all_close(grad, ref_grad, kGradAtol, kGradRtol, key + ".grad");

  // Without a gradient buffer the value is the same, bit for bit.
  EXPECT_EQ(run_named(loss, red, nullptr), value) << key;
}

INSTANTIATE_TEST_SUITE_P(All, LossGolden,
                         ::testing::Combine(::testing::ValuesIn(kLosses),
                                            ::testing::Values(Reduction::mean, Reduction::sum)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           for (char& ch : n) {
                             if (ch == '.') ch = '_';
                           }
                           return n +
                                  (std::get<1>(info.param) == Reduction::mean ? "_mean" : "_sum");
                         });

// ---------------------------------------------------------------------------
// Independent double-precision reference, written straight from the table in
// CONFORMANCE.md 8.2, for shapes other than the file's 6x5.

enum class Kind { mse, l1, smooth_l1, huber, cross_entropy, nll, bce };

struct Case {
  std::string name;
  Kind kind;
  float option;  // beta, delta or label smoothing
};

double sign(double d) { return d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0); }

double reference(const Case& c, Reduction red, const std::vector<float>& x,
                 const std::vector<float>& t, const std::vector<std::int64_t>& y, std::size_t rows,
                 std::size_t cols, std::vector<double>& grad) {
  const std::size_t n = rows * cols;
  grad.assign(n, 0.0);
  double total = 0.0;
  const bool per_sample = c.kind == Kind::cross_entropy || c.kind == Kind::nll;
  const double div = red == Reduction::mean ? static_cast<double>(per_sample ? rows : n) : 1.0;
  if (!per_sample) {
    for (std::size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(t[i]);
      const double a = std::fabs(d), o = c.option;
      switch (c.kind) {
        case Kind::mse:
          total += d * d;
          grad[i] = 2 * d;
          break;
        case Kind::l1:
          total += a;
          grad[i] = sign(d);
          break;
        case Kind::smooth_l1:
          total += a < o ? 0.5 * d * d / o : a - 0.5 * o;
          grad[i] = a < o ? d / o : sign(d);
          break;
        case Kind::huber:
          total += a <= o ? 0.5 * d * d : o * (a - 0.5 * o);
          grad[i] = a <= o ? d : o * sign(d);
          break;
        case Kind::bce: {
          const double xv = x[i], yv = t[i];
          const double p = 1.0 / (1.0 + std::exp(-xv));
          total += -(yv * std::log(p) + (1 - yv) * std::log1p(-p));
          grad[i] = p - yv;
          break;
        }
        default:
          break;
      }
    }
  } else {
    for (std::size_t r = 0; r < rows; ++r) {
      const auto label = static_cast<std::size_t>(y[r]);
      if (c.kind == Kind::nll) {
        total -= x[r * cols + label];
        grad[r * cols + label] = -1.0;
        continue;
      }
      double z = 0.0;
      for (std::size_t k = 0; k < cols; ++k) z += std::exp(static_cast<double>(x[r * cols + k]));
      const double eps = c.option, C = static_cast<double>(cols);
      for (std::size_t k = 0; k < cols; ++k) {
        const double logp = static_cast<double>(x[r * cols + k]) - std::log(z);
        const double target = (k == label ? 1.0 - eps : 0.0) + eps / C;
        total -= target * logp;
        grad[r * cols + k] = std::exp(logp) - target;
      }
    }
  }
  for (double& g : grad) g /= div;
  return total / div;
}

double run_case(const Case& c, Reduction red, const std::vector<float>& x,
                const std::vector<float>& t, const std::vector<std::int64_t>& y, std::size_t rows,
                std::size_t cols, float* grad) {
  switch (c.kind) {
    case Kind::mse:
      return ctnn::MSELoss{red}.compute(x.data(), t.data(), rows, cols, grad);
    case Kind::l1:
      return ctnn::L1Loss{red}.compute(x.data(), t.data(), rows, cols, grad);
    case Kind::smooth_l1:
      return ctnn::SmoothL1Loss{red, c.option}.compute(x.data(), t.data(), rows, cols, grad);
    case Kind::huber:
      return ctnn::HuberLoss{red, c.option}.compute(x.data(), t.data(), rows, cols, grad);
    case Kind::bce:
      return ctnn::BCEWithLogitsLoss{red}.compute(x.data(), t.data(), rows, cols, grad);
    case Kind::cross_entropy:
      return ctnn::CrossEntropyLoss{red, c.option}.compute(x.data(), y.data(), rows, cols, grad);
    case Kind::nll:
      return ctnn::NLLLoss{red}.compute(x.data(), y.data(), rows, cols, grad);
  }
  return 0.0;
}

const std::vector<Case> kCases = {
    {"mse", Kind::mse, 0.0f},
    {"l1", Kind::l1, 0.0f},
    {"smooth_l1", Kind::smooth_l1, 1.0f},
    {"smooth_l1_beta0.5", Kind::smooth_l1, 0.5f},
    {"huber", Kind::huber, 1.0f},
    {"huber_delta2", Kind::huber, 2.0f},
    {"cross_entropy", Kind::cross_entropy, 0.0f},
    {"cross_entropy_ls0.1", Kind::cross_entropy, 0.1f},
    {"cross_entropy_ls0.7", Kind::cross_entropy, 0.7f},
    {"nll", Kind::nll, 0.0f},
    {"bce_with_logits", Kind::bce, 0.0f},
};

TEST(LossShapes, OddShapesAgainstDoubleReference) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uni(-3.0f, 3.0f);
  for (const auto& [rows, cols] :
       std::vector<std::pair<std::size_t, std::size_t>>{{1, 1}, {13, 5}, {3, 17}, {1, 7}, {9, 1}}) {
    const std::size_t n = rows * cols;
    std::vector<float> x(n), t(n), b(n);
    std::vector<std::int64_t> y(rows);
    for (auto& v : x) v = uni(rng);
    for (auto& v : t) v = uni(rng);
    for (auto& v : b) v = uni(rng) > 0 ? 1.0f : 0.0f;
    for (auto& v : y) v = static_cast<std::int64_t>(rng() % cols);
    for (const Case& c : kCases) {
      for (Reduction red : {Reduction::mean, Reduction::sum}) {
        const std::string what = c.name + (red == Reduction::mean ? " mean " : " sum ") +
                                 std::to_string(rows) + "x" + std::to_string(cols);
        const std::vector<float>& target = c.kind == Kind::bce ? b : t;
        std::vector<double> ref_grad;
        const double ref = reference(c, red, x, target, y, rows, cols, ref_grad);
        std::vector<float> grad(n, std::nanf(""));
        const double got = run_case(c, red, x, target, y, rows, cols, grad.data());
        EXPECT_TRUE(close(got, ref, kValueAtol, kValueRtol)) << what;
        expect_all_close(grad, ref_grad, kGradAtol, kGradRtol, what);
      }
    }
  }
}

TEST(LossShapes, EmptyBatch) {
  const float* none = nullptr;
  const std::int64_t* no_labels = nullptr;
  EXPECT_EQ(ctnn::MSELoss{Reduction::sum}.compute(none, none, 0, 4, nullptr), 0.0);
  EXPECT_TRUE(std::isnan(ctnn::MSELoss{}.compute(none, none, 0, 4, nullptr)));  // as PyTorch
  EXPECT_EQ(ctnn::CrossEntropyLoss{Reduction::sum}.compute(none, no_labels, 0, 3, nullptr), 0.0);
}

TEST(LossStability, HugeLogitsStayFinite) {
  // exp(1e4) overflows any float; a correct log-sum-exp never computes it.
  const std::vector<float> x = {1e4f, -1e4f, 0.0f, 5e3f, 88.0f, 100.0f};
  const std::vector<std::int64_t> y = {1, 0};
  std::vector<float> grad(6);
  const double ce =
      ctnn::CrossEntropyLoss{Reduction::sum}.compute(x.data(), y.data(), 2, 3, grad.data());
  // Row 0: lse = 1e4, label 1 picks -1e4. Row 1: lse ~ 5e3 = its label's logit.
  EXPECT_TRUE(close(ce, 2e4, 1e-5, 1e-7));
  EXPECT_FLOAT_EQ(grad[0], 1.0f);
  EXPECT_FLOAT_EQ(grad[1], -1.0f);
  EXPECT_FLOAT_EQ(grad[2], 0.0f);
  for (std::size_t i = 3; i < 6; ++i) EXPECT_FLOAT_EQ(grad[i], 0.0f);
  for (float g : grad) EXPECT_TRUE(std::isfinite(g));

  const std::vector<float> logits = {200.0f, -200.0f, 30.0f, -30.0f};
  const std::vector<float> target = {0.0f, 1.0f, 1.0f, 0.0f};
  std::vector<float> bgrad(4);
  const double bce = ctnn::BCEWithLogitsLoss{Reduction::sum}.compute(logits.data(), target.data(),
                                                                     1, 4, bgrad.data());
  EXPECT_TRUE(close(bce, 400.0 + 2 * std::log1p(std::exp(-30.0)), 1e-5, 1e-7));
  EXPECT_FLOAT_EQ(bgrad[0], 1.0f);
  EXPECT_FLOAT_EQ(bgrad[1], -1.0f);
  EXPECT_NEAR(bgrad[2], -std::exp(-30.0), 1e-12);  // 1 - sigmoid(30) rounds to 0 in float
  EXPECT_NEAR(bgrad[3], std::exp(-30.0), 1e-20);   // sigmoid(-30) itself is exact
}

TEST(LossKinks, L1SignOfZeroIsZero) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f}, t = {1.0f, 1.0f, 4.0f};
  std::vector<float> grad(3);
  ctnn::L1Loss{Reduction::sum}.compute(x.data(), t.data(), 1, 3, grad.data());
  EXPECT_EQ(grad, (std::vector<float>{0.0f, 1.0f, -1.0f}));
  // Smooth L1 with beta = 0 is L1 (and must not divide by zero).
  std::fill(grad.begin(), grad.end(), 9.0f);
  const double v =
      ctnn::SmoothL1Loss{Reduction::sum, 0.0f}.compute(x.data(), t.data(), 1, 3, grad.data());
  EXPECT_DOUBLE_EQ(v, 2.0);
  EXPECT_EQ(grad, (std::vector<float>{0.0f, 1.0f, -1.0f}));
}

template <class Loss>
void expect_label_error(const Loss& loss, std::vector<std::int64_t> labels, std::int64_t bad,
                        std::size_t bad_row) {
  const std::size_t rows = labels.size(), cols = 5;
  std::vector<float> x(rows * cols, 0.25f);
  std::vector<float> grad(rows * cols, 7.0f);
  try {
    loss.compute(x.data(), labels.data(), rows, cols, grad.data());
    ADD_FAILURE() << "no exception for label " << bad;
  } catch (const ctnn::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("label " + std::to_string(bad)), std::string::npos) << msg;
    EXPECT_NE(msg.find("row " + std::to_string(bad_row)), std::string::npos) << msg;
    EXPECT_NE(msg.find("5 classes"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string(Loss::name)), std::string::npos) << msg;
  }
  // Labels are checked before anything is written.
  for (float g : grad) EXPECT_EQ(g, 7.0f);
}

TEST(LossErrors, OutOfRangeLabels) {
  expect_label_error(ctnn::CrossEntropyLoss{}, {0, 4, 5, 1}, 5, 2);
  expect_label_error(ctnn::CrossEntropyLoss{Reduction::sum, 0.2f}, {-1, 2}, -1, 0);
  expect_label_error(ctnn::NLLLoss{}, {3, 2, 1, 0, 17}, 17, 4);
  expect_label_error(ctnn::NLLLoss{Reduction::sum}, {-3}, -3, 0);
  // An error is a ValueError, which is a ctnn::Error.
  const std::vector<float> x(5, 0.0f);
  const std::vector<std::int64_t> y = {5};
  EXPECT_THROW(ctnn::CrossEntropyLoss{}.compute(x.data(), y.data(), 1, 5, nullptr), ctnn::Error);
}

TEST(LossErrors, BadOptions) {
  const std::vector<float> x(4, 0.5f), t(4, 0.0f);
  const std::vector<std::int64_t> y = {1};
  const ctnn::SmoothL1Loss negative_beta{.beta = -1.0f};
  const ctnn::HuberLoss zero_delta{.delta = 0.0f};
  const ctnn::CrossEntropyLoss big_smoothing{.label_smoothing = 1.5f};
  EXPECT_THROW(negative_beta.compute(x.data(), t.data(), 1, 4, nullptr), ctnn::ValueError);
  EXPECT_THROW(zero_delta.compute(x.data(), t.data(), 1, 4, nullptr), ctnn::ValueError);
  EXPECT_THROW(big_smoothing.compute(x.data(), y.data(), 1, 4, nullptr), ctnn::ValueError);
  try {
    ctnn::HuberLoss{Reduction::mean, -2.5f}.compute(x.data(), t.data(), 1, 4, nullptr);
    ADD_FAILURE();
  } catch (const ctnn::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("-2.5"), std::string::npos) << e.what();
  }
}

TEST(LossApi, DefaultsNamesAndRepr) {
  static_assert(ctnn::MSELoss{}.reduction == Reduction::mean);
  static_assert(ctnn::SmoothL1Loss{}.beta == 1.0f);
  static_assert(ctnn::HuberLoss{}.delta == 1.0f);
  static_assert(ctnn::CrossEntropyLoss{}.label_smoothing == 0.0f);
  constexpr ctnn::CrossEntropyLoss ce{.reduction = Reduction::sum, .label_smoothing = 0.1f};
  static_assert(ce.reduction == Reduction::sum && ce.label_smoothing == 0.1f);
  EXPECT_EQ(ctnn::MSELoss::name, "MSELoss");
  EXPECT_EQ(ctnn::L1Loss{}.repr(), "L1Loss()");
  EXPECT_EQ(ctnn::SmoothL1Loss{}.repr(), "SmoothL1Loss()");
  EXPECT_EQ(ctnn::HuberLoss{}.repr(), "HuberLoss()");
  EXPECT_EQ(ctnn::CrossEntropyLoss{}.repr(), "CrossEntropyLoss()");
  EXPECT_EQ(ctnn::NLLLoss{}.repr(), "NLLLoss()");
  EXPECT_EQ(ctnn::BCEWithLogitsLoss{}.repr(), "BCEWithLogitsLoss()");
}

TEST(LossAllocations, ComputeAllocatesNothing) {
  const Inputs& in = inputs();  // loaded before counting
  std::vector<float> grad(in.pred.size());
  const long before = g_allocations.load();
  for (const std::string& loss : kLosses) {
    for (Reduction red : {Reduction::mean, Reduction::sum}) {
      run_named(loss, red, grad.data());
      run_named(loss, red, nullptr);
    }
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
}

}  // namespace

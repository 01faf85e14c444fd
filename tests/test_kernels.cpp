// The per-architecture kernels (include/ctnn/kernels) against the plain
// reference kernels and the scalar activations, under every architecture this
// CPU can run, on odd sizes: 1, 3, 5, 13, 37, 100 and 257 rows, and widths
// that exercise every path (one output, fewer outputs than a vector, more than
// a register tile, K blocks of 256 and a remainder, row tails of every length).
// Also: the fusion plan of pipelines, and how the architecture is chosen.
//
// The whole conformance suite runs once per architecture as well: meson
// registers every test group again with CTNN_ARCH=sse4_2 / avx2 / avx512.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/kernels/activation.hpp>
#include <ctnn/kernels/linear.hpp>
#include <ctnn/kernels/optimizer.hpp>
#include <ctnn/kernels/reference.hpp>

#include "test_inputs.hpp"

namespace ctnn::test {
namespace {

using kernels::Arch;

constexpr std::size_t row_counts[] = {1, 3, 5, 13, 37, 100, 257};

/// |got - ref| <= tol · (1 + magnitude): the allowance of float accumulation
/// over terms whose absolute values sum to `magnitude`.
::testing::AssertionResult close_to(const std::string& what, const std::vector<float>& got,
                                    const std::vector<float>& ref, const std::vector<double>& magnitude,
                                    double tol = 2e-6) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double allowed = tol * (1.0 + magnitude[i]);
    if (!std::isfinite(got[i]) || std::fabs(double(got[i]) - double(ref[i])) > allowed)
      return ::testing::AssertionFailure() << what << " [" << i << "]: got " << got[i] << ", reference " << ref[i]
                                           << ", allowed " << allowed;
  }
  return ::testing::AssertionSuccess();
}

/// Σ |x·w| per output of y = x · wᵀ.
std::vector<double> forward_magnitude(const std::vector<float>& w, const std::vector<float>& x, std::size_t in,
                                      std::size_t out, std::size_t n) {
  std::vector<double> m(n * out);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double s = 1.0;  // the bias
      for (std::size_t i = 0; i < in; ++i) s += std::fabs(double(x[r * in + i]) * w[o * in + i]);
      m[r * out + o] = s;
    }
  return m;
}

template <std::size_t In, std::size_t Out>
void check_linear_kernels(Arch arch) {
  SCOPED_TRACE("Linear<" + std::to_string(In) + ", " + std::to_string(Out) + "> on " +
               std::string(kernels::arch_name(arch)));
  const auto w = random_values(In * Out, 1);
  const auto b = random_values(Out, 2);
  for (std::size_t n : row_counts) {
    SCOPED_TRACE("rows " + std::to_string(n));
    const auto x = random_values(n * In, 3 + static_cast<std::uint32_t>(n));
    const auto dy = random_values(n * Out, 4 + static_cast<std::uint32_t>(n));

    // forward, with and without bias, with z kept
    std::vector<float> y(n * Out, -7.0f), z(n * Out, -7.0f), ref(n * Out);
    kernels::reference::linear_forward<In, Out, true>(w.data(), b.data(), x.data(), ref.data(), n);
    const auto magnitude = forward_magnitude(w, x, In, Out, n);
    kernels::linear_forward<kernels::NoActivation, In, Out>(arch, w.data(), b.data(), x.data(), z.data(), y.data(), n);
    EXPECT_TRUE(close_to("forward", y, ref, magnitude));
    EXPECT_TRUE(close_to("forward z", z, ref, magnitude));
    kernels::reference::linear_forward<In, Out, false>(w.data(), nullptr, x.data(), ref.data(), n);
    kernels::linear_forward<kernels::NoActivation, In, Out>(arch, w.data(), nullptr, x.data(), nullptr, y.data(), n);
    EXPECT_TRUE(close_to("forward without bias", y, ref, magnitude));

    // forward with an activation in the epilogue
    kernels::reference::linear_forward<In, Out, true>(w.data(), b.data(), x.data(), ref.data(), n);
    for (auto& v : ref) v = std::tanh(v);
    kernels::linear_forward<Tanh, In, Out>(arch, w.data(), b.data(), x.data(), nullptr, y.data(), n);
    EXPECT_TRUE(close_to("forward + tanh", y, ref, magnitude));

    // dx = dy · w (overwrites), dw += dyᵀ · x, db += Σ dy
    std::vector<float> dx(n * In, 5.0f), dx_ref(n * In);
    kernels::reference::linear_backward_input<In, Out>(w.data(), dy.data(), dx_ref.data(), n);
    kernels::linear_backward_input<In, Out>(arch, w.data(), dy.data(), dx.data(), n);
    std::vector<double> dx_magnitude(n * In);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t i = 0; i < In; ++i)
        for (std::size_t o = 0; o < Out; ++o) dx_magnitude[r * In + i] += std::fabs(double(dy[r * Out + o]) * w[o * In + i]);
    EXPECT_TRUE(close_to("backward input", dx, dx_ref, dx_magnitude));

    auto dw = random_values(In * Out, 5), dw_ref = dw;
    kernels::reference::linear_backward_weight<In, Out>(x.data(), dy.data(), dw_ref.data(), n);
    kernels::linear_backward_weight<In, Out>(arch, x.data(), dy.data(), dw.data(), n);
    std::vector<double> dw_magnitude(In * Out, 1.0);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t o = 0; o < Out; ++o)
        for (std::size_t i = 0; i < In; ++i) dw_magnitude[o * In + i] += std::fabs(double(dy[r * Out + o]) * x[r * In + i]);
    EXPECT_TRUE(close_to("backward weight", dw, dw_ref, dw_magnitude));

    auto db = random_values(Out, 6), db_ref = db;
    kernels::reference::bias_backward<Out>(dy.data(), db_ref.data(), n);
    kernels::bias_backward<Out>(arch, dy.data(), db.data(), n);
    EXPECT_TRUE(close_to("backward bias", db, db_ref, std::vector<double>(Out, double(n))));
  }
}

TEST(Kernels, LinearMatchesReferenceOnOddSizesUnderEveryArchitecture) {
  for (Arch a : available_archs()) {
    check_linear_kernels<1, 1>(a);
    check_linear_kernels<3, 1>(a);
    check_linear_kernels<100, 1>(a);
    check_linear_kernels<257, 1>(a);
    check_linear_kernels<1, 13>(a);
    check_linear_kernels<1, 100>(a);
    check_linear_kernels<3, 5>(a);
    check_linear_kernels<5, 3>(a);
    check_linear_kernels<5, 37>(a);
    check_linear_kernels<13, 13>(a);
    // Layers of at most one vector each way (body/linear.hpp's narrow kernels),
    // full vectors on each architecture, and both orientations of dW.
    check_linear_kernels<4, 4>(a);
    check_linear_kernels<8, 8>(a);
    check_linear_kernels<16, 16>(a);
    check_linear_kernels<16, 3>(a);
    check_linear_kernels<2, 16>(a);
    check_linear_kernels<13, 257>(a);
    check_linear_kernels<37, 100>(a);
    check_linear_kernels<100, 37>(a);
    check_linear_kernels<257, 5>(a);
    check_linear_kernels<257, 100>(a);
    check_linear_kernels<100, 257>(a);
    // Few inputs or few outputs, wide the other way (body/linear.hpp's
    // backward_weight_few_features, backward_input_few_outputs): whole passes
    // and partial vectors.
    check_linear_kernels<1, 64>(a);
    check_linear_kernels<2, 257>(a);
    check_linear_kernels<3, 37>(a);
    check_linear_kernels<4, 130>(a);
    check_linear_kernels<64, 1>(a);
    check_linear_kernels<257, 2>(a);
    check_linear_kernels<37, 3>(a);
    check_linear_kernels<130, 4>(a);
  }
}

/// dW of Linear<In, Out> after one linear_backward_weight on each architecture in `archs`.
template <std::size_t In, std::size_t Out>
std::vector<std::vector<float>> weight_gradients(const std::vector<Arch>& archs, std::size_t n) {
  const auto x = random_values(n * In, 21), dy = random_values(n * Out, 22);
  std::vector<std::vector<float>> results;
  for (Arch a : archs) {
    std::vector<float> dw = random_values(In * Out, 23);
    kernels::linear_backward_weight<In, Out>(a, x.data(), dy.data(), dw.data(), n);
    results.push_back(dw);
  }
  return results;
}

TEST(Kernels, FewFeaturesWeightGradientHasTheSameBitsOnEveryFmaArchitecture) {
  // The two partial sums over rows do not depend on the vector width, so
  // AVX2 and AVX-512 sum every element in the same order.
  std::vector<Arch> fma_archs;
  for (Arch a : available_archs())
    if (a == Arch::avx2 || a == Arch::avx512) fma_archs.push_back(a);
  if (fma_archs.size() < 2) GTEST_SKIP() << "this CPU runs fewer than two architectures with FMA";
  const auto few_inputs = weight_gradients<3, 100>(fma_archs, 37);
  EXPECT_EQ(few_inputs[0], few_inputs[1]);
  EXPECT_NE(few_inputs[0], random_values(3 * 100, 23));
  const auto few_outputs = weight_gradients<100, 3>(fma_archs, 37);
  EXPECT_EQ(few_outputs[0], few_outputs[1]);
  EXPECT_NE(few_outputs[0], random_values(100 * 3, 23));
}

// ---- activations: every vector form against the scalar f and f' ---------------

std::vector<float> activation_inputs() {
  std::vector<float> x = random_values(1000, 11, -6.0f, 6.0f);
  for (float v : {0.0f, -0.0f, 1e-7f, -1e-7f, 1e-3f, -1e-3f, 0.5f, -0.5f, 0.625f, -0.625f, 0.63f, 1.0f, -1.0f, 9.0f,
                  -9.0f, 20.0f, -20.0f, 30.0f, -30.0f, 44.0f, -44.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e4f, -1e4f})
    x.push_back(v);
  x.push_back(0.25f);  // 1028 values: not a multiple of any vector width... plus one more
  x.push_back(-0.25f);
  x.push_back(3.0f);
  return x;
}

/// How much an activation's gradient amplifies the absolute error of the
/// vector function it is made of. GELU-tanh's derivative has the term
/// 0.5·x·(1 - t²)·k·(1 + 3c·x²), t = tanh(...): tanh's few-ulp absolute error
/// near ±1 (3e-7) is multiplied by |x|·(1 + 3c·x²), which is 27 at x = -5.8,
/// where the scalar gradient is 0 or 5e-4.
template <class Fn>
double gradient_error_scale(float x) {
  if constexpr (std::is_same_v<Fn, GELUTanh>)
    return 1.0 + std::fabs(double(x)) * (1.0 + 3.0 * double(Fn::c) * double(x) * double(x));
  else
    return 1.0;
}

template <class Fn>
void check_activation(Arch arch, const char* name) {
  SCOPED_TRACE(std::string(name) + " on " + std::string(kernels::arch_name(arch)));
  const auto x = activation_inputs();
  constexpr std::size_t width = 37;
  const std::size_t count = x.size() - x.size() % width, n = count / width;
  std::vector<float> y(count), y_ref(count);
  for (std::size_t i = 0; i < count; ++i) y_ref[i] = Fn::f(x[i]);
  kernels::activation_forward<Fn>(arch, x.data(), y.data(), count);
  // Exact where the vector form only compares and multiplies, or where there is
  // no vector form; within a few ulp where it is a polynomial.
  constexpr bool exact = !kernels::has_vector_form<Fn> || kernels::vector_form_is_exact<Fn>;
  const double rel = exact ? 0.0 : 2e-6, abs = exact ? 0.0 : 1e-6;
  for (std::size_t i = 0; i < count; ++i)
    ASSERT_LE(std::fabs(double(y[i]) - y_ref[i]), abs + rel * std::fabs(y_ref[i]))
        << "f(" << x[i] << ") = " << y[i] << ", scalar " << y_ref[i];

  const auto dy = random_values(count, 12);
  std::vector<float> dx(count), dx_ref(count), db(width, 0.5f), db_ref(width, 0.5f);
  for (std::size_t i = 0; i < count; ++i) dx_ref[i] = dy[i] * Fn::df(x[i], y_ref[i]);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < width; ++j) db_ref[j] += dx_ref[r * width + j];
  kernels::activation_backward<Fn, width>(arch, x.data(), y_ref.data(), dy.data(), dx.data(), n, nullptr);
  for (std::size_t i = 0; i < count; ++i)
    ASSERT_LE(std::fabs(double(dx[i]) - dx_ref[i]), abs * gradient_error_scale<Fn>(x[i]) + rel * std::fabs(dx_ref[i]))
        << "f'(" << x[i] << ") · " << dy[i] << " = " << dx[i] << ", scalar " << dx_ref[i];
  std::fill(dx.begin(), dx.end(), 0.0f);
  kernels::activation_backward<Fn, width>(arch, x.data(), y_ref.data(), dy.data(), dx.data(), n, db.data());
  for (std::size_t i = 0; i < count; ++i)
    ASSERT_LE(std::fabs(double(dx[i]) - dx_ref[i]), abs * gradient_error_scale<Fn>(x[i]) + rel * std::fabs(dx_ref[i]));
  for (std::size_t j = 0; j < width; ++j) EXPECT_NEAR(db[j], db_ref[j], 1e-5 * (1.0 + double(n))) << "db[" << j << "]";
}

TEST(Kernels, ActivationsMatchTheScalarFunctionsUnderEveryArchitecture) {
  for (Arch a : available_archs()) {
    check_activation<Identity>(a, "Identity");
    check_activation<ReLU>(a, "ReLU");
    check_activation<LeakyReLU<>>(a, "LeakyReLU");
    check_activation<LeakyReLU<std::ratio<1, 5>>>(a, "LeakyReLU(0.2)");
    check_activation<GELU>(a, "GELU");
    check_activation<GELUTanh>(a, "GELUTanh");
    check_activation<Sigmoid>(a, "Sigmoid");
    check_activation<Tanh>(a, "Tanh");
    check_activation<SiLU>(a, "SiLU");
    check_activation<ELU<>>(a, "ELU");
    check_activation<Softplus<>>(a, "Softplus");
    check_activation<Hardtanh<>>(a, "Hardtanh");
  }
}

// ---- fusion plan ----------------------------------------------------------------

using detail::FusionRole;

template <class Net>
constexpr auto plan_of() {
  return bind_t<Net, Net::in_features>::fusion;
}

static_assert(plan_of<Sequential<Linear<3, 8>, ReLU, Linear<8, 1>>>() ==
              std::array{FusionRole::fused_head, FusionRole::fused_tail, FusionRole::alone});
static_assert(plan_of<Sequential<Linear<3, 8>, Linear<8, 8>, Tanh, Tanh>>() ==
              std::array{FusionRole::alone, FusionRole::fused_head, FusionRole::fused_tail, FusionRole::alone});
static_assert(plan_of<Sequential<Named<"fc1", Linear<3, 8>>, Named<"act", GELUTanh>, Named<"fc2", Linear<8, 2>>>>() ==
              std::array{FusionRole::fused_head, FusionRole::fused_tail, FusionRole::alone});
// GELU with erf has no vector form: nothing to gain from fusing it.
static_assert(plan_of<Sequential<Linear<3, 8>, GELU, Linear<8, 2>>>() ==
              std::array{FusionRole::alone, FusionRole::alone, FusionRole::alone});
static_assert(plan_of<Sequential<ReLU, Linear<3, 8>>>() == std::array{FusionRole::alone, FusionRole::alone});
static_assert(MLP<4, 16, 2>::layer::fusion ==
              std::array{FusionRole::fused_head, FusionRole::fused_tail, FusionRole::alone});

// A fused pipeline gives what its children give one by one (with hooks, the
// children run one by one).
struct CountingHooks {
  int calls = 0;
  void forward(const ModuleIO&) { ++calls; }
};

/// Sets the default architecture for a scope, and restores the previous one.
struct ScopedArch {
  Arch saved = kernels::default_arch();
  explicit ScopedArch(Arch a) { kernels::set_default_arch(a); }
  ~ScopedArch() { kernels::set_default_arch(saved); }
};

/// Runs Net fused and (with hooks) child by child on every architecture, with
/// `frozen` frozen in both and the fused one on `pool` if given, and compares
/// outputs, input gradients and parameter gradients bit for bit.
template <class Net>
void expect_fused_bits_of_children(int children, std::string_view frozen = {}, ThreadPool* pool = nullptr,
                                   std::size_t most_rows = 300) {
  constexpr std::size_t in = Model<Net>::in_features, out = Model<Net>::out_features;
  for (Arch a : available_archs()) {
    SCOPED_TRACE(std::string(kernels::arch_name(a)));
    const ScopedArch scoped(a);
    for (std::size_t rows : {std::size_t{1}, std::size_t{3}, std::size_t{41}, most_rows}) {
      Model<Net> fused{seed(3)}, plain{seed(3)};
      if (pool) fused.set_thread_pool(pool);
      if (!frozen.empty()) {
        fused.freeze(frozen);
        plain.freeze(frozen);
      }
      const Batch<in> x(rows, random_values(rows * in, 9, -2.0f, 2.0f));
      const Batch<out> dy(rows, random_values(rows * out, 10));
      CountingHooks hooks;  // with hooks, the children run one by one
      const auto y_fused = fused(x);
      const auto y_plain = plain(x, hooks);
      EXPECT_EQ(hooks.calls, children);
      ASSERT_TRUE(std::equal(y_fused.begin(), y_fused.end(), y_plain.begin())) << rows << " rows";
      const auto dx_fused = fused.backward(dy);
      const auto dx_plain = plain.backward(dy, hooks);
      ASSERT_TRUE(std::equal(dx_fused.begin(), dx_fused.end(), dx_plain.begin())) << rows << " rows";
      ASSERT_TRUE(std::equal(fused.gradients().begin(), fused.gradients().end(), plain.gradients().begin()))
          << rows << " rows";
    }
  }
}

TEST(Kernels, FusedPipelineGivesTheBitsOfItsChildrenRunOneByOne) {
  // Each Linear after a pair takes the pair's activation derivative into its
  // input gradient: the GEMM (37 -> 37, 37 -> 5), the narrow kernel (5 -> 1).
  using Net = Sequential<Linear<13, 37>, SiLU, Linear<37, 37>, ReLU, Linear<37, 5>, Tanh, Linear<5, 1>, Sigmoid>;
  static_assert(bind_t<Net, 13>::fusion[0] == FusionRole::fused_head);
  static_assert(bind_t<Net, 13>::derivative_taken == std::array{true, false, true, false, true, false, false, false});
  expect_fused_bits_of_children<Net>(9);
}

TEST(Kernels, DerivativeTakenByTheNextLinearGivesTheBitsOfItsChildrenRunOneByOne) {
  // The GEMM over two K blocks (300 outputs summed into 20 inputs), a Linear
  // alone with few outputs (300 -> 3), ELU's derivative from its input, a
  // pair's without a bias, Named children, and frozen layers (whose input
  // gradients are still taken when something before them trains).
  using Net = Sequential<Linear<5, 20>, ELU<>, Named<"wide", Linear<20, 300, false>>, ReLU, Linear<300, 3>>;
  static_assert(bind_t<Net, 5>::derivative_taken == std::array{true, false, true, false, false});
  expect_fused_bits_of_children<Net>(6);
  expect_fused_bits_of_children<Net>(6, "wide");
  expect_fused_bits_of_children<Net>(6, "4");
  // The GEMM with its rows of dz packed in blocks (512 wide: 300 rows are two
  // blocks), two K blocks, and two threads, which must keep each column's
  // rows in order for the bias gradient's sums (at 3000 rows, threads that
  // each took half of the rows would add to the same sums at the same time).
  using Wide = Sequential<Linear<5, 80>, Tanh, Linear<80, 512>, Sigmoid, Linear<512, 3>>;
  expect_fused_bits_of_children<Wide>(6);
  ThreadPool pool(2);
  expect_fused_bits_of_children<Wide>(6, {}, &pool, 3000);
  // Taken by a Linear alone (40 -> 17 + GELU-tanh, then 17 -> 17); not by a
  // LayerNorm after the first pair; 17 -> 17 + Softplus (no vector form) is no pair.
  using Other = Sequential<Linear<6, 40>, Tanh, LayerNorm<40>, Linear<40, 17>, GELUTanh, Linear<17, 17>, Softplus<>,
                           Linear<17, 2>>;
  static_assert(bind_t<Other, 6>::derivative_taken ==
                std::array{false, false, false, true, false, false, false, false});
  expect_fused_bits_of_children<Other>(9);
}

TEST(Kernels, DerivativeTakenThroughAResidualGivesTheBitsOfItsChildrenRunOneByOne) {
  // The pair before a Residual has its dz stored by the first kernel of the
  // Residual's body, which adds the skip connection's gradient first: W1's
  // shape at 13 wide (a body that is one pair; the narrow kernel with
  // AVX-512, the GEMM with narrower vectors), at 37 wide (the GEMM, a body
  // whose first pair has its own derivative taken by the body's next Linear)
  // after ELU (derivative from z), a body that is one Linear alone (its dy is
  // the skip's gradient too), and a last child whose body starts 13 -> 3 (the
  // few-outputs kernel). Not taken after a Residual, nor into a body that
  // starts with an activation.
  using Net = Sequential<Linear<5, 13>, ReLU, Residual<Linear<13, 13>, ReLU>, Residual<Linear<13, 13>>,
                         Linear<13, 37>, ELU<>, Residual<Named<"fc", Linear<37, 37, false>>, Tanh, Linear<37, 37>>,
                         Linear<37, 13>, Tanh, Residual<Tanh, Linear<13, 13>>, Linear<13, 13>, Sigmoid,
                         Residual<Linear<13, 13>>, Linear<13, 13>, SiLU, Residual<Linear<13, 3>, ReLU, Linear<3, 13>>>;
  static_assert(bind_t<Net, 5>::derivative_taken == std::array{true, false, false, false, true, false, false, false,
                                                               false, false, true, false, false, true, false, false});
  static_assert(detail::takes_derivative_through_body<ResidualLayer<13, Linear<13, 13>>> &&
                !detail::takes_derivative_through_body<ResidualLayer<13, Tanh, Linear<13, 13>>>);
  constexpr int modules = 29;  // what the hooks see: the network, its children, the Residuals' children
  expect_fused_bits_of_children<Net>(modules);
  // Frozen: a Residual's body (its input gradient is still needed), the pair
  // before a Residual (its body still trains), the first pair (nothing before
  // it needs a gradient: the Residual after it passes none on).
  expect_fused_bits_of_children<Net>(modules, "6");
  expect_fused_bits_of_children<Net>(modules, "4");
  expect_fused_bits_of_children<Net>(modules, "0");
  // No input gradient asked for (backward_parameters): the first Residual
  // still stores the first pair's dz while that pair trains, and passes
  // nothing (its body's first kernel gets no dx) once the pair is frozen.
  for (Arch a : available_archs())
    for (std::string_view frozen : {"", "0"}) {
      const ScopedArch scoped(a);
      Model<Net> fused{seed(4)}, plain{seed(4)};
      if (!frozen.empty()) {
        fused.freeze(frozen);
        plain.freeze(frozen);
      }
      const Batch<5> x(41, random_values(41 * 5, 11, -2.0f, 2.0f));
      const Batch<13> dy(41, random_values(41 * 13, 12));
      CountingHooks hooks;
      (void)fused(x);
      (void)plain(x, hooks);
      fused.backward_parameters(dy);
      plain.backward_parameters(dy, hooks);
      EXPECT_TRUE(std::equal(fused.gradients().begin(), fused.gradients().end(), plain.gradients().begin()))
          << kernels::arch_name(a) << ", frozen: " << frozen;
    }
}

// ---- choosing the architecture ----------------------------------------------------

TEST(Kernels, ArchitectureIsChosenOncePerModel) {
  const Arch best = kernels::best_arch();
  EXPECT_TRUE(kernels::available(best));
  const Arch from_environment = kernels::detail::arch_from_environment();
  if (const char* env = std::getenv("CTNN_ARCH")) {
    const auto requested = kernels::parse_arch(env);
    ASSERT_TRUE(requested.has_value());
    if (*requested != Arch::automatic && kernels::available(*requested)) {
      EXPECT_EQ(from_environment, *requested) << "CTNN_ARCH=" << env;
    }
    EXPECT_LE(from_environment, best);
  } else {
    EXPECT_EQ(from_environment, best);
  }
  for (Arch a : available_archs()) {
    const ScopedArch scoped(a);
    Model<Linear<3, 1>> m;
    EXPECT_EQ(m.context().arch, a);
    kernels::set_default_arch(best);
    EXPECT_EQ(m.context().arch, a) << "chosen when the model was made";
  }
  EXPECT_FALSE(kernels::parse_arch("avx1024").has_value());

  // One model moved to another architecture gives the same answers within
  // float rounding (the order of the sums differs with the vector width).
  Model<Sequential<Linear<13, 37>, Tanh, Linear<37, 5>>> m{seed(2)};
  Batch<13> x(41);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
  m.set_arch(Arch::automatic);
  EXPECT_EQ(m.arch(), best);
  const auto reference = m(x);
  for (Arch a : available_archs()) {
    m.set_arch(a);
    EXPECT_EQ(m.arch(), a);
    const auto y = m(x);
    for (std::size_t i = 0; i < y.size(); ++i) {
      EXPECT_NEAR(y.data()[i], reference.data()[i], 1e-5) << arch_name(a);
    }
  }
  if (!kernels::available(Arch::avx512)) {
    EXPECT_THROW(m.set_arch(Arch::avx512), ValueError);
  }
}

// The optimizers' updates (kernels/optimizer.hpp) against PyTorch's scalar
// loop written out here (same operations, same order, correctly rounded sqrt
// and division): the same bits where the architecture has no FMA, within a few
// units in the last place where the compiler may fuse a multiply and an add.
// Sizes with every tail length, and sizes of whole vectors.
constexpr std::size_t update_sizes[] = {1, 5, 13, 37, 64, 1000};

/// Equal, or (fused multiply-adds allowed) within 4 units in the last place
/// of the operands.
void expect_same_update(const std::vector<float>& got, const std::vector<float>& want, Arch arch,
                        const std::string& what) {
  const bool has_fma = arch == Arch::avx2 || arch == Arch::avx512;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!has_fma) {
      ASSERT_EQ(got[i], want[i]) << what << " under " << arch_name(arch) << ", element " << i;
    } else {
      // Relative to the operands (of order 1), not to a result that may be
      // the small difference of two of them.
      ASSERT_NEAR(got[i], want[i], 4 * std::numeric_limits<float>::epsilon() * (1.0f + std::abs(want[i])))
          << what << " under " << arch_name(arch) << ", element " << i;
    }
  }
}

struct UpdateBuffers {
  std::vector<float> p, g, a, b, c;
  explicit UpdateBuffers(std::size_t n, std::uint32_t seed)
      : p(random_values(n, seed)),
        g(random_values(n, seed + 1)),
        a(random_values(n, seed + 2, 0.0f, 0.1f)),  // second moments: not negative
        b(random_values(n, seed + 3, -0.1f, 0.1f)),
        c(random_values(n, seed + 4, 0.05f, 0.2f)) {}
};

TEST(Kernels, OptimizerUpdatesGiveTheScalarLoopsBitsUnderEveryArchitecture) {
  for (std::size_t n : update_sizes) {
    // SGD: decay, momentum after its first step, Nesterov.
    UpdateBuffers want(n, 11);
    const float lr = 0.05f, wd = 0.01f, mu = 0.9f, omd = 0.75f;
    for (std::size_t i = 0; i < n; ++i) {
      float d = want.g[i] + wd * want.p[i];
      const float buf = want.b[i] * mu + omd * d;
      want.b[i] = buf;
      d = d + mu * buf;
      want.p[i] = want.p[i] - lr * d;
    }
    // Adam with L2 decay and AMSGrad; AdamW's decoupled decay.
    kernels::AdamScalars s{0.9f, 0.1f, 0.999f, 0.001f, 0.0123f, 0.0447f, 1e-8f, 0.02f, 0.9998f};
    UpdateBuffers adam(n, 21), adamw(n, 21);
    for (UpdateBuffers* w : {&adam, &adamw}) {
      const bool decoupled = w == &adamw;
      for (std::size_t i = 0; i < n; ++i) {
        float pi = w->p[i], gi = w->g[i];
        if (decoupled) pi = pi * s.decay_factor;
        else gi = gi + s.weight_decay * pi;
        const float mi = w->b[i] * s.beta1 + s.one_minus_beta1 * gi;
        float vi = w->a[i] * s.beta2 + s.one_minus_beta2 * gi * gi;
        w->b[i] = mi;
        w->a[i] = vi;
        if (!decoupled) {
          vi = w->c[i] < vi ? vi : w->c[i];
          w->c[i] = vi;
        }
        w->p[i] = pi - s.step_size * mi / (std::sqrt(vi) / s.bias2_sqrt + s.eps);
      }
    }
    // RMSprop, centered, with momentum and decay.
    UpdateBuffers rms(n, 31);
    const float alpha = 0.99f, oma = 0.01f, eps = 1e-8f;
    for (std::size_t i = 0; i < n; ++i) {
      const float gi = rms.g[i] + wd * rms.p[i];
      const float sq = rms.c[i] * alpha + oma * gi * gi;
      rms.c[i] = sq;
      const float ga = rms.b[i] * alpha + oma * gi;
      rms.b[i] = ga;
      const float avg = std::sqrt(sq - ga * ga) + eps;
      const float buf = rms.a[i] * mu + gi / avg;
      rms.a[i] = buf;
      rms.p[i] = rms.p[i] - lr * buf;
    }
    for (Arch arch : available_archs()) {
      UpdateBuffers x(n, 11);
      const std::string at = " n=" + std::to_string(n);
      kernels::sgd_update<true, true, false, true>(arch, x.p.data(), x.g.data(), x.b.data(), n, lr, wd, mu, omd);
      expect_same_update(x.p, want.p, arch, "SGD parameters" + at);
      expect_same_update(x.b, want.b, arch, "SGD momentum buffer" + at);
      UpdateBuffers y(n, 21), z(n, 21);
      kernels::adam_update<true, false, true>(arch, y.p.data(), y.g.data(), y.b.data(), y.a.data(), y.c.data(), n, s);
      kernels::adam_update<false, true, false>(arch, z.p.data(), z.g.data(), z.b.data(), z.a.data(), nullptr, n, s);
      expect_same_update(y.p, adam.p, arch, "Adam parameters" + at);
      expect_same_update(y.c, adam.c, arch, "Adam max_exp_avg_sq" + at);
      expect_same_update(z.p, adamw.p, arch, "AdamW parameters" + at);
      expect_same_update(z.a, adamw.a, arch, "AdamW exp_avg_sq" + at);
      UpdateBuffers r(n, 31);
      kernels::rmsprop_update<true, true, true>(arch, r.p.data(), r.g.data(), r.c.data(), r.b.data(), r.a.data(), n,
                                                lr, alpha, oma, eps, wd, mu);
      expect_same_update(r.p, rms.p, arch, "RMSprop parameters" + at);
      expect_same_update(r.a, rms.a, arch, "RMSprop momentum buffer" + at);
    }
  }
}

}  // namespace
}  // namespace ctnn::test

// Fusion, the type-level pass over a pipeline: wherever a Linear is followed
// directly by an elementwise activation with a vector form (ReLU, LeakyReLU,
// Hardtanh, Tanh, Sigmoid, SiLU, GELU-tanh, ELU, Identity; also when Named or
// Functional), the pair runs as one kernel. The children list does not change,
// so names, offsets, printing and the workspace layout stay what they were;
// only how Chain (compose/chain.hpp) runs the pair changes:
//   forward   y = act(x · wᵀ + b) in the GEMM's epilogue, while the tile is in
//             registers; z = x · wᵀ + b is also stored in training mode when
//             the activation's derivative reads it (not for ReLU, Tanh and
//             Sigmoid, whose derivatives read y);
//   backward  dz = dy ⊙ act'(z) in one pass that also sums db, then dw += dzᵀ·x
//             and dx = dz·w. When the next child is a Linear (alone or the
//             head of another pair), the derivative folds into that Linear's
//             input-gradient kernel instead (kernels::ActivationGradient): it
//             stores dy ⊙ act'(z), this pair's dz, as it computes dy, and sums
//             db from it; the pair then runs only its dw and dx.
// The numbers are the same bits as the two layers run one after the other
// (same GEMM, same activation code, same order of the bias-gradient sums).
// Calls with hooks run the children one by one, so every hook sees what it
// would see without fusion.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>

#include "ctnn/compose/functional.hpp"
#include "ctnn/compose/named.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/kernels/activation.hpp"
#include "ctnn/kernels/linear.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/linear.hpp"

namespace ctnn::detail {

/// The layer under Named and Functional wrappers.
template <class L>
struct unwrapped {
  using type = L;
};
template <fixed_string Name, class L>
struct unwrapped<NamedLayer<Name, L>> : unwrapped<L> {};
template <class L>
struct unwrapped<FunctionalLayer<L>> : unwrapped<L> {};
template <class L>
using unwrapped_t = typename unwrapped<L>::type;

template <class L>
inline constexpr bool is_elementwise = false;
template <class Fn, std::size_t W>
inline constexpr bool is_elementwise<Elementwise<Fn, W>> = true;

template <class L>
struct activation_of {
  using type = void;
};
template <class Fn, std::size_t W>
struct activation_of<Elementwise<Fn, W>> {
  using type = Fn;
};

/// The pairs the pass fuses: a Linear and an activation the kernels evaluate
/// on whole vectors (kernels/activation_forms.hpp); the others gain nothing.
template <class First, class Second>
inline constexpr bool fuses = [] {
  if constexpr (is_linear<unwrapped_t<First>> && is_elementwise<unwrapped_t<Second>>)
    return kernels::has_vector_form<typename activation_of<unwrapped_t<Second>>::type>;
  else
    return false;
}();

enum class FusionRole : unsigned char { alone, fused_head, fused_tail };

/// Each child's role, pairing greedily from the left.
template <class... Ls>
constexpr std::array<FusionRole, sizeof...(Ls)> fusion_plan() {
  constexpr std::size_t K = sizeof...(Ls);
  constexpr std::array<bool, K + 1> head_candidate = [] {
    std::array<bool, K + 1> h{};
    using list = type_list<Ls...>;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((h[I] = [] {
         if constexpr (I + 1 < K) return fuses<type_at<I, list>, type_at<I + 1, list>>;
         else return false;
       }()),
       ...);
    }(std::make_index_sequence<K>{});
    return h;
  }();
  std::array<FusionRole, K> roles{};
  for (std::size_t i = 0; i < K; ++i) {
    if (roles[i] == FusionRole::fused_tail) continue;
    if (head_candidate[i]) {
      roles[i] = FusionRole::fused_head;
      roles[i + 1] = FusionRole::fused_tail;
    }
  }
  return roles;
}

/// A Linear and the activation after it, run as one.
template <class LinearChild, class ActivationChild>
struct FusedLinearActivation {
  using linear = unwrapped_t<LinearChild>;
  using activation = unwrapped_t<ActivationChild>;
  using function = typename activation::function;
  static constexpr std::size_t In = linear::in_features, Out = linear::out_features;

  /// x[n, In] -> z[n, Out] -> y[n, Out]. `c` is the Linear's context. z is
  /// stored only when training and the activation's derivative reads it
  /// (not for ReLU, Tanh, Sigmoid: their backward reads y).
  static void forward(const Context& c, const float* x, float* z, float* y, std::size_t n) {
    forward_into(c, x, c.training && kernels::derivative_reads_input<function> ? z : nullptr, y, n);
  }
  /// The same, storing z whenever it is not null.
  static void forward_into(const Context& c, const float* x, float* z, float* y, std::size_t n) {
    kernels::linear_forward<function, In, Out>(c.arch, c.params + linear::weight_offset,
                                               linear::has_bias ? c.params + linear::bias_offset : nullptr, x, z, y,
                                               n, c.pool);
  }

  /// dy: gradient of the activation's output; dz: room for the Linear's output
  /// gradient; dx: the input gradient, or null.
  static void backward(const Context& c, const float* x, const float* z, const float* y, const float* dy, float* dz,
                       float* dx, std::size_t n) {
    backward_through(c, x, z, y, dy, dz, dx, n, kernels::ActivationGradient<kernels::NoActivation>{});
  }

  /// The backward, with dx stored times `before`, the derivative of the
  /// activation ending the fused pair before this one (so dx is that pair's dz).
  template <class GradientOf>
  static void backward_through(const Context& c, const float* x, const float* z, const float* y, const float* dy,
                               float* dz, float* dx, std::size_t n, kernels::ActivationGradient<GradientOf> before) {
    kernels::dispatch(c.arch, [&](auto tag) {
      kernels::activation_backward<function, Out>(tag, z, y, dy, dz, n,
                                                  trains_bias(c) ? c.grads + linear::bias_offset : nullptr);
      weight_and_input_backward(tag, c, x, dz, dx, n, before);
    });
  }

  /// The backward from dz, the Linear's output gradient, when the Linear after
  /// the pair has already multiplied its dx by the activation's derivative and
  /// summed the bias gradient from it (gradient() below).
  template <class GradientOf>
  static void backward_from_dz(const Context& c, const float* x, const float* dz, float* dx, std::size_t n,
                               kernels::ActivationGradient<GradientOf> before) {
    kernels::dispatch(c.arch, [&](auto tag) { weight_and_input_backward(tag, c, x, dz, dx, n, before); });
  }

  /// What the next Linear's input-gradient kernel is given to store this
  /// pair's dz instead of the activation's output gradient, and to sum the
  /// bias gradient from it: z, the Linear's output kept by the forward (when
  /// the derivative reads it), y, the activation's, and the Linear's bias
  /// gradient if it trains. `c` is the Linear's context.
  static kernels::ActivationGradient<function> gradient(const Context& c, const float* z, const float* y) {
    return {z, y, trains_bias(c) ? c.grads + linear::bias_offset : nullptr};
  }

 private:
  static bool trains_bias(const Context& c) { return linear::has_bias && c.requires_grad[linear::has_bias ? 1 : 0]; }

  template <class Tag, class GradientOf>
  static void weight_and_input_backward(Tag tag, const Context& c, const float* x, const float* dz, float* dx,
                                        std::size_t n, kernels::ActivationGradient<GradientOf> before) {
    if (c.requires_grad[0])
      kernels::linear_backward_weight<In, Out>(tag, x, dz, c.grads + linear::weight_offset, n, c.pool);
    if (dx)
      kernels::linear_backward_input<In, Out, GradientOf>(tag, c.params + linear::weight_offset, dz, dx, n, c.pool,
                                                          before);
  }
};

}  // namespace ctnn::detail

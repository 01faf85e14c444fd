// The narrow-network path of an evaluation forward, as a type-level pass:
// LaneProgram<L> runs a block of samples (kernels::block_lanes: a few vectors'
// lanes, 64 samples on AVX-512) through layer L with the samples in the lanes,
// feature-major: feature k of the whole block is a row of vectors. A Linear is then b[j] + Σ_k w[j, k]·x[k] over
// whole vectors, each w[j, k] broadcast into its FMA, with nothing summed
// across lanes and no GEMM packing; this is what wins where every layer is
// narrow (W1's 3 -> 16 -> 16 -> 1), where the batch GEMM's register tiles are
// mostly empty. The pass mirrors the layer tree:
//   Linear                 kernels::linear_lanes, w in PyTorch's layout
//   Linear + activation    one kernel with the activation on its result,
//                          where the pipeline's fusion pass pairs them
//   activation             its vector form on every feature
//   Dropout                nothing (evaluation)
//   Sequential, ModuleList and the other pipelines (compose/chain.hpp)
//                          their children in order, hidden blocks on the stack
//   Residual               its body, with the skip connection's add in the
//                          epilogue of the body's last kernel
//   Named, Functional      the layer they wrap
//   custom modules         their traced graph, node by node (module/lanes.hpp)
// Any other layer (norms, softmax, ProjectedResidual, Heads) makes the whole
// network ineligible: it runs the batch kernels instead.
//
// Contract of run(tag, c, x, skip, y): x is a block [L::in_features][block]
// (block = kernels::block_lanes(tag) samples), y one of [L::out_features][block],
// distinct from x; y = L(x) + skip, where skip (a block like y, or null) is what
// an enclosing Residual adds; c is L's Context.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/fusion.hpp"
#include "ctnn/compose/residual.hpp"
#include "ctnn/core/context.hpp"
#include "ctnn/kernels/activation_forms.hpp"
#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"
#include "ctnn/layers/dropout.hpp"

namespace ctnn::detail {

template <class L>
inline constexpr bool is_dropout_layer = false;
template <class P, std::size_t W>
inline constexpr bool is_dropout_layer<DropoutLayer<P, W>> = true;

enum class LaneKind { linear, activation, dropout, residual, chain, module, unsupported };

template <class L>
constexpr LaneKind lane_kind() {
  using U = unwrapped_t<L>;
  if constexpr (is_linear<U>) return LaneKind::linear;
  else if constexpr (is_elementwise<U>) return LaneKind::activation;
  else if constexpr (is_dropout_layer<U>) return LaneKind::dropout;
  else if constexpr (is_residual_layer<U>) return LaneKind::residual;  // (before chain: Residual is a Chain)
  else if constexpr (ChainLayer<U>) return LaneKind::chain;
  else if constexpr (requires { typename U::module_type; U::graph; }) return LaneKind::module;
  else return LaneKind::unsupported;
}

template <class L, LaneKind = lane_kind<L>()>
struct LaneProgram {
  static constexpr bool supported = false;
  static constexpr std::size_t widest = 0;
};

template <class L>
struct LaneProgram<L, LaneKind::linear> {
  using linear = unwrapped_t<L>;
  static constexpr std::size_t In = linear::in_features, Out = linear::out_features;
  static constexpr bool supported = true;
  static constexpr std::size_t widest = std::max(In, Out);
  template <class Tag, class Act = kernels::NoActivation>
  static void run(Tag tag, const Context& c, const float* x, const float* skip, float* y) {
    kernels::linear_lanes<Act, In, Out>(tag, c.params + linear::weight_offset,
                                        linear::has_bias ? c.params + linear::bias_offset : nullptr, x, skip, y);
  }
};

template <class L>
struct LaneProgram<L, LaneKind::activation> {
  using layer = unwrapped_t<L>;
  static constexpr bool supported = true;
  static constexpr std::size_t widest = layer::in_features;
  template <class Tag>
  static void run(Tag tag, const Context&, const float* x, const float* skip, float* y) {
    kernels::activation_lanes<typename layer::function, layer::in_features>(tag, x, skip, y);
  }
};

/// Dropout in evaluation passes its input through.
template <class L>
struct LaneProgram<L, LaneKind::dropout> {
  static constexpr bool supported = true;
  static constexpr std::size_t widest = L::in_features;
  template <class Tag>
  static void run(Tag tag, const Context&, const float* x, const float* skip, float* y) {
    constexpr std::size_t count = L::in_features * kernels::block_lanes(Tag{});
    if (skip) kernels::add(tag, x, skip, y, count);
    else std::copy_n(x, count, y);
  }
};

/// A pipeline: its children in order (fused pairs as one kernel). Hidden
/// blocks alternate between two arrays on the stack: each kernel reads the
/// array the one before it wrote and writes the other.
template <class L>
struct LaneProgram<L, LaneKind::chain> {
  using chain = unwrapped_t<L>;
  using children = typename chain::children;
  static constexpr std::size_t K = chain::K;
  static constexpr bool supported = [] {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (LaneProgram<type_at<I, children>>::supported && ...);
    }(std::make_index_sequence<K>{});
  }();
  static constexpr std::size_t widest = [] {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return std::max({LaneProgram<type_at<I, children>>::widest...});
    }(std::make_index_sequence<K>{});
  }();
  static constexpr std::size_t hidden_widest = [] {
    std::size_t w = 1;
    for (std::size_t i = 0; i + 1 < K; ++i) w = std::max(w, chain::out_widths[i]);
    return w;
  }();

  // slot[i]: the array that holds child i's output (a fused pair's, for both).
  static constexpr auto slot = [] {
    std::array<std::size_t, K> s{};
    std::size_t next = 0;
    for (std::size_t i = 0; i < K; ++i) {
      if (chain::fusion[i] == FusionRole::fused_tail) {
        s[i] = s[i - 1];
      } else {
        s[i] = next;
        next ^= 1;
      }
    }
    return s;
  }();

  template <class Tag>
  static void run(Tag tag, const Context& c, const float* x, const float* skip, float* y) {
    constexpr std::size_t block = kernels::block_lanes(Tag{});
    alignas(64) float hidden[2][hidden_widest * block];
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const float* in = I == 0 ? x : hidden[slot[I == 0 ? 0 : I - 1]];
            if constexpr (chain::fusion[I] == FusionRole::fused_head) {
              using act = typename unwrapped_t<type_at<I + 1, children>>::function;
              float* out = I + 2 == K ? y : hidden[slot[I]];
              LaneProgram<type_at<I, children>>::template run<Tag, act>(
                  tag, chain::template child_context<I>(c), in, I + 2 == K ? skip : nullptr, out);
            } else if constexpr (chain::fusion[I] == FusionRole::fused_tail) {
              // ran with the Linear before it
            } else {
              float* out = I + 1 == K ? y : hidden[slot[I]];
              LaneProgram<type_at<I, children>>::run(tag, chain::template child_context<I>(c), in,
                                                     I + 1 == K ? skip : nullptr, out);
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }
};

/// Residual: the body's block with x added by its last kernel (the skip
/// connection); an enclosing Residual's skip is added after.
template <class L>
struct LaneProgram<L, LaneKind::residual> {
  using residual = unwrapped_t<L>;
  using body = typename residual::body;
  static constexpr std::size_t W = residual::in_features;
  static constexpr bool supported = LaneProgram<body>::supported;
  static constexpr std::size_t widest = LaneProgram<body>::widest;
  template <class Tag>
  static void run(Tag tag, const Context& c, const float* x, const float* skip, float* y) {
    LaneProgram<body>::run(tag, c, x, x, y);
    if (skip) kernels::add(tag, y, skip, y, W * kernels::block_lanes(Tag{}));
  }
};

/// The widest layer (inputs or outputs) up to which the lanes path is taken:
/// past it, a layer's weights no longer fit the registers' reach and the
/// batch GEMM, which reuses each loaded weight vector across a register tile
/// of rows, is faster (bench/'s W2, 64 wide: see docs/kernels.md).
inline constexpr std::size_t lanes_widest_max = 64;

/// True if an evaluation forward of L runs in lanes (for batches of at least
/// one block).
template <class L>
inline constexpr bool runs_in_lanes = LaneProgram<L>::supported && LaneProgram<L>::widest <= lanes_widest_max;

/// y[n, out] = L(x[n, in]) in evaluation mode, one block of rows at a time,
/// the last block padded with zero rows. Allocates nothing.
template <class L, class Tag>
void forward_in_lanes(Tag tag, const Context& c, const float* x, float* y, std::size_t n) {
  constexpr std::size_t block = kernels::block_lanes(Tag{});
  constexpr std::size_t In = L::in_features, Out = L::out_features;
  alignas(64) float xT[In * block];
  alignas(64) float yT[Out * block];
  for (std::size_t r = 0; r < n; r += block) {
    const std::size_t t = std::min(block, n - r);
    kernels::rows_to_lanes<In>(tag, x + r * In, t, xT);
    LaneProgram<L>::run(tag, c, xT, nullptr, yT);
    kernels::lanes_to_rows<Out>(tag, yT, t, y + r * Out);
  }
}

}  // namespace ctnn::detail

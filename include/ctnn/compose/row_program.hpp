// The batch-1 path as a type-level pass: RowProgram<L> runs one row through
// layer L with every Linear's weights packed in the order the row kernel reads
// them (kernels/row_layout.hpp), and the pipeline's intermediate rows on the
// stack. It is what InferenceModel (core/inference_model.hpp) runs for one
// sample. The pass mirrors the layer tree:
//   Linear                 the row kernel, packed weights
//   Linear + activation    one row kernel with the activation on its result,
//                          where the pipeline's fusion pass pairs them
//   Sequential, ModuleList and the other pipelines (compose/chain.hpp)
//                          their children in order, hidden rows on the stack
//   Residual               its body, then the skip connection's add
//   Named, Functional      the layer they wrap
//   anything else          the layer's own forward on one row, with the
//                          parameters in PyTorch's layout (norms, dropout,
//                          softmax, custom modules, ProjectedResidual)
// Every run() takes the architecture's xsimd tag, so one dispatch at the top
// chooses the kernels of the whole row.
//
// Contract of run(tag, c, packed, x, y, ws): x holds L::in_features floats
// (nothing past them is read); y has room for row_padded(L::out_features)
// floats and receives the first L::out_features (the kernels may also write
// the padding); c is L's Context over the PyTorch-layout parameters; packed is
// L's slice of the packed weights; ws is L's workspace for one row.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/fusion.hpp"
#include "ctnn/compose/residual.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/kernels/activation_forms.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"
#include "ctnn/kernels/row_layout.hpp"

namespace ctnn::detail {

enum class RowKind { linear, residual, chain, own_forward };

template <class L>
constexpr RowKind row_kind() {
  using U = unwrapped_t<L>;
  if constexpr (is_linear<U>) return RowKind::linear;
  else if constexpr (is_residual_layer<U>) return RowKind::residual;
  else if constexpr (ChainLayer<U>) return RowKind::chain;
  else return RowKind::own_forward;
}

template <class L, RowKind = row_kind<L>()>
struct RowProgram;

/// Any other layer: its own forward on one row.
template <class L>
struct RowProgram<L, RowKind::own_forward> {
  static constexpr std::size_t packed_floats = 0;
  static void pack(const float*, float*) {}
  template <class Tag>
  static void run(Tag, const Context& c, const float*, const float* x, float* y, float* ws) {
    L::forward(c, x, y, 1, ws);
  }
};

/// A Linear, with the activation that follows it when the pipeline fuses the
/// two (Act; NoActivation otherwise).
template <class L>
struct RowProgram<L, RowKind::linear> {
  using linear = unwrapped_t<L>;
  static constexpr std::size_t In = linear::in_features, Out = linear::out_features;
  static constexpr std::size_t packed_floats = kernels::row_packed_floats<In, Out>;
  static void pack(const float* params, float* packed) {
    kernels::pack_linear_row<In, Out>(params + linear::weight_offset,
                                      linear::has_bias ? params + linear::bias_offset : nullptr, packed);
  }
  template <class Tag, class Act = kernels::NoActivation>
  static void run(Tag tag, const Context&, const float* packed, const float* x, float* y, float*) {
    kernels::linear_row<Act, In, Out>(tag, packed, x, y);
  }
};

/// A pipeline: its children in order (fused pairs as one row kernel), each
/// hidden row in a padded array on the stack.
template <class L>
struct RowProgram<L, RowKind::chain> {
  using chain = unwrapped_t<L>;
  using children = typename chain::children;
  static constexpr std::size_t K = chain::K;

  static constexpr auto packed_offsets = [] {
    std::array<std::size_t, K + 1> off{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((off[I + 1] = off[I] + RowProgram<type_at<I, children>>::packed_floats), ...);
    }(std::make_index_sequence<K>{});
    return off;
  }();
  static constexpr std::size_t packed_floats = packed_offsets[K];

  // Hidden rows: child I < K - 1 writes at hidden_offsets[I].
  static constexpr auto hidden_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + kernels::row_padded(chain::out_widths[i - 1]);
    return off;
  }();
  static constexpr std::size_t hidden_floats = hidden_offsets[K - 1];

  static void pack(const float* params, float* packed) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (RowProgram<type_at<I, children>>::pack(params + chain::placements[I].param_offset, packed + packed_offsets[I]),
       ...);
    }(std::make_index_sequence<K>{});
  }

  template <class Tag>
  static void run(Tag tag, const Context& c, const float* packed, const float* x, float* y, float* ws) {
    alignas(64) float hidden[hidden_floats > 0 ? hidden_floats : 1];
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            const float* in = I == 0 ? x : hidden + hidden_offsets[I == 0 ? 0 : I - 1];
            if constexpr (chain::fusion[I] == FusionRole::fused_head) {
              using act = typename unwrapped_t<type_at<I + 1, children>>::function;
              float* out = I + 1 == K - 1 ? y : hidden + hidden_offsets[I + 1 < K - 1 ? I + 1 : 0];
              RowProgram<type_at<I, children>>::template run<Tag, act>(tag, c, packed + packed_offsets[I], in, out,
                                                                       nullptr);
            } else if constexpr (chain::fusion[I] == FusionRole::fused_tail) {
              // ran with the Linear before it
            } else {
              float* out = I == K - 1 ? y : hidden + hidden_offsets[I < K - 1 ? I : 0];
              RowProgram<type_at<I, children>>::run(tag, chain::template child_context<I>(c),
                                                    packed + packed_offsets[I], in, out,
                                                    ws + chain::workspace_offsets[I]);
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }
};

/// Residual: the body's row, then x added (the skip connection).
template <class L>
struct RowProgram<L, RowKind::residual> {
  using residual = unwrapped_t<L>;
  using body = typename residual::body;
  static constexpr std::size_t W = residual::in_features;
  static constexpr std::size_t packed_floats = RowProgram<body>::packed_floats;
  static void pack(const float* params, float* packed) { RowProgram<body>::pack(params, packed); }
  template <class Tag>
  static void run(Tag tag, const Context& c, const float* packed, const float* x, float* y, float* ws) {
    alignas(64) float body_out[kernels::row_padded(W)];
    RowProgram<body>::run(tag, c, packed, x, body_out, ws);
    kernels::add(tag, body_out, x, y, W);
  }
};

}  // namespace ctnn::detail

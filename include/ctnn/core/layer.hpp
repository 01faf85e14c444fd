// The layer contract. Two kinds of types meet here:
//
//  * A *spec* is what a user writes in a pipeline: `Linear<3, 16>`, `ReLU`,
//    `Sequential<...>`. Some specs have a fixed input width (Linear), others take
//    the width of whatever feeds them (ReLU, Dropout). A spec states
//      in_features                 fixed input width, or any_width
//      out_width(in)               its output width when fed `in` features
//      template <W> using bind     the concrete layer it becomes when fed W features
//
//  * A *layer* (a bound spec) knows every size. It states, all as compile-time
//    constants:
//      in_features, out_features   widths of one row
//      num_params                  floats in the parameter (and gradient) buffer
//      num_buffers, num_counters   floats and int64s of non-trainable state
//      params, buffers             std::array<TensorSpec>: names, shapes, offsets
//      workspace_floats            floats per row that forward keeps for backward
//                                  (intermediate outputs, masks, statistics)
//      grad_floats                 floats per row of scratch that backward needs
//      children                    type_list of child layers (empty for leaves)
//    and provides
//      forward(ctx, x, y, n, ws)               y[n, out] from x[n, in]
//      backward(ctx, x, y, dy, dx, n, ws, s)   accumulates parameter gradients,
//                                              writes dx[n, in] unless dx == nullptr
//      print(os, indent)                       PyTorch's repr of the module
//    `ws` is the layer's slice of n * workspace_floats floats; backward receives
//    the same x, y and ws that forward saw.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <ostream>

#include "ctnn/core/context.hpp"
#include "ctnn/core/tensor_spec.hpp"
#include "ctnn/core/type_list.hpp"

namespace ctnn {

/// in_features of a spec that adopts the width of its input (activations, ...).
inline constexpr std::size_t any_width = 0;

template <class S>
concept LayerSpec = requires(std::size_t w) {
  { S::in_features } -> std::convertible_to<std::size_t>;
  { S::out_width(w) } -> std::convertible_to<std::size_t>;
};

template <class L>
concept Layer = requires(const Context& ctx, const float* x, float* y, std::size_t n, float* ws,
                         std::ostream& os) {
  { L::in_features } -> std::convertible_to<std::size_t>;
  { L::out_features } -> std::convertible_to<std::size_t>;
  { L::num_params } -> std::convertible_to<std::size_t>;
  { L::num_buffers } -> std::convertible_to<std::size_t>;
  { L::num_counters } -> std::convertible_to<std::size_t>;
  { L::workspace_floats } -> std::convertible_to<std::size_t>;
  { L::grad_floats } -> std::convertible_to<std::size_t>;
  L::params;
  L::buffers;
  typename L::children;
  L::forward(ctx, x, y, n, ws);
  L::backward(ctx, x, x, x, y, n, ws, y);
  L::print(os, 0);
};

/// The layer a spec becomes when it is fed `Width` features.
template <LayerSpec S, std::size_t Width>
using bind_t = typename S::template bind<Width>;

/// Where a combinator puts one child: its label in dotted names and the start of
/// its slice of each flat storage. See core/children.hpp.
struct ChildPlacement {
  static_name label;        // "fc1", "2", ...; empty for functional children
  bool registered = true;   // functional children (a ModuleList MLP's activations) are not
  std::size_t param_offset = 0, buffer_offset = 0, counter_offset = 0, tensor_offset = 0;
};

/// Leaves share these defaults: no children, no state, nothing kept for backward.
struct LeafDefaults {
  static constexpr std::size_t num_params = 0;
  static constexpr std::size_t num_buffers = 0;
  static constexpr std::size_t num_counters = 0;
  static constexpr std::size_t workspace_floats = 0;
  static constexpr std::size_t grad_floats = 0;
  static constexpr std::array<TensorSpec, 0> params{};
  static constexpr std::array<TensorSpec, 0> buffers{};
  static constexpr bool multi_output = false;
  using children = type_list<>;
  static constexpr std::array<ChildPlacement, 0> placements{};
};

/// A spec with a fixed width that is its own layer (Linear, LayerNorm, ...).
template <class Self>
struct FixedSpec {
  static constexpr std::size_t out_width(std::size_t) { return Self::out_features; }
  template <std::size_t W>
  using bind = Self;
};

namespace detail {
inline void indent_to(std::ostream& os, int indent) {
  for (int i = 0; i < indent; ++i) os << ' ';
}
}  // namespace detail

}  // namespace ctnn

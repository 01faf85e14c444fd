// Residual<Body...>: y = x + body(x), the skip connection of a ResNet block.
// ProjectedResidual<Projection, Body>: y = projection(x) + body(x), for a body
// that changes the width (the projection is usually Linear<In, Out, false>).
#pragma once

#include <algorithm>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/sequential.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
template <std::size_t InputFeatures, std::size_t BodyOutputFeatures>
struct residual_width_check {
  static_assert(InputFeatures == BodyOutputFeatures,
                "ctnn: Residual<Body...> adds its input to the body's output, so the body must keep "
                "the width (InputFeatures -> BodyOutputFeatures in this check's template arguments); "
                "use ProjectedResidual<Linear<In, Out, false>, Body> when the width changes");
  static constexpr bool ok = true;
};
template <std::size_t ProjectionFeatures, std::size_t BodyFeatures>
struct projected_residual_width_check {
  static_assert(ProjectionFeatures == BodyFeatures,
                "ctnn: ProjectedResidual<Projection, Body> adds the projection's output to the body's, so both must "
                "produce the same number of features (ProjectionFeatures, BodyFeatures in this check's arguments)");
  static constexpr bool ok = true;
};
template <std::size_t ExpectsFeatures, std::size_t GetsFeatures, class Child>
struct projected_residual_input_check {
  static_assert(ExpectsFeatures == any_width || ExpectsFeatures == GetsFeatures,
                "ctnn: a child of ProjectedResidual expects a different number of input features than the "
                "ProjectedResidual gets (ExpectsFeatures, GetsFeatures, Child in this check's arguments)");
  static constexpr bool ok = true;
};
}  // namespace detail

template <std::size_t W, class... Specs>
struct ResidualLayer : detail::Chain<typename detail::bind_chain<W, Specs...>::type> {
  using body = detail::Chain<typename detail::bind_chain<W, Specs...>::type>;
  static constexpr std::string_view kind = "Residual";
  static constexpr bool widths_checked = detail::bind_chain<W, Specs...>::widths_match;
  static constexpr bool width_kept = detail::residual_width_check<W, body::out_features>::ok;
  static_assert(widths_checked && width_kept);

  static constexpr std::size_t in_features = W;
  static constexpr std::size_t out_features = W;
  static constexpr bool multi_output = false;
  // The body's own output is kept: its last layer's backward may need it (Tanh).
  static constexpr std::size_t body_output_offset = body::workspace_floats;
  static constexpr std::size_t workspace_floats = body::workspace_floats + W;

  template <std::size_t>
  using bind = ResidualLayer;

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    NoHooks none;
    forward(c, x, y, n, ws, none, {});
  }
  template <class Hooks>
  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws, Hooks& hooks,
                      std::string_view name) {
    float* body_out = ws + n * body_output_offset;
    body::forward(c, x, body_out, n, ws, hooks, name);
    for (std::size_t i = 0; i < n * W; ++i) y[i] = body_out[i] + x[i];
  }

  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch) {
    NoHooks none;
    backward(c, x, y, dy, dx, n, ws, scratch, none, {});
  }
  template <class Hooks>
  static void backward(const Context& c, const float* x, const float*, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch, Hooks& hooks, std::string_view name) {
    body::backward(c, x, ws + n * body_output_offset, dy, dx, n, ws, scratch, hooks, name);
    if (dx)
      for (std::size_t i = 0; i < n * W; ++i) dx[i] += dy[i];
  }

  /// Whether the fused pair before this Residual can have its dz stored by
  /// the body's first kernel (a Linear, alone or heading a pair), which then
  /// adds the skip connection's gradient and multiplies by the pair's
  /// derivative as it stores dx (compose/chain.hpp, derivative_taken).
  static constexpr bool takes_derivative_before = [] {
    using first = detail::unwrapped_t<type_at<0, typename body::children>>;
    using detail::FusionRole;
    return body::fusion[0] == FusionRole::fused_head ||
           (body::fusion[0] == FusionRole::alone && is_linear<first>);
  }();
  /// The backward without hooks, dx being the dz of the pair before (null
  /// when no gradient goes on): (the body's dx + dy) ⊙ `before`'s derivative,
  /// the same bits as the body's dx, the skip add and the pair's own pass one
  /// after another. (A body never starts with a Residual, so `before` has no
  /// plus of its own yet.)
  template <class GradientOf>
  static void backward_through(const Context& c, const float* x, const float* dy, float* dx, std::size_t n,
                               float* ws, float* scratch, kernels::ActivationGradient<GradientOf> before) {
    before.plus = dy;
    NoHooks none;
    body::backward(c, x, ws + n * body_output_offset, dy, dx, n, ws, scratch, none, {}, before);
  }

  static void print(std::ostream& os, int indent) { detail::print_container<ResidualLayer>(os, indent, "Residual"); }
};

namespace detail {
/// True for a bound Residual (a Chain too: test for it before ChainLayer).
template <class L>
inline constexpr bool is_residual_layer = false;
template <std::size_t W, class... Specs>
inline constexpr bool is_residual_layer<ResidualLayer<W, Specs...>> = true;
}  // namespace detail

template <LayerSpec... Specs>
struct Residual
    : detail::pipeline_facts<detail::first_fixed_width<Specs...>(),
                             ResidualLayer<detail::first_fixed_width<Specs...>(), Specs...>> {
  static_assert(sizeof...(Specs) > 0, "ctnn: Residual<> needs a body");
  static constexpr std::size_t in_features = detail::first_fixed_width<Specs...>();
  static constexpr std::size_t out_width(std::size_t in) { return in; }
  template <std::size_t W>
  using bind = ResidualLayer<W, Specs...>;
};

template <std::size_t W, class ProjectionSpec, class BodySpec>
struct ProjectedResidualLayer {
  using projection = bind_t<ProjectionSpec, W>;
  using body = bind_t<BodySpec, W>;
  static_assert(detail::projected_residual_input_check<ProjectionSpec::in_features, W, ProjectionSpec>::ok &&
                detail::projected_residual_input_check<BodySpec::in_features, W, BodySpec>::ok);
  static_assert(detail::projected_residual_width_check<projection::out_features, body::out_features>::ok);
  using children = type_list<projection, body>;
  static constexpr auto placements = detail::place_in_sequence<projection, body>();
  static constexpr std::string_view kind = "ProjectedResidual";
  static constexpr std::size_t in_features = W;
  static constexpr std::size_t out_features = body::out_features;
  static constexpr bool multi_output = false;
  static constexpr std::size_t num_params = projection::num_params + body::num_params;
  static constexpr std::size_t num_buffers = projection::num_buffers + body::num_buffers;
  static constexpr std::size_t num_counters = projection::num_counters + body::num_counters;
  static constexpr auto params = detail::children_specs<children>::template gather<
      false, detail::children_specs<children>::num_params>(placements);
  static constexpr auto buffers = detail::children_specs<children>::template gather<
      true, detail::children_specs<children>::num_buffers>(placements);
  static constexpr auto duplicate = detail::first_duplicate_label(placements);
  static_assert(duplicate[0] == 2, "ctnn: ProjectedResidual's two children have the same name");

  // Workspace of one row: [projection output][body output][projection ws][body ws].
  static constexpr std::size_t projection_ws = 2 * out_features;
  static constexpr std::size_t body_ws = projection_ws + projection::workspace_floats;
  static constexpr std::size_t workspace_floats = body_ws + body::workspace_floats;
  // Scratch of one row: [the body's input gradient][the children's scratch].
  static constexpr std::size_t grad_floats = W + std::max(projection::grad_floats, body::grad_floats);

  template <std::size_t>
  using bind = ProjectedResidualLayer;

  static Context child_context(const Context& c, std::size_t i) {
    const ChildPlacement& p = placements[i];
    return c.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset);
  }

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    NoHooks none;
    forward(c, x, y, n, ws, none, {});
  }
  template <class Hooks>
  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws, Hooks& hooks,
                      std::string_view name) {
    float* p_out = ws;
    float* b_out = ws + n * out_features;
    detail::forward_module<projection>(child_context(c, 0), x, p_out, n, ws + n * projection_ws, hooks,
                                       detail::child_name<Hooks>(name, placements[0].label.view()));
    detail::forward_module<body>(child_context(c, 1), x, b_out, n, ws + n * body_ws, hooks,
                                 detail::child_name<Hooks>(name, placements[1].label.view()));
    for (std::size_t i = 0; i < n * out_features; ++i) y[i] = p_out[i] + b_out[i];
  }

  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch) {
    NoHooks none;
    backward(c, x, y, dy, dx, n, ws, scratch, none, {});
  }
  template <class Hooks>
  static void backward(const Context& c, const float* x, const float*, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch, Hooks& hooks, std::string_view name) {
    float* body_dx = dx ? scratch : nullptr;
    float* child_scratch = scratch + n * W;
    detail::backward_module<projection>(child_context(c, 0), x, ws, dy, dx, n, ws + n * projection_ws,
                                        child_scratch, hooks, detail::child_name<Hooks>(name, placements[0].label.view()));
    detail::backward_module<body>(child_context(c, 1), x, ws + n * out_features, dy, body_dx, n, ws + n * body_ws,
                                  child_scratch, hooks, detail::child_name<Hooks>(name, placements[1].label.view()));
    if (dx)
      for (std::size_t i = 0; i < n * W; ++i) dx[i] += body_dx[i];
  }

  static void print(std::ostream& os, int indent) {
    detail::print_container<ProjectedResidualLayer>(os, indent, "ProjectedResidual");
  }
};

template <LayerSpec ProjectionSpec, LayerSpec BodySpec>
struct ProjectedResidual
    : detail::pipeline_facts<detail::first_fixed_width<ProjectionSpec, BodySpec>(),
                             ProjectedResidualLayer<detail::first_fixed_width<ProjectionSpec, BodySpec>(),
                                                    ProjectionSpec, BodySpec>> {
  static constexpr std::size_t in_features = detail::first_fixed_width<ProjectionSpec, BodySpec>();
  static constexpr std::size_t out_width(std::size_t in) { return BodySpec::out_width(in); }
  template <std::size_t W>
  using bind = ProjectedResidualLayer<W, ProjectionSpec, BodySpec>;
};

}  // namespace ctnn

// Custom modules: PyTorch's "subclass nn.Module" pattern as a struct whose
// members are layers and whose forward is ordinary C++.
//
//   struct ResidualMLP {
//     CTNN_MODULE(ResidualMLP,
//       (Linear<3, 16>, fc1),
//       (Linear<16, 16>, fc2),
//       (Linear<16, 1>, head),
//       (ReLU, act));
//     constexpr auto forward(auto x) const {
//       auto h = act(fc1(x));
//       h = act(fc2(h)) + h;
//       return head(h);
//     }
//   };
//   Model<ResidualMLP> model;   // names fc1.weight ... head.bias, as PyTorch's
//
// The member names become the state_dict keys. `forward` must be constexpr:
// the compiler runs it once on symbolic values (module/symbolic.hpp) and the
// resulting graph is a constant from which Module's forward, backward and
// workspace layout are generated; widths are checked while it runs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ctnn/compose/named.hpp"
#include "ctnn/core/children.hpp"
#include "ctnn/core/hooks.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/submodule.hpp"
#include "ctnn/module/lanes.hpp"
#include "ctnn/module/symbolic.hpp"

namespace ctnn {

namespace detail {

/// The layer whose parameters a member owns: width-agnostic members (ReLU)
/// own none, so any width describes them.
template <class Spec>
using member_layout_t = bind_t<Spec, (Spec::in_features == any_width ? 1 : Spec::in_features)>;

template <fixed_string Member, std::size_t ExpectsFeatures, std::size_t GetsFeatures>
struct member_input_width_check {
  static_assert(ExpectsFeatures == GetsFeatures,
                "ctnn: a member called in a custom module's forward gets a different number of features than it "
                "expects (Member, ExpectsFeatures, GetsFeatures in this check's arguments)");
  static constexpr bool ok = true;
};

}  // namespace detail

/// A member of a custom module: the layer spec and its attribute name.
template <fixed_string Name, LayerSpec Spec>
struct Member {
  using spec = Spec;
  static constexpr auto name = Name;

  template <std::size_t W, class P>
  constexpr auto operator()(Sym<W, P> x) const {
    constexpr std::size_t expects = Spec::in_features == any_width ? W : Spec::in_features;
    static_assert(detail::member_input_width_check<Name, expects, W>::ok);
    static_assert(!bind_t<Spec, expects>::multi_output,
                  "ctnn: a member with several named outputs (Heads) is called one head at a time: "
                  "heads.get<\"name\">(h)");
    return detail::record_call<bind_t<Spec, expects>>(x, Name.view());
  }

  /// One named child of this member, on its own: `heads.get<"classify">(h)`,
  /// PyTorch's `self.heads["classify"](h)`.
  template <fixed_string Child, std::size_t W>
  constexpr auto get(Sym<W> x) const {
    using layout = detail::member_layout_t<Spec>;
    constexpr std::size_t i = detail::child_index<layout>(Child.view());
    static_assert(detail::unknown_child_name_check<i, layout::placements.size(), layout>::ok);
    using L = type_at<i, typename layout::children>;
    static_assert(detail::member_input_width_check<Name, L::in_features, W>::ok);
    return detail::record_call<L>(Sym<L::in_features>{x.graph, x.id}, Name.view(), Child.view());
  }
};

/// What a model runs by default: the module's forward.
struct CallForward {
  template <class M, class X>
  constexpr auto operator()(const M& module, X x) const {
    return module.forward(x);
  }
};

namespace detail {

/// `module.forward<Task>(x)` for task selection at compile time.
template <fixed_string Task>
struct CallTask {
  template <class M, class X>
  constexpr auto operator()(const M& module, X x) const {
    return module.template forward<Task>(x);
  }
};

template <class M>
concept CustomModule = requires { typename M::ctnn_members; };

template <class M, std::size_t W, class Method>
consteval Graph trace() {
  Graph graph;
  Node input;
  input.width = W;
  const Sym<W> x{&graph, graph.add(input)};
  const M module{};
  const auto out = Method{}(module, x);
  using Out = std::remove_cvref_t<decltype(out)>;
  static_assert(is_sym<Out> || is_sym_outputs<Out>,
                "ctnn: a custom module's forward must return the result of its operations: one value, or "
                "outputs<\"a\", \"b\">(a, b)");
  if constexpr (is_sym<Out>) {
    graph.output = out.id;
  } else {
    for (std::size_t i = 0; i < out.ids.size(); ++i) {
      graph.outputs[i] = out.ids[i];
      graph.output_names[i] = out.names[i];
      for (std::size_t j = 0; j < i; ++j)
        if (out.names[j] == out.names[i]) throw "ctnn: two outputs of a forward have the same name";
    }
    graph.num_outputs = out.ids.size();
  }
  return graph;
}

template <class M, std::size_t W, class Method>
concept traceable_at_compile_time = requires { typename std::integral_constant<std::size_t, trace<M, W, Method>().count>; };

template <class M, std::size_t W, class Method>
struct forward_must_be_constexpr_check {
  static_assert(traceable_at_compile_time<M, W, Method>,
                "ctnn: a custom module's forward (and every method a model runs) must be declared constexpr, "
                "`constexpr auto forward(auto x) const`, so that the compiler can trace it into a graph");
  static constexpr bool ok = true;
};

template <class List>
struct members_info;
template <class... Ms>
struct members_info<type_list<Ms...>> {
  using layouts = type_list<NamedLayer<Ms::name, member_layout_t<typename Ms::spec>>...>;
  static constexpr std::size_t num_params = (std::size_t{0} + ... + member_layout_t<typename Ms::spec>::num_params);
  static constexpr std::size_t first_fixed_width = [] {
    std::size_t w = any_width;
    ((w = w != any_width ? w : Ms::spec::in_features), ...);
    return w;
  }();
};

template <class M>
constexpr std::size_t module_in_features() {
  if constexpr (requires { M::input_features; }) return M::input_features;
  else return members_info<typename M::ctnn_members>::first_fixed_width;
}

}  // namespace detail

/// The layer a custom module M becomes when fed W features (running Method,
/// by default its forward).
template <class M, std::size_t W, class Method = CallForward>
struct ModuleLayer {
  using module_type = M;
  using info = detail::members_info<typename M::ctnn_members>;
  using children = typename info::layouts;
  static constexpr auto placements = []<class... Ls>(type_list<Ls...>) {
    return detail::place_in_sequence<Ls...>();
  }(children{});

  // A static_assert, not a static member: a member's initializer is only
  // instantiated when something reads it, and the check must always run.
  static_assert(detail::forward_must_be_constexpr_check<M, W, Method>::ok);
  // When the trace fails, a graph of just the input keeps the rest of the
  // class well-formed, so the check above is the only error printed.
  static constexpr detail::Graph graph = [] {
    if constexpr (detail::traceable_at_compile_time<M, W, Method>) {
      return detail::trace<M, W, Method>();
    } else {
      detail::Graph input_only;
      detail::Node input;
      input.width = W;
      input_only.add(input);
      return input_only;
    }
  }();
  static constexpr std::size_t N = graph.count;

  static constexpr std::string_view kind = M::ctnn_kind;
  static constexpr std::size_t in_features = W;

  // Named outputs (outputs<"a", "b">(...)) are laid out as Heads' are: one
  // block of rows × width per output, in order.
  static constexpr bool multi_output = graph.num_outputs > 0;
  static constexpr std::size_t K = multi_output ? graph.num_outputs : 1;
  static constexpr auto result_nodes = [] {
    std::array<std::size_t, K> r{};
    for (std::size_t h = 0; h < K; ++h) r[h] = multi_output ? graph.outputs[h] : graph.output;
    return r;
  }();
  static constexpr auto head_widths = [] {
    std::array<std::size_t, K> w{};
    for (std::size_t h = 0; h < K; ++h) w[h] = graph.nodes[result_nodes[h]].width;
    return w;
  }();
  static constexpr auto head_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t h = 1; h < K; ++h) off[h] = off[h - 1] + head_widths[h - 1];
    return off;
  }();
  static constexpr std::size_t out_features = head_offsets[K - 1] + head_widths[K - 1];
  static constexpr std::size_t index_of(std::string_view name) {
    for (std::size_t h = 0; h < graph.num_outputs; ++h)
      if (graph.output_names[h] == name) return h;
    return K;
  }
  static constexpr std::size_t num_params = []<class... Ls>(type_list<Ls...>) {
    return (std::size_t{0} + ... + Ls::num_params);
  }(children{});
  static constexpr std::size_t num_buffers = []<class... Ls>(type_list<Ls...>) {
    return (std::size_t{0} + ... + Ls::num_buffers);
  }(children{});
  static constexpr std::size_t num_counters = []<class... Ls>(type_list<Ls...>) {
    return (std::size_t{0} + ... + Ls::num_counters);
  }(children{});
  static constexpr auto params = detail::children_specs<children>::template gather<
      false, detail::children_specs<children>::num_params>(placements);
  static constexpr auto buffers = detail::children_specs<children>::template gather<
      true, detail::children_specs<children>::num_buffers>(placements);

  /// How many nodes (and results) read each node's value.
  static constexpr auto consumers = [] {
    std::array<std::size_t, detail::max_graph_nodes> uses{};
    for (std::size_t i = 1; i < N; ++i)
      for (std::size_t k = 0; k < graph.nodes[i].num_inputs; ++k) ++uses[graph.nodes[i].inputs[k]];
    for (std::size_t h = 0; h < K; ++h) ++uses[result_nodes[h]];
    return uses;
  }();

  /// Which member (position in placements) each node calls; K for none.
  static constexpr auto node_member = [] {
    std::array<std::size_t, detail::max_graph_nodes> m{};
    for (std::size_t i = 0; i < N; ++i) {
      m[i] = placements.size();
      if (graph.nodes[i].kind == detail::NodeKind::call && !graph.nodes[i].member.empty())
        for (std::size_t k = 0; k < placements.size(); ++k)
          if (placements[k].label.view() == graph.nodes[i].member) m[i] = k;
    }
    return m;
  }();

  /// Which result each node is, when it is exactly one result (K: none): its
  /// value is then computed straight into that block of y, not copied there.
  static constexpr auto result_slot = [] {
    std::array<std::size_t, detail::max_graph_nodes> slot{};
    slot.fill(K);
    std::array<std::size_t, detail::max_graph_nodes> times{};
    for (std::size_t h = 0; h < K; ++h) ++times[result_nodes[h]];
    for (std::size_t h = 0; h < K; ++h)
      if (result_nodes[h] != 0 && times[result_nodes[h]] == 1) slot[result_nodes[h]] = h;
    return slot;
  }();

  // Workspace of one row: [output of every node but the input and the results
  // computed into y][each call's workspace]. Backward scratch of one row:
  // [gradient of every node but the input][the widest call's scratch].
  struct Layout {
    std::array<std::size_t, detail::max_graph_nodes> output{}, workspace{}, gradient{};
    std::size_t workspace_floats = 0, grad_floats = 0;
  };
  static constexpr Layout layout = [] {
    Layout l;
    std::size_t at = 0;
    for (std::size_t i = 1; i < N; ++i)
      if (result_slot[i] == K) l.output[i] = at, at += graph.nodes[i].width;
    for (std::size_t i = 1; i < N; ++i) l.workspace[i] = at, at += graph.nodes[i].workspace_floats;
    l.workspace_floats = at;
    std::size_t g = 0, widest_call = 0;
    for (std::size_t i = 1; i < N; ++i) l.gradient[i] = g, g += graph.nodes[i].width;
    for (std::size_t i = 1; i < N; ++i) widest_call = std::max(widest_call, graph.nodes[i].grad_floats);
    l.grad_floats = g + widest_call;
    return l;
  }();
  static constexpr std::size_t workspace_floats = layout.workspace_floats;
  static constexpr std::size_t grad_floats = layout.grad_floats;

  /// What the reverse pass does, decided from the graph alone.
  struct BackwardPlan {
    /// The node's value reaches a result (otherwise its backward is skipped:
    /// its parameters get no gradient, as in PyTorch).
    std::array<bool, detail::max_graph_nodes> live{};
    /// Per node, bit k: it writes (=) its input k's gradient rather than adding
    /// to it, being the first in the reverse pass to give that value one. No
    /// gradient buffer is zero-filled beforehand.
    std::array<unsigned, detail::max_graph_nodes> assign{};
    /// Some node, or dy, gives the value a gradient (for the input: else dx is zeroed).
    std::array<bool, detail::max_graph_nodes> written{};
    /// Where each gradient lives, per row: an offset in the scratch, or (when
    /// dy_block is not K) dy's block for that result, read in place.
    std::array<std::size_t, detail::max_graph_nodes> gradient_at{}, dy_block{};
    /// Per node, bit k: input k's gradient is this node's own buffer (or dy
    /// block), taken over rather than copied: `a + b` passes its gradient to
    /// a (or b) unchanged, and nothing reads it after the node has run.
    std::array<unsigned, detail::max_graph_nodes> passes_through{};
    /// A Linear fused with its activation whose output nothing else reads runs
    /// one fused backward (as pipelines do); the activation's node is skipped.
    std::array<bool, detail::max_graph_nodes> fused{}, runs_with_producer{};
    /// A Linear call (alone or heading a fused pair) whose input is the output
    /// of a fused pair that nothing else reads takes that activation's
    /// derivative into its input-gradient kernel: it stores the pair's dz and
    /// sums its bias gradient (compose/fusion.hpp); the pair's derivative is
    /// then taken, and the pair runs from dz.
    std::array<bool, detail::max_graph_nodes> takes_derivative{}, derivative_taken{};
  };
  static constexpr BackwardPlan plan = [] {
    BackwardPlan p;
    p.dy_block.fill(K);
    for (std::size_t h = 0; h < K; ++h) {
      p.live[result_nodes[h]] = true;
      p.written[result_nodes[h]] = true;
    }
    for (std::size_t j = N; j-- > 1;)
      if (p.live[j])
        for (std::size_t k = 0; k < graph.nodes[j].num_inputs; ++k) p.live[graph.nodes[j].inputs[k]] = true;
    for (std::size_t j = N; j-- > 1;) {
      if (!p.live[j]) continue;
      for (std::size_t k = 0; k < graph.nodes[j].num_inputs; ++k) {
        const std::size_t i = graph.nodes[j].inputs[k];
        if (!p.written[i]) p.assign[j] |= 1u << k, p.written[i] = true;
      }
    }
    for (std::size_t i = 1; i < N; ++i) {
      p.gradient_at[i] = layout.gradient[i];
      // A result nothing else reads takes its gradient from dy as it is.
      p.dy_block[i] = consumers[i] == 1 ? result_slot[i] : K;
      const std::size_t a = graph.nodes[i].fused_activation;
      if (a != 0 && consumers[i] == 1 && p.live[a]) p.fused[i] = p.runs_with_producer[a] = true;
    }
    for (std::size_t j = 1; j < N; ++j) {
      const std::size_t a = graph.nodes[j].derivative_of;
      if (a != 0 && p.live[j] && p.runs_with_producer[a] && consumers[a] == 1)
        p.takes_derivative[j] = p.derivative_taken[graph.nodes[a].inputs[0]] = true;
    }
    for (std::size_t j = N; j-- > 1;) {
      const detail::Node& node = graph.nodes[j];
      if (!p.live[j] || !(node.kind == detail::NodeKind::add || node.kind == detail::NodeKind::sub)) continue;
      for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t i = node.inputs[k];
        const bool same_term = k == 0 || node.kind == detail::NodeKind::add;  // sub's b gets -dout
        const bool first = (p.assign[j] & (1u << k)) != 0;
        // Read-only dy may be taken over only by a value nothing else adds to.
        const bool takeable = p.dy_block[j] == K || consumers[i] == 1;
        if (!same_term || !first || i == 0 || node.inputs[1 - k] == i || !takeable) continue;
        p.passes_through[j] = 1u << k;
        p.gradient_at[i] = p.gradient_at[j];
        p.dy_block[i] = p.dy_block[j];
        break;
      }
    }
    return p;
  }();

  template <std::size_t>
  using bind = ModuleLayer;

  template <std::size_t I>
  static Context node_context(const Context& c) {
    if constexpr (node_member[I] < placements.size()) {
      constexpr const ChildPlacement& p = placements[node_member[I]];
      const Context member = c.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset);
      if constexpr (graph.nodes[I].child.empty()) {
        return member;
      } else {
        using layout = type_at<node_member[I], children>;
        constexpr const ChildPlacement& q = layout::placements[detail::child_index<layout>(graph.nodes[I].child)];
        return member.child(q.param_offset, q.buffer_offset, q.counter_offset, q.tensor_offset);
      }
    } else {
      return c;
    }
  }

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    NoHooks none;
    forward(c, x, y, n, ws, none, {});
  }
  template <class Hooks>
  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws, Hooks& hooks,
                      std::string_view name) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            constexpr std::size_t id = I + 1;
            constexpr const detail::Node& node = graph.nodes[id];
            const float* inputs[detail::max_node_inputs];
            for (std::size_t k = 0; k < node.num_inputs; ++k) inputs[k] = value_of(node.inputs[k], x, y, n, ws);
            float* out = output_of(id, y, n, ws);
            if constexpr (!detail::has_hooks<Hooks> && node.computed_by_input) {
              // computed by the fused Linear before it (symbolic.hpp, Node)
            } else if constexpr (!detail::has_hooks<Hooks> && node.fused_activation != 0) {
              // The Linear's own output is kept when something else reads it,
              // and in training when the activation's derivative reads it.
              constexpr bool keep_output = consumers[id] > 1;
              const bool keep = keep_output || (c.training && node.fused_derivative_reads_z);
              node.fused_forward(node_context<id>(c), inputs[0], keep ? out : nullptr,
                                 output_of(node.fused_activation, y, n, ws), n);
            } else {
              node.forward(node, node_context<id>(c), inputs, out, n, ws + n * layout.workspace[id]);
            }
            if constexpr (detail::has_hooks<Hooks> && requires { hooks.forward(ModuleIO{}); }) {
              if constexpr (node.kind == detail::NodeKind::call && !node.member.empty())
                hooks.forward(ModuleIO{call_name<Hooks>(node, name), node.kind_name,
                                       {inputs[0], n, graph.nodes[node.inputs[0]].width}, {out, n, node.width}});
            }
          }(),
          ...);
    }(std::make_index_sequence<N - 1>{});
    // Results that are the input, or one value returned twice, are copied.
    for (std::size_t h = 0; h < K; ++h)
      if (result_slot[result_nodes[h]] != h)
        std::copy_n(value_of(result_nodes[h], x, y, n, ws), n * head_widths[h], y + n * head_offsets[h]);
  }

  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx, std::size_t n,
                       float* ws, float* scratch) {
    NoHooks none;
    backward(c, x, y, dy, dx, n, ws, scratch, none, {});
  }

  /// Reverse topological order (the reverse of the trace); gradients of a value
  /// used several times are summed, in that order. A node runs only if it
  /// reaches a result and something before it is trainable or the caller
  /// asked for dx.
  template <class Hooks>
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx, std::size_t n,
                       float* ws, float* scratch, Hooks& hooks, std::string_view name) {
    constexpr bool fuse = !detail::has_hooks<Hooks>;
    float* grads = scratch;
    float* call_scratch = scratch + n * (layout.grad_floats - widest_call_scratch());
    // needs[i]: the gradient of node i is wanted by something upstream.
    std::array<bool, detail::max_graph_nodes> needs{};
    needs[0] = dx != nullptr;
    for (std::size_t i = 1; i < N; ++i) {
      const detail::Node& node = graph.nodes[i];
      bool need = node_member[i] < placements.size() &&
                  c.any_trainable(placements[node_member[i]].tensor_offset, params_of_member(node_member[i]));
      for (std::size_t k = 0; k < node.num_inputs; ++k) need = need || needs[node.inputs[k]];
      needs[i] = need;
    }
    if (dx && !plan.written[0]) std::fill_n(dx, n * in_features, 0.0f);
    auto value = [&](std::size_t id) { return value_of(id, x, y, n, ws); };
    auto gradient = [&](std::size_t id) -> float* { return id == 0 ? dx : grads + n * plan.gradient_at[id]; };
    auto gradient_of_output = [&](std::size_t id) -> const float* {
      return plan.dy_block[id] != K ? dy + n * head_offsets[plan.dy_block[id]] : gradient(id);
    };
    // Each result's gradient is its block of dy: the first time written (or
    // used in place), then added.
    for (std::size_t h = 0; h < K; ++h) {
      const std::size_t id = result_nodes[h];
      float* g = gradient(id);
      if (plan.dy_block[id] != K || !g || !needs[id]) continue;
      const float* block = dy + n * head_offsets[h];
      bool first = true;
      for (std::size_t e = 0; e < h; ++e) first = first && result_nodes[e] != id;
      if (first) std::copy_n(block, n * head_widths[h], g);
      else
        for (std::size_t i = 0; i < n * head_widths[h]; ++i) g[i] += block[i];
    }
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (
          [&] {
            constexpr std::size_t id = N - 1 - R;
            constexpr const detail::Node& node = graph.nodes[id];
            constexpr unsigned assign = plan.assign[id];
            if constexpr (!plan.live[id] || (fuse && plan.runs_with_producer[id])) {
              return;
            } else {
              if (!needs[id]) return;
              const float* inputs[detail::max_node_inputs];
              float* input_grads[detail::max_node_inputs];
              for (std::size_t k = 0; k < node.num_inputs; ++k) {
                inputs[k] = value(node.inputs[k]);
                const bool passed = (plan.passes_through[id] & (1u << k)) != 0;
                input_grads[k] = needs[node.inputs[k]] && !passed ? gradient(node.inputs[k]) : nullptr;
              }
              if constexpr (fuse && plan.takes_derivative[id]) {
                // dx is the dz of the pair before (its Linear's output
                // gradient), written: nothing else reads that pair's output.
                constexpr std::size_t before = graph.nodes[node.derivative_of].inputs[0];
                const Context before_context = node_context<before>(c);
                const detail::FoldedDerivative derivative{&before_context, value(before), value(node.derivative_of)};
                float* dz_before = input_grads[0] ? gradient(before) : nullptr;
                if constexpr (plan.fused[id])
                  node.fused_backward(node_context<id>(c), inputs[0], value(id), value(node.fused_activation),
                                      gradient_of_output(node.fused_activation), gradient(id), dz_before, n,
                                      plan.derivative_taken[id], derivative);
                else
                  node.backward_folding(node_context<id>(c), inputs[0], gradient_of_output(id), dz_before, n,
                                        derivative);
              } else if constexpr (fuse && plan.fused[id]) {
                constexpr std::size_t a = node.fused_activation;
                constexpr std::size_t in_width = graph.nodes[node.inputs[0]].width;
                float* dx_here = input_grads[0] && !(assign & 1u) ? call_scratch : input_grads[0];
                node.fused_backward(node_context<id>(c), inputs[0], value(id), value(a), gradient_of_output(a),
                                    gradient(id), dx_here, n, plan.derivative_taken[id], {});
                if (dx_here && dx_here != input_grads[0])
                  detail::accumulate_rows<in_width>(input_grads[0], dx_here, n);
              } else {
                node.backward(node, node_context<id>(c), inputs, value(id), gradient_of_output(id), input_grads,
                              assign, n, ws + n * layout.workspace[id], call_scratch);
              }
              // A member call's backward hook: its grad_input is what this call
              // alone contributed (written in place, or left by call_backward at
              // the start of the scratch), its grad_output the summed gradient
              // of its output.
              if constexpr (detail::has_hooks<Hooks> && requires { hooks.backward(ModuleIO{}); }) {
                if constexpr (node.kind == detail::NodeKind::call && !node.member.empty()) {
                  const float* call_dx = !input_grads[0] ? nullptr : (assign & 1u) ? input_grads[0] : call_scratch;
                  hooks.backward(ModuleIO{call_name<Hooks>(node, name), node.kind_name,
                                          {call_dx, n, graph.nodes[node.inputs[0]].width},
                                          {gradient_of_output(id), n, node.width}});
                }
              }
            }
          }(),
          ...);
    }(std::make_index_sequence<N - 1>{});
  }

  static void print(std::ostream& os, int indent) { detail::print_container<ModuleLayer>(os, indent, kind); }

 private:
  /// The dotted name hooks see for a member call: "fc1", or "heads.classify".
  template <class Hooks>
  static std::string call_name(const detail::Node& node, std::string_view module_name) {
    const std::string member = detail::child_name<Hooks>(module_name, node.member);
    return node.child.empty() ? member : detail::child_name<Hooks>(member, node.child);
  }

  /// Where node id's value is: x for the input, its block of y for a result
  /// computed in place, the workspace otherwise.
  static float* output_of(std::size_t id, float* y, std::size_t n, float* ws) {
    return result_slot[id] != K ? y + n * head_offsets[result_slot[id]] : ws + n * layout.output[id];
  }
  static const float* value_of(std::size_t id, const float* x, const float* y, std::size_t n, const float* ws) {
    if (id == 0) return x;
    return result_slot[id] != K ? y + n * head_offsets[result_slot[id]] : ws + n * layout.output[id];
  }

  static constexpr std::size_t widest_call_scratch() {
    std::size_t w = 0;
    for (std::size_t i = 1; i < N; ++i) w = std::max(w, graph.nodes[i].grad_floats);
    return w;
  }
  static constexpr std::size_t params_of_member(std::size_t k) {
    return k + 1 < placements.size() ? placements[k + 1].tensor_offset - placements[k].tensor_offset
                                     : params.size() - placements[k].tensor_offset;
  }
};

}  // namespace ctnn

// ---- the declaration macro ------------------------------------------------------

#define CTNN_PP_CAT(a, b) CTNN_PP_CAT_I(a, b)
#define CTNN_PP_CAT_I(a, b) a##b
#define CTNN_PP_STR(x) CTNN_PP_STR_I(x)
#define CTNN_PP_STR_I(x) #x
#define CTNN_PP_NARG(...) CTNN_PP_NARG_I(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, )
#define CTNN_PP_NARG_I(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, ...) N

// The last element of a member tuple is its name; the others (a type may
// contain commas: Linear<3, 16>) are its type.
#define CTNN_PP_BACK(...) CTNN_PP_CAT(CTNN_PP_BACK_, CTNN_PP_NARG(__VA_ARGS__))(__VA_ARGS__)
#define CTNN_PP_BACK_2(a, b) b
#define CTNN_PP_BACK_3(a, b, c) c
#define CTNN_PP_BACK_4(a, b, c, d) d
#define CTNN_PP_BACK_5(a, b, c, d, e) e
#define CTNN_PP_BACK_6(a, b, c, d, e, f) f
#define CTNN_PP_BACK_7(a, b, c, d, e, f, g) g
#define CTNN_PP_BACK_8(a, b, c, d, e, f, g, h) h
#define CTNN_PP_DROP_BACK(...) CTNN_PP_CAT(CTNN_PP_DROP_BACK_, CTNN_PP_NARG(__VA_ARGS__))(__VA_ARGS__)
#define CTNN_PP_DROP_BACK_2(a, b) a
#define CTNN_PP_DROP_BACK_3(a, b, c) a, b
#define CTNN_PP_DROP_BACK_4(a, b, c, d) a, b, c
#define CTNN_PP_DROP_BACK_5(a, b, c, d, e) a, b, c, d
#define CTNN_PP_DROP_BACK_6(a, b, c, d, e, f) a, b, c, d, e
#define CTNN_PP_DROP_BACK_7(a, b, c, d, e, f, g) a, b, c, d, e, f
#define CTNN_PP_DROP_BACK_8(a, b, c, d, e, f, g, h) a, b, c, d, e, f, g

#define CTNN_DETAIL_MEMBER_TYPE(...) \
  ::ctnn::Member<CTNN_PP_STR(CTNN_PP_BACK(__VA_ARGS__)), CTNN_PP_DROP_BACK(__VA_ARGS__)>
#define CTNN_DETAIL_DECLARE(tuple) CTNN_DETAIL_MEMBER_TYPE tuple CTNN_PP_BACK tuple;
#define CTNN_DETAIL_LIST(tuple) CTNN_DETAIL_MEMBER_TYPE tuple

#define CTNN_PP_FOR_EACH(m, ...) CTNN_PP_CAT(CTNN_PP_FOR_EACH_, CTNN_PP_NARG(__VA_ARGS__))(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_1(m, a) m(a)
#define CTNN_PP_FOR_EACH_2(m, a, ...) m(a) CTNN_PP_FOR_EACH_1(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_3(m, a, ...) m(a) CTNN_PP_FOR_EACH_2(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_4(m, a, ...) m(a) CTNN_PP_FOR_EACH_3(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_5(m, a, ...) m(a) CTNN_PP_FOR_EACH_4(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_6(m, a, ...) m(a) CTNN_PP_FOR_EACH_5(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_7(m, a, ...) m(a) CTNN_PP_FOR_EACH_6(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_8(m, a, ...) m(a) CTNN_PP_FOR_EACH_7(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_9(m, a, ...) m(a) CTNN_PP_FOR_EACH_8(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_10(m, a, ...) m(a) CTNN_PP_FOR_EACH_9(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_11(m, a, ...) m(a) CTNN_PP_FOR_EACH_10(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_12(m, a, ...) m(a) CTNN_PP_FOR_EACH_11(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_13(m, a, ...) m(a) CTNN_PP_FOR_EACH_12(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_14(m, a, ...) m(a) CTNN_PP_FOR_EACH_13(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_15(m, a, ...) m(a) CTNN_PP_FOR_EACH_14(m, __VA_ARGS__)
#define CTNN_PP_FOR_EACH_16(m, a, ...) m(a) CTNN_PP_FOR_EACH_15(m, __VA_ARGS__)
#define CTNN_PP_LIST(m, ...) CTNN_PP_CAT(CTNN_PP_LIST_, CTNN_PP_NARG(__VA_ARGS__))(m, __VA_ARGS__)
#define CTNN_PP_LIST_1(m, a) m(a)
#define CTNN_PP_LIST_2(m, a, ...) m(a), CTNN_PP_LIST_1(m, __VA_ARGS__)
#define CTNN_PP_LIST_3(m, a, ...) m(a), CTNN_PP_LIST_2(m, __VA_ARGS__)
#define CTNN_PP_LIST_4(m, a, ...) m(a), CTNN_PP_LIST_3(m, __VA_ARGS__)
#define CTNN_PP_LIST_5(m, a, ...) m(a), CTNN_PP_LIST_4(m, __VA_ARGS__)
#define CTNN_PP_LIST_6(m, a, ...) m(a), CTNN_PP_LIST_5(m, __VA_ARGS__)
#define CTNN_PP_LIST_7(m, a, ...) m(a), CTNN_PP_LIST_6(m, __VA_ARGS__)
#define CTNN_PP_LIST_8(m, a, ...) m(a), CTNN_PP_LIST_7(m, __VA_ARGS__)
#define CTNN_PP_LIST_9(m, a, ...) m(a), CTNN_PP_LIST_8(m, __VA_ARGS__)
#define CTNN_PP_LIST_10(m, a, ...) m(a), CTNN_PP_LIST_9(m, __VA_ARGS__)
#define CTNN_PP_LIST_11(m, a, ...) m(a), CTNN_PP_LIST_10(m, __VA_ARGS__)
#define CTNN_PP_LIST_12(m, a, ...) m(a), CTNN_PP_LIST_11(m, __VA_ARGS__)
#define CTNN_PP_LIST_13(m, a, ...) m(a), CTNN_PP_LIST_12(m, __VA_ARGS__)
#define CTNN_PP_LIST_14(m, a, ...) m(a), CTNN_PP_LIST_13(m, __VA_ARGS__)
#define CTNN_PP_LIST_15(m, a, ...) m(a), CTNN_PP_LIST_14(m, __VA_ARGS__)
#define CTNN_PP_LIST_16(m, a, ...) m(a), CTNN_PP_LIST_15(m, __VA_ARGS__)

/// Declares the members of a custom module, in order, as (Type, name) pairs
/// (at most 16), and the facts that make the struct an architecture type.
#define CTNN_MODULE(Self, ...)                                                                          \
  CTNN_PP_FOR_EACH(CTNN_DETAIL_DECLARE, __VA_ARGS__)                                                    \
  using ctnn_members = ::ctnn::type_list<CTNN_PP_LIST(CTNN_DETAIL_LIST, __VA_ARGS__)>;                  \
  [[maybe_unused]] static constexpr ::std::string_view ctnn_kind = #Self;                               \
  [[maybe_unused]] static constexpr ::std::size_t in_features =                                         \
      ::ctnn::detail::members_info<ctnn_members>::first_fixed_width;                                    \
  [[maybe_unused]] static constexpr ::std::size_t num_params =                                          \
      ::ctnn::detail::members_info<ctnn_members>::num_params;                                           \
  /* a template, so that forward is traced only once the struct is complete */                        \
  template <class ctnn_self = Self>                                                                     \
  static constexpr ::std::size_t out_width(::std::size_t) {                                              \
    return ::ctnn::ModuleLayer<ctnn_self, ctnn_self::in_features>::out_features;                         \
  }                                                                                                     \
  template <::std::size_t W>                                                                            \
  using bind = ::ctnn::ModuleLayer<Self, W>

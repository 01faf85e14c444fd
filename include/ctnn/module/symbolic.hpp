// Symbolic values for tracing a custom module's forward at compile time.
//
// A custom module's `forward(auto x)` is called once by the compiler, inside a
// constant evaluation, with a `Sym<W>`: a handle (a node of a graph being
// built) whose width W is part of its type. Every member call, +, -, *, scaling,
// activation function, concat and slice appends a node and returns a new
// handle, so `h = act(fc2(h)) + h` just moves `h` to a new node and a value
// used twice is one node (the graph is a DAG). Widths are checked by the types:
// adding Sym<16> to Sym<8> does not compile. The finished graph is a constant
// from which Module<M>'s forward and backward are generated.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>

#include "ctnn/compose/fusion.hpp"
#include "ctnn/compose/lane_program.hpp"
#include "ctnn/core/context.hpp"
#include "ctnn/core/fixed_string.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/softmax.hpp"

namespace ctnn {

namespace detail {
struct Graph;
struct Node;

using NodeForward = void (*)(const Node&, const Context&, const float* const* inputs, float* out, std::size_t n,
                             float* ws);
/// A Linear call that also applies the activation after it (z may be null).
using NodeFusedForward = void (*)(const Context&, const float* x, float* z, float* y, std::size_t n);
/// Gives dLoss/dInput to each non-null `input_grads[k]`: written over it (=) when
/// bit k of `assign` is set (this node is the first, in the reverse pass, to
/// give that value a gradient), added to it (+=) otherwise.
using NodeBackward = void (*)(const Node&, const Context&, const float* const* inputs, const float* out,
                              const float* out_grad, float* const* input_grads, unsigned assign, std::size_t n,
                              float* ws, float* scratch);
/// The derivative of a fused pair's activation, folded into the input-gradient
/// kernel of the Linear call after the pair (compose/fusion.hpp): the pair's
/// Linear context and its stored z and y. `c` null: nothing to fold.
struct FoldedDerivative {
  const Context* c = nullptr;
  const float* z = nullptr;
  const float* y = nullptr;
};
/// The backward of a Linear call and the activation fused with it: dy is the
/// activation's output gradient, dz receives the Linear's (or, when dz_given,
/// already holds it: the Linear after the pair stored it), dx (written, may be
/// null) the input's, times `before`'s derivative.
using NodeFusedBackward = void (*)(const Context&, const float* x, const float* z, const float* y, const float* dy,
                                   float* dz, float* dx, std::size_t n, bool dz_given, FoldedDerivative before);
/// The backward of a Linear call that stores the dz of the fused pair before
/// it as its dx (`before` not null).
using NodeLinearBackward = void (*)(const Context&, const float* x, const float* dy, float* dx, std::size_t n,
                                    FoldedDerivative before);

/// A call run with the samples in the lanes (compose/lane_program.hpp): x, y
/// and skip (added to y when not null) are blocks of kernels::block_lanes
/// samples, feature-major (module/lanes.hpp).
using NodeLanes = void (*)(const Context&, const float* x, const float* skip, float* y);

enum class NodeKind { input, call, add, sub, mul, scale, concat, slice };

inline constexpr std::size_t max_node_inputs = 8;
inline constexpr std::size_t max_graph_nodes = 256;

struct Node {
  NodeKind kind = NodeKind::input;
  std::array<std::size_t, max_node_inputs> inputs{};
  std::size_t num_inputs = 0;
  std::size_t width = 0;
  std::string_view member;      // call of a member: its name; empty for a function (relu(h))
  std::string_view child;       // call of one child of a member: heads.get<"classify">(h)
  std::string_view kind_name;   // the called layer's kind ("Linear"), for hooks
  bool member_trainable = false;  // the called member owns parameters
  float constant = 0.0f;        // scale
  std::size_t begin = 0;        // slice
  std::size_t workspace_floats = 0, grad_floats = 0;  // of the called layer, per row
  NodeForward forward = nullptr;
  NodeBackward backward = nullptr;
  // Fusion, as in pipelines (compose/fusion.hpp): a Linear call whose output
  // goes straight into an activation with a vector form computes that
  // activation's output too, in its GEMM's epilogue, and the activation's node
  // is then skipped in the forward. When nothing else reads the Linear's output,
  // the backward is fused the same way (module.hpp, BackwardPlan).
  NodeFusedForward fused_forward = nullptr;    // on the Linear's node
  NodeFusedBackward fused_backward = nullptr;  // on the Linear's node
  std::size_t fused_activation = 0;          // the activation's node id
  bool computed_by_input = false;            // on the activation's node
  bool fused_derivative_reads_z = false;     // on the Linear's node: training keeps z
  // A Linear call (alone or heading a pair) whose input is the output of a
  // fused pair: that activation's node id, and the backward that folds its
  // derivative into this call's input gradient (used when the plan allows it).
  std::size_t derivative_of = 0;
  NodeLinearBackward backward_folding = nullptr;  // for a Linear call alone
  // The evaluation forward in lanes (module/lanes.hpp): the call's layer, when
  // it runs there; on a Linear's node, the Linear with its fused activation.
  NodeLanes lanes = nullptr;
  NodeLanes fused_lanes = nullptr;
};

inline constexpr std::size_t max_graph_outputs = 16;

struct Graph {
  std::array<Node, max_graph_nodes> nodes{};
  std::size_t count = 0;
  std::size_t output = 0;  // the result of a forward that returns one value
  // A forward that returns outputs<"a", "b">(ya, yb): named results.
  std::array<std::size_t, max_graph_outputs> outputs{};
  std::array<std::string_view, max_graph_outputs> output_names{};
  std::size_t num_outputs = 0;

  constexpr std::size_t add(const Node& node) {
    if (count == max_graph_nodes) throw "ctnn: a custom module's forward has more than 256 operations";
    nodes[count] = node;
    return count++;
  }
};

}  // namespace detail

/// What computed a value, when fusion can use it: a Linear `L`, after the fused
/// pair `Before` (a FusedLinearActivation, or void), ...
template <class L, class Before = void>
struct LinearOutput {
  using linear = L;
  using before = Before;
};
/// ... or the activation of the fused pair `Pair`.
template <class Pair>
struct PairOutput {
  using pair = Pair;
};

/// A value inside a traced forward: `W` features per row. `Producer` says what
/// computed it when fusion can use that (Sym<W, LinearOutput<...>> derives from
/// Sym<W>): an activation applied to a Linear's output is fused with it, and a
/// Linear applied to a fused pair's output takes the pair's derivative.
template <std::size_t W, class Producer = void>
struct Sym;

template <std::size_t W>
struct Sym<W, void> {
  static constexpr std::size_t width = W;
  detail::Graph* graph = nullptr;
  std::size_t id = 0;
};

template <std::size_t W, class Producer>
struct Sym : Sym<W, void> {
  // The node Producer computed. `h = fc1(x); h = other;` moves id on, and a
  // moved handle no longer names the Linear's (or pair's) output.
  std::size_t produced = static_cast<std::size_t>(-1);

  constexpr Sym(detail::Graph* g, std::size_t node) : Sym<W, void>{g, node}, produced(node) {}
  template <class Other>
  constexpr Sym& operator=(const Sym<W, Other>& other) {
    this->graph = other.graph;
    this->id = other.id;
    if constexpr (std::is_same_v<Other, Producer>) produced = other.produced;
    else produced = static_cast<std::size_t>(-1);
    return *this;
  }
  constexpr Sym(const Sym&) = default;
  constexpr Sym& operator=(const Sym&) = default;
  /// True if this handle still names the output `Producer` describes.
  constexpr bool names_producer_output() const { return produced == this->id; }
};

namespace detail {

template <class T>
inline constexpr bool is_sym = false;
template <std::size_t W, class P>
inline constexpr bool is_sym<Sym<W, P>> = true;

template <class T>
inline constexpr bool is_sym_outputs = requires { T::is_named_outputs; };

// ---- node kernels -----------------------------------------------------------

/// into += from over n rows of W (W known, so the loop vectorizes).
template <std::size_t W>
void accumulate_rows(float* into, const float* from, std::size_t n) {
  for (std::size_t i = 0; i < n * W; ++i) into[i] += from[i];
}

template <class L>
void call_forward(const Node&, const Context& c, const float* const* in, float* out, std::size_t n, float* ws) {
  L::forward(c, in[0], out, n, ws);
}
/// The input gradient goes straight to its place when this call is its first
/// writer; otherwise to the start of the scratch, then added (hooks read it there).
template <class L>
void call_backward(const Node&, const Context& c, const float* const* in, const float* out, const float* dout,
                   float* const* din, unsigned assign, std::size_t n, float* ws, float* scratch) {
  const bool in_place = (assign & 1u) != 0;
  float* dx = din[0] ? (in_place ? din[0] : scratch) : nullptr;
  L::backward(c, in[0], out, dout, dx, n, ws, scratch + n * L::in_features);
  if (dx && !in_place) accumulate_rows<L::in_features>(din[0], dx, n);
}

/// A fused pair's backward, dx times the derivative of the pair `Before`
/// when `before` is given.
template <class Pair, class Before>
void fused_backward(const Context& c, const float* x, const float* z, const float* y, const float* dy, float* dz,
                    float* dx, std::size_t n, bool dz_given, FoldedDerivative before) {
  const auto run = [&](auto derivative) {
    if (dz_given) Pair::backward_from_dz(c, x, dz, dx, n, derivative);
    else Pair::backward_through(c, x, z, y, dy, dz, dx, n, derivative);
  };
  if constexpr (!std::is_void_v<Before>)
    if (before.c) return run(Before::gradient(*before.c, before.z, before.y));
  run(kernels::ActivationGradient<kernels::NoActivation>{});
}
/// A Linear call's backward whose dx is the dz of the fused pair `Before`.
template <class L, class Before>
void linear_backward_folding(const Context& c, const float* x, const float* dy, float* dx, std::size_t n,
                             FoldedDerivative before) {
  unwrapped_t<L>::backward_through(c, x, dy, dx, n, Before::gradient(*before.c, before.z, before.y));
}

/// Layer L over one block in lanes; a fused pair's Linear with the pair's
/// activation applied to its result (one kernel).
template <class L>
void call_lanes(const Context& c, const float* x, const float* skip, float* y) {
  kernels::dispatch(c.arch, [&](auto tag) { LaneProgram<L>::run(tag, c, x, skip, y); });
}
template <class Pair>
void pair_lanes(const Context& c, const float* x, const float* skip, float* y) {
  kernels::dispatch(c.arch, [&](auto tag) {
    LaneProgram<typename Pair::linear>::template run<decltype(tag), typename Pair::function>(tag, c, x, skip, y);
  });
}

template <NodeKind Op, std::size_t W>
void binary_forward(const Node&, const Context&, const float* const* in, float* out, std::size_t n, float*) {
  const float* a = in[0];
  const float* b = in[1];
  for (std::size_t i = 0; i < n * W; ++i) {
    if constexpr (Op == NodeKind::add) out[i] = a[i] + b[i];
    else if constexpr (Op == NodeKind::sub) out[i] = a[i] - b[i];
    else out[i] = a[i] * b[i];
  }
}
/// d(a op b): slot k's gradient term is dout (add, and sub's a), -dout (sub's
/// b), or dout times the other operand (mul). Written or added per slot; when
/// both slots are one value (h + h), slot 0 writes and slot 1 adds, per element.
template <NodeKind Op, std::size_t W>
void binary_backward(const Node&, const Context&, const float* const* in, const float*, const float* dout,
                     float* const* din, unsigned assign, std::size_t n, float*, float*) {
  auto term = [&](std::size_t k, std::size_t i) {
    if constexpr (Op == NodeKind::add) return dout[i];
    else if constexpr (Op == NodeKind::sub) return k == 0 ? dout[i] : -dout[i];
    else return dout[i] * in[1 - k][i];
  };
  auto give = [&](std::size_t k) {
    if (!din[k]) return;
    if (assign & (1u << k))
      for (std::size_t i = 0; i < n * W; ++i) din[k][i] = term(k, i);
    else
      for (std::size_t i = 0; i < n * W; ++i) din[k][i] += term(k, i);
  };
  if (!din[0] && !din[1]) return;
  if (din[0] != din[1]) {
    give(0);
    give(1);
    return;
  }
  // One value on both sides: both terms in one pass, slot 0's first.
  for (std::size_t i = 0; i < n * W; ++i) {
    const float first = (assign & 1u) ? term(0, i) : din[0][i] + term(0, i);
    din[0][i] = first + term(1, i);
  }
}

inline void scale_forward(const Node& node, const Context&, const float* const* in, float* out, std::size_t n,
                          float*) {
  for (std::size_t i = 0; i < n * node.width; ++i) out[i] = node.constant * in[0][i];
}
inline void scale_backward(const Node& node, const Context&, const float* const*, const float*, const float* dout,
                           float* const* din, unsigned assign, std::size_t n, float*, float*) {
  if (!din[0]) return;
  if (assign & 1u)
    for (std::size_t i = 0; i < n * node.width; ++i) din[0][i] = node.constant * dout[i];
  else
    for (std::size_t i = 0; i < n * node.width; ++i) din[0][i] += node.constant * dout[i];
}

/// Widths of a concat's inputs, taken from the graph when the node is built.
template <std::size_t... Ws>
void concat_forward(const Node& node, const Context&, const float* const* in, float* out, std::size_t n, float*) {
  constexpr std::array<std::size_t, sizeof...(Ws)> widths{Ws...};
  for (std::size_t r = 0; r < n; ++r) {
    float* o = out + r * node.width;
    for (std::size_t k = 0; k < widths.size(); ++k)
      for (std::size_t i = 0; i < widths[k]; ++i) *o++ = in[k][r * widths[k] + i];
  }
}
/// Row by row, slot by slot, so that concat(h, h) writes slot 0's part before
/// slot 1 adds to it.
template <std::size_t... Ws>
void concat_backward(const Node& node, const Context&, const float* const*, const float*, const float* dout,
                     float* const* din, unsigned assign, std::size_t n, float*, float*) {
  constexpr std::array<std::size_t, sizeof...(Ws)> widths{Ws...};
  for (std::size_t r = 0; r < n; ++r) {
    const float* g = dout + r * node.width;
    for (std::size_t k = 0; k < widths.size(); ++k) {
      float* d = din[k] ? din[k] + r * widths[k] : nullptr;
      if (d && (assign & (1u << k)))
        for (std::size_t i = 0; i < widths[k]; ++i) d[i] = g[i];
      else if (d)
        for (std::size_t i = 0; i < widths[k]; ++i) d[i] += g[i];
      g += widths[k];
    }
  }
}

template <std::size_t InWidth>
void slice_forward(const Node& node, const Context&, const float* const* in, float* out, std::size_t n, float*) {
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < node.width; ++i) out[r * node.width + i] = in[0][r * InWidth + node.begin + i];
}
/// As the first writer, the features outside the slice get a zero gradient.
template <std::size_t InWidth>
void slice_backward(const Node& node, const Context&, const float* const*, const float*, const float* dout,
                    float* const* din, unsigned assign, std::size_t n, float*, float*) {
  if (!din[0]) return;
  if (assign & 1u) std::fill_n(din[0], n * InWidth, 0.0f);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < node.width; ++i) din[0][r * InWidth + node.begin + i] += dout[r * node.width + i];
}

// ---- checks whose template arguments carry the sizes --------------------------

template <char Operator, std::size_t LeftFeatures, std::size_t RightFeatures>
struct elementwise_width_check {
  static_assert(LeftFeatures == RightFeatures,
                "ctnn: an elementwise operation (Operator) in a custom module's forward needs operands of the same "
                "width (LeftFeatures, RightFeatures in this check's arguments)");
  static constexpr bool ok = true;
};

template <std::size_t Begin, std::size_t End, std::size_t Features>
struct slice_range_check {
  static_assert(Begin < End && End <= Features,
                "ctnn: slice<Begin, End>(h) needs Begin < End <= the width of h (Features in this check's arguments)");
  static constexpr bool ok = true;
};

/// An activation L applied to the output P of a Linear fuses with it.
template <class P, class L>
inline constexpr bool fuses_with_producer = false;
template <class Linear, class Before, class L>
inline constexpr bool fuses_with_producer<LinearOutput<Linear, Before>, L> = fuses<Linear, L>;
template <class P>
inline constexpr bool is_pair_output = false;
template <class Pair>
inline constexpr bool is_pair_output<PairOutput<Pair>> = true;

/// Appends a call of layer L (bound at the input's width) and returns its
/// output, typed for fusion: a Linear's output carries the Linear (and the
/// fused pair before it), an activation fused with the Linear before it
/// carries the pair.
template <class L, std::size_t W, class P = void>
constexpr auto record_call(Sym<W, P> x, std::string_view member, std::string_view child = {}) {
  constexpr bool linear = is_linear<unwrapped_t<L>>;
  Node node;
  node.kind = NodeKind::call;
  node.inputs[0] = x.id;
  node.num_inputs = 1;
  node.width = L::out_features;
  node.member = member;
  node.child = child;
  node.kind_name = L::kind;
  node.member_trainable = L::num_params > 0;
  node.workspace_floats = L::workspace_floats;
  node.grad_floats = L::in_features + L::grad_floats;
  node.forward = &call_forward<L>;
  node.backward = &call_backward<L>;
  if constexpr (runs_in_lanes<L>) node.lanes = &call_lanes<L>;
  if constexpr (linear && is_pair_output<P>) {
    if (x.names_producer_output()) {
      node.derivative_of = x.id;
      node.backward_folding = &linear_backward_folding<L, typename P::pair>;
    }
  }
  const std::size_t id = x.graph->add(node);
  if constexpr (fuses_with_producer<P, L>) {
    using Pair = FusedLinearActivation<typename P::linear, L>;
    Sym<L::out_features, PairOutput<Pair>> out{x.graph, id};
    Node& producer = x.graph->nodes[x.id];
    if (x.names_producer_output() && producer.fused_forward == nullptr) {
      producer.fused_forward = &Pair::forward_into;
      producer.fused_backward = &fused_backward<Pair, typename P::before>;
      producer.fused_activation = id;
      producer.fused_derivative_reads_z = kernels::derivative_reads_input<typename Pair::function>;
      if constexpr (runs_in_lanes<typename Pair::linear>) producer.fused_lanes = &pair_lanes<Pair>;
      x.graph->nodes[id].computed_by_input = true;
    } else {
      out.produced = static_cast<std::size_t>(-1);  // not fused: the Linear after it takes nothing
    }
    return out;
  } else if constexpr (linear && is_pair_output<P>) {
    return Sym<L::out_features, LinearOutput<L, typename P::pair>>{x.graph, id};
  } else if constexpr (linear) {
    return Sym<L::out_features, LinearOutput<L>>{x.graph, id};
  } else {
    return Sym<L::out_features>{x.graph, id};
  }
}

template <NodeKind Op, char Symbol, std::size_t A, std::size_t B>
constexpr Sym<A> record_binary(Sym<A> a, Sym<B> b) {
  static_assert(elementwise_width_check<Symbol, A, B>::ok);
  Node node;
  node.kind = Op;
  node.inputs[0] = a.id;
  node.inputs[1] = b.id;
  node.num_inputs = 2;
  node.width = A;
  node.forward = &binary_forward<Op, A>;
  node.backward = &binary_backward<Op, A>;
  return Sym<A>{a.graph, a.graph->add(node)};
}

template <std::size_t W>
constexpr Sym<W> record_scale(Sym<W> a, float k) {
  Node node;
  node.kind = NodeKind::scale;
  node.inputs[0] = a.id;
  node.num_inputs = 1;
  node.width = W;
  node.constant = k;
  node.forward = &scale_forward;
  node.backward = &scale_backward;
  return Sym<W>{a.graph, a.graph->add(node)};
}

}  // namespace detail

// ---- the operations a forward can use ------------------------------------------

template <std::size_t A, std::size_t B>
constexpr Sym<A> operator+(Sym<A> a, Sym<B> b) { return detail::record_binary<detail::NodeKind::add, '+'>(a, b); }
template <std::size_t A, std::size_t B>
constexpr Sym<A> operator-(Sym<A> a, Sym<B> b) { return detail::record_binary<detail::NodeKind::sub, '-'>(a, b); }
/// Elementwise (Hadamard) product, as `a * b` on tensors of one shape in PyTorch.
template <std::size_t A, std::size_t B>
constexpr Sym<A> operator*(Sym<A> a, Sym<B> b) { return detail::record_binary<detail::NodeKind::mul, '*'>(a, b); }
template <std::size_t W>
constexpr Sym<W> operator*(float k, Sym<W> a) { return detail::record_scale(a, k); }
template <std::size_t W>
constexpr Sym<W> operator*(Sym<W> a, float k) { return detail::record_scale(a, k); }
template <std::size_t W>
constexpr Sym<W> operator/(Sym<W> a, float k) { return detail::record_scale(a, 1.0f / k); }
template <std::size_t W>
constexpr Sym<W> operator-(Sym<W> a) { return detail::record_scale(a, -1.0f); }

/// Any layer spec applied as a function, without being a member: apply<Tanh>(h).
template <class Spec, std::size_t W, class P>
constexpr auto apply(Sym<W, P> x) {
  return detail::record_call<bind_t<Spec, W>>(x, {});
}

template <std::size_t W, class P> constexpr auto relu(Sym<W, P> x) { return apply<ReLU>(x); }
template <std::size_t W, class P> constexpr auto tanh(Sym<W, P> x) { return apply<Tanh>(x); }
template <std::size_t W, class P> constexpr auto sigmoid(Sym<W, P> x) { return apply<Sigmoid>(x); }
template <std::size_t W, class P> constexpr auto gelu(Sym<W, P> x) { return apply<GELU>(x); }
template <std::size_t W, class P> constexpr auto silu(Sym<W, P> x) { return apply<SiLU>(x); }
template <std::size_t W, class P> constexpr auto elu(Sym<W, P> x) { return apply<ELU<>>(x); }
template <std::size_t W, class P> constexpr auto softplus(Sym<W, P> x) { return apply<Softplus<>>(x); }
template <std::size_t W, class P> constexpr auto leaky_relu(Sym<W, P> x) { return apply<LeakyReLU<>>(x); }
template <std::size_t W, class P> constexpr auto softmax(Sym<W, P> x) { return apply<Softmax>(x); }
template <std::size_t W, class P> constexpr auto log_softmax(Sym<W, P> x) { return apply<LogSoftmax>(x); }

/// Features of several values side by side: concat(a, b) has a's then b's.
template <std::size_t... Ws>
constexpr Sym<(Ws + ...)> concat(Sym<Ws>... parts) {
  static_assert(sizeof...(Ws) >= 1 && sizeof...(Ws) <= detail::max_node_inputs,
                "ctnn: concat takes between 1 and 8 values");
  detail::Node node;
  node.kind = detail::NodeKind::concat;
  detail::Graph* graph = nullptr;
  ((node.inputs[node.num_inputs++] = parts.id, graph = parts.graph), ...);
  node.width = (Ws + ...);
  node.forward = &detail::concat_forward<Ws...>;
  node.backward = &detail::concat_backward<Ws...>;
  return Sym<(Ws + ...)>{graph, graph->add(node)};
}

/// Several named results of one forward (the multi-task tutorial's dict of
/// heads): `return outputs<"classify", "regress">(c, r);`. A model then returns
/// NamedOutputs, `out.get<"classify">()`.
template <std::size_t K>
struct SymOutputs {
  static constexpr bool is_named_outputs = true;
  detail::Graph* graph = nullptr;
  std::array<std::size_t, K> ids{};
  std::array<std::string_view, K> names{};
};

template <fixed_string... Names, std::size_t... Ws>
constexpr SymOutputs<sizeof...(Ws)> outputs(Sym<Ws>... values) {
  static_assert(sizeof...(Names) == sizeof...(Ws), "ctnn: outputs<\"a\", \"b\">(a, b) needs one name per value");
  static_assert(sizeof...(Ws) >= 1 && sizeof...(Ws) <= detail::max_graph_outputs, "ctnn: 1 to 16 named outputs");
  SymOutputs<sizeof...(Ws)> out;
  std::size_t i = 0;
  ((out.ids[i] = values.id, out.graph = values.graph, ++i), ...);
  i = 0;
  ((out.names[i++] = Names.view()), ...);
  return out;
}

/// Features [Begin, End) of each row.
template <std::size_t Begin, std::size_t End, std::size_t W>
constexpr Sym<End - Begin> slice(Sym<W> x) {
  static_assert(detail::slice_range_check<Begin, End, W>::ok);
  detail::Node node;
  node.kind = detail::NodeKind::slice;
  node.inputs[0] = x.id;
  node.num_inputs = 1;
  node.width = End - Begin;
  node.begin = Begin;
  node.forward = &detail::slice_forward<W>;
  node.backward = &detail::slice_backward<W>;
  return Sym<End - Begin>{x.graph, x.graph->add(node)};
}

}  // namespace ctnn

// The machinery shared by every pipeline (Sequential, Residual's body, the MLP
// helper): bound children run one after another. The forward is a fold over
// the children's indices and the backward is the same fold over the reversed
// indices; every offset is a constexpr array indexed by the child's position.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "ctnn/compose/fusion.hpp"
#include "ctnn/core/children.hpp"
#include "ctnn/core/hooks.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn::detail {

// ---- compile-time checks; each one's template arguments carry the numbers a
// ---- user needs, so they print in the first lines of the error.

template <std::size_t LayerPosition, std::size_t ExpectsFeatures, std::size_t GetsFeatures,
          class Layer, class PreviousLayer>
struct sequential_layer_input_check {
  static constexpr bool ok = ExpectsFeatures == GetsFeatures;
};
// The assertion sits in a function, not in the check's class, so that clang
// reports it once instead of again at every constant computed from it.
template <class Check>
constexpr bool require_sequential_widths() {
  static_assert(Check::ok,
                "ctnn: shape mismatch in Sequential: the layer at LayerPosition expects ExpectsFeatures "
                "input features, but the layer before it (PreviousLayer) produces GetsFeatures "
                "(values in this check's template arguments)");
  return true;
}

template <std::size_t FirstPosition, std::size_t SecondPosition, class First, class Second>
struct duplicate_sibling_name_check {
  static_assert(FirstPosition == SecondPosition,
                "ctnn: two children of one container have the same name (positions and types in this "
                "check's template arguments); names must be unique among siblings, as PyTorch's "
                "attribute names are");
  static constexpr bool ok = true;
};

template <std::size_t LayerPosition, class Layer, bool IsLast>
struct multi_output_not_last_check {
  static_assert(IsLast || !Layer::multi_output,
                "ctnn: a layer with several named outputs (Heads) must be the last of its Sequential");
  static constexpr bool ok = true;
};

/// Output width after each spec, starting from `in`.
template <class... Specs>
constexpr std::array<std::size_t, sizeof...(Specs) + 1> chain_widths(std::size_t in) {
  std::array<std::size_t, sizeof...(Specs) + 1> w{};
  w[0] = in;
  std::size_t i = 0;
  ((w[i + 1] = Specs::out_width(w[i]), ++i), ...);
  return w;
}

/// Input width of the first spec whose width is fixed; the ones before it take
/// any width and keep it.
template <class... Specs>
constexpr std::size_t first_fixed_width() {
  std::size_t width = any_width;
  ((width = width != any_width ? width : Specs::in_features), ...);
  return width;
}

template <std::size_t I, class Specs, std::size_t W>
constexpr bool check_input_width() {
  using S = type_at<I, Specs>;
  if constexpr (S::in_features == any_width) {
    return true;
  } else {
    constexpr auto widths = []<class... Ss>(type_list<Ss...>) { return chain_widths<Ss...>(W); }(Specs{});
    if constexpr (S::in_features == widths[I]) {
      return true;
    } else if constexpr (I == 0) {
      return require_sequential_widths<sequential_layer_input_check<I, S::in_features, widths[I], S, void>>();
    } else {
      return require_sequential_widths<
          sequential_layer_input_check<I, S::in_features, widths[I], S, type_at<I - 1, Specs>>>();
    }
  }
}

template <class Seq, std::size_t W, class... Specs>
struct bind_chain_impl;
template <std::size_t... I, std::size_t W, class... Specs>
struct bind_chain_impl<std::index_sequence<I...>, W, Specs...> {
  static constexpr auto widths = chain_widths<Specs...>(W);
  static constexpr bool widths_match = (check_input_width<I, type_list<Specs...>, W>() && ...);
  // When a width does not match, bind the spec at the width it expects so that
  // the one static_assert above is the only error.
  template <class S, std::size_t Wi>
  using bind_or_expected = bind_t<S, (S::in_features == any_width ? Wi : S::in_features)>;
  using type = type_list<bind_or_expected<Specs, widths[I]>...>;
};

/// The bound children of a pipeline of specs fed W features.
template <std::size_t W, class... Specs>
using bind_chain = bind_chain_impl<std::index_sequence_for<Specs...>, W, Specs...>;

template <class List>
struct Chain;

/// A layer whose body's first kernel can store the dz of the fused pair
/// before it (a Residual: compose/residual.hpp, backward_through).
template <class L>
inline constexpr bool takes_derivative_through_body = [] {
  if constexpr (requires { L::takes_derivative_before; }) return L::takes_derivative_before;
  else return false;
}();

template <class... Ls>
struct Chain<type_list<Ls...>> {
  static constexpr std::size_t K = sizeof...(Ls);
  static_assert(K > 0, "ctnn: a Sequential needs at least one layer");

  using children = type_list<Ls...>;
  using first = type_at<0, children>;
  using last = type_at<K - 1, children>;

  static constexpr auto placements = place_in_sequence<Ls...>();

  static constexpr std::size_t in_features = first::in_features;
  static constexpr std::size_t out_features = last::out_features;
  static constexpr bool multi_output = last::multi_output;
  static constexpr std::size_t num_params = (Ls::num_params + ...);
  static constexpr std::size_t num_buffers = (Ls::num_buffers + ...);
  static constexpr std::size_t num_counters = (Ls::num_counters + ...);
  static constexpr auto params =
      children_specs<children>::template gather<false, children_specs<children>::num_params>(placements);
  static constexpr auto buffers =
      children_specs<children>::template gather<true, children_specs<children>::num_buffers>(placements);

  static constexpr std::array<std::size_t, K> out_widths{Ls::out_features...};
  static constexpr std::array<std::size_t, K> child_workspace{Ls::workspace_floats...};
  static constexpr std::array<std::size_t, K> child_grad{Ls::grad_floats...};

  // Workspace of one row: [outputs of children 0..K-2][workspace of each child].
  static constexpr auto output_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + out_widths[i - 1];
    return off;
  }();
  static constexpr std::size_t hidden_floats = output_offsets[K - 1];
  static constexpr auto workspace_offsets = [] {
    std::array<std::size_t, K> off{};
    off[0] = hidden_floats;
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + child_workspace[i - 1];
    return off;
  }();
  static constexpr std::size_t workspace_floats = workspace_offsets[K - 1] + child_workspace[K - 1];

  // Backward scratch of one row: two ping-pong gradient buffers as wide as the
  // widest hidden output, then the scratch of whichever child runs.
  static constexpr std::size_t widest_hidden = [] {
    std::size_t m = 0;
    for (std::size_t i = 0; i + 1 < K; ++i) m = std::max(m, out_widths[i]);
    return m;
  }();
  static constexpr std::size_t grad_floats =
      2 * widest_hidden + *std::max_element(child_grad.begin(), child_grad.end());

  static constexpr auto duplicate = first_duplicate_label(placements);
  static constexpr bool names_unique = [] {
    if constexpr (duplicate[0] < K)
      return duplicate_sibling_name_check<duplicate[0], duplicate[1], type_at<duplicate[0], children>,
                                          type_at<duplicate[1], children>>::ok;
    else
      return true;
  }();
  static constexpr bool only_last_multi_output = [] {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (multi_output_not_last_check<I, type_at<I, children>, I + 1 == K>::ok && ...);
    }(std::make_index_sequence<K>{});
  }();
  static_assert(names_unique && only_last_multi_output);

  // Which neighbours run as one kernel (compose/fusion.hpp).
  static constexpr auto fusion = fusion_plan<Ls...>();

  /// Per child: whether it heads a fused pair whose activation's derivative
  /// the child after the pair takes into its input-gradient kernel, that child
  /// being a Linear alone or the head of another pair (compose/fusion.hpp).
  /// Never with hooks, where every child runs alone.
  static constexpr std::array<bool, K> derivative_taken = []<std::size_t... I>(std::index_sequence<I...>) {
    constexpr std::array<bool, K> linear_alone{
        (fusion[I] == FusionRole::alone && is_linear<unwrapped_t<type_at<I, children>>>)...};
    constexpr std::array<bool, K> through_body{takes_derivative_through_body<unwrapped_t<type_at<I, children>>>...};
    std::array<bool, K> taken{};
    for (std::size_t i = 0; i + 2 < K; ++i)
      taken[i] = fusion[i] == FusionRole::fused_head &&
                 (fusion[i + 2] == FusionRole::fused_head || linear_alone[i + 2] || through_body[i + 2]);
    return taken;
  }(std::make_index_sequence<K>{});

  /// Which of the two backward gradient buffers holds the gradient of child
  /// i's output: each child reads one and writes its input gradient into the
  /// other. A pair whose derivative the next Linear takes gets its dz from
  /// that Linear directly (the gradient of the activation's output is never
  /// stored), so the buffers below it swap.
  template <bool Fused>
  static constexpr std::array<unsigned char, K> gradient_slots = [] {
    std::array<unsigned char, K> slot{};
    slot[K - 1] = 1;  // the caller's dy; the child before writes into buffer 0
    for (std::size_t i = K - 1; i-- > 0;)
      slot[i] = static_cast<unsigned char>(1 - slot[Fused && derivative_taken[i] ? i + 2 : i + 1]);
    return slot;
  }();

  /// Whether child I's input-gradient kernel multiplies by the derivative of
  /// the fused pair before it (when fusing: no hooks).
  template <bool Fused, std::size_t I>
  static constexpr bool takes_derivative = Fused && I >= 2 && derivative_taken[I - 2];
  /// That derivative (the pair's z and y in the workspace, and its bias
  /// gradient), or none.
  template <bool Fused, std::size_t I>
  static auto derivative_before(const Context& c, float* ws, std::size_t n) {
    if constexpr (takes_derivative<Fused, I>)
      return FusedLinearActivation<type_at<I - 2, children>, type_at<I - 1, children>>::gradient(
          child_context<I - 2>(c), output_of<I - 2>(nullptr, ws, n), output_of<I - 1>(nullptr, ws, n));
    else
      return kernels::ActivationGradient<kernels::NoActivation>{};
  }

  template <std::size_t I>
  static Context child_context(const Context& c) {
    const ChildPlacement& p = placements[I];
    return c.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset);
  }
  template <std::size_t I>
  static const float* input_of(const float* x, const float* ws, std::size_t n) {
    if constexpr (I == 0) return x; else return ws + n * output_offsets[I - 1];
  }
  template <std::size_t I>
  static float* output_of(float* y, float* ws, std::size_t n) {
    if constexpr (I == K - 1) return y; else return ws + n * output_offsets[I];
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
            if constexpr (!has_hooks<Hooks> && fusion[I] == FusionRole::fused_head) {
              FusedLinearActivation<type_at<I, children>, type_at<I + 1, children>>::forward(
                  child_context<I>(c), input_of<I>(x, ws, n), output_of<I>(y, ws, n), output_of<I + 1>(y, ws, n), n);
            } else if constexpr (!has_hooks<Hooks> && fusion[I] == FusionRole::fused_tail) {
              // ran with the Linear before it
            } else {
              detail::forward_module<type_at<I, children>>(child_context<I>(c), input_of<I>(x, ws, n),
                                                           output_of<I>(y, ws, n), n, ws + n * workspace_offsets[I],
                                                           hooks, child_name<Hooks>(name, placements[I].label.view()));
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }

  /// Runs the children backward, last to first. A child's input gradient is
  /// computed only if something before it is trainable or the caller asked for
  /// dx; a child with nothing to train and no gradient to pass on is skipped.
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch) {
    NoHooks none;
    backward(c, x, y, dy, dx, n, ws, scratch, none, {});
  }
  /// `before`: the derivative (and skip gradient) of a pair before the whole
  /// chain, for its first child to take (a Residual's body, without hooks).
  template <class Hooks, class Before = kernels::ActivationGradient<kernels::NoActivation>>
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch, Hooks& hooks, std::string_view name,
                       Before before = {}) {
    constexpr bool given_before = !std::is_same_v<Before, kernels::ActivationGradient<kernels::NoActivation>>;
    static_assert(!given_before || !has_hooks<Hooks>);
    float* const ping = scratch;
    float* const pong = scratch + n * widest_hidden;
    float* const child_scratch = scratch + 2 * n * widest_hidden;
    constexpr bool fused = !has_hooks<Hooks>;
    auto gradient_of_output = [&](std::size_t i) -> float* { return gradient_slots<fused>[i] == 0 ? ping : pong; };
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (
          [&] {
            constexpr std::size_t I = K - 1 - R;
            using L = type_at<I, children>;
            constexpr bool takes = takes_derivative<fused, I> || (I == 0 && given_before);
            const auto derivative = [&] {
              if constexpr (I == 0 && given_before) return before;
              else return derivative_before<fused, I>(c, ws, n);
            };
            const ChildPlacement& p = placements[I];
            const bool pass_gradient = dx != nullptr || c.any_trainable(0, p.tensor_offset);
            // The input gradient goes to the gradient of the previous child's
            // output, or, when this child takes the derivative of the pair
            // before it, to that pair's dz.
            float* g_in = nullptr;
            if constexpr (I == 0) g_in = dx;
            else if (pass_gradient) g_in = gradient_of_output(takes_derivative<fused, I> ? I - 2 : I - 1);
            if constexpr (fused && fusion[I] == FusionRole::fused_tail) {
              return;  // runs with the Linear before it, which comes next
            } else if constexpr (fused && fusion[I] == FusionRole::fused_head) {
              constexpr std::size_t T = I + 1;  // the activation
              using Pair = FusedLinearActivation<L, type_at<T, children>>;
              if (dx == nullptr && !c.any_trainable(0, placements[T].tensor_offset)) return;
              if constexpr (derivative_taken[I])  // the Linear after the pair stored dz
                Pair::backward_from_dz(child_context<I>(c), input_of<I>(x, ws, n), gradient_of_output(I), g_in, n,
                                       derivative());
              else
                Pair::backward_through(child_context<I>(c), input_of<I>(x, ws, n), output_of<I>(nullptr, ws, n),
                                       T == K - 1 ? y : output_of<T>(nullptr, ws, n),
                                       T == K - 1 ? dy : gradient_of_output(T), gradient_of_output(I), g_in, n,
                                       derivative());
              return;
            }
            if (!pass_gradient && !c.any_trainable(p.tensor_offset, L::params.size())) return;
            const float* g_out = I == K - 1 ? dy : gradient_of_output(I);
            if constexpr (takes && takes_derivative_through_body<unwrapped_t<L>>) {  // a Residual
              unwrapped_t<L>::backward_through(child_context<I>(c), input_of<I>(x, ws, n), g_out, g_in, n,
                                               ws + n * workspace_offsets[I], child_scratch, derivative());
            } else if constexpr (takes) {  // a Linear alone
              unwrapped_t<L>::backward_through(child_context<I>(c), input_of<I>(x, ws, n), g_out, g_in, n,
                                               derivative());
            } else {
              detail::backward_module<L>(child_context<I>(c), input_of<I>(x, ws, n),
                                         I == K - 1 ? y : output_of<I>(nullptr, ws, n), g_out, g_in, n,
                                         ws + n * workspace_offsets[I], child_scratch, hooks,
                                         child_name<Hooks>(name, p.label.view()));
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }
};

/// A pipeline layer: Sequential, ModuleList, Residual's body and the other
/// layers built on Chain (what the row and lane programs walk into).
template <class L>
concept ChainLayer = requires { typename L::children; } && std::is_base_of_v<Chain<typename L::children>, L>;

}  // namespace ctnn::detail

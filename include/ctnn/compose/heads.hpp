// Heads<Named<"classify", A>, Named<"regress", B>>: PyTorch's ModuleDict of
// heads over a shared trunk. Every head reads the same input; the model's
// output holds one batch per head, reachable by its compile-time name:
// `out.get<"classify">()`. A Heads ends its pipeline.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/named.hpp"
#include "ctnn/core/children.hpp"
#include "ctnn/core/hooks.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
template <std::size_t HeadPosition, class Head>
struct head_must_be_named_check {
  static_assert(is_named_layer<Head>,
                "ctnn: every head of Heads<...> needs a name: Heads<Named<\"classify\", L>, ...>");
  static constexpr bool ok = true;
};
template <std::size_t HeadPosition, std::size_t ExpectsFeatures, std::size_t TrunkFeatures, class Head>
struct head_input_check {
  static_assert(ExpectsFeatures == TrunkFeatures,
                "ctnn: a head of Heads<...> expects a different number of input features than the trunk "
                "produces (HeadPosition, ExpectsFeatures, TrunkFeatures in this check's arguments)");
  static constexpr bool ok = true;
};
}  // namespace detail

template <std::size_t W, class... HeadSpecs>
struct HeadsLayer {
  static constexpr std::size_t K = sizeof...(HeadSpecs);
  using children = type_list<bind_t<HeadSpecs, W>...>;
  static constexpr auto placements = detail::place_in_sequence<bind_t<HeadSpecs, W>...>();
  static constexpr bool heads_named = []<std::size_t... I>(std::index_sequence<I...>) {
    return (detail::head_must_be_named_check<I, type_at<I, children>>::ok && ...);
  }(std::index_sequence_for<HeadSpecs...>{});
  static constexpr bool heads_fit = []<std::size_t... I>(std::index_sequence<I...>) {
    return (detail::head_input_check<I, (HeadSpecs::in_features == any_width ? W : HeadSpecs::in_features),
                                     W, HeadSpecs>::ok &&
            ...);
  }(std::index_sequence_for<HeadSpecs...>{});
  static_assert(heads_named && heads_fit);
  static constexpr auto duplicate = detail::first_duplicate_label(placements);
  static_assert(duplicate[0] == K, "ctnn: two heads of Heads<...> have the same name");

  static constexpr std::string_view kind = "ModuleDict";
  static constexpr std::size_t in_features = W;
  static constexpr std::array<std::size_t, K> head_widths{bind_t<HeadSpecs, W>::out_features...};
  static constexpr std::size_t out_features = (bind_t<HeadSpecs, W>::out_features + ...);
  static constexpr bool multi_output = true;
  static constexpr std::size_t num_params = (bind_t<HeadSpecs, W>::num_params + ...);
  static constexpr std::size_t num_buffers = (bind_t<HeadSpecs, W>::num_buffers + ...);
  static constexpr std::size_t num_counters = (bind_t<HeadSpecs, W>::num_counters + ...);
  static constexpr auto params = detail::children_specs<children>::template gather<
      false, detail::children_specs<children>::num_params>(placements);
  static constexpr auto buffers = detail::children_specs<children>::template gather<
      true, detail::children_specs<children>::num_buffers>(placements);

  /// Head i's output is the block y + n * head_offsets[i] of n × head_widths[i].
  static constexpr auto head_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + head_widths[i - 1];
    return off;
  }();
  static constexpr std::array<std::size_t, K> child_workspace{bind_t<HeadSpecs, W>::workspace_floats...};
  static constexpr auto workspace_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + child_workspace[i - 1];
    return off;
  }();
  static constexpr std::size_t workspace_floats = workspace_offsets[K - 1] + child_workspace[K - 1];
  static constexpr std::size_t grad_floats = W + std::max({bind_t<HeadSpecs, W>::grad_floats...});

  /// Position of the head called `name`, or K.
  static constexpr std::size_t index_of(std::string_view name) {
    for (std::size_t i = 0; i < K; ++i)
      if (placements[i].label.view() == name) return i;
    return K;
  }

  template <std::size_t>
  using bind = HeadsLayer;

  template <std::size_t I>
  static Context child_context(const Context& c) {
    const ChildPlacement& p = placements[I];
    return c.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset);
  }

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    NoHooks none;
    forward(c, x, y, n, ws, none, {});
  }
  template <class Hooks>
  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws, Hooks& hooks,
                      std::string_view name) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (detail::forward_module<type_at<I, children>>(child_context<I>(c), x, y + n * head_offsets[I], n,
                                                    ws + n * workspace_offsets[I], hooks,
                                                    detail::child_name<Hooks>(name, placements[I].label.view())),
       ...);
    }(std::make_index_sequence<K>{});
  }

  /// Every head's input gradient is summed into dx: the trunk feeds them all.
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch) {
    NoHooks none;
    backward(c, x, y, dy, dx, n, ws, scratch, none, {});
  }
  template <class Hooks>
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float* ws, float* scratch, Hooks& hooks, std::string_view name) {
    float* head_dx = scratch;
    float* child_scratch = scratch + n * W;
    bool first = true;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            using L = type_at<I, children>;
            const bool trains = c.any_trainable(placements[I].tensor_offset, L::params.size());
            if (!dx && !trains) return;
            float* target = dx == nullptr ? nullptr : (first ? dx : head_dx);
            detail::backward_module<L>(child_context<I>(c), x, y + n * head_offsets[I], dy + n * head_offsets[I],
                                       target, n, ws + n * workspace_offsets[I], child_scratch, hooks,
                                       detail::child_name<Hooks>(name, placements[I].label.view()));
            if (dx && !first)
              for (std::size_t i = 0; i < n * W; ++i) dx[i] += head_dx[i];
            if (dx) first = false;
          }(),
          ...);
    }(std::make_index_sequence<K>{});
    if (dx && first)
      for (std::size_t i = 0; i < n * W; ++i) dx[i] = 0.0f;
  }

  static void print(std::ostream& os, int indent) { detail::print_container<HeadsLayer>(os, indent, "ModuleDict"); }
};

template <LayerSpec... HeadSpecs>
struct Heads {
  static_assert(sizeof...(HeadSpecs) > 0, "ctnn: Heads<> needs at least one head");
  static constexpr std::size_t in_features = detail::first_fixed_width<HeadSpecs...>();
  static constexpr std::size_t out_width(std::size_t in) { return (HeadSpecs::out_width(in) + ...); }
  template <std::size_t W>
  using bind = HeadsLayer<W, HeadSpecs...>;
};

}  // namespace ctnn

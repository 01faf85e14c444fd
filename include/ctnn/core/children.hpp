// How a combinator places its children: each child's label (its Named name or
// its position) and where its slice of the flat storage starts. Everything that
// walks the module tree (parameter tables, printing, named_modules, apply) reads
// this one table, so the naming rule of DESIGN.md lives in one place.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {

template <class L>
concept HasChildren = L::children::size > 0;

template <class L>
inline constexpr bool is_named_layer = requires { L::is_named; };
template <class L>
inline constexpr bool is_functional_layer = requires { L::is_functional; };

/// Labels and offsets of a list of bound children laid out one after another.
template <class... Ls>
constexpr std::array<ChildPlacement, sizeof...(Ls)> place_in_sequence() {
  std::array<ChildPlacement, sizeof...(Ls)> out{};
  std::size_t i = 0, position = 0, p = 0, b = 0, c = 0, t = 0;
  (
      [&] {
        ChildPlacement& pl = out[i];
        pl.registered = !is_functional_layer<Ls>;
        if constexpr (is_named_layer<Ls>)
          pl.label = static_name(Ls::name.view());
        else if constexpr (!is_functional_layer<Ls>)
          pl.label = index_name(position);
        if (pl.registered) ++position;
        pl.param_offset = p;
        pl.buffer_offset = b;
        pl.counter_offset = c;
        pl.tensor_offset = t;
        p += Ls::num_params;
        b += Ls::num_buffers;
        c += Ls::num_counters;
        t += Ls::params.size();
        ++i;
      }(),
      ...);
  return out;
}

template <class List>
struct children_specs;
template <class... Ls>
struct children_specs<type_list<Ls...>> {
  static constexpr std::size_t num_params = (std::size_t{0} + ... + Ls::params.size());
  static constexpr std::size_t num_buffers = (std::size_t{0} + ... + Ls::buffers.size());

  /// Every child's parameters (or buffers), renamed "<label>.<name>" and moved to
  /// the child's offsets.
  template <bool Buffers, std::size_t Count, std::size_t K>
  static constexpr std::array<TensorSpec, Count> gather(const std::array<ChildPlacement, K>& placements) {
    std::array<TensorSpec, Count> out{};
    std::size_t k = 0, i = 0;
    (
        [&] {
          const auto& specs = []() -> const auto& {
            if constexpr (Buffers) return Ls::buffers; else return Ls::params;
          }();
          const ChildPlacement& pl = placements[i++];
          for (TensorSpec s : specs) {
            static_name full = pl.label;
            full.append(".").append(s.name.view());
            s.name = full;
            s.offset += s.storage == Storage::parameter ? pl.param_offset
                        : s.storage == Storage::buffer  ? pl.buffer_offset
                                                        : pl.counter_offset;
            out[k++] = s;
          }
        }(),
        ...);
    return out;
  }
};

/// First pair of registered siblings with the same label, or {K, K}: the
/// smallest i whose label comes again, and the first j > i that repeats it.
/// The positions are sorted by (label, position) and equal neighbours
/// compared, K·log K label comparisons: comparing every pair took clang's
/// default constexpr step limit (2^20) for a Sequential of 256 layers.
template <std::size_t K>
constexpr std::array<std::size_t, 2> first_duplicate_label(const std::array<ChildPlacement, K>& p) {
  std::array<std::size_t, K> order{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < K; ++i)
    if (p[i].registered) order[n++] = i;
  std::sort(order.begin(), order.begin() + n, [&](std::size_t a, std::size_t b) {
    const std::string_view la = p[a].label.view(), lb = p[b].label.view();
    return la < lb || (la == lb && a < b);
  });
  // Within a run of equal labels the positions ascend: its first two are that
  // label's (i, j); the answer is the run with the smallest i.
  std::array<std::size_t, 2> first{K, K};
  for (std::size_t t = 0; t + 1 < n; ++t)
    if (p[order[t]].label.view() == p[order[t + 1]].label.view() &&
        (t == 0 || p[order[t - 1]].label.view() != p[order[t]].label.view()) && order[t] < first[0])
      first = {order[t], order[t + 1]};
  return first;
}

/// Prints "(label): child" lines as PyTorch's Module.__repr__ does, children
/// indented two spaces more than their parent.
template <class List, std::size_t K>
inline void print_children(std::ostream& os, int indent, const std::array<ChildPlacement, K>& placements);
template <class... Ls, std::size_t K>
inline void print_children_impl(type_list<Ls...>, std::ostream& os, int indent,
                                const std::array<ChildPlacement, K>& placements) {
  std::size_t i = 0;
  (
      [&] {
        const ChildPlacement& pl = placements[i++];
        if (!pl.registered) return;
        indent_to(os, indent + 2);
        os << '(' << pl.label.view() << "): ";
        Ls::print(os, indent + 2);
        os << '\n';
      }(),
      ...);
}
template <class List, std::size_t K>
inline void print_children(std::ostream& os, int indent, const std::array<ChildPlacement, K>& placements) {
  print_children_impl(List{}, os, indent, placements);
}

/// "Kind(\n  (0): ...\n)" or "Kind()" when there is nothing to show.
template <class L>
inline void print_container(std::ostream& os, int indent, std::string_view kind) {
  os << kind << '(';
  bool any = false;
  for (const auto& pl : L::placements) any = any || pl.registered;
  if (!any) {
    os << ')';
    return;
  }
  os << '\n';
  print_children<typename L::children>(os, indent, L::placements);
  indent_to(os, indent);
  os << ')';
}

}  // namespace detail
}  // namespace ctnn

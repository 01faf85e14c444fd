// Sequential<Specs...>: PyTorch's nn.Sequential. Each child's output feeds the
// next; neighbours' widths are checked when the pipeline is bound, and the
// error names the position and both sizes.
#pragma once

#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/compose/chain.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

template <std::size_t W, class... Specs>
struct SequentialLayer : detail::Chain<typename detail::bind_chain<W, Specs...>::type> {
  static constexpr std::string_view kind = "Sequential";
  static constexpr bool widths_checked = detail::bind_chain<W, Specs...>::widths_match;
  static_assert(widths_checked);
  template <std::size_t>
  using bind = SequentialLayer;
  static void print(std::ostream& os, int indent) {
    detail::print_container<SequentialLayer>(os, indent, "Sequential");
  }
};

namespace detail {
/// Facts of a pipeline spec, available when its input width is fixed.
template <std::size_t W, class Bound>
struct pipeline_facts {
  using layer = Bound;
  static constexpr std::size_t out_features = Bound::out_features;
  static constexpr std::size_t num_params = Bound::num_params;
  static constexpr std::size_t num_buffers = Bound::num_buffers;
  static constexpr std::size_t num_counters = Bound::num_counters;
  static constexpr std::size_t workspace_floats = Bound::workspace_floats;
  static constexpr std::size_t activation_floats = Bound::workspace_floats;
  static constexpr auto params = Bound::params;
  static constexpr auto buffers = Bound::buffers;
};
template <class Bound>
struct pipeline_facts<any_width, Bound> {};

template <class S>
concept has_input_shape = requires { S::input_shape; };

template <class First>
constexpr auto first_input_shape() {
  if constexpr (has_input_shape<First>) return First::input_shape;
  else return std::array<std::size_t, 1>{First::in_features};
}
}  // namespace detail

template <LayerSpec... Specs>
struct Sequential
    : detail::pipeline_facts<detail::first_fixed_width<Specs...>(),
                             SequentialLayer<detail::first_fixed_width<Specs...>(), Specs...>> {
  static_assert(sizeof...(Specs) > 0, "ctnn: Sequential<> needs at least one layer");
  static constexpr std::size_t in_features = detail::first_fixed_width<Specs...>();
  static constexpr auto input_shape = detail::first_input_shape<type_at<0, type_list<Specs...>>>();
  static constexpr std::size_t out_width(std::size_t in) { return detail::chain_widths<Specs...>(in).back(); }
  template <std::size_t W>
  using bind = SequentialLayer<W, Specs...>;
};

}  // namespace ctnn

// Helpers for PyTorch's ModuleList patterns.
//
//  MLP<784, 512, 256, 128, 10>     Linear layers between consecutive widths with
//                                  ReLU between them (none after the last), the
//                                  tutorial's DynamicMLP. Only the Linear layers
//                                  are children ("0.weight" .. "3.bias"): the
//                                  activations are functional, as in its loop.
//  MLPOf<Tanh, 1, 64, 64, 1>       the same with another activation.
//  Repeat<4, Block>                four copies of Block, numbered 0..3.
#pragma once

#include <array>
#include <cstddef>
#include <ostream>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/functional.hpp"
#include "ctnn/compose/sequential.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/linear.hpp"

namespace ctnn {

template <std::size_t W, class... Specs>
struct ModuleListLayer : SequentialLayer<W, Specs...> {
  static constexpr std::string_view kind = "ModuleList";
  template <std::size_t>
  using bind = ModuleListLayer;
  static void print(std::ostream& os, int indent) {
    detail::print_container<ModuleListLayer>(os, indent, "ModuleList");
  }
};

namespace detail {
template <class Act, std::size_t... Widths>
struct mlp_pieces {
  static constexpr std::array<std::size_t, sizeof...(Widths)> widths{Widths...};
  template <std::size_t I>
  using piece = std::conditional_t<I % 2 == 0, Linear<widths[I / 2], widths[I / 2 + 1]>, Functional<Act>>;
  template <std::size_t... I>
  static auto make(std::index_sequence<I...>) -> type_list<piece<I>...>;
  using type = decltype(make(std::make_index_sequence<2 * sizeof...(Widths) - 3>{}));
};

template <class List>
struct module_list_spec;
template <class... Specs>
struct module_list_spec<type_list<Specs...>> : Sequential<Specs...> {
  template <std::size_t W>
  using bind = ModuleListLayer<W, Specs...>;
  using layer = ModuleListLayer<Sequential<Specs...>::in_features, Specs...>;
};

template <std::size_t N, class Block, class = std::make_index_sequence<N>>
struct repeat_impl;
template <std::size_t N, class Block, std::size_t... I>
struct repeat_impl<N, Block, std::index_sequence<I...>> {
  template <std::size_t>
  using copy = Block;
  using type = Sequential<copy<I>...>;
};
}  // namespace detail

template <class Act, std::size_t... Widths>
struct MLPOf : detail::module_list_spec<typename detail::mlp_pieces<Act, Widths...>::type> {
  static_assert(sizeof...(Widths) >= 2, "ctnn: MLP<Widths...> needs at least an input and an output width");
};

template <std::size_t... Widths>
using MLP = MLPOf<ReLU, Widths...>;

template <std::size_t N, class Block>
using Repeat = typename detail::repeat_impl<N, Block>::type;

}  // namespace ctnn

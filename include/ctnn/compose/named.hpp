// Named<"fc1", L>: gives a child its attribute name, so its parameters are
// "fc1.weight" instead of "0.weight" (PyTorch's attribute names).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "ctnn/core/fixed_string.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

/// The bound form: the inner layer with a name attached.
template <fixed_string Name, class L>
struct NamedLayer : L {
  static constexpr auto name = Name;
  static constexpr bool is_named = true;
  using inner = L;
  template <std::size_t W>
  using bind = NamedLayer;
};

template <fixed_string Name, LayerSpec S>
struct Named {
  static_assert(Name.size() > 0, "ctnn: Named<\"\", L>: a name cannot be empty");
  static_assert(Name.view().find('.') == std::string_view::npos,
                "ctnn: Named<\"...\", L>: a name cannot contain '.', which joins the levels of dotted names "
                "(PyTorch rejects it too)");
  static constexpr auto name = Name;
  static constexpr std::size_t in_features = S::in_features;
  static constexpr std::size_t out_width(std::size_t in) { return S::out_width(in); }
  template <std::size_t W>
  using bind = NamedLayer<Name, bind_t<S, W>>;
  static constexpr auto input_shape = [] {
    if constexpr (requires { S::input_shape; }) return S::input_shape;
    else return std::array<std::size_t, 1>{S::in_features};
  }();
};

}  // namespace ctnn

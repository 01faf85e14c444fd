// Functional<A>: an activation applied in a pipeline without being registered
// as a child, like `torch.relu(x)` in a forward: it takes no position, so the
// children around it are numbered as PyTorch numbers a ModuleList's layers.
#pragma once

#include <array>
#include <cstddef>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <class L>
struct FunctionalLayer : L {
  static_assert(L::num_params == 0 && L::num_buffers == 0 && L::num_counters == 0,
                "ctnn: Functional<L> cannot own parameters or buffers (they would have no name); "
                "use L directly");
  static constexpr bool is_functional = true;
  template <std::size_t W>
  using bind = FunctionalLayer;
};

template <LayerSpec S>
struct Functional {
  static constexpr std::size_t in_features = S::in_features;
  static constexpr std::size_t out_width(std::size_t in) { return S::out_width(in); }
  template <std::size_t W>
  using bind = FunctionalLayer<bind_t<S, W>>;
  static constexpr auto input_shape = [] {
    if constexpr (requires { S::input_shape; }) return S::input_shape;
    else return std::array<std::size_t, 1>{S::in_features};
  }();
};

}  // namespace ctnn

// Flatten<1, 28, 28>: a row of static shape 1×28×28 becomes 784 features, as
// PyTorch's nn.Flatten() (start_dim=1). Rows are stored contiguously in C order
// either way, so forward and backward are copies.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <std::size_t... Dims>
struct Flatten : LeafDefaults, FixedSpec<Flatten<Dims...>> {
  static_assert(sizeof...(Dims) >= 1, "ctnn: Flatten<Dims...> needs the input shape of one row, e.g. Flatten<1, 28, 28>");
  static_assert(((Dims > 0) && ...), "ctnn: Flatten<Dims...> needs every dimension > 0");

  static constexpr std::string_view kind = "Flatten";
  static constexpr std::array<std::size_t, sizeof...(Dims)> input_shape{Dims...};
  static constexpr std::size_t in_features = (Dims * ...);
  static constexpr std::size_t out_features = in_features;

  static void forward(const Context&, const float* x, float* y, std::size_t n, float*) {
    std::copy_n(x, n * in_features, y);
  }
  static void backward(const Context&, const float*, const float*, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    if (dx) std::copy_n(dy, n * in_features, dx);
  }
  static void print(std::ostream& os, int) { os << "Flatten(start_dim=1, end_dim=-1)"; }
};

}  // namespace ctnn

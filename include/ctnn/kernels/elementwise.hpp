// Elementwise arithmetic kernels, on the architecture a model chose:
//   add(a, x, y, out, count)   out = x + y (the residual connection)
#pragma once

#include <cstddef>

#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"

namespace ctnn::kernels {

inline void add(Arch a, const float* x, const float* y, float* out, std::size_t count) {
  dispatch(a, [&](auto tag) { add(tag, x, y, out, count); });
}

}  // namespace ctnn::kernels

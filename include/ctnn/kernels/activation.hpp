// Elementwise activation kernels, on the architecture a model chose:
//   activation_forward<Fn>(a, x, y, count)             y = f(x)
//   activation_backward<Fn, W>(a, x, y, dy, dx, n, db)  dx = dy ⊙ f'(x), and
//                                                      db += Σ_rows dx unless null
// The vector forms are listed in kernels/activation_forms.hpp; other
// activations run their scalar f and f' here, element by element, compiled like
// the caller's code (so they give exactly what Fn::f and Fn::df give).
#pragma once

#include <cstddef>

#include "ctnn/kernels/activation_forms.hpp"
#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"

namespace ctnn::kernels {

template <class Fn>
inline void activation_forward(Arch a, const float* x, float* y, std::size_t count) {
  if constexpr (has_vector_form<Fn>) {
    dispatch(a, [&](auto tag) { activation_forward<Fn>(tag, x, y, count); });
  } else {
    for (std::size_t i = 0; i < count; ++i) y[i] = Fn::f(x[i]);
  }
}

template <class Fn, std::size_t Width>
inline void activation_backward(Arch a, const float* x, const float* y, const float* dy, float* dx, std::size_t n,
                                float* db) {
  if constexpr (has_vector_form<Fn>) {
    dispatch(a, [&](auto tag) { activation_backward<Fn, Width>(tag, x, y, dy, dx, n, db); });
  } else {
    for (std::size_t i = 0; i < n * Width; ++i) dx[i] = dy[i] * Fn::df(x[i], y[i]);
    if (db)
      for (std::size_t j = 0; j < Width; ++j) {
        float sum = 0.0f;
        for (std::size_t r = 0; r < n; ++r) sum += dx[r * Width + j];
        db[j] += sum;
      }
  }
}

}  // namespace ctnn::kernels

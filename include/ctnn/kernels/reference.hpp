// The plain kernels of a fully connected layer: the reference the
// per-architecture kernels are tested against (tests/test_kernels.cpp). Loops
// as the definition reads, float accumulation in index order. Row-major
// throughout: x[n, In], y[n, Out], weight[Out, In] (PyTorch's layout).
#pragma once

#include <cstddef>

namespace ctnn::kernels::reference {

/// y = x · weightᵀ + bias
template <std::size_t In, std::size_t Out, bool Bias>
inline void linear_forward(const float* weight, const float* bias, const float* x, float* y,
                           std::size_t n) {
  for (std::size_t r = 0; r < n; ++r) {
    const float* xr = x + r * In;
    float* yr = y + r * Out;
    for (std::size_t o = 0; o < Out; ++o) {
      const float* w = weight + o * In;
      float acc = 0.0f;
      for (std::size_t i = 0; i < In; ++i) acc += xr[i] * w[i];
      if constexpr (Bias) acc += bias[o];
      yr[o] = acc;
    }
  }
}

/// dx = dy · weight (overwrites dx)
template <std::size_t In, std::size_t Out>
inline void linear_backward_input(const float* weight, const float* dy, float* dx, std::size_t n) {
  for (std::size_t r = 0; r < n; ++r) {
    float* dxr = dx + r * In;
    const float* dyr = dy + r * Out;
    for (std::size_t i = 0; i < In; ++i) dxr[i] = 0.0f;
    for (std::size_t o = 0; o < Out; ++o) {
      const float g = dyr[o];
      const float* w = weight + o * In;
      for (std::size_t i = 0; i < In; ++i) dxr[i] += g * w[i];
    }
  }
}

/// dweight += dyᵀ · x
template <std::size_t In, std::size_t Out>
inline void linear_backward_weight(const float* x, const float* dy, float* dweight, std::size_t n) {
  for (std::size_t r = 0; r < n; ++r) {
    const float* xr = x + r * In;
    const float* dyr = dy + r * Out;
    for (std::size_t o = 0; o < Out; ++o) {
      const float g = dyr[o];
      float* dw = dweight + o * In;
      for (std::size_t i = 0; i < In; ++i) dw[i] += g * xr[i];
    }
  }
}

/// dbias += Σ_rows dy
template <std::size_t Out>
inline void bias_backward(const float* dy, float* dbias, std::size_t n) {
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t o = 0; o < Out; ++o) dbias[o] += dy[r * Out + o];
}

}  // namespace ctnn::kernels::reference

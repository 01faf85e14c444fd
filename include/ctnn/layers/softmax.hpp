// Softmax and LogSoftmax over the features of each row (dim=-1).
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
/// Largest element of a row and log Σ exp(x - max), the stable pieces of both layers.
template <std::size_t W>
inline float row_max(const float* x) {
  float m = x[0];
  for (std::size_t i = 1; i < W; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
}  // namespace detail

template <std::size_t W, bool Log>
struct RowSoftmax : LeafDefaults, FixedSpec<RowSoftmax<W, Log>> {
  static constexpr std::string_view kind = Log ? "LogSoftmax" : "Softmax";
  static constexpr std::size_t in_features = W;
  static constexpr std::size_t out_features = W;

  static void forward(const Context&, const float* x, float* y, std::size_t n, float*) {
    for (std::size_t r = 0; r < n; ++r) {
      const float* xr = x + r * W;
      float* yr = y + r * W;
      const float m = detail::row_max<W>(xr);
      float sum = 0.0f;
      for (std::size_t i = 0; i < W; ++i) sum += std::exp(xr[i] - m);
      if constexpr (Log) {
        const float lse = m + std::log(sum);
        for (std::size_t i = 0; i < W; ++i) yr[i] = xr[i] - lse;
      } else {
        const float inv = 1.0f / sum;
        for (std::size_t i = 0; i < W; ++i) yr[i] = std::exp(xr[i] - m) * inv;
      }
    }
  }

  static void backward(const Context&, const float*, const float* y, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    if (!dx) return;
    for (std::size_t r = 0; r < n; ++r) {
      const float* yr = y + r * W;
      const float* gr = dy + r * W;
      float* dr = dx + r * W;
      if constexpr (Log) {  // dx = dy - softmax · Σ dy
        float total = 0.0f;
        for (std::size_t i = 0; i < W; ++i) total += gr[i];
        for (std::size_t i = 0; i < W; ++i) dr[i] = gr[i] - std::exp(yr[i]) * total;
      } else {  // dx = y ⊙ (dy - Σ dy·y)
        float dot = 0.0f;
        for (std::size_t i = 0; i < W; ++i) dot += gr[i] * yr[i];
        for (std::size_t i = 0; i < W; ++i) dr[i] = yr[i] * (gr[i] - dot);
      }
    }
  }

  static void print(std::ostream& os, int) { os << kind << "(dim=-1)"; }
};

struct Softmax {
  static constexpr std::size_t in_features = any_width;
  static constexpr std::size_t out_width(std::size_t in) { return in; }
  template <std::size_t W>
  using bind = RowSoftmax<W, false>;
};

struct LogSoftmax {
  static constexpr std::size_t in_features = any_width;
  static constexpr std::size_t out_width(std::size_t in) { return in; }
  template <std::size_t W>
  using bind = RowSoftmax<W, true>;
};

}  // namespace ctnn

// Softmax, LogSoftmax and Dropout on the device.
//
//   RowSoftmaxForward / RowSoftmaxBackward  one thread per row (grid-stride),
//       the CPU layer's float arithmetic (layers/softmax.hpp): the row's max,
//       the sum of exp(x - max), then y; backward from y.
//   DropoutForward  elementwise; element i of a forward keeps its value with
//       probability 1 - p, scaled by 1 / (1 - p) (PyTorch's inverted
//       dropout), and the scaled mask is kept for backward. Its random number
//       is a counter-based hash (SplitMix64) of the forward's key and i, so
//       the mask does not depend on the grid, and the device and the host
//       emulation draw the same bits. They are not the CPU Model's bits (that
//       one draws from its sequential generator).
//   Multiply        dx = dy * mask.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/block.hpp"
#include "ctnn/cuda/kernels/elementwise.hpp"

namespace ctnn::cuda::kernels {

template <std::size_t W, bool Log>
struct RowSoftmaxForward {
  static constexpr unsigned threads = 256;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, float* y, std::size_t n) {
    grid_stride(blk, n, [&](std::size_t r) {
      const float* xr = x + r * W;
      float* yr = y + r * W;
      float m = xr[0];
      for (std::size_t i = 1; i < W; ++i) m = xr[i] > m ? xr[i] : m;
      float sum = 0.0f;
      for (std::size_t i = 0; i < W; ++i) sum += ::expf(xr[i] - m);
      if constexpr (Log) {
        const float lse = m + ::logf(sum);
        for (std::size_t i = 0; i < W; ++i) yr[i] = xr[i] - lse;
      } else {
        const float inv = 1.0f / sum;
        for (std::size_t i = 0; i < W; ++i) yr[i] = ::expf(xr[i] - m) * inv;
      }
    });
  }
};

template <std::size_t W, bool Log>
struct RowSoftmaxBackward {
  static constexpr unsigned threads = 256;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* y, const float* dy, float* dx, std::size_t n) {
    grid_stride(blk, n, [&](std::size_t r) {
      const float* yr = y + r * W;
      const float* gr = dy + r * W;
      float* dr = dx + r * W;
      if constexpr (Log) {  // dx = dy - softmax * sum(dy)
        float total = 0.0f;
        for (std::size_t i = 0; i < W; ++i) total += gr[i];
        for (std::size_t i = 0; i < W; ++i) dr[i] = gr[i] - ::expf(yr[i]) * total;
      } else {  // dx = y * (dy - sum(dy * y))
        float dot = 0.0f;
        for (std::size_t i = 0; i < W; ++i) dot += gr[i] * yr[i];
        for (std::size_t i = 0; i < W; ++i) dr[i] = yr[i] * (gr[i] - dot);
      }
    });
  }
};

/// SplitMix64's output function.
CTNN_HD_INLINE std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/// The key of a dropout forward: the model's seed and how many dropout
/// forwards it ran before.
CTNN_HD_INLINE std::uint64_t dropout_key(std::uint64_t seed, std::uint64_t draw) {
  return mix64(seed + (draw + 1) * 0xD1B54A32D192ED03ull);
}
/// Element i's uniform number in [0, 1), 24 bits.
CTNN_HD_INLINE float dropout_uniform(std::uint64_t key, std::size_t i) {
  const std::uint64_t bits = mix64(key + (static_cast<std::uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

/// mask[i] = (u_i < p ? 0 : keep_scale); y[i] = x[i] * mask[i].
struct DropoutForward {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, float* y, float* mask, std::size_t count,
                          std::uint64_t key, float threshold, float keep_scale) {
    grid_stride(blk, count, [&](std::size_t i) {
      const float m = dropout_uniform(key, i) < threshold ? 0.0f : keep_scale;
      mask[i] = m;
      y[i] = x[i] * m;
    });
  }
};

/// y = a * b
struct Multiply {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* a, const float* b, float* y, std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { y[i] = a[i] * b[i]; });
  }
};

}  // namespace ctnn::cuda::kernels

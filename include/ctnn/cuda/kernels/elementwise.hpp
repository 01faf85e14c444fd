// Elementwise kernels and the fixed-order reduction of partial sums. Each is a
// 1-D grid-stride loop: element i is handled by thread (i mod 256) of block
// (i / 256) mod gridDim.x.
#pragma once

#include <cstddef>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/activation.hpp"
#include "ctnn/cuda/kernels/block.hpp"

namespace ctnn::cuda::kernels {

inline constexpr unsigned elementwise_threads = 256;

/// Calls f(i) for every i < count, as the thread that owns it.
template <class Block, class F>
CTNN_HD_INLINE void grid_stride(const Block& blk, std::size_t count, F&& f) {
  const std::size_t first = static_cast<std::size_t>(blk.block_index().x) * Block::threads;
  const std::size_t stride = static_cast<std::size_t>(blk.grid_size().x) * Block::threads;
  blk.each([&](unsigned t) {
    for (std::size_t i = first + t; i < count; i += stride) f(i);
  });
}

struct NoShared {};

/// y = f(x)
template <class Act>
struct ActivationForward {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, float* y, std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { y[i] = device_activation<Act>::f(x[i]); });
  }
};

/// dx = dy * f'(x, y)
template <class Act>
struct ActivationBackward {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, const float* y, const float* dy, float* dx,
                          std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { dx[i] = dy[i] * device_activation<Act>::df(x[i], y[i]); });
  }
};

/// y = a + b (the skip connection of a residual block)
struct Add {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* a, const float* b, float* y, std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { y[i] = a[i] + b[i]; });
  }
};

/// y += a
struct Accumulate {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* a, float* y, std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { y[i] += a[i]; });
  }
};

/// y *= k
struct Scale {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, float* y, float k, std::size_t count) {
    grid_stride(blk, count, [&](std::size_t i) { y[i] *= k; });
  }
};

/// out[i] (+)= sum over s < splits of partial[s * count + i]. A block covers
/// 32 consecutive i (coalesced) with 8 lanes: lane l adds the splits l, l + 8,
/// l + 16, ... in order, then the 8 lane sums are added in lane order, so the
/// result does not depend on the grid or on scheduling. Grid: x =
/// add_partials_blocks(count).
struct AddPartials {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct shared {
    SharedTile<float, lanes, columns> sums;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* partial, std::size_t splits, float* out,
                          std::size_t count, bool accumulate) {
    const std::size_t c0 = static_cast<std::size_t>(blk.block_index().x) * columns;
    blk.each([&](unsigned t) {
      const std::size_t i = c0 + t % columns;
      float sum = 0.0f;
      if (i < count)
        for (std::size_t sp = t / columns; sp < splits; sp += lanes) sum += partial[sp * count + i];
      s.sums(t / columns, t % columns) = sum;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t i = c0 + t;
      if (t < columns && i < count) {
        float total = 0.0f;
        for (unsigned l = 0; l < lanes; ++l) total += s.sums(l, t);
        out[i] = accumulate ? out[i] + total : total;
      }
    });
  }
};
constexpr unsigned add_partials_blocks(std::size_t count) {
  const std::size_t b = (count + AddPartials::columns - 1) / AddPartials::columns;
  return b == 0 ? 1u : static_cast<unsigned>(b);
}

/// The gradient at a Linear's output, and its bias gradient:
///   dz = dy * act'(z, y)          (written to dz when ComputeDz)
///   partial[chunk][c] = sum over the chunk's rows of dz[r][c]  (when Bias)
/// Grid: x = column groups of 32, y = row chunks of `chunk_rows` rows. With
/// one chunk, `add_to_partial` adds the sum to partial (the bias gradient
/// itself) instead of storing it.
template <class Act, bool ComputeDz, bool Bias>
struct OutputGradient {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct shared {
    SharedTile<float, lanes, columns> sums;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* dy, const float* z, const float* y, float* dz,
                          float* partial, std::size_t rows, std::size_t cols, std::size_t chunk_rows,
                          bool add_to_partial) {
    const Index3 bi = blk.block_index();
    const std::size_t c0 = static_cast<std::size_t>(bi.x) * columns;
    const std::size_t r0 = static_cast<std::size_t>(bi.y) * chunk_rows;
    const std::size_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      float sum = 0.0f;
      if (c < cols) {
        for (std::size_t r = r0 + t / columns; r < r1; r += lanes) {
          const std::size_t i = r * cols + c;
          float g = dy[i];
          if constexpr (ComputeDz) {
            g *= device_activation<Act>::df(z[i], y[i]);
            dz[i] = g;
          }
          sum += g;
        }
      }
      if constexpr (Bias) s.sums(t / columns, t % columns) = sum;
    });
    if constexpr (Bias) {
      blk.sync();
      blk.each([&](unsigned t) {
        const std::size_t c = c0 + t;
        if (t < columns && c < cols) {
          float total = 0.0f;
          for (unsigned l = 0; l < lanes; ++l) total += s.sums(l, t);
          float& out = partial[static_cast<std::size_t>(bi.y) * cols + c];
          out = add_to_partial ? out + total : total;
        }
      });
    }
  }
};

}  // namespace ctnn::cuda::kernels

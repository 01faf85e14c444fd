// Loss kernels. Each block reduces its share in double (the CPU path
// accumulates in double too) and writes one partial sum; FinishLoss adds the
// partials in block order, so the value does not depend on scheduling.
//   MseLoss            grad = 2 * scale * (pred - target); sum of squares
//   CrossEntropyLoss   one thread per row: log-softmax, label smoothing, grad;
//                      rows whose label is out of range are reported (the
//                      smallest such row), not read
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/block.hpp"

namespace ctnn::cuda::kernels {

inline constexpr unsigned loss_threads = 256;

/// Sums v[t] over the block's threads into v[0] (a tree; uniform control flow).
template <class Block, class Tile>
CTNN_HD_INLINE void block_sum(const Block& blk, Tile& v) {
  for (unsigned stride = Block::threads / 2; stride > 0; stride /= 2) {
    blk.each([&](unsigned t) {
      if (t < stride) v(0, t) += v(0, t + stride);
    });
    blk.sync();
  }
}
template <class Block, class Tile>
CTNN_HD_INLINE void block_min(const Block& blk, Tile& v) {
  for (unsigned stride = Block::threads / 2; stride > 0; stride /= 2) {
    blk.each([&](unsigned t) {
      if (t < stride && v(0, t + stride) < v(0, t)) v(0, t) = v(0, t + stride);
    });
    blk.sync();
  }
}

struct MseLoss {
  static constexpr unsigned threads = loss_threads;
  struct shared {
    SharedTile<double, 1, threads> sums;
  };
  /// partial[blockIdx.x] = sum of squared differences of the block's elements.
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* pred, const float* target, float* grad,
                          std::size_t count, float grad_scale, double* partial) {
    const std::size_t first = static_cast<std::size_t>(blk.block_index().x) * threads;
    const std::size_t stride = static_cast<std::size_t>(blk.grid_size().x) * threads;
    blk.each([&](unsigned t) {
      double acc = 0.0;
      for (std::size_t i = first + t; i < count; i += stride) {
        const float d = pred[i] - target[i];
        if (grad) grad[i] = d * grad_scale;
        acc += static_cast<double>(d) * static_cast<double>(d);
      }
      s.sums(0, t) = acc;
    });
    blk.sync();
    block_sum(blk, s.sums);
    blk.each([&](unsigned t) {
      if (t == 0) partial[blk.block_index().x] = s.sums(0, 0);
    });
  }
};

struct CrossEntropyLoss {
  static constexpr unsigned threads = loss_threads;
  struct shared {
    SharedTile<double, 1, threads> sums;
    SharedTile<double, 1, threads> bad;
  };
  /// partial[b] = sum of the block's row losses; partial[blocks + b] = the
  /// smallest row with an invalid label (or +inf). `uniform` and `hit` are the
  /// smoothed target's shares already scaled by the reduction, as on the CPU.
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* pred, const std::int64_t* labels, float* grad,
                          std::size_t rows, std::size_t cols, double scale, double ls, float uniform, float hit,
                          double* partial) {
    const std::size_t blocks = blk.grid_size().x;
    const std::size_t first = static_cast<std::size_t>(blk.block_index().x) * threads;
    const std::size_t stride = blocks * threads;
    blk.each([&](unsigned t) {
      double acc = 0.0;
      double bad = HUGE_VAL;
      const auto classes = static_cast<std::int64_t>(cols);
      for (std::size_t r = first + t; r < rows; r += stride) {
        const std::int64_t label = labels[r];
        const float* x = pred + r * cols;
        if (label < 0 || label >= classes) {
          if (static_cast<double>(r) < bad) bad = static_cast<double>(r);
          if (grad)
            for (std::size_t c = 0; c < cols; ++c) grad[r * cols + c] = 0.0f;
          continue;
        }
        const auto y = static_cast<std::size_t>(label);
        float m = x[0];
        for (std::size_t c = 1; c < cols; ++c) m = x[c] > m ? x[c] : m;
        double sum = 0.0;
        for (std::size_t c = 0; c < cols; ++c) sum += static_cast<double>(::expf(x[c] - m));
        const double lse = static_cast<double>(m) + ::log(sum);
        double row = lse - static_cast<double>(x[y]);
        if (ls != 0.0) {
          double xs = 0.0;
          for (std::size_t c = 0; c < cols; ++c) xs += static_cast<double>(x[c]);
          const double k = static_cast<double>(cols);
          row = (1.0 - ls) * row + ls / k * (k * lse - xs);
        }
        acc += row;
        if (grad) {
          float* g = grad + r * cols;
          const float inv = static_cast<float>(scale / sum);
          for (std::size_t c = 0; c < cols; ++c) g[c] = ::expf(x[c] - m) * inv - uniform;
          g[y] -= hit;
        }
      }
      s.sums(0, t) = acc;
      s.bad(0, t) = bad;
    });
    blk.sync();
    block_sum(blk, s.sums);
    block_min(blk, s.bad);
    blk.each([&](unsigned t) {
      if (t == 0) {
        partial[blk.block_index().x] = s.sums(0, 0);
        partial[blocks + blk.block_index().x] = s.bad(0, 0);
      }
    });
  }
};

/// One block: result[0] = scale * sum of partial[0..blocks), and, when
/// with_min, result[1] = min of partial[blocks..2*blocks).
struct FinishLoss {
  static constexpr unsigned threads = loss_threads;
  struct shared {
    SharedTile<double, 1, threads> sums;
    SharedTile<double, 1, threads> mins;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const double* partial, std::size_t blocks, double scale,
                          bool with_min, double* result) {
    blk.each([&](unsigned t) {
      double acc = 0.0, lo = HUGE_VAL;
      for (std::size_t b = t; b < blocks; b += threads) {
        acc += partial[b];
        if (with_min && partial[blocks + b] < lo) lo = partial[blocks + b];
      }
      s.sums(0, t) = acc;
      s.mins(0, t) = lo;
    });
    blk.sync();
    block_sum(blk, s.sums);
    block_min(blk, s.mins);
    blk.each([&](unsigned t) {
      if (t == 0) {
        result[0] = s.sums(0, 0) * scale;
        result[1] = with_min ? s.mins(0, 0) : HUGE_VAL;
      }
    });
  }
};

}  // namespace ctnn::cuda::kernels

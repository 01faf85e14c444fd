// Normalisation layers on the device: LayerNorm and BatchNorm1d, forward and
// backward, with the arithmetic of the CPU layers (layers/layer_norm.hpp,
// layers/batch_norm.hpp): statistics summed in double, the mean and
// 1 / sqrt(var + eps) rounded to float, then the float expressions of the CPU.
//
//   LayerNormForward       one thread per row (grid-stride): the row's mean
//                          and rstd (kept for backward in training), y;
//   LayerNormInputGradient one thread per row: dx;
//   LayerNormParamGradient the weight and bias gradients as column sums over
//                          row chunks (as OutputGradient's bias sums): grid x =
//                          column groups of 32, y = row chunks;
//   BatchNormTrainForward  one block per 32 columns, 8 lanes over the rows:
//                          batch mean and biased variance (two passes), the
//                          running statistics' momentum update (unbiased
//                          variance), x̂ (kept for backward) and y;
//   BatchNormEvalForward   elementwise, with the running statistics;
//   BatchNormBackward      one block per 32 columns: the column sums of dy and
//                          dy·x̂ (weight and bias gradients), then dx.
// Every sum is a fixed decomposition added in a fixed order (no atomics).
// One thread per row reads its row's floats one after another (not
// coalesced across a warp); these kernels are correct first, not tuned.
#pragma once

#include <math.h>

#include <cstddef>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/block.hpp"
#include "ctnn/cuda/kernels/elementwise.hpp"

namespace ctnn::cuda::kernels {

/// y = (x - mean) * rstd * w + b per row of F features; stats[2r] = mean,
/// stats[2r + 1] = rstd when stats is not null.
template <std::size_t F>
struct LayerNormForward {
  static constexpr unsigned threads = 256;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, const float* w, const float* b, float* y,
                          float* stats, std::size_t n, double eps) {
    grid_stride(blk, n, [&](std::size_t r) {
      const float* xr = x + r * F;
      double sum = 0.0;
      for (std::size_t i = 0; i < F; ++i) sum += xr[i];
      const double mean = sum / static_cast<double>(F);
      double sq = 0.0;
      for (std::size_t i = 0; i < F; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
      const float rstd = static_cast<float>(1.0 / ::sqrt(sq / static_cast<double>(F) + eps));
      const float m = static_cast<float>(mean);
      float* yr = y + r * F;
      for (std::size_t i = 0; i < F; ++i) yr[i] = (xr[i] - m) * rstd * w[i] + b[i];
      if (stats) {
        stats[2 * r] = m;
        stats[2 * r + 1] = rstd;
      }
    });
  }
};

/// dx of a LayerNorm, one thread per row.
template <std::size_t F>
struct LayerNormInputGradient {
  static constexpr unsigned threads = 256;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, const float* dy, const float* w,
                          const float* stats, float* dx, std::size_t n) {
    grid_stride(blk, n, [&](std::size_t r) {
      const float* xr = x + r * F;
      const float* gr = dy + r * F;
      const float m = stats[2 * r], rstd = stats[2 * r + 1];
      double mean_g = 0.0, mean_gx = 0.0;
      for (std::size_t i = 0; i < F; ++i) {
        const float xhat = (xr[i] - m) * rstd;
        const float g = gr[i] * w[i];
        mean_g += g;
        mean_gx += static_cast<double>(g) * xhat;
      }
      const float a = static_cast<float>(mean_g / static_cast<double>(F));
      const float bcoef = static_cast<float>(mean_gx / static_cast<double>(F));
      float* dr = dx + r * F;
      for (std::size_t i = 0; i < F; ++i) {
        const float xhat = (xr[i] - m) * rstd;
        dr[i] = rstd * (gr[i] * w[i] - a - xhat * bcoef);
      }
    });
  }
};

/// The weight and bias gradients of a LayerNorm as column sums over row
/// chunks: dw_out[chunk * F + c] = sum of dy·x̂, db_out[chunk * F + c] = sum of
/// dy over the chunk's rows (either may be null). With `accumulate` the sums
/// are added to what is there (one chunk: the gradients themselves).
template <std::size_t F>
struct LayerNormParamGradient {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct shared {
    SharedTile<float, lanes, columns> w_sums, b_sums;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* x, const float* dy, const float* stats,
                          float* dw_out, float* db_out, std::size_t n, std::size_t chunk_rows, bool accumulate) {
    const Index3 bi = blk.block_index();
    const std::size_t c0 = static_cast<std::size_t>(bi.x) * columns;
    const std::size_t r0 = static_cast<std::size_t>(bi.y) * chunk_rows;
    const std::size_t r1 = r0 + chunk_rows < n ? r0 + chunk_rows : n;
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      float sw = 0.0f, sb = 0.0f;
      if (c < F) {
        for (std::size_t r = r0 + t / columns; r < r1; r += lanes) {
          const float g = dy[r * F + c];
          sw += g * ((x[r * F + c] - stats[2 * r]) * stats[2 * r + 1]);
          sb += g;
        }
      }
      s.w_sums(t / columns, t % columns) = sw;
      s.b_sums(t / columns, t % columns) = sb;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t;
      if (t < columns && c < F) {
        float tw = 0.0f, tb = 0.0f;
        for (unsigned l = 0; l < lanes; ++l) tw += s.w_sums(l, t), tb += s.b_sums(l, t);
        const std::size_t at = static_cast<std::size_t>(bi.y) * F + c;
        if (dw_out) dw_out[at] = accumulate ? dw_out[at] + tw : tw;
        if (db_out) db_out[at] = accumulate ? db_out[at] + tb : tb;
      }
    });
  }
};

/// Training-mode BatchNorm1d over n >= 2 rows of F features. Grid: x = column
/// groups of 32. Writes x̂ (n x F), the batch mean and rstd (F each), y, and
/// updates running_mean and running_var (momentum, unbiased variance).
template <std::size_t F>
struct BatchNormTrainForward {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct shared {
    SharedTile<double, lanes, columns> sums;
    SharedTile<double, 1, columns> mean;
    SharedTile<float, 2, columns> stat;  // float mean, rstd
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* x, const float* w, const float* b, float* y,
                          float* xhat, float* mean_out, float* rstd_out, float* running_mean, float* running_var,
                          std::size_t n, double eps, double momentum) {
    const std::size_t c0 = static_cast<std::size_t>(blk.block_index().x) * columns;
    const double rows = static_cast<double>(n);
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      double sum = 0.0;
      if (c < F)
        for (std::size_t r = t / columns; r < n; r += lanes) sum += x[r * F + c];
      s.sums(t / columns, t % columns) = sum;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      if (t < columns) {
        double total = 0.0;
        for (unsigned l = 0; l < lanes; ++l) total += s.sums(l, t);
        s.mean(0, t) = total / rows;
      }
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      const double mean = s.mean(0, t % columns);
      double sq = 0.0;
      if (c < F)
        for (std::size_t r = t / columns; r < n; r += lanes) sq += (x[r * F + c] - mean) * (x[r * F + c] - mean);
      s.sums(t / columns, t % columns) = sq;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t;
      if (t < columns) {
        double total = 0.0;
        for (unsigned l = 0; l < lanes; ++l) total += s.sums(l, t);
        const double mean = s.mean(0, t);
        const double var = total / rows;
        const float rstd = static_cast<float>(1.0 / ::sqrt(var + eps));
        const float m = static_cast<float>(mean);
        s.stat(0, t) = m;
        s.stat(1, t) = rstd;
        if (c < F) {
          mean_out[c] = m;
          rstd_out[c] = rstd;
          running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
          running_var[c] =
              static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * rows / (rows - 1.0));
        }
      }
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      if (c >= F) return;
      const float m = s.stat(0, t % columns), rstd = s.stat(1, t % columns);
      const float wc = w[c], bc = b[c];
      for (std::size_t r = t / columns; r < n; r += lanes) {
        const float h = (x[r * F + c] - m) * rstd;
        xhat[r * F + c] = h;
        y[r * F + c] = h * wc + bc;
      }
    });
  }
};

/// Evaluation-mode BatchNorm1d: y = (x - running_mean) * w / sqrt(running_var + eps) + b.
template <std::size_t F>
struct BatchNormEvalForward {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, const float* x, const float* w, const float* b,
                          const float* running_mean, const float* running_var, float* y, std::size_t count,
                          double eps) {
    grid_stride(blk, count, [&](std::size_t i) {
      const std::size_t c = i % F;
      const float scale = static_cast<float>(1.0 / ::sqrt(static_cast<double>(running_var[c]) + eps)) * w[c];
      y[i] = (x[i] - running_mean[c]) * scale + b[c];
    });
  }
};

/// Backward of a training-mode BatchNorm1d. Grid: x = column groups of 32.
/// dw += sum dy·x̂, db += sum dy (when not null), then dx (when not null).
template <std::size_t F>
struct BatchNormBackward {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct shared {
    SharedTile<double, lanes, columns> sum_dy, sum_dy_xhat;
    SharedTile<float, 2, columns> coef;  // mean_g, mean_gx
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* dy, const float* xhat, const float* rstd,
                          const float* w, float* dw, float* db, float* dx, std::size_t n) {
    const std::size_t c0 = static_cast<std::size_t>(blk.block_index().x) * columns;
    const double rows = static_cast<double>(n);
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      double g = 0.0, gx = 0.0;
      if (c < F)
        for (std::size_t r = t / columns; r < n; r += lanes) {
          const float d = dy[r * F + c];
          g += d;
          gx += static_cast<double>(d) * xhat[r * F + c];
        }
      s.sum_dy(t / columns, t % columns) = g;
      s.sum_dy_xhat(t / columns, t % columns) = gx;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t;
      if (t < columns) {
        double g = 0.0, gx = 0.0;
        for (unsigned l = 0; l < lanes; ++l) g += s.sum_dy(l, t), gx += s.sum_dy_xhat(l, t);
        float mean_g = 0.0f, mean_gx = 0.0f;
        if (c < F) {
          if (dw) dw[c] += static_cast<float>(gx);
          if (db) db[c] += static_cast<float>(g);
          const double wc = w[c];
          mean_g = static_cast<float>(g * wc / rows);
          mean_gx = static_cast<float>(gx * wc / rows);
        }
        s.coef(0, t) = mean_g;
        s.coef(1, t) = mean_gx;
      }
    });
    if (!dx) return;
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t c = c0 + t % columns;
      if (c >= F) return;
      const float mean_g = s.coef(0, t % columns), mean_gx = s.coef(1, t % columns);
      const float wc = w[c], rc = rstd[c];
      for (std::size_t r = t / columns; r < n; r += lanes)
        dx[r * F + c] = rc * (dy[r * F + c] * wc - mean_g - xhat[r * F + c] * mean_gx);
    });
  }
};

}  // namespace ctnn::cuda::kernels

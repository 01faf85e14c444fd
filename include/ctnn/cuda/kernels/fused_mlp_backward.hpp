// The fused backward of a pipeline of Linear layers (each with or without the
// activation after it), the counterpart of FusedMlpForward: one kernel carries
// a tile of rows backward through every layer, and the gradients between
// layers never leave shared memory. For layer l, from the last to the first:
//
//   dz_l = g_l * act'(z_l, y_l)          g_l: the gradient of y_l, in shared memory
//   db_l += column sums of dz_l           (per-thread registers)
//   dW_l += dz_l^T . x_l                  x_l = y_{l-1} (or the input), loaded once
//   g_{l-1} = dz_l . W_l                  into shared memory: the next layer's g
//
// z_l is read from device memory (the forward kept it), y_l is the tile loaded
// as x_{l+1} one step earlier, so each layer reads z and x once and writes
// nothing. The weight and bias gradients are accumulated in registers while a
// block walks its row tiles (tile b, b + grid, b + 2 grid, ...), then each block
// writes its sums (a partial [block][Out][In] per layer), and SumPartials adds
// the partials of all blocks in block order: no atomics, so the result does
// not depend on scheduling. With one block the sums are added to the
// gradients directly. The kernel is used where its register budget allows
// (fused_mlp_backward_max_accumulators weight-gradient floats a thread) and
// three activation tiles fit in shared memory; otherwise the backward runs one
// layer at a time.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/activation.hpp"
#include "ctnn/cuda/kernels/block.hpp"
#include "ctnn/cuda/kernels/fused_mlp.hpp"

namespace ctnn::cuda::kernels {

/// One layer's inputs and outputs in the fused backward (device addresses).
struct FusedLayerGradientAddresses {
  const float* w;  // weights [Out][In]
  const float* x;  // the layer's input [n][In]: the pipeline's input or the layer before's y
  const float* z;  // pre-activation [n][Out]; null for a Linear without activation
  float* dw;       // one block: the weight gradient (added to); several: partials [grid][Out * In]; null: frozen
  float* db;       // the same for the bias, [grid][Out]; null: frozen or no bias
};

/// How a layer's Out x In weight gradient is shared among the threads: thread
/// t owns outputs t / col_threads + a * row_threads (a < tm) and inputs
/// t % col_threads + b * col_threads (b < tn). The fewest registers first, then
/// the fewest shared-memory reads per row.
struct WeightTiling {
  unsigned col_threads = 0, row_threads = 0, tm = 0, tn = 0;
};
CTNN_HD constexpr WeightTiling weight_tiling(std::size_t out, std::size_t in, unsigned threads) {
  WeightTiling best{};
  unsigned best_regs = ~0u, best_reads = ~0u;
  for (unsigned ct = 1; ct <= threads; ct *= 2) {
    const unsigned rt = threads / ct;
    const unsigned tm = static_cast<unsigned>((out + rt - 1) / rt), tn = static_cast<unsigned>((in + ct - 1) / ct);
    if (tm * tn < best_regs || (tm * tn == best_regs && tm + tn < best_reads)) {
      best_regs = tm * tn;
      best_reads = tm + tn;
      best = {ct, rt, tm, tn};
    }
  }
  return best;
}

/// Weight-gradient floats a thread may keep in registers for the whole
/// pipeline: above this, the backward runs one layer at a time.
inline constexpr std::size_t fused_mlp_backward_max_accumulators = 40;
/// Blocks of the fused backward at most: each walks ceil(tiles / grid) row tiles.
inline constexpr unsigned fused_mlp_backward_max_blocks = 1024;

CTNN_HD constexpr unsigned next_power_of_two(std::size_t v) {
  unsigned p = 1;
  while (p < v) p *= 2;
  return p;
}

template <std::size_t I, class First, class... Rest>
struct pack_at {
  using type = typename pack_at<I - 1, Rest...>::type;
};
template <class First, class... Rest>
struct pack_at<0, First, Rest...> {
  using type = First;
};

template <class... Layers>
struct FusedMlpBackward {
  static constexpr std::size_t L = sizeof...(Layers);
  static constexpr unsigned threads = 256;
  static constexpr unsigned bk = 16;
  template <std::size_t J>
  using layer_t = typename pack_at<J, Layers...>::type;

  static constexpr std::size_t max_width = [] {
    std::size_t m = 0;
    ((m = Layers::in_features > m ? Layers::in_features : m), ...);
    ((m = Layers::out_features > m ? Layers::out_features : m), ...);
    return m;
  }();

  /// Offsets of each layer's weight-gradient accumulators in a thread's registers.
  struct Offsets {
    std::size_t v[L + 1];
  };
  static constexpr Offsets accumulator_offset = [] {
    Offsets a{};
    std::size_t i = 0;
    ((a.v[i + 1] = a.v[i] + std::size_t{weight_tiling(Layers::out_features, Layers::in_features, threads).tm} *
                                weight_tiling(Layers::out_features, Layers::in_features, threads).tn,
      ++i),
     ...);
    return a;
  }();
  static constexpr std::size_t accumulators = accumulator_offset.v[L];

  /// Columns of the staged weight slice of dx = dz . W: every layer's inputs,
  /// rounded up to its tiling.
  template <unsigned Rows>
  static constexpr std::size_t weight_columns = [] {
    std::size_t m = 0;
    for (const std::size_t in : {std::size_t{Layers::in_features}...}) {
      const FusedTiling t = fused_tiling(Rows, in, threads);
      const std::size_t c = std::size_t{t.col_threads} * t.tn;
      m = c > m ? c : m;
    }
    return m;
  }();
  template <unsigned Rows>
  static constexpr bool tilings_exist = [] {
    for (const std::size_t in : {std::size_t{Layers::in_features}...})
      if (fused_tiling(Rows, in, threads).tm == 0) return false;
    return true;
  }();
  template <unsigned Rows>
  static constexpr std::size_t shared_bytes =
      (3 * std::size_t{Rows} * (max_width + 1) + bk * (weight_columns<Rows> + 1) + threads) * sizeof(float);
  template <unsigned Rows>
  static constexpr bool fits = tilings_exist<Rows> && shared_bytes<Rows> <= 46 * 1024;
  /// Rows of a tile: the most (of 256, 128, 64, 32) whose three tiles fit in
  /// 46 KiB of shared memory; 0 if none does.
  static constexpr unsigned rows = fits<256> ? 256 : fits<128> ? 128 : fits<64> ? 64 : fits<32> ? 32 : 0;
  static constexpr bool eligible = rows != 0 && accumulators <= fused_mlp_backward_max_accumulators;
  static constexpr unsigned tile_rows = rows == 0 ? 32 : rows;

  using ActTile = SharedTile<float, tile_rows, max_width + 1>;
  struct shared {
    ActTile g0;  // the gradient tiles: g and the next layer's g, alternating
    ActTile g1;
    ActTile x;   // x_l = y_{l-1}: for dW_l and then act'_{l-1}
    SharedTile<float, bk, weight_columns<tile_rows> + 1> w;  // w(kk, i) = weight[k0 + kk][i]
    SharedTile<float, 1, threads> sums;                      // bias sums of the row groups
  };
  struct Addresses {
    FusedLayerGradientAddresses layer[L];
  };

  /// Blocks for n rows: one per tile, at most fused_mlp_backward_max_blocks.
  static constexpr unsigned grid_for(std::size_t n) {
    const std::size_t tiles = (n + tile_rows - 1) / tile_rows;
    return tiles == 0 ? 1u : tiles > fused_mlp_backward_max_blocks ? fused_mlp_backward_max_blocks
                                                                    : static_cast<unsigned>(tiles);
  }

  /// dy: gradient of the last layer's output [n][Out_L]; y_last: that output
  /// (read when the last layer has an activation); dx: gradient of the input
  /// [n][In_0] or null. Layers below `first` are skipped (frozen, and nothing
  /// before them needs a gradient). Grid: x = grid_for(n).
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* dy, const float* y_last, float* dx, std::size_t n,
                          Addresses p, unsigned first) {
    static_assert(eligible, "FusedMlpBackward: the pipeline's widths do not allow the fused backward");
    struct WAcc {
      float v[accumulators == 0 ? 1 : accumulators];
    };
    struct BAcc {
      float v[L];
    };
    local_t<Block, WAcc> wacc;
    local_t<Block, BAcc> bacc;
    blk.each([&](unsigned t) {
      CTNN_UNROLL
      for (std::size_t i = 0; i < (accumulators == 0 ? 1 : accumulators); ++i) wacc[t].v[i] = 0.0f;
      CTNN_UNROLL
      for (std::size_t i = 0; i < L; ++i) bacc[t].v[i] = 0.0f;
    });
    using Last = layer_t<L - 1>;
    constexpr unsigned out_last = static_cast<unsigned>(Last::out_features);
    constexpr bool last_act = !is_identity<typename Last::activation>;
    const std::size_t tiles = (n + rows - 1) / rows;
    for (std::size_t tile = blk.block_index().x; tile < tiles; tile += blk.grid_size().x) {
      const std::size_t r0 = tile * rows;
      const unsigned valid = r0 + rows <= n ? rows : static_cast<unsigned>(n - r0);
      blk.each([&](unsigned t) {
        for (unsigned e = t; e < rows * out_last; e += threads) {
          const unsigned r = e / out_last, o = e % out_last;
          const bool in_range = r < valid;
          s.g0(r, o) = in_range ? dy[r0 * out_last + e] : 0.0f;
          if constexpr (last_act) s.x(r, o) = in_range ? y_last[r0 * out_last + e] : 0.0f;
        }
      });
      blk.sync();
      [&]<std::size_t... S>(std::index_sequence<S...>) {
        (step<L - 1 - S>(blk, s, S % 2 == 0 ? s.g0 : s.g1, S % 2 == 0 ? s.g1 : s.g0, p, wacc, bacc, r0, valid,
                         first, dx),
         ...);
      }(std::make_index_sequence<L>{});
      blk.sync();  // the next tile overwrites the tiles
    }
    const bool direct = blk.grid_size().x == 1;
    const std::size_t block = blk.block_index().x;
    [&]<std::size_t... J>(std::index_sequence<J...>) {
      (finish<J>(blk, s, p.layer[J], wacc, bacc, direct, block), ...);
    }(std::make_index_sequence<L>{});
  }

 private:
  template <class Act>
  static constexpr bool is_identity = std::is_same_v<Act, NoActivation>;

  template <std::size_t J, class Block, class WA, class BA>
  CTNN_HD static void step(const Block& blk, shared& s, ActTile& g, ActTile& d, const Addresses& p, WA& wacc,
                           BA& bacc, std::size_t r0, unsigned valid, unsigned first, float* dx) {
    using Lay = layer_t<J>;
    constexpr unsigned In = static_cast<unsigned>(Lay::in_features), Out = static_cast<unsigned>(Lay::out_features);
    using Act = typename Lay::activation;
    constexpr bool has_act = !is_identity<Act>;
    if (J < first) return;
    const FusedLayerGradientAddresses& a = p.layer[J];

    // dz = g * act'(z, y) in place, and the bias sums: thread t owns column
    // t % CT of the rows t / CT, t / CT + groups, ...
    constexpr unsigned CT = next_power_of_two(Out), groups = threads / CT;
    if (has_act || a.db) {
      blk.each([&](unsigned t) {
        const unsigned c = t % CT;
        if (c >= Out) return;
        float sum = 0.0f;
        for (unsigned r = t / CT; r < valid; r += groups) {
          float v = g(r, c);
          if constexpr (has_act) {
            v *= device_activation<Act>::df(a.z[(r0 + r) * Out + c], s.x(r, c));
            g(r, c) = v;
          }
          sum += v;
        }
        bacc[t].v[J] += sum;
      });
      blk.sync();
    }

    // x_l into the x tile: dW_l needs it, and so does act' of the layer before.
    bool prev_act = false;
    if constexpr (J > 0) prev_act = !is_identity<typename layer_t<J - 1>::activation>;
    if (a.dw || (J > first && prev_act)) {
      blk.each([&](unsigned t) {
        for (unsigned e = t; e < rows * In; e += threads) {
          const unsigned r = e / In, i = e % In;
          s.x(r, i) = r < valid ? a.x[r0 * In + e] : 0.0f;
        }
      });
      blk.sync();
    }

    // dW += dz^T . x over the tile's rows, in registers.
    if (a.dw) {
      constexpr WeightTiling T = weight_tiling(Out, In, threads);
      constexpr std::size_t off = accumulator_offset.v[J];
      blk.each([&](unsigned t) {
        const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
        auto& acc = wacc[t];
        for (unsigned r = 0; r < valid; ++r) {
          float gv[T.tm], xv[T.tn];
          CTNN_UNROLL
          for (unsigned i = 0; i < T.tm; ++i) {
            const unsigned o = tm + i * T.row_threads;
            gv[i] = o < Out ? g(r, o) : 0.0f;
          }
          CTNN_UNROLL
          for (unsigned j = 0; j < T.tn; ++j) {
            const unsigned c = tn + j * T.col_threads;
            xv[j] = c < In ? s.x(r, c) : 0.0f;
          }
          CTNN_UNROLL
          for (unsigned i = 0; i < T.tm; ++i) {
            CTNN_UNROLL
            for (unsigned j = 0; j < T.tn; ++j) acc.v[off + i * T.tn + j] += gv[i] * xv[j];
          }
        }
      });
      // The next phase stages weights and then writes d: neither tile is read here.
    }

    // g_{l-1} = dz . W into d (the gradient of the layer before), or dx.
    if (J > first || (J == 0 && dx != nullptr)) {
      constexpr FusedTiling T = fused_tiling(rows, In, threads);
      static_assert(T.tm > 0 && T.tm * T.row_threads == rows && T.col_threads * T.tn >= In);
      constexpr unsigned cols = T.col_threads * T.tn;
      struct Accumulators {
        float v[T.tm][T.tn];
      };
      local_t<Block, Accumulators> acc;
      blk.each([&](unsigned t) {
        CTNN_UNROLL
        for (unsigned i = 0; i < T.tm; ++i) {
          CTNN_UNROLL
          for (unsigned j = 0; j < T.tn; ++j) acc[t].v[i][j] = 0.0f;
        }
      });
      for (unsigned k0 = 0; k0 < Out; k0 += bk) {
        const unsigned len = Out - k0 < bk ? Out - k0 : bk;
        blk.each([&](unsigned t) {
          // Consecutive threads read consecutive inputs of one output's weights.
          for (unsigned e = t; e < bk * cols; e += threads) {
            const unsigned kk = e / cols, i = e % cols;
            s.w(kk, i) = kk < len && i < In ? a.w[(k0 + kk) * In + i] : 0.0f;
          }
        });
        blk.sync();
        blk.each([&](unsigned t) {
          const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
          auto& r = acc[t];
          for (unsigned kk = 0; kk < len; ++kk) {
            float gv[T.tm], wv[T.tn];
            CTNN_UNROLL
            for (unsigned i = 0; i < T.tm; ++i) gv[i] = g(tm + i * T.row_threads, k0 + kk);
            CTNN_UNROLL
            for (unsigned j = 0; j < T.tn; ++j) wv[j] = s.w(kk, tn + j * T.col_threads);
            CTNN_UNROLL
            for (unsigned i = 0; i < T.tm; ++i) {
              CTNN_UNROLL
              for (unsigned j = 0; j < T.tn; ++j) r.v[i][j] += gv[i] * wv[j];
            }
          }
        });
        blk.sync();  // the next slice overwrites s.w
      }
      blk.each([&](unsigned t) {
        const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
        CTNN_UNROLL
        for (unsigned i = 0; i < T.tm; ++i) {
          CTNN_UNROLL
          for (unsigned j = 0; j < T.tn; ++j) {
            const unsigned c = tn + j * T.col_threads;
            if (c < In) d(tm + i * T.row_threads, c) = acc[t].v[i][j];
          }
        }
      });
      blk.sync();
      if (J == 0 && dx != nullptr) {
        // The tile's rows of dx are contiguous in device memory: coalesced.
        blk.each([&](unsigned t) {
          for (unsigned e = t; e < valid * In; e += threads) dx[r0 * In + e] = d(e / In, e % In);
        });
      }
    }
  }

  /// The block's sums: added to the gradients (one block) or written as its partials.
  template <std::size_t J, class Block, class WA, class BA>
  CTNN_HD static void finish(const Block& blk, shared& s, const FusedLayerGradientAddresses& a, WA& wacc, BA& bacc,
                             bool direct, std::size_t block) {
    using Lay = layer_t<J>;
    constexpr unsigned In = static_cast<unsigned>(Lay::in_features), Out = static_cast<unsigned>(Lay::out_features);
    if (a.dw) {
      constexpr WeightTiling T = weight_tiling(Out, In, threads);
      constexpr std::size_t off = accumulator_offset.v[J];
      float* out = direct ? a.dw : a.dw + block * (std::size_t{Out} * In);
      blk.each([&](unsigned t) {
        const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
        CTNN_UNROLL
        for (unsigned i = 0; i < T.tm; ++i) {
          CTNN_UNROLL
          for (unsigned j = 0; j < T.tn; ++j) {
            const unsigned o = tm + i * T.row_threads, c = tn + j * T.col_threads;
            if (o < Out && c < In) {
              const float v = wacc[t].v[off + i * T.tn + j];
              float& dst = out[o * In + c];
              dst = direct ? dst + v : v;
            }
          }
        }
      });
    }
    if (a.db) {
      constexpr unsigned CT = next_power_of_two(Out), groups = threads / CT;
      blk.each([&](unsigned t) { s.sums(0, t) = t % CT < Out ? bacc[t].v[J] : 0.0f; });
      blk.sync();
      float* out = direct ? a.db : a.db + block * std::size_t{Out};
      blk.each([&](unsigned t) {
        if (t < Out) {
          float total = 0.0f;
          for (unsigned q = 0; q < groups; ++q) total += s.sums(0, q * CT + t);
          out[t] = direct ? out[t] + total : total;
        }
      });
      blk.sync();  // s.sums is reused by the next layer
    }
  }
};

/// Adds up partial sums of up to MaxSegments arrays at once:
///   out_s[i] += sum over b < splits of partial_s[b * count_s + i]
/// in the fixed order of AddPartials (kernels/elementwise.hpp). Grid: x =
/// column blocks of the longest segment (add_partials_blocks), y = segments.
template <std::size_t MaxSegments>
struct SumPartials {
  static constexpr unsigned threads = 256;
  static constexpr unsigned columns = 32, lanes = threads / columns;
  struct Segment {
    const float* partial;
    float* out;
    std::size_t count;
  };
  struct Segments {
    Segment s[MaxSegments];
  };
  struct shared {
    SharedTile<float, lanes, columns> sums;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& sh, Segments segs, std::size_t splits) {
    const Segment& seg = segs.s[blk.block_index().y];
    const std::size_t c0 = static_cast<std::size_t>(blk.block_index().x) * columns;
    if (c0 >= seg.count) return;  // the whole block: a shorter segment
    blk.each([&](unsigned t) {
      const std::size_t i = c0 + t % columns;
      float sum = 0.0f;
      if (i < seg.count)
        for (std::size_t sp = t / columns; sp < splits; sp += lanes) sum += seg.partial[sp * seg.count + i];
      sh.sums(t / columns, t % columns) = sum;
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const std::size_t i = c0 + t;
      if (t < columns && i < seg.count) {
        float total = 0.0f;
        for (unsigned l = 0; l < lanes; ++l) total += sh.sums(l, t);
        seg.out[i] += total;
      }
    });
  }
};

}  // namespace ctnn::cuda::kernels

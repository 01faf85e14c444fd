// The fully fused forward of a pipeline of Linear layers (each with or
// without the activation after it), for widths up to 128: one block of 256
// threads carries a tile of rows (256 rows for widths up to 16, 128 up to 37,
// 64 up to 64, 32 up to 128: as many as two activation tiles in shared memory
// allow) through every layer. The activations stay in shared memory (two
// tiles, ping-pong); each layer's weights are staged through shared memory 16
// inputs at a time, transposed; each thread accumulates a register tile of
// its rows times its outputs (4 x 4 at widths 32 to 128), so a weight or an
// activation read from shared memory is used for several multiply-adds. The
// input is read from device memory once and the output written once. In
// training mode each layer's z and y are also written to the model's
// workspace, in the same places as the per-layer kernels write them, so
// either backward (kernels/fused_mlp_backward.hpp, or one layer at a time)
// reads them. Every store to device memory goes through the shared tiles and
// is coalesced: a block's rows are contiguous in memory. One launch instead of
// one per layer.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <utility>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/activation.hpp"
#include "ctnn/cuda/kernels/block.hpp"

namespace ctnn::cuda::kernels {

/// One layer of a fused pipeline: y = act(x.w^T + b).
template <std::size_t In, std::size_t Out, bool Bias, class Act>
struct FusedLayer {
  static constexpr std::size_t in_features = In, out_features = Out;
  static constexpr bool bias = Bias;
  using activation = Act;
};

/// Where one layer's parameters are and where its results go (device
/// addresses). z is null for a layer without activation; z and y of hidden
/// layers are written only when the model keeps them for backward.
struct FusedLayerAddresses {
  const float* w;
  const float* b;
  float* z;
  float* y;
};

inline constexpr std::size_t fused_mlp_max_width = 128;

template <class First, class...>
struct first_layer {
  using type = First;
};

/// How a layer's rows x Out outputs are shared among 256 threads: thread t
/// owns rows t / col_threads + i * row_threads (i < tm) and outputs
/// t % col_threads + j * col_threads (j < tn). Chosen to need the fewest
/// instructions per input (tm * tn multiply-adds, tm + tn shared-memory reads)
/// with at most 32 accumulators a thread.
struct FusedTiling {
  unsigned col_threads = 0, row_threads = 0, tm = 0, tn = 0;
};
CTNN_HD constexpr FusedTiling fused_tiling(unsigned rows, std::size_t out, unsigned threads) {
  FusedTiling best{};
  unsigned best_cost = ~0u;
  for (unsigned ct = 1; ct <= threads; ct *= 2) {
    const unsigned rt = threads / ct;
    if (rt > rows || rows % rt != 0) continue;
    const unsigned tm = rows / rt;
    const unsigned tn = static_cast<unsigned>((out + ct - 1) / ct);
    if (tm * tn > 32) continue;
    const unsigned cost = tm * tn + 2 * (tm + tn);
    if (cost < best_cost) {
      best_cost = cost;
      best = {ct, rt, tm, tn};
    }
  }
  return best;
}

template <class... Layers>
struct FusedMlpForward {
  static constexpr std::size_t L = sizeof...(Layers);
  static constexpr unsigned threads = 256;
  static constexpr std::size_t in0 = first_layer<Layers...>::type::in_features;
  static constexpr std::size_t max_width = [] {
    std::size_t m = 0;
    ((m = Layers::in_features > m ? Layers::in_features : m), ...);
    ((m = Layers::out_features > m ? Layers::out_features : m), ...);
    return m;
  }();
  static_assert(max_width <= fused_mlp_max_width);
  /// Inputs of a weight slice staged in shared memory at a time.
  static constexpr unsigned bk = 16;
  /// Columns of the staged weight slice: every layer's outputs, rounded up to
  /// its tiling.
  template <unsigned Rows>
  static constexpr std::size_t weight_columns = [] {
    std::size_t m = 0;
    for (const std::size_t out : {std::size_t{Layers::out_features}...}) {
      const FusedTiling t = fused_tiling(Rows, out, threads);
      const std::size_t c = std::size_t{t.col_threads} * t.tn;
      m = c > m ? c : m;
    }
    return m;
  }();
  template <unsigned Rows>
  static constexpr std::size_t shared_bytes =
      (2 * std::size_t{Rows} * (max_width + 1) + bk * (weight_columns<Rows> + 1)) * sizeof(float);
  /// Rows a block carries: the most (of 256, 128, 64, 32) whose tiles fit in
  /// 46 KiB of the 48 KiB of static shared memory a block may have.
  static constexpr unsigned rows = shared_bytes<256> <= 46 * 1024   ? 256
                                   : shared_bytes<128> <= 46 * 1024 ? 128
                                   : shared_bytes<64> <= 46 * 1024  ? 64
                                                                    : 32;

  struct shared {
    SharedTile<float, rows, max_width + 1> a;  // +1: consecutive rows start in different banks
    SharedTile<float, rows, max_width + 1> b;
    SharedTile<float, bk, weight_columns<rows> + 1> w;  // w(kk, o) = weight[o][k0 + kk]
  };
  struct Addresses {
    FusedLayerAddresses layer[L];
  };

  /// Grid: x = ceil(n / rows). `keep_hidden`: write every layer's z and y (training).
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* x, std::size_t n, Addresses p, bool keep_hidden) {
    const std::size_t r0 = static_cast<std::size_t>(blk.block_index().x) * rows;
    blk.each([&](unsigned t) {
      for (unsigned j = t; j < rows * in0; j += threads) {
        const unsigned r = j / in0, i = j % in0;
        s.a(r, i) = r0 + r < n ? x[(r0 + r) * in0 + i] : 0.0f;
      }
    });
    blk.sync();
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      (layer<Layers>(blk, s, K % 2 == 0 ? s.a : s.b, K % 2 == 0 ? s.b : s.a, p.layer[K], r0, n,
                     keep_hidden || K + 1 == L),
       ...);
    }(std::make_index_sequence<L>{});
  }

 private:
  using ActTile = SharedTile<float, rows, max_width + 1>;

  /// acc += in(rows, k0 .. k0 + Len) . w(k0 .. k0 + Len, outputs) for the
  /// thread's register tile; the slice of weights is staged first.
  template <class Lay, unsigned Len, class Block, class Acc>
  CTNN_HD static void slice(const Block& blk, shared& s, ActTile& in, const float* w, unsigned k0, Acc& acc) {
    constexpr std::size_t In = Lay::in_features, Out = Lay::out_features;
    constexpr FusedTiling T = fused_tiling(rows, Out, threads);
    constexpr unsigned cols = T.col_threads * T.tn;
    blk.each([&](unsigned t) {
      // Consecutive threads read consecutive inputs of one output's weights.
      for (unsigned i = t; i < Len * cols; i += threads) {
        const unsigned kk = i % Len, o = i / Len;
        s.w(kk, o) = o < Out ? w[o * In + k0 + kk] : 0.0f;
      }
    });
    blk.sync();
    blk.each([&](unsigned t) {
      const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
      auto& r = acc[t];
      CTNN_UNROLL
      for (unsigned kk = 0; kk < Len; ++kk) {
        float av[T.tm], wv[T.tn];
        CTNN_UNROLL
        for (unsigned i = 0; i < T.tm; ++i) av[i] = in(tm + i * T.row_threads, k0 + kk);
        CTNN_UNROLL
        for (unsigned j = 0; j < T.tn; ++j) wv[j] = s.w(kk, tn + j * T.col_threads);
        CTNN_UNROLL
        for (unsigned i = 0; i < T.tm; ++i) {
          CTNN_UNROLL
          for (unsigned j = 0; j < T.tn; ++j) r.v[i][j] += av[i] * wv[j];
        }
      }
    });
    blk.sync();  // the next slice overwrites s.w
  }

  template <class Lay, class Block>
  CTNN_HD static void layer(const Block& blk, shared& s, ActTile& in, ActTile& out, const FusedLayerAddresses& p,
                            std::size_t r0, std::size_t n, bool store) {
    constexpr std::size_t In = Lay::in_features, Out = Lay::out_features;
    constexpr FusedTiling T = fused_tiling(rows, Out, threads);
    static_assert(T.tm > 0 && T.tm * T.row_threads == rows && T.col_threads * T.tn >= Out);
    using Act = typename Lay::activation;
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
    constexpr unsigned full = static_cast<unsigned>(In / bk), tail = static_cast<unsigned>(In % bk);
    for (unsigned q = 0; q < full; ++q) slice<Lay, bk>(blk, s, in, p.w, q * bk, acc);
    if constexpr (tail != 0) slice<Lay, tail>(blk, s, in, p.w, full * bk, acc);
    // The finished tile goes to shared memory: y to `out` (the next layer's
    // input), z to `in`, whose last reader was the slice before this phase.
    const bool keep_z = store && p.z != nullptr;
    blk.each([&](unsigned t) {
      const unsigned tn = t % T.col_threads, tm = t / T.col_threads;
      CTNN_UNROLL
      for (unsigned i = 0; i < T.tm; ++i) {
        const unsigned r = tm + i * T.row_threads;
        CTNN_UNROLL
        for (unsigned j = 0; j < T.tn; ++j) {
          const unsigned o = tn + j * T.col_threads;
          if (o >= Out) continue;
          float v = acc[t].v[i][j];
          if constexpr (Lay::bias) v += p.b[o];
          out(r, o) = device_activation<Act>::f(v);
          if (keep_z) in(r, o) = v;
        }
      }
    });
    blk.sync();
    if (store) {
      // The block's rows of z and y are contiguous in device memory (row-major
      // [n, Out]): consecutive threads store consecutive floats (coalesced).
      const unsigned valid = r0 + rows <= n ? rows : static_cast<unsigned>(n - r0);
      const std::size_t base = r0 * Out;
      blk.each([&](unsigned t) {
        for (unsigned e = t; e < valid * Out; e += threads) {
          const unsigned r = e / static_cast<unsigned>(Out), o = e % static_cast<unsigned>(Out);
          if (keep_z) p.z[base + e] = in(r, o);
          p.y[base + e] = out(r, o);
        }
      });
      // The next layer writes `in` only after its first slice's barrier.
    }
  }
};

}  // namespace ctnn::cuda::kernels

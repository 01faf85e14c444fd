// The tiled GEMM body behind every Linear kernel on the device:
//
//   C[M, N] = epilogue( sum_k A(m, k) * B(k, n) ),
//   A(m, k) = a[m * AM + k * AK],  B(k, n) = b[k * BK_ + n * BN_]
//
// with the strides fixed at compile time (they come from the layer's In and
// Out), so one body serves
//   forward        y = act(x . w^T + b)   A = x [n, In], B(k, o) = w[o, k]
//   input grad     dx = dz . w            A = dz [n, Out], B(o, i) = w[o, i]
//   weight grad    dw += dz^T . x         A(o, r) = dz[r, o], B(r, i) = x[r, i]
// A block computes a BM x BN tile of C; its threads each own a TM x TN
// sub-tile, interleaved (thread (tm, tn) owns rows tm + i*BM/TM and columns
// tn + j*BN/TN) so that a warp reads shared memory without bank conflicts. K
// is walked in BK-wide slices staged in shared memory; each thread reads the
// next slice from global memory into registers while it multiplies the
// current one. blockIdx.z splits K (split-K) for the weight gradient, whose K
// is the batch: each split writes a partial tile, and AddPartials
// (kernels/elementwise.hpp) sums them in a fixed order, so results do not
// depend on scheduling (no atomics anywhere).
#pragma once

#include <cstddef>
#include <type_traits>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/activation.hpp"
#include "ctnn/cuda/kernels/block.hpp"

namespace ctnn::cuda::kernels {

template <unsigned BM, unsigned BN, unsigned BK, unsigned TM, unsigned TN>
struct GemmTile {
  static_assert(BM % TM == 0 && BN % TN == 0);
  static constexpr unsigned bm = BM, bn = BN, bk = BK, tm = TM, tn = TN;
  static constexpr unsigned threads = (BM / TM) * (BN / TN);
};

/// The tile for a GEMM with N output columns: wide tiles for wide layers (8 x 8
/// a thread from 96 columns: 16 shared-memory reads feed 64 multiply-adds),
/// tall narrow ones for the 1- to 8-wide outputs of regression heads. All have
/// 256 threads.
template <std::size_t N>
using gemm_tile_for = std::conditional_t<
    (N >= 96), GemmTile<128, 128, 16, 8, 8>,
    std::conditional_t<(N >= 48), GemmTile<64, 64, 16, 4, 4>,
                       std::conditional_t<(N >= 12), GemmTile<128, 32, 16, 4, 4>,
                                          std::conditional_t<(N >= 6), GemmTile<256, 8, 16, 8, 1>,
                                                             GemmTile<256, 4, 16, 4, 1>>>>>;

/// The tile for a GEMM whose M and N are both small and known (the weight
/// gradient, M = Out, N = In, K = the batch): each side 16, 32, 64 or 128,
/// whichever first covers it, on 16 x 16 threads, so a 16-wide layer does not
/// spend most of its tile on padding.
constexpr std::size_t gemm_side_for(std::size_t n) { return n <= 16 ? 16 : n <= 32 ? 32 : n <= 64 ? 64 : 128; }
template <std::size_t M, std::size_t N>
using gemm_tile_2d = GemmTile<gemm_side_for(M), gemm_side_for(N), 16, gemm_side_for(M) / 16, gemm_side_for(N) / 16>;

template <class Tile, std::size_t AM, std::size_t AK, std::size_t BKS, std::size_t BNS, class Epilogue>
struct Gemm {
  static constexpr unsigned BM = Tile::bm, BN = Tile::bn, BK = Tile::bk, TM = Tile::tm, TN = Tile::tn;
  static constexpr unsigned threads = Tile::threads;
  static constexpr unsigned row_threads = BN / TN;  // threads along N
  static constexpr unsigned m_step = BM / TM, n_step = BN / TN;

  struct shared {
    SharedTile<float, BK, BM + 1> a;  // a(k, m); +1 keeps column stores free of bank conflicts
    SharedTile<float, BK, BN + 1> b;  // b(k, n)
  };
  struct Accumulators {
    float v[TM][TN];
  };
  // Each thread stages a_loads elements of A's slice and b_loads of B's.
  static constexpr unsigned a_loads = (BM * BK + threads - 1) / threads;
  static constexpr unsigned b_loads = (BN * BK + threads - 1) / threads;
  /// The next K slice, read from global memory while the current one is
  /// multiplied (register double buffering).
  struct Staged {
    float a[a_loads];
    float b[b_loads];
  };

  // Element i of a slice: consecutive i are consecutive addresses in global memory.
  CTNN_HD_INLINE static void a_index(unsigned i, unsigned& mm, unsigned& kk) {
    if constexpr (AK == 1) {
      kk = i % BK;
      mm = i / BK;
    } else {
      mm = i % BM;
      kk = i / BM;
    }
  }
  CTNN_HD_INLINE static void b_index(unsigned i, unsigned& nn, unsigned& kk) {
    if constexpr (BNS == 1) {
      nn = i % BN;
      kk = i / BN;
    } else {
      kk = i % BK;
      nn = i / BK;
    }
  }

  /// Grid: x = ceil(M / BM), y = ceil(N / BN), z = number of K splits, each
  /// covering k_chunk values of K (a multiple of BK).
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared& s, const float* a, const float* b, std::size_t M,
                          std::size_t N, std::size_t K, std::size_t k_chunk, Epilogue ep) {
    const Index3 bi = blk.block_index();
    const std::size_t m0 = static_cast<std::size_t>(bi.x) * BM;
    const std::size_t n0 = static_cast<std::size_t>(bi.y) * BN;
    const std::size_t k_begin = static_cast<std::size_t>(bi.z) * k_chunk;
    const std::size_t k_end = k_begin + k_chunk < K ? k_begin + k_chunk : K;

    local_t<Block, Accumulators> acc;
    local_t<Block, Staged> next;
    auto fetch = [&](unsigned t, std::size_t k0) {
      CTNN_UNROLL
      for (unsigned q = 0; q < a_loads; ++q) {
        const unsigned i = t + q * threads;
        unsigned mm = 0, kk = 0;
        a_index(i, mm, kk);
        const std::size_t m = m0 + mm, k = k0 + kk;
        next[t].a[q] = (i < BM * BK && m < M && k < k_end) ? a[m * AM + k * AK] : 0.0f;
      }
      CTNN_UNROLL
      for (unsigned q = 0; q < b_loads; ++q) {
        const unsigned i = t + q * threads;
        unsigned nn = 0, kk = 0;
        b_index(i, nn, kk);
        const std::size_t n = n0 + nn, k = k0 + kk;
        next[t].b[q] = (i < BN * BK && n < N && k < k_end) ? b[k * BKS + n * BNS] : 0.0f;
      }
    };
    blk.each([&](unsigned t) {
      CTNN_UNROLL
      for (unsigned i = 0; i < TM; ++i) {
        CTNN_UNROLL
        for (unsigned j = 0; j < TN; ++j) acc[t].v[i][j] = 0.0f;
      }
      if (k_begin < k_end) fetch(t, k_begin);
    });

    for (std::size_t k0 = k_begin; k0 < k_end; k0 += BK) {
      blk.each([&](unsigned t) {
        CTNN_UNROLL
        for (unsigned q = 0; q < a_loads; ++q) {
          const unsigned i = t + q * threads;
          unsigned mm = 0, kk = 0;
          a_index(i, mm, kk);
          if (i < BM * BK) s.a(kk, mm) = next[t].a[q];
        }
        CTNN_UNROLL
        for (unsigned q = 0; q < b_loads; ++q) {
          const unsigned i = t + q * threads;
          unsigned nn = 0, kk = 0;
          b_index(i, nn, kk);
          if (i < BN * BK) s.b(kk, nn) = next[t].b[q];
        }
      });
      blk.sync();
      blk.each([&](unsigned t) {
        // The loads of the next slice are in flight during the multiply-adds.
        if (k0 + BK < k_end) fetch(t, k0 + BK);
        const unsigned tm = t / row_threads, tn = t % row_threads;
        Accumulators& r = acc[t];
        CTNN_UNROLL
        for (unsigned kk = 0; kk < BK; ++kk) {
          float av[TM], bv[TN];
          CTNN_UNROLL
          for (unsigned i = 0; i < TM; ++i) av[i] = s.a(kk, tm + i * m_step);
          CTNN_UNROLL
          for (unsigned j = 0; j < TN; ++j) bv[j] = s.b(kk, tn + j * n_step);
          CTNN_UNROLL
          for (unsigned i = 0; i < TM; ++i) {
            CTNN_UNROLL
            for (unsigned j = 0; j < TN; ++j) r.v[i][j] += av[i] * bv[j];
          }
        }
      });
      blk.sync();
    }

    blk.each([&](unsigned t) {
      const unsigned tm = t / row_threads, tn = t % row_threads;
      CTNN_UNROLL
      for (unsigned i = 0; i < TM; ++i) {
        CTNN_UNROLL
        for (unsigned j = 0; j < TN; ++j) {
          const std::size_t m = m0 + tm + i * m_step, n = n0 + tn + j * n_step;
          if (m < M && n < N) ep(m, n, bi.z, acc[t].v[i][j]);
        }
      }
    });
  }
};

// ---- epilogues: what happens to each finished element of C --------------

/// y = act(acc + bias); the pre-activation z is stored too when z is not null.
template <class Act, bool Bias>
struct LinearForwardEpilogue {
  const float* bias;
  float* z;
  float* y;
  std::size_t ld;
  CTNN_HD_INLINE void operator()(std::size_t m, std::size_t n, unsigned, float acc) const {
    float v = acc;
    if constexpr (Bias) v += bias[n];
    if (z) z[m * ld + n] = v;
    y[m * ld + n] = device_activation<Act>::f(v);
  }
};

/// c = acc, or c += acc.
struct StoreEpilogue {
  float* c;
  std::size_t ld;
  bool accumulate;
  CTNN_HD_INLINE void operator()(std::size_t m, std::size_t n, unsigned, float acc) const {
    float& out = c[m * ld + n];
    out = accumulate ? out + acc : acc;
  }
};

/// One K split's partial tile: partial[split][m][n].
struct SplitEpilogue {
  float* partial;
  std::size_t ld;
  std::size_t split_stride;
  CTNN_HD_INLINE void operator()(std::size_t m, std::size_t n, unsigned split, float acc) const {
    partial[split * split_stride + m * ld + n] = acc;
  }
};

/// How a weight-gradient GEMM over `rows` rows is split: `splits` blocks
/// along K, each over `chunk` rows (a multiple of the tile's BK). About 512
/// rows a split, so that a large batch occupies the whole GPU (its output,
/// Out x In, is often a single tile), up to 512 blocks in all (`tiles` output
/// tiles times the splits), and few enough that the partial tiles (splits x
/// Out x In floats) stay within `max_partial_floats`.
struct SplitK {
  std::size_t splits = 1, chunk = 0;
};
constexpr SplitK split_k(std::size_t rows, std::size_t out_times_in, std::size_t bk, std::size_t tiles = 1,
                         std::size_t max_partial_floats = std::size_t{1} << 24) {
  std::size_t splits = (rows + 511) / 512;
  const std::size_t by_blocks = tiles >= 512 ? 1 : 512 / (tiles == 0 ? 1 : tiles);
  if (splits > by_blocks) splits = by_blocks;
  const std::size_t by_memory = out_times_in == 0 ? 1 : max_partial_floats / out_times_in;
  if (splits > by_memory) splits = by_memory;
  if (splits < 1) splits = 1;
  std::size_t chunk = (rows + splits - 1) / splits;
  chunk = (chunk + bk - 1) / bk * bk;
  if (chunk == 0) chunk = bk;
  splits = (rows + chunk - 1) / chunk;
  if (splits < 1) splits = 1;
  return {splits, chunk};
}

}  // namespace ctnn::cuda::kernels

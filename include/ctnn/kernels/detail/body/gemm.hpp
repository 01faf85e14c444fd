// The blocked, register-tiled GEMM of one architecture:
//   C[M, N] (op)= A[M, K] · B[K, N]
// A is read in place, row-major (A(i,k) = a[i·lda + k]) or column-major
// (A(i,k) = a[k·lda + i]), one element broadcast per row and k. B is read in
// place when its rows are contiguous and the panel is whole, and otherwise
// packed (transposed, or zero-padded) into a KC × NR panel on the stack, once
// per K block and NR columns; that panel stays in L1 while every row block of A
// runs through it. The micro-kernel keeps an MR × NR tile of C in registers for
// a whole K block; the epilogue (bias, activation, accumulation) runs on that
// tile before it is stored. Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

// Register tile: MR rows of C by NV vectors. Accumulators MR·NV, plus NV
// loaded vectors of B and one broadcast of A, must fit the register file, and
// there must be enough independent accumulators to cover the FMA latency.
template <std::size_t NV>
inline constexpr std::size_t gemm_mr =
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
    NV == 1 ? 16 : 12;  // 16 or 24 of 32 zmm accumulate
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
    NV == 1 ? 12 : 6;  // 12 of 16 ymm
#else
    NV == 1 ? 8 : 4;  // 8 of 16 xmm; no FMA, so mul and add need a temporary
#endif
inline constexpr std::size_t gemm_kc = 256;  // K block: a 256 × NR panel of B is 32 KiB with AVX-512

enum class ALayout { row_major, col_major };

template <std::size_t R, std::size_t NV, ALayout AL>
CTNN_INLINE void micro_kernel(std::size_t kc, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                              V (&acc)[R][NV]) {
  if constexpr (AL == ALayout::row_major) {
    const float* row[R];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < R; ++i) row[i] = a + i * lda;
    for (std::size_t k = 0; k < kc; ++k) {
      V bv[NV];
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) bv[v] = load(b + v * lanes);
#pragma GCC unroll 16
      for (std::size_t i = 0; i < R; ++i) {
        const V ai = splat(row[i][k]);
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[i][v] = fma(ai, bv[v], acc[i][v]);
      }
      b += ldb;
    }
  } else {
    for (std::size_t k = 0; k < kc; ++k) {
      V bv[NV];
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) bv[v] = load(b + v * lanes);
#pragma GCC unroll 16
      for (std::size_t i = 0; i < R; ++i) {
        const V ai = splat(a[i]);
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[i][v] = fma(ai, bv[v], acc[i][v]);
      }
      a += lda;
      b += ldb;
    }
  }
}

/// [a0 b0 a1 b1 ...] from the low halves of a and b, or from the high halves.
template <bool High>
struct InterleaveIndex {
  static constexpr std::size_t at(std::size_t lane) {
    const std::size_t base = High ? lanes / 2 : 0;
    return lane % 2 == 0 ? base + lane / 2 : lanes + base + lane / 2;
  }
};
/// Transposes a lanes × lanes block held as `lanes` rows: log2(lanes) rounds of
/// interleaving row i with row i + lanes/2.
CTNN_INLINE void transpose_block(V* rows) {
  for (std::size_t round = 1; round < lanes; round *= 2) {
    V next[lanes];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < lanes / 2; ++i) {
      next[2 * i] = shuffle<InterleaveIndex<false>>(rows[i], rows[i + lanes / 2]);
      next[2 * i + 1] = shuffle<InterleaveIndex<true>>(rows[i], rows[i + lanes / 2]);
    }
#pragma GCC unroll 16
    for (std::size_t i = 0; i < lanes; ++i) rows[i] = next[i];
  }
}

/// dst[k][j] = src[j·ld + k] (the transposed block), zero for j ≥ nr: blocks
/// of lanes × lanes are transposed in registers (partial ones padded with zeros).
template <std::size_t NR>
inline void pack_transposed(const float* src, std::size_t ld, std::size_t kc, std::size_t nr, float* dst) {
  for (std::size_t j0 = 0; j0 < NR; j0 += lanes) {
    if (j0 >= nr) {
      for (std::size_t k = 0; k < kc; ++k) store(dst + k * NR + j0, V{});
      continue;
    }
    const std::size_t jn = std::min(lanes, nr - j0);
    for (std::size_t k0 = 0; k0 < kc; k0 += lanes) {
      const std::size_t kn = std::min(lanes, kc - k0);
      V block[lanes];
#pragma GCC unroll 16
      for (std::size_t t = 0; t < lanes; ++t) block[t] = t < jn ? load_n(src + (j0 + t) * ld + k0, kn) : V{};
      transpose_block(block);
#pragma GCC unroll 16
      for (std::size_t t = 0; t < lanes; ++t)
        if (t < kn) store(dst + (k0 + t) * NR + j0, block[t]);
    }
  }
}

/// dst[k][j] = src[k·ld + j], zero for j ≥ nr.
template <std::size_t NR>
inline void pack_rows(const float* src, std::size_t ld, std::size_t kc, std::size_t nr, float* dst) {
  for (std::size_t k = 0; k < kc; ++k)
    for (std::size_t j = 0; j < NR; j += lanes) {
      const std::size_t count = j < nr ? std::min(lanes, nr - j) : 0;
      store(dst + k * NR + j, count == 0 ? V{} : load_n(src + k * ld + j, count));
    }
}

// ---- epilogues: what happens to a finished tile of C ------------------------

/// C = A·B, or C += A·B when `accumulate`: the K blocks after the first always
/// add to what the earlier ones stored.
struct StoreC {
  float* c;
  std::size_t ldc;
  bool accumulate = false;
  template <std::size_t R, std::size_t NV>
  CTNN_INLINE void operator()(std::size_t i0, std::size_t j0, std::size_t nr, V (&acc)[R][NV], bool first,
                              bool) const {
#pragma GCC unroll 16
    for (std::size_t i = 0; i < R; ++i) {
      float* row = c + (i0 + i) * ldc + j0;
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) {
        if (v * lanes >= nr) break;
        const std::size_t count = std::min(lanes, nr - v * lanes);
        V value = acc[i][v];
        if (accumulate || !first) value += load_n(row + v * lanes, count);
        store_n(row + v * lanes, value, count);
      }
    }
  }
};

/// y = act(A·B + bias); z = A·B + bias as well when z is not null. Partial
/// sums of earlier K blocks wait in y.
template <class Act>
struct LinearEpilogue {
  float* y;
  float* z;
  const float* bias;
  std::size_t ldc;
  template <std::size_t R, std::size_t NV>
  CTNN_INLINE void operator()(std::size_t i0, std::size_t j0, std::size_t nr, V (&acc)[R][NV], bool first,
                              bool last) const {
    V b[NV];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v)
      b[v] = (bias && last && v * lanes < nr) ? load_n(bias + j0 + v * lanes, std::min(lanes, nr - v * lanes)) : V{};
#pragma GCC unroll 16
    for (std::size_t i = 0; i < R; ++i) {
      float* yrow = y + (i0 + i) * ldc + j0;
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) {
        if (v * lanes >= nr) break;
        const std::size_t count = std::min(lanes, nr - v * lanes);
        V value = acc[i][v];
        if (!first) value += load_n(yrow + v * lanes, count);
        if (last) {
          value += b[v];
          if (z) store_n(z + (i0 + i) * ldc + j0 + v * lanes, value, count);
          value = activation_f<Act>(value);
        }
        store_n(yrow + v * lanes, value, count);
      }
    }
  }
};

template <std::size_t R, std::size_t NV, ALayout AL, class Epilogue>
CTNN_INLINE void gemm_tile(std::size_t kc, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                           std::size_t i0, std::size_t j0, std::size_t nr, bool first, bool last,
                           const Epilogue& epilogue) {
  V acc[R][NV] = {};
  micro_kernel<R, NV, AL>(kc, AL == ALayout::row_major ? a + i0 * lda : a + i0, lda, b, ldb, acc);
  epilogue(i0, j0, nr, acc, first, last);
}

/// C[M, N] (op)= A[M, K] · B[K, N]; B(k, j) = b[k·ldb + j], or b[j·ldb + k]
/// when b_transposed.
template <std::size_t NV, ALayout AL, class Epilogue>
inline void gemm(std::size_t M, std::size_t N, std::size_t K, const float* a, std::size_t lda, const float* b,
                 std::size_t ldb, bool b_transposed, const Epilogue& epilogue) {
  constexpr std::size_t NR = NV * lanes;
  constexpr std::size_t MR = gemm_mr<NV>;
  alignas(64) float panel[gemm_kc * NR];
  for (std::size_t k0 = 0; k0 < K; k0 += gemm_kc) {
    const std::size_t kc = std::min(gemm_kc, K - k0);
    const bool first = k0 == 0, last = k0 + kc == K;
    const float* ak = AL == ALayout::row_major ? a + k0 : a + k0 * lda;
    for (std::size_t j0 = 0; j0 < N; j0 += NR) {
      const std::size_t nr = std::min(NR, N - j0);
      const float* bp = b + k0 * ldb + j0;
      std::size_t bld = ldb;
      if (b_transposed) {
        pack_transposed<NR>(b + j0 * ldb + k0, ldb, kc, nr, panel);
        bp = panel;
        bld = NR;
      } else if (nr < NR) {
        pack_rows<NR>(bp, ldb, kc, nr, panel);
        bp = panel;
        bld = NR;
      }
      std::size_t i0 = 0;
      for (; i0 + MR <= M; i0 += MR) gemm_tile<MR, NV, AL>(kc, ak, lda, bp, bld, i0, j0, nr, first, last, epilogue);
      const std::size_t rest = M - i0;
      if constexpr (MR > 8)
        if (rest & 8) {
          gemm_tile<8, NV, AL>(kc, ak, lda, bp, bld, i0, j0, nr, first, last, epilogue);
          i0 += 8;
        }
      if constexpr (MR > 4)
        if (rest & 4) {
          gemm_tile<4, NV, AL>(kc, ak, lda, bp, bld, i0, j0, nr, first, last, epilogue);
          i0 += 4;
        }
      if (rest & 2) {
        gemm_tile<2, NV, AL>(kc, ak, lda, bp, bld, i0, j0, nr, first, last, epilogue);
        i0 += 2;
      }
      if (rest & 1) gemm_tile<1, NV, AL>(kc, ak, lda, bp, bld, i0, j0, nr, first, last, epilogue);
    }
  }
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

#endif  // CTNN_KERNELS_NS

// The blocked, register-tiled GEMM of one architecture:
//   C[M, N] (op)= A[M, K] · B[K, N]
// A is row-major (A(i,k) = a[i·lda + k]) or column-major (A(i,k) = a[k·lda + i]);
// B has rows (B(k,j) = b[k·ldb + j]) or is transposed (b[j·ldb + k], the
// forward's weights). Per K block of 256: a block of up to 192 rows of A is
// copied into a stack buffer (row-major: rows 272 floats apart; column-major:
// MR rows side by side), then each KC × NR panel of B is packed (transposed in
// registers, or copied) into a stack buffer that stays in L1 while every MR
// panel of the A block runs through it. The micro-kernel keeps an MR × NR tile
// of C in registers for a whole K block, one broadcast of A and NV loads of B
// per k; the epilogue (bias, activation, accumulation) runs on that tile before
// it is stored. Every element of C is summed in order of k within a K block,
// from zero, then added to the earlier blocks' sum: the same bits on every
// architecture with FMA, packed or not. Part of the per-architecture body.
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
// K block. Also fixes the rounding: each K block is summed from zero, in order
// of k, and then added to the earlier blocks' sum (so changing it changes bits).
inline constexpr std::size_t gemm_kc = 256;
// Rows of A packed at a time (a multiple of every gemm_mr): MC × (KC + 16)
// floats on the stack (204 KiB), in L2 (1 MiB here) while every column panel
// of B runs through it. A panel of B is packed once per MC rows, so MC is as
// large as the stack allows: an evaluation tile (≤ 256 rows) is one or two blocks.
inline constexpr std::size_t gemm_mc = 192;
// Row-major A is packed row after row (a copy, no transposition), rows this
// many floats apart: KC plus one cache line, so that the rows of a panel fall
// into different L1 sets.
inline constexpr std::size_t gemm_a_stride = gemm_kc + 16;

enum class ALayout { row_major, col_major };

/// How the micro-kernel finds A(i, k) of its panel (i < R, k < kc).
enum class APanel {
  packed_rows,     // a[i·gemm_a_stride + k]: row-major A, packed
  packed_columns,  // a[k·R + i]: column-major A, packed
  rows,            // a[i·lda + k]: row-major A in place
  columns,         // a[k·lda + i]: column-major A in place
};

/// acc (+)= A panel · B panel over kc; B(k, v·lanes + l) = b[k·ldb + v·lanes + l]
/// (packed: ldb = NR).
template <std::size_t R, std::size_t NV, APanel P>
CTNN_INLINE void micro_kernel(std::size_t kc, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                              V (&acc)[R][NV]) {
  if constexpr (P == APanel::rows) {
    // R row pointers (the compilers keep them in registers; one displacement
    // each would need a multiply by lda).
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
    constexpr std::size_t stride = P == APanel::packed_rows ? gemm_a_stride : 1;
    const std::size_t step = P == APanel::packed_rows ? 1 : P == APanel::packed_columns ? R : lda;
#pragma GCC unroll 2
    for (std::size_t k = 0; k < kc; ++k) {
      V bv[NV];
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) bv[v] = load(b + v * lanes);
#pragma GCC unroll 16
      for (std::size_t i = 0; i < R; ++i) {
        const V ai = splat(a[i * stride]);
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[i][v] = fma(ai, bv[v], acc[i][v]);
      }
      a += step;
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

/// Packs R rows of A (the block's rows i0.., columns k0.. < k0 + kc):
/// row-major A row after row, dst[i·gemm_a_stride + k]; column-major A side
/// by side, dst[k·R + i], storing whole vectors in increasing k (each store's
/// tail beyond R is overwritten by the next one; the last one writes up to
/// `lanes` floats past kc·R, and the buffer has room for them).
template <std::size_t R, ALayout AL>
CTNN_INLINE void pack_a(const float* a, std::size_t lda, std::size_t kc, float* dst) {
  if constexpr (AL == ALayout::row_major) {
    for (std::size_t i = 0; i < R; ++i) {
      std::size_t k = 0;
      for (; k + lanes <= kc; k += lanes) store(dst + i * gemm_a_stride + k, load(a + i * lda + k));
      if (k < kc) store(dst + i * gemm_a_stride + k, load_first(a + i * lda + k, kc - k));
    }
  } else {
    constexpr std::size_t groups = (R + lanes - 1) / lanes;  // vectors per k
    for (std::size_t k = 0; k < kc; ++k) {
#pragma GCC unroll 4
      for (std::size_t g = 0; g < groups; ++g)
        store(dst + k * R + g * lanes, load_n(a + k * lda + g * lanes, std::min(lanes, R - g * lanes)));
    }
  }
}

// ---- epilogues: what happens to a finished tile of C ------------------------

/// C = A·B, or C += A·B when `accumulate`: the K blocks after the first always
/// add to what the earlier ones stored. With an activation's gradient (a
/// Linear's dx written as the gradient of the activation before it), the
/// finished sum is multiplied by its derivative as the last K block stores it,
/// and, unless column_sums is null, added to column_sums[j] (zeroed by the
/// caller): the tiles of a column come in order of rows (gemm below keeps
/// each column on one thread), so each column is summed in order of rows.
template <class GradientOf = NoActivation>
struct StoreC {
  float* c;
  std::size_t ldc;
  bool accumulate = false;
  ActivationGradient<GradientOf> gradient{};
  float* column_sums = nullptr;
  template <std::size_t R, std::size_t NV>
  CTNN_INLINE void operator()(std::size_t i0, std::size_t j0, std::size_t nr, V (&acc)[R][NV], bool first,
                              bool last) const {
    V sums[NV];
    const bool summing = last && column_sums;
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v)
      sums[v] = summing && v * lanes < nr ? load_n(column_sums + j0 + v * lanes, std::min(lanes, nr - v * lanes)) : V{};
#pragma GCC unroll 16
    for (std::size_t i = 0; i < R; ++i) {
      float* row = c + (i0 + i) * ldc + j0;
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) {
        if (v * lanes >= nr) break;
        const std::size_t count = std::min(lanes, nr - v * lanes);
        V value = acc[i][v];
        if (accumulate || !first) value += load_n(row + v * lanes, count);
        if (last) value = apply_gradient(gradient, value, (i0 + i) * ldc + j0 + v * lanes, count);
        store_n(row + v * lanes, value, count);
        if constexpr (activation_form<GradientOf> != ActivationForm::none) sums[v] += value;
      }
    }
    if constexpr (activation_form<GradientOf> != ActivationForm::none)
      if (summing)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v)
          if (v * lanes < nr) store_n(column_sums + j0 + v * lanes, sums[v], std::min(lanes, nr - v * lanes));
  }
  /// Whether the tiles of each column must come in order of rows, on one thread.
  bool sums_columns() const { return column_sums != nullptr; }
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

template <std::size_t R, std::size_t NV, APanel P, class Epilogue>
CTNN_INLINE void gemm_tile(std::size_t kc, const float* ap, std::size_t lda, const float* bp, std::size_t bld,
                           std::size_t i0, std::size_t j0, std::size_t nr, bool first, bool last,
                           const Epilogue& epilogue) {
  V acc[R][NV] = {};
  micro_kernel<R, NV, P>(kc, ap, lda, bp, bld, acc);
  epilogue(i0, j0, nr, acc, first, last);
}

/// Whether rows `ld` floats apart fall into the same L1 set every 2 KiB or
/// less (1024 features: every row; 784: no two of 12 rows in a row).
constexpr bool gemm_rows_collide(std::size_t ld) { return ld % 512 == 0; }

/// Rows [i0, i0 + rows) of A: whole MR panels, then panels of 8, 4, 2 and 1.
/// `f.template operator()<R>(i, offset)` gets each panel's first row and its
/// offset in the packed block (in units of kc).
template <std::size_t MR, class F>
CTNN_INLINE void for_each_panel(std::size_t i0, std::size_t rows, F&& f) {
  std::size_t i = 0;
  for (; i + MR <= rows; i += MR) f.template operator()<MR>(i0 + i, i);
  const std::size_t rest = rows - i;
  if constexpr (MR > 8)
    if (rest & 8) {
      f.template operator()<8>(i0 + i, i);
      i += 8;
    }
  if constexpr (MR > 4)
    if (rest & 4) {
      f.template operator()<4>(i0 + i, i);
      i += 4;
    }
  if (rest & 2) {
    f.template operator()<2>(i0 + i, i);
    i += 2;
  }
  if (rest & 1) f.template operator()<1>(i0 + i, i);
}

/// C[M, N] (op)= A[M, K] · B[K, N] in the rows [i_begin, i_end) and the
/// columns [j_begin, j_end) (j_begin a multiple of NR); B(k, j) = b[k·ldb + j],
/// or b[j·ldb + k] when b_transposed. (One thread's share when a pool splits it.)
///
/// for each K block of KC:
///   for each block of MC rows: pack A (a copy, rows KC + 16 floats apart)
///     for each panel of NR columns: pack B (KC × NR, contiguous: stays in L1)
///       for each MR panel of the A block: micro-kernel, epilogue
/// Read in place, rows lda or ldb floats apart (4 KiB for 1024 features) fall
/// into the same few L1 sets and evict each other and the panel of B; packed,
/// they do not. So A is packed only when its rows collide (gemm_rows_collide)
/// and three or more column panels read it; otherwise it is read in place and
/// all M rows form one block. A panel of B with rows is likewise packed only
/// when partial, or when its rows collide and more than four row panels read it.
template <bool pack, std::size_t NV, ALayout AL, class Epilogue>
inline void gemm_blocks(std::size_t i_begin, std::size_t i_end, std::size_t N, std::size_t K, const float* a,
                        std::size_t lda, const float* b, std::size_t ldb, bool b_transposed, const Epilogue& epilogue,
                        std::size_t j_begin, std::size_t j_end) {
  constexpr std::size_t NR = NV * lanes;
  constexpr std::size_t MR = gemm_mr<NV>;
  static_assert(gemm_mc % MR == 0);
  // Room for MC rows at gemm_a_stride (row-major), or MC·KC floats and the
  // overrun of the last vector store (column-major).
  alignas(64) float a_block[pack ? gemm_mc * gemm_a_stride : 1];
  alignas(64) float b_panel[gemm_kc * NR];
  for (std::size_t k0 = 0; k0 < K; k0 += gemm_kc) {
    const std::size_t kc = std::min(gemm_kc, K - k0);
    const bool first = k0 == 0, last = k0 + kc == K;
    // Where a panel starting `offset` rows into the block is packed: offset · a_panel_step.
    const std::size_t a_panel_step = AL == ALayout::row_major ? gemm_a_stride : kc;
    const float* ak = AL == ALayout::row_major ? a + k0 : a + k0 * lda;
    // Unpacked, all rows run through each panel of B (packed once).
    const std::size_t rows = i_end - i_begin;
    const std::size_t block_rows = pack ? gemm_mc : rows;
    for (std::size_t m0 = i_begin; m0 < i_end; m0 += block_rows) {
      const std::size_t mc = std::min(block_rows, i_end - m0);
      if constexpr (pack)
        for_each_panel<MR>(m0, mc, [&]<std::size_t R>(std::size_t i, std::size_t offset) CTNN_LAMBDA_INLINE {
          pack_a<R, AL>(AL == ALayout::row_major ? ak + i * lda : ak + i, lda, kc, a_block + offset * a_panel_step);
        });
      for (std::size_t j0 = j_begin; j0 < j_end; j0 += NR) {
        const std::size_t nr = std::min(NR, N - j0);
        const float* bp = b_panel;
        std::size_t bld = NR;
        if (b_transposed) pack_transposed<NR>(b + j0 * ldb + k0, ldb, kc, nr, b_panel);
        else if (nr < NR || (gemm_rows_collide(ldb) && rows > 4 * MR))
          pack_rows<NR>(b + k0 * ldb + j0, ldb, kc, nr, b_panel);
        else {  // whole rows, in place
          bp = b + k0 * ldb + j0;
          bld = ldb;
        }
        for_each_panel<MR>(m0, mc, [&]<std::size_t R>(std::size_t i, std::size_t offset) CTNN_LAMBDA_INLINE {
          if constexpr (pack) {
            constexpr APanel P = AL == ALayout::row_major ? APanel::packed_rows : APanel::packed_columns;
            gemm_tile<R, NV, P>(kc, a_block + offset * a_panel_step, lda, bp, bld, i, j0, nr, first, last, epilogue);
          } else {
            constexpr APanel P = AL == ALayout::row_major ? APanel::rows : APanel::columns;
            gemm_tile<R, NV, P>(kc, AL == ALayout::row_major ? ak + i * lda : ak + i, lda, bp, bld, i, j0, nr,
                                first, last, epilogue);
          }
        });
      }
    }
  }
}

/// Multiply-adds below which a product runs on one thread even with a pool:
/// about 20 us of work for one AVX-512 core at its peak (more with narrower
/// vectors), against a few us to hand the parts over and wake a worker.
inline constexpr std::size_t gemm_parallel_min_fmas = std::size_t{1} << 21;

template <std::size_t NV, ALayout AL, class Epilogue>
inline void gemm(std::size_t M, std::size_t N, std::size_t K, const float* a, std::size_t lda, const float* b,
                 std::size_t ldb, bool b_transposed, const Epilogue& epilogue, ThreadPool* pool = nullptr) {
  // A is packed when its rows collide in L1 and at least three column panels
  // read it; otherwise it is read in place (the copy would cost more than it
  // saves: measured on W3's layers, 784 and 256 features).
  const bool pack_a = gemm_rows_collide(lda) && N > 2 * NV * lanes;
  const auto share = [&](std::size_t i_begin, std::size_t i_end, std::size_t j_begin, std::size_t j_end) {
    if (pack_a) gemm_blocks<true, NV, AL>(i_begin, i_end, N, K, a, lda, b, ldb, b_transposed, epilogue, j_begin, j_end);
    else gemm_blocks<false, NV, AL>(i_begin, i_end, N, K, a, lda, b, ldb, b_transposed, epilogue, j_begin, j_end);
  };
  // With a pool, each thread takes a run of whole row panels of C or of whole
  // column panels, whichever there are more of: every element of C is still
  // summed by one thread in the same order, so the bits do not depend on the
  // number of threads. Rows first: a thread then keeps the rows of a batch
  // from one layer to the next (in its own caches), where splitting the
  // columns of chained 128-wide layers had each thread read half of its input
  // from the other core (four Linear<128, 128>, 256 rows, two threads: 1.13x
  // faster by columns, 1.43x by rows; one such layer alone 1.93x either way).
  constexpr std::size_t NR = NV * lanes, MR = gemm_mr<NV>;
  const std::size_t row_panels = (M + MR - 1) / MR, column_panels = (N + NR - 1) / NR;
  bool by_rows = row_panels >= column_panels;
  if constexpr (requires { epilogue.sums_columns(); })
    if (epilogue.sums_columns()) by_rows = false;
  const std::size_t panels = by_rows ? row_panels : column_panels;
  const std::size_t parts = pool && M * N * K >= gemm_parallel_min_fmas ? std::min(pool->size(), panels) : 1;
  if (parts <= 1) return share(0, M, 0, N);
  pool->run(parts, [&](std::size_t part) {
    const std::size_t first = panels * part / parts, last = panels * (part + 1) / parts;
    if (by_rows) share(first * MR, std::min(M, last * MR), 0, N);
    else share(0, M, first * NR, std::min(N, last * NR));
  });
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

#endif  // CTNN_KERNELS_NS

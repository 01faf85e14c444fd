// The single-row kernel of a fully connected layer (with its activation fused)
// for one architecture, reading the packed layout of kernels/row_layout.hpp,
// and its entry point: ctnn::kernels::linear_row taking this architecture's
// xsimd tag first. What InferenceModel's batch-1 path runs (compose/row_program.hpp).
// Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// Independent accumulation chains a row kernel keeps: FMA latency (4 cycles)
/// times the FMA pipes (2), so that one row is not one long dependency chain.
inline constexpr std::size_t row_chains = 8;
/// Output vectors accumulated at once (each k adds x[k]·wᵀ[k, :] to all of
/// them): most of the vector registers, leaving room for x[k] and w's vectors.
inline constexpr std::size_t row_block_vectors = CTNN_KERNELS_ISA == CTNN_ISA_AVX512 ? 16 : 8;

/// acc[0][v] = Σ_p acc[p][v] over the first Count partial sums, pairwise
/// (halves folded onto halves, so the adds of one level are independent).
template <std::size_t Count, std::size_t Parts, std::size_t Block>
CTNN_INLINE void fold_parts(V (&acc)[Parts][Block]) {
  if constexpr (Count > 1) {
    constexpr std::size_t half = (Count + 1) / 2;
#pragma GCC unroll 8
    for (std::size_t p = 0; p + half < Count; ++p)
#pragma GCC unroll 16
      for (std::size_t v = 0; v < Block; ++v) acc[p][v] += acc[p + half][v];
    fold_parts<half>(acc);
  }
}

/// acc[p][v] += xv · row[v·lanes ...] for v < Block.
template <std::size_t Parts, std::size_t Block>
CTNN_INLINE void row_add_vector(V (&acc)[Parts][Block], std::size_t p, V xv, const float* row) {
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v) acc[p][v] = fma(xv, load(row + v * lanes), acc[p][v]);
}

/// acc[p][v] += x[k]·wᵀ[k, first + v·lanes ...] for v < Block.
template <std::size_t Stride, std::size_t Parts, std::size_t Block>
CTNN_INLINE void row_add_input(V (&acc)[Parts][Block], std::size_t p, const float* wt, const float* x, std::size_t k,
                               std::size_t first) {
  row_add_vector(acc, p, splat(x[k]), wt + k * Stride + first);
}

/// Outputs [first, first + Block·lanes) of one row from wᵀ: y = act(b + Σ_k x[k]·wᵀ[k, :]).
/// With few output vectors the k's are dealt round-robin to `parts` partial
/// sums (added pairwise at the end), so that the FMAs form row_chains
/// independent chains. wᵀ's rows are read in order, one stream, one k-round
/// (at most 16 vectors, 1 KiB) per loop iteration: a layer too big for L1
/// streams from L2 at close to the read bandwidth only in that shape. Measured
/// on the W4 and W3 rows (AVX-512, processes interleaved): k split into two
/// contiguous halves read side by side, 4.47 / 6.73 us; one stream unrolled to
/// 32 vectors per iteration, 2.55 / 8.19 us; one stream as here, 2.47 / 6.57 us
/// (W4 streams its 516 KiB in 2.4 us at the L2 read rate).
template <class Act, std::size_t In, std::size_t Out, std::size_t Block>
CTNN_INLINE void row_columns_block(const float* wt, const float* x, float* y, std::size_t first) {
  constexpr std::size_t stride = row_padded(Out);
  constexpr std::size_t parts = std::min(In, (row_chains + Block - 1) / Block);
  constexpr std::size_t rounds = In / parts;
  const float* bias = wt + In * stride;
  V acc[parts][Block];
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v) acc[0][v] = load(bias + first + v * lanes);
#pragma GCC unroll 8
  for (std::size_t p = 1; p < parts; ++p)
#pragma GCC unroll 16
    for (std::size_t v = 0; v < Block; ++v) acc[p][v] = V{};
#pragma GCC unroll 1
  for (std::size_t r = 0; r < rounds; ++r)
#pragma GCC unroll 8
    for (std::size_t p = 0; p < parts; ++p) row_add_input<stride>(acc, p, wt, x, r * parts + p, first);
#pragma GCC unroll 8
  for (std::size_t p = 0; p < In % parts; ++p) row_add_input<stride>(acc, p, wt, x, rounds * parts + p, first);
  fold_parts<parts>(acc);
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v) store(y + first + v * lanes, activation_f<Act>(acc[0][v]));
}

/// Lane i takes lane i + B of its group of four, round the group.
template <std::size_t B>
struct RotateInQuads {
  static constexpr std::size_t at(std::size_t lane) { return lane / 4 * 4 + (lane % 4 + B) % 4; }
};

/// Lane i takes lane i % 4 of group G: group G in every group of four lanes.
template <std::size_t G>
struct QuadEverywhere {
  static constexpr std::size_t at(std::size_t lane) { return G * 4 + lane % 4; }
};

/// The four rows of one group: acc[b % Parts] += rotation b of q · row b, for
/// b < 4 (row t = 4g + b goes to partial sum t % Parts; Parts divides 4).
template <std::size_t Stride, std::size_t Parts, std::size_t Block>
CTNN_INLINE void row_quad_group(V (&acc)[Parts][Block], V q, const float* rows) {
  row_add_vector(acc, 0, q, rows);
  row_add_vector(acc, 1 % Parts, shuffle<RotateInQuads<1>>(q, q), rows + Stride);
  row_add_vector(acc, 2 % Parts, shuffle<RotateInQuads<2>>(q, q), rows + 2 * Stride);
  row_add_vector(acc, 3 % Parts, shuffle<RotateInQuads<3>>(q, q), rows + 3 * Stride);
}

/// The Count / 4 groups of xv (x's values from a multiple of lanes on; rows:
/// their first row of weights): each group put in every group of four lanes by
/// a shuffle of the vector (one instruction; x is usually the previous
/// layer's output, still in registers), then its four rows.
template <std::size_t Count, std::size_t Stride, std::size_t Parts, std::size_t Block>
CTNN_INLINE void row_quad_vector(V (&acc)[Parts][Block], V xv, const float* rows) {
  [&]<std::size_t... G>(std::index_sequence<G...>) CTNN_LAMBDA_INLINE {
    (row_quad_group<Stride>(acc, shuffle<QuadEverywhere<G>>(xv, xv), rows + 4 * G * Stride), ...);
  }(std::make_index_sequence<Count / 4>{});
}

/// Partial sums of a quads block of `Block` output vectors (1, 2 or 4: the
/// four rotations of a group go round-robin to them). Four for one vector: in
/// a standalone copy of W1's row (AVX-512), 2, 4 and 8 partial sums of its
/// 16 -> 16 layer gave 7.65, 7.42 and 8.13 ns per row (eight leave more adds
/// than they hide latency). As the block grows, fewer: at most 16 accumulators
/// with AVX-512's 32 registers, 8 with the others' 16.
template <std::size_t Block>
inline constexpr std::size_t quad_parts = [] {
  const std::size_t most = (lanes == 16 ? 16 : 8) / Block;
  return most >= 4 || Block == 1 ? std::size_t{4} : most >= 2 ? std::size_t{2} : std::size_t{1};
}();

/// Outputs [first, first + Block·lanes) of one row from the quads layout
/// (kernels/row_layout.hpp): y = act(b + Σ_t rotation(t % 4) of x[t - t % 4, +4) · row t).
template <class Act, std::size_t In, std::size_t Out, std::size_t Block>
CTNN_INLINE void row_quads_block(const float* wq, const float* x, float* y, std::size_t first) {
  constexpr std::size_t stride = row_padded(Out);
  constexpr std::size_t parts = quad_parts<Block>;
  const float* bias = wq + In * stride;
  V acc[parts][Block];
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v) acc[0][v] = load(bias + first + v * lanes);
#pragma GCC unroll 4
  for (std::size_t p = 1; p < parts; ++p)
#pragma GCC unroll 16
    for (std::size_t v = 0; v < Block; ++v) acc[p][v] = V{};
  // x's whole vectors: up to two unrolled (W1's 16 inputs on AVX2), more in a
  // loop: unrolled, g++ computed every group's rotations up front and, with
  // 16 registers, spilled them (W2's row on SSE: 339 -> 604 ns).
  constexpr std::size_t whole = In / lanes;
  if constexpr (whole <= 2) {
#pragma GCC unroll 2
    for (std::size_t c = 0; c < whole; ++c)
      row_quad_vector<lanes, stride>(acc, load(x + c * lanes), wq + c * lanes * stride + first);
  } else {
#pragma GCC unroll 1
    for (std::size_t c = 0; c < whole; ++c)
      row_quad_vector<lanes, stride>(acc, load(x + c * lanes), wq + c * lanes * stride + first);
  }
  if constexpr (In % lanes != 0)  // the last groups, fewer than a vector
    row_quad_vector<In % lanes, stride>(acc, load_first(x + whole * lanes, In % lanes),
                                        wq + whole * lanes * stride + first);
  fold_parts<parts>(acc);
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v) store(y + first + v * lanes, activation_f<Act>(acc[0][v]));
}

/// One block of output vectors in the layer's packed layout (columns or quads).
template <class Act, std::size_t In, std::size_t Out, std::size_t Block>
CTNN_INLINE void row_block(const float* packed, const float* x, float* y, std::size_t first) {
  if constexpr (row_uses_quads<In, Out>) row_quads_block<Act, In, Out, Block>(packed, x, y, first);
  else row_columns_block<Act, In, Out, Block>(packed, x, y, first);
}

/// Out <= 4 outputs of one row as dot products of w's rows with x, each over
/// up to row_chains partial sums, then summed across lanes; the outputs land
/// in one vector.
template <class Act, std::size_t In, std::size_t Out>
CTNN_INLINE void row_dots(const float* w, const float* x, float* y) {
  static_assert(Out <= lanes);
  constexpr std::size_t full = In / lanes, tail = In % lanes;
  constexpr std::size_t parts = std::min(row_chains, full + (tail != 0 ? 1 : 0));
  V out = load(w + row_padded(Out * In));  // the bias, padded with zeros
#pragma GCC unroll 4
  for (std::size_t j = 0; j < Out; ++j) {
    V acc[parts][1] = {};
#pragma GCC unroll 16
    for (std::size_t b = 0; b < full; ++b)
      acc[b % parts][0] = fma(load(x + b * lanes), load(w + j * In + b * lanes), acc[b % parts][0]);
    if constexpr (tail != 0)
      acc[full % parts][0] =
          fma(load_first(x + full * lanes, tail), load_first(w + j * In + full * lanes, tail), acc[full % parts][0]);
    fold_parts<parts>(acc);
    out[j] += sum_lanes(acc[0][0]);
  }
  store(y, activation_f<Act>(out));
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

namespace ctnn::kernels {

/// y = act(x · wᵀ + b) for one row, from Linear<In, Out>'s packed weights
/// (kernels/row_layout.hpp). Reads x[0, In) only; writes whole vectors, up to
/// row_padded(Out) floats of y (the lanes past Out hold act(0) or act(b)).
template <class Act, std::size_t In, std::size_t Out>
void linear_row(CTNN_KERNELS_TAG, const float* packed, const float* x, float* y) {
  using namespace CTNN_KERNELS_NS;
  if constexpr (row_uses_dots<In, Out>) {
    row_dots<Act, In, Out>(packed, x, y);
  } else {
    constexpr std::size_t vectors = (Out + lanes - 1) / lanes;
    constexpr std::size_t blocks = vectors / row_block_vectors, rest = vectors % row_block_vectors;
    for (std::size_t b = 0; b < blocks; ++b)
      row_block<Act, In, Out, row_block_vectors>(packed, x, y, b * row_block_vectors * lanes);
    if constexpr (rest != 0) row_block<Act, In, Out, rest>(packed, x, y, blocks * row_block_vectors * lanes);
  }
}

}  // namespace ctnn::kernels

#endif  // CTNN_KERNELS_NS

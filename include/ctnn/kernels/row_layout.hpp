// How the single-row kernels (kernels/detail/body/row.hpp) want a Linear's
// weights laid out, and the packing into that layout. PyTorch's layout,
// w[Out, In] row-major, suits a batch (the GEMM reads rows of w against rows of
// x); one row of x wants the transpose: with wᵀ[In, Out] the row kernel
// broadcasts x[k] and adds x[k]·wᵀ[k, :] to `Out / lanes` accumulators, and the
// sums come out of the accumulators already in place, with no transposing
// reduction (which for a 16 -> 16 layer costs more than its 16 FMAs). Only very
// narrow outputs (Out <= 4, e.g. a network's 1-wide head) keep w's rows: there
// a few dot products and their horizontal sums cost less than In broadcasts.
// Small layers whose inputs come in groups of four (W1's 16 -> 16, W2's
// 64 -> 64) take x four floats at a time instead ("quads"): one shuffle puts
// x[4g, 4g + 4) in every 128-bit lane of a vector, three in-lane rotations
// give the other three orders, and each of the four vectors meets a row of
// weights permuted to match. That is four shuffles with immediates per four
// inputs, where broadcasting x[k] from a register costs a full-width permute
// and an index vector per input.
//
// The layout does not depend on the architecture: rows are padded to a
// multiple of 16 floats (every architecture's vector width divides it), with
// zeros, so any kernel reads whole vectors and the padded outputs come out 0;
// the quads' permutation stays within groups of four lanes, which every
// architecture's vectors are made of.
#pragma once

#include <algorithm>
#include <cstddef>

namespace ctnn::kernels {

/// Floats in one padded row of the row kernels: a multiple of the widest
/// vector (16 floats).
constexpr std::size_t row_padded(std::size_t n) { return (n + 15) / 16 * 16; }

/// True when Linear<In, Out>'s row kernel takes dot products of w's rows with
/// x instead of broadcasting x over wᵀ. The cost model counts 16-wide
/// vector operations: In·⌈Out/16⌉ FMAs for the broadcasts against, per output,
/// ⌈In/16⌉ FMAs plus a horizontal sum (about 8 operations).
template <std::size_t In, std::size_t Out>
inline constexpr bool row_uses_dots = Out <= 4 && Out * ((In + 15) / 16 + 8) < In * ((Out + 15) / 16);

/// Largest In · row_padded(Out) that takes the quads: layers whose weights
/// sit in L1 and whose input row stays in registers. Larger layers stream wᵀ
/// from L2, where the broadcasts come from memory (loads, not shuffles) and
/// the order of the reads decides the speed (body/row.hpp).
inline constexpr std::size_t row_quads_max_floats = 64 * 64;

/// True when Linear<In, Out>'s row kernel reads x in groups of four and wᵀ's
/// rows permuted within groups of four lanes (see above).
template <std::size_t In, std::size_t Out>
inline constexpr bool row_uses_quads =
    !row_uses_dots<In, Out> && In % 4 == 0 && In * row_padded(Out) <= row_quads_max_floats;

/// Output j's weight in row t = 4g + b of the quads layout: the input that the
/// b-th in-lane rotation of x[4g, 4g + 4) puts in lane j (lanes j and j % 4 of
/// a group of four hold the same input).
constexpr std::size_t row_quad_input(std::size_t t, std::size_t j) { return t / 4 * 4 + (j % 4 + t % 4) % 4; }

/// Floats of Linear<In, Out>'s packed weights and bias (a multiple of 16, so
/// that consecutive layers' packs stay 64-byte aligned).
template <std::size_t In, std::size_t Out>
inline constexpr std::size_t row_packed_floats =
    row_uses_dots<In, Out> ? row_padded(Out * In) + 16 : (In + 1) * row_padded(Out);

/// Writes Linear<In, Out>'s weight w[Out, In] (PyTorch's layout) and bias
/// (null: none, packed as zeros) into `packed`, row_packed_floats<In, Out>
/// floats:
///   dots:     w[Out, In] as it is, padding, then the bias padded to 16;
///   columns:  wᵀ[In, row_padded(Out)], then the bias padded likewise;
///   quads:    In rows of row_padded(Out), row t holding w[j, row_quad_input(t, j)]
///             in column j, then the bias padded likewise.
template <std::size_t In, std::size_t Out>
void pack_linear_row(const float* w, const float* bias, float* packed) {
  std::fill_n(packed, row_packed_floats<In, Out>, 0.0f);
  if constexpr (row_uses_dots<In, Out>) {
    std::copy_n(w, Out * In, packed);
    if (bias) std::copy_n(bias, Out, packed + row_padded(Out * In));
  } else if constexpr (row_uses_quads<In, Out>) {
    constexpr std::size_t stride = row_padded(Out);
    for (std::size_t t = 0; t < In; ++t)
      for (std::size_t j = 0; j < Out; ++j) packed[t * stride + j] = w[j * In + row_quad_input(t, j)];
    if (bias) std::copy_n(bias, Out, packed + In * stride);
  } else {
    constexpr std::size_t stride = row_padded(Out);
    for (std::size_t j = 0; j < Out; ++j)
      for (std::size_t k = 0; k < In; ++k) packed[k * stride + j] = w[j * In + k];
    if (bias) std::copy_n(bias, Out, packed + In * stride);
  }
}

}  // namespace ctnn::kernels

// How the single-row kernels (kernels/detail/body/row.hpp) want a Linear's
// weights laid out, and the packing into that layout. PyTorch's layout,
// w[Out, In] row-major, suits a batch (the GEMM reads rows of w against rows of
// x); one row of x wants the transpose: with wᵀ[In, Out] the row kernel
// broadcasts x[k] and adds x[k]·wᵀ[k, :] to `Out / lanes` accumulators, and the
// sums come out of the accumulators already in place, with no transposing
// reduction (which for a 16 -> 16 layer costs more than its 16 FMAs). Only very
// narrow outputs (Out <= 4, e.g. a network's 1-wide head) keep w's rows: there
// a few dot products and their horizontal sums cost less than In broadcasts.
//
// The layout does not depend on the architecture: rows of wᵀ are padded to a
// multiple of 16 floats (every architecture's vector width divides it), with
// zeros, so any kernel reads whole vectors and the padded outputs come out 0.
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

/// Floats of Linear<In, Out>'s packed weights and bias (a multiple of 16, so
/// that consecutive layers' packs stay 64-byte aligned).
template <std::size_t In, std::size_t Out>
inline constexpr std::size_t row_packed_floats =
    row_uses_dots<In, Out> ? row_padded(Out * In) + 16 : (In + 1) * row_padded(Out);

/// Writes Linear<In, Out>'s weight w[Out, In] (PyTorch's layout) and bias
/// (null: none, packed as zeros) into `packed`, row_packed_floats<In, Out>
/// floats:
///   dots:     w[Out, In] as it is, padding, then the bias padded to 16;
///   columns:  wᵀ[In, row_padded(Out)], then the bias padded likewise.
template <std::size_t In, std::size_t Out>
void pack_linear_row(const float* w, const float* bias, float* packed) {
  std::fill_n(packed, row_packed_floats<In, Out>, 0.0f);
  if constexpr (row_uses_dots<In, Out>) {
    std::copy_n(w, Out * In, packed);
    if (bias) std::copy_n(bias, Out, packed + row_padded(Out * In));
  } else {
    constexpr std::size_t stride = row_padded(Out);
    for (std::size_t j = 0; j < Out; ++j)
      for (std::size_t k = 0; k < In; ++k) packed[k * stride + j] = w[j * In + k];
    if (bias) std::copy_n(bias, Out, packed + In * stride);
  }
}

}  // namespace ctnn::kernels

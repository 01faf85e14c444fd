// The batch-in-lanes kernels for one architecture: a block of lane_block
// samples held feature-major (feature k of every sample of the block in
// lane_vectors vectors), so that a narrow layer's work is whole-vector FMAs
// with w's entries broadcast, and nothing is summed across lanes. What the narrow-network path
// of an evaluation forward runs (compose/lane_program.hpp). Part of the
// per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// Vectors of samples in one block: each broadcast w[j, k] feeds this many
/// FMAs. Measured on W1 and W2 (docs/kernels.md): 4 was faster than 1 and 2;
/// 8 no longer fits the registers' reach and was 4x slower.
inline constexpr std::size_t lane_vectors = 4;
/// Samples in one block.
inline constexpr std::size_t lane_block = lane_vectors * lanes;

// The sums run in the order of the batch kernels (body/linear.hpp, gemm.hpp),
// so that a network gives the same bits in lanes as through the batch path
// (with hooks, as a custom module, or in batches under one block but of more
// than dot_forward_max_rows rows): each output from zero over k in order,
// then the bias, the activation and the skip add; a single output as
// forward_single_output sums it, per lane of a vector and then across the
// lanes in reduce_lanes' tree.

/// Outputs [first, first + Block) of a block: yT[j] = act(Σ_k w[j, k]·xT[k] + b[j])
/// (+ skipT[j] with Skip: a residual connection's add), w in PyTorch's layout
/// [Out, In]. Each w[j, k] is broadcast from memory once for the block's vectors.
template <class Act, bool Bias, bool Skip, std::size_t In, std::size_t Block>
CTNN_INLINE void lanes_linear_block(const float* w, const float* b, const float* xT, const float* skipT, float* yT,
                                    std::size_t first) {
  constexpr std::size_t S = lane_vectors;
  V acc[Block * S] = {};
#pragma GCC unroll 4
  for (std::size_t k = 0; k < In; ++k) {
    V xk[S];
#pragma GCC unroll 4
    for (std::size_t s = 0; s < S; ++s) xk[s] = load(xT + k * lane_block + s * lanes);
#pragma GCC unroll 16
    for (std::size_t v = 0; v < Block; ++v) {
      const V wjk = splat(w[(first + v) * In + k]);
#pragma GCC unroll 4
      for (std::size_t s = 0; s < S; ++s) acc[v * S + s] = fma(wjk, xk[s], acc[v * S + s]);
    }
  }
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Block; ++v)
#pragma GCC unroll 4
    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t at = (first + v) * lane_block + s * lanes;
      V out = acc[v * S + s];
      if constexpr (Bias) out += splat(b[first + v]);
      out = activation_f<Act>(out);
      if constexpr (Skip) out += load(skipT + at);
      store(yT + at, out);
    }
}

/// The one output of a Linear<In, 1>: per sample, part[l] = Σ_c x[c·lanes + l]·w[c·lanes + l]
/// (the chunks c in order; past In, zeros), then the parts summed in reduce_lanes'
/// tree (the upper half onto the lower, halving), then the bias.
template <class Act, bool Bias, bool Skip, std::size_t In>
CTNN_INLINE void lanes_single_output(const float* w, const float* b, const float* xT, const float* skipT,
                                     float* yT) {
  constexpr std::size_t chunks = (In + lanes - 1) / lanes;
  for (std::size_t s = 0; s < lane_vectors; ++s) {
    V part[lanes] = {};
#pragma GCC unroll 16
    for (std::size_t c = 0; c < chunks; ++c)
#pragma GCC unroll 16
      for (std::size_t l = 0; l < lanes; ++l) {
        const std::size_t k = c * lanes + l;
        if (k < In) part[l] = fma(splat(w[k]), load(xT + k * lane_block + s * lanes), part[l]);
        else part[l] = fma(V{}, V{}, part[l]);
      }
#pragma GCC unroll 8
    for (std::size_t half = lanes / 2; half > 0; half /= 2)
#pragma GCC unroll 8
      for (std::size_t l = 0; l < half; ++l) part[l] = part[l] + part[l + half];
    V out = part[0];
    if constexpr (Bias) out += splat(*b);
    out = activation_f<Act>(out);
    if constexpr (Skip) out += load(skipT + s * lanes);
    store(yT + s * lanes, out);
  }
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

namespace ctnn::kernels {

/// The samples in one block of the batch-in-lanes kernels.
constexpr std::size_t block_lanes(CTNN_KERNELS_TAG) { return CTNN_KERNELS_NS::lane_block; }

/// yT[Out][block] = act(w · xT[In][block] + b) (+ skipT[Out][block]) for one
/// block; b and skipT may be null.
template <class Act, std::size_t In, std::size_t Out>
void linear_lanes(CTNN_KERNELS_TAG, const float* w, const float* b, const float* xT, const float* skipT, float* yT) {
  using namespace CTNN_KERNELS_NS;
  constexpr std::size_t per_pass = row_block_vectors / lane_vectors;  // outputs accumulated at once
  constexpr std::size_t passes = Out / per_pass, rest = Out % per_pass;
  const auto run = [&]<bool Bias, bool Skip>() CTNN_LAMBDA_INLINE {
    if constexpr (Out == 1) {
      lanes_single_output<Act, Bias, Skip, In>(w, b, xT, skipT, yT);
    } else {
      for (std::size_t i = 0; i < passes; ++i)
        lanes_linear_block<Act, Bias, Skip, In, per_pass>(w, b, xT, skipT, yT, i * per_pass);
      if constexpr (rest != 0) lanes_linear_block<Act, Bias, Skip, In, rest>(w, b, xT, skipT, yT, passes * per_pass);
    }
  };
  if (b) {
    if (skipT) run.template operator()<true, true>();
    else run.template operator()<true, false>();
  } else {
    if (skipT) run.template operator()<false, true>();
    else run.template operator()<false, false>();
  }
}

/// y = f(x) (+ skip) over a block of W features; skip may be null.
template <class Fn, std::size_t W>
void activation_lanes(CTNN_KERNELS_TAG, const float* x, const float* skip, float* y) {
  using namespace CTNN_KERNELS_NS;
#pragma GCC unroll 16
  for (std::size_t v = 0; v < W * lane_vectors; ++v) {
    const V out = activation_f<Fn>(load(x + v * lanes));
    store(y + v * lanes, skip ? out + load(skip + v * lanes) : out);
  }
}

/// Rows [0, rows) of x[rows, In] into a block xT[In][lane_block], feature-major;
/// the samples past `rows` (rows <= lane_block) are zero, so that they compute
/// finite values nobody reads.
template <std::size_t In>
void rows_to_lanes(CTNN_KERNELS_TAG, const float* x, std::size_t rows, float* xT) {
  using namespace CTNN_KERNELS_NS;
  if (rows == lane_block) {
#pragma GCC unroll 32
    for (std::size_t s = 0; s < lane_block; ++s)
#pragma GCC unroll 4
      for (std::size_t k = 0; k < In; ++k) xT[k * lane_block + s] = x[s * In + k];
    return;
  }
  for (std::size_t s = 0; s < lane_block; ++s)
    for (std::size_t k = 0; k < In; ++k) xT[k * lane_block + s] = s < rows ? x[s * In + k] : 0.0f;
}

/// The first `rows` samples of a block yT[Out][lane_block] back into y[rows, Out].
template <std::size_t Out>
void lanes_to_rows(CTNN_KERNELS_TAG, const float* yT, std::size_t rows, float* y) {
  using namespace CTNN_KERNELS_NS;
  if constexpr (Out == 1) {
    std::copy_n(yT, rows, y);
  } else {
    for (std::size_t s = 0; s < rows; ++s)
#pragma GCC unroll 4
      for (std::size_t j = 0; j < Out; ++j) y[s * Out + j] = yT[j * lane_block + s];
  }
}

}  // namespace ctnn::kernels

#endif  // CTNN_KERNELS_NS

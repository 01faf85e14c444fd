// The vector type of one architecture and the few operations the kernels need.
// Part of the per-architecture body: no include guard, no #include (see
// kernels/detail/per_arch.hpp).
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

inline constexpr std::size_t lanes = CTNN_KERNELS_LANES;
using V = float __attribute__((vector_size(CTNN_KERNELS_LANES * sizeof(float))));
using VI = std::int32_t __attribute__((vector_size(CTNN_KERNELS_LANES * sizeof(float))));

CTNN_INLINE V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
CTNN_INLINE void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
template <std::size_t... I>
CTNN_INLINE V splat_impl(float s, std::index_sequence<I...>) {
  return V{(static_cast<void>(I), s)...};
}
/// s in every lane. (Not `V{} + s`: adding +0 is not a no-op for -0, so the
/// compilers keep the add.)
CTNN_INLINE V splat(float s) { return splat_impl(s, std::make_index_sequence<lanes>{}); }

template <std::size_t... I>
CTNN_INLINE VI iota_impl(std::index_sequence<I...>) {
  return VI{static_cast<std::int32_t>(I)...};
}
CTNN_INLINE VI iota() { return iota_impl(std::make_index_sequence<lanes>{}); }

/// The first `count` (< lanes) floats at p, zeros after; reads nothing beyond.
CTNN_INLINE V load_first(const float* p, std::size_t count) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1u), p);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  const VI mask = iota() < static_cast<std::int32_t>(count);
  return _mm256_maskload_ps(p, reinterpret_cast<const __m256i&>(mask));
#else
  V v{};
  for (std::size_t i = 0; i < lanes; ++i)  // (a loop to `count` makes g++ warn about bounds it cannot prove)
    if (i < count) v[i] = p[i];
  return v;
#endif
}
/// Writes the first `count` (< lanes) lanes of v to p; touches nothing beyond.
CTNN_INLINE void store_first(float* p, V v, std::size_t count) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << count) - 1u), v);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  const VI mask = iota() < static_cast<std::int32_t>(count);
  _mm256_maskstore_ps(p, reinterpret_cast<const __m256i&>(mask), v);
#else
  for (std::size_t i = 0; i < lanes; ++i)
    if (i < count) p[i] = v[i];
#endif
}
/// `count` (1..lanes) floats: a full load or a partial one.
CTNN_INLINE V load_n(const float* p, std::size_t count) { return count == lanes ? load(p) : load_first(p, count); }
CTNN_INLINE void store_n(float* p, V v, std::size_t count) {
  if (count == lanes) store(p, v);
  else store_first(p, v, count);
}

/// a·b + c, fused where the architecture has FMA.
CTNN_INLINE V fma(V a, V b, V c) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  return _mm512_fmadd_ps(a, b, c);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

/// Correctly rounded square root of every lane, as std::sqrt.
CTNN_INLINE V vsqrt(V a) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  // The maskz form with every lane set: _mm512_sqrt_ps passes an undefined
  // vector that g++ 12 reports as maybe-uninitialized.
  return _mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xFFFF), a);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  return _mm256_sqrt_ps(a);
#elif CTNN_KERNELS_ISA == CTNN_ISA_SSE4_2
  return _mm_sqrt_ps(a);
#else
  V r{};
  for (std::size_t i = 0; i < lanes; ++i) r[i] = __builtin_sqrtf(a[i]);
  return r;
#endif
}

CTNN_INLINE V select(VI mask, V if_true, V if_false) { return mask ? if_true : if_false; }
// vmax(a, b) = a > b ? a : b and vmin(a, b) = a < b ? a : b, which is what
// maxps / minps compute for NaNs and signed zeros too (the second operand when
// unordered or equal); the compilers do not always see that in the select.
CTNN_INLINE V vmax(V a, V b) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  return _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), a, b);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  return _mm256_max_ps(a, b);
#elif CTNN_KERNELS_ISA == CTNN_ISA_SSE4_2
  return _mm_max_ps(a, b);
#else
  return select(a > b, a, b);
#endif
}
CTNN_INLINE V vmin(V a, V b) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  return _mm512_maskz_min_ps(static_cast<__mmask16>(0xFFFF), a, b);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  return _mm256_min_ps(a, b);
#elif CTNN_KERNELS_ISA == CTNN_ISA_SSE4_2
  return _mm_min_ps(a, b);
#else
  return select(a < b, a, b);
#endif
}
CTNN_INLINE V vabs(V a) { return reinterpret_cast<V>(reinterpret_cast<VI>(a) & 0x7fffffff); }
CTNN_INLINE V copy_sign(V magnitude, V sign) {
  return reinterpret_cast<V>((reinterpret_cast<VI>(magnitude) & 0x7fffffff) |
                             (reinterpret_cast<VI>(sign) & static_cast<std::int32_t>(0x80000000u)));
}

template <class Index, std::size_t... I>
CTNN_INLINE V shuffle_impl(V a, V b, std::index_sequence<I...>) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, static_cast<int>(Index::at(I))...);
#else
  // g++ (and nvcc's front end, which mangles the pack of __builtin_shufflevector):
  // the same shuffle with a constant mask.
  return __builtin_shuffle(a, b, VI{static_cast<std::int32_t>(Index::at(I))...});
#endif
}
/// Lane i of the result is lane Index::at(i) of the concatenation a:b
/// (0 ≤ Index::at(i) < 2·lanes, a compile-time constant).
template <class Index>
CTNN_INLINE V shuffle(V a, V b) {
  return shuffle_impl<Index>(a, b, std::make_index_sequence<lanes>{});
}

// ---- the transposing reduction: `lanes` accumulators to one vector of sums.
// One level folds two vectors holding segments of width W into one vector of
// segments of width W/2: the low halves of a's and b's segments plus their high
// halves. After log2(lanes) levels, lane j holds the sum of accumulator j.

constexpr std::size_t fold_index(std::size_t width, std::size_t lane, bool high) {
  const std::size_t half = width / 2;
  const std::size_t segment = lane / half, offset = lane % half;
  const std::size_t per_input = lanes / width;
  const std::size_t from_b = segment >= per_input ? lanes : 0;
  return from_b + (segment % per_input) * width + offset + (high ? half : 0);
}
template <std::size_t W, bool High>
struct FoldIndex {
  static constexpr std::size_t at(std::size_t lane) { return fold_index(W, lane, High); }
};
template <std::size_t W>
CTNN_INLINE V fold(V a, V b) {
  return shuffle<FoldIndex<W, false>>(a, b) + shuffle<FoldIndex<W, true>>(a, b);
}
template <std::size_t W, std::size_t Count>
CTNN_INLINE void reduce_level(V* v) {
  for (std::size_t t = 0; t < Count / 2; ++t) v[t] = fold<W>(v[2 * t], v[2 * t + 1]);
  if constexpr (W > 2) reduce_level<W / 2, Count / 2>(v);
}
/// Lane j of the result is the sum of the lanes of acc[j] (acc has `lanes` vectors;
/// it is overwritten).
CTNN_INLINE V reduce_lanes(V* acc) {
  if constexpr (lanes > 1) reduce_level<lanes, lanes>(acc);
  return acc[0];
}
template <std::size_t Half>
struct UpperHalfDown {
  static constexpr std::size_t at(std::size_t lane) { return lane < Half ? lane + Half : lane; }
};
/// The sum of the lanes of v (a tree: log2(lanes) shuffles and adds: upper
/// half onto lower half, then again). On x86 each level works on the half
/// that still matters (256, then 128 bits): the same sums in the same order,
/// with cheaper shuffles and adds than full-width ones.
CTNN_INLINE float sum_lanes(V v) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512 || CTNN_KERNELS_ISA == CTNN_ISA_AVX2
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  // The halves by maskz extracts (avx512f has no float form; g++ 12's plain
  // extract, and the cast built on it, pass an undefined vector that it then
  // reports as maybe-uninitialized).
  const __m512d d = _mm512_castps_pd(v);
  const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(static_cast<__mmask8>(0xFF), d, 0));
  const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(static_cast<__mmask8>(0xFF), d, 1));
  const __m256 half = _mm256_add_ps(lo, hi);
#else
  const __m256 half = v;
#endif
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
#else
  if constexpr (lanes >= 16) v += shuffle<UpperHalfDown<8>>(v, v);
  if constexpr (lanes >= 8) v += shuffle<UpperHalfDown<4>>(v, v);
  if constexpr (lanes >= 4) v += shuffle<UpperHalfDown<2>>(v, v);
  if constexpr (lanes >= 2) v += shuffle<UpperHalfDown<1>>(v, v);
  return v[0];
#endif
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

#endif  // CTNN_KERNELS_NS

// The kernel bodies, compiled once per architecture (see kernels/arch.hpp for
// why). Each pass opens a region in which every function gets the
// architecture's target attribute, defines CTNN_KERNELS_NS / _LANES / _TAG /
// _ISA, includes kernels/detail/body/all.hpp, and closes the region. Every
// header the bodies use is included here first: nothing may be included for
// the first time inside a region.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "ctnn/core/thread_pool.hpp"
#include "ctnn/kernels/activation_forms.hpp"
#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/row_layout.hpp"

#if defined(CTNN_X86_KERNELS)
#include <immintrin.h>
#endif

// Helpers of the bodies are forced inline, so that a kernel is one function
// compiled for its architecture.
#define CTNN_INLINE inline __attribute__((always_inline))
// Lambdas inside a kernel likewise (out of line, g++ passes their state
// through memory, e.g. gemm()'s per-panel lambdas).
#define CTNN_LAMBDA_INLINE __attribute__((always_inline))

// ISA codes for #if inside the bodies.
#define CTNN_ISA_GENERIC 0
#define CTNN_ISA_SSE4_2 1
#define CTNN_ISA_AVX2 2
#define CTNN_ISA_AVX512 3

#if defined(CTNN_X86_KERNELS)

#if defined(CTNN_COMPILE_SSE4_2)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("sse4.2,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("sse4.2,popcnt")
#endif
#define CTNN_KERNELS_NS sse4_2
#define CTNN_KERNELS_LANES 4
#define CTNN_KERNELS_TAG ::ctnn::kernels::sse4_2_tag
#define CTNN_KERNELS_ISA CTNN_ISA_SSE4_2
#include "ctnn/kernels/detail/body/all.hpp"
#undef CTNN_KERNELS_NS
#undef CTNN_KERNELS_LANES
#undef CTNN_KERNELS_TAG
#undef CTNN_KERNELS_ISA
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#if defined(CTNN_COMPILE_AVX2)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2,f16c,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,f16c,popcnt")
#endif
#define CTNN_KERNELS_NS avx2
#define CTNN_KERNELS_LANES 8
#define CTNN_KERNELS_TAG ::ctnn::kernels::avx2_tag
#define CTNN_KERNELS_ISA CTNN_ISA_AVX2
#include "ctnn/kernels/detail/body/all.hpp"
#undef CTNN_KERNELS_NS
#undef CTNN_KERNELS_LANES
#undef CTNN_KERNELS_TAG
#undef CTNN_KERNELS_ISA
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#if defined(CTNN_COMPILE_AVX512)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,bmi,bmi2,f16c,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,bmi,bmi2,f16c,popcnt")
#endif
#define CTNN_KERNELS_NS avx512
#define CTNN_KERNELS_LANES 16
#define CTNN_KERNELS_TAG ::ctnn::kernels::avx512_tag
#define CTNN_KERNELS_ISA CTNN_ISA_AVX512
#include "ctnn/kernels/detail/body/all.hpp"
#undef CTNN_KERNELS_NS
#undef CTNN_KERNELS_LANES
#undef CTNN_KERNELS_TAG
#undef CTNN_KERNELS_ISA
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#else  // portable

#define CTNN_KERNELS_NS generic
#define CTNN_KERNELS_LANES 4
#define CTNN_KERNELS_TAG ::ctnn::kernels::generic_tag
#define CTNN_KERNELS_ISA CTNN_ISA_GENERIC
#include "ctnn/kernels/detail/body/all.hpp"
#undef CTNN_KERNELS_NS
#undef CTNN_KERNELS_LANES
#undef CTNN_KERNELS_TAG
#undef CTNN_KERNELS_ISA

#endif

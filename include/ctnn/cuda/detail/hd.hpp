// Execution-space markers. Kernel bodies are written once as templates marked
// CTNN_HD: nvcc compiles them for the device (and the host), a plain C++
// compiler sees ordinary inline functions, which the host emulation
// (cuda/emulate.hpp) runs over the same grid and blocks.
#pragma once

#if defined(__CUDACC__)
#define CTNN_HD __host__ __device__
#define CTNN_HD_INLINE __host__ __device__ __forceinline__
#else
#define CTNN_HD
#define CTNN_HD_INLINE inline
#endif

// True while nvcc compiles the device side of a translation unit.
#if defined(__CUDA_ARCH__)
#define CTNN_DEVICE_PASS 1
#else
#define CTNN_DEVICE_PASS 0
#endif

// Asks nvcc to unroll the loop that follows (its trip count is a constant),
// so per-thread arrays indexed by the loop variable stay in registers; g++
// and clang++, and nvcc's host pass, see nothing.
#if defined(__CUDA_ARCH__)
#define CTNN_UNROLL _Pragma("unroll")
#else
#define CTNN_UNROLL
#endif

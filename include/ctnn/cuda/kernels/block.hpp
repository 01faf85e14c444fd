// How a kernel body sees its thread block. Every kernel of ctnn::cuda is a
// struct
//
//   struct K {
//     static constexpr unsigned threads = 256;      // threads per block (1-D)
//     struct shared { float tile[16][64]; };         // the block's shared memory
//     template <class Block>
//     CTNN_HD static void run(const Block& b, shared& s, Args... args);
//   };
//
// and its body is written in *phases*: `b.each([&](unsigned t) { ... })` runs
// the lambda as thread t of the block, `b.sync()` is the barrier between
// phases. State that a thread keeps from one phase to the next (GEMM
// accumulators) lives in a `local_t<Block, T>`, indexed by the thread.
//
// Two blocks implement this:
//   DeviceBlock  (nvcc only) each() is one call with threadIdx.x, sync() is
//                __syncthreads(), a local is one value in registers;
//   HostBlock    each() loops over all threads of the block, sync() does
//                nothing, a local holds one value per thread.
// Because every barrier ends a phase and no thread's state escapes its phase
// except through a local, running the phases one after another for every
// thread computes exactly what the GPU computes, with the same grid, block,
// tile and index arithmetic. The host emulation (cuda/emulate.hpp) uses this
// to test every kernel on machines without a GPU.
//
// Rules a body follows (what makes the emulation faithful): control flow
// outside each() is uniform over the block (as __syncthreads requires); a
// phase reads shared memory written by other threads only after a sync();
// no warp-level intrinsics.
#pragma once

#include <cstddef>

#include "ctnn/cuda/detail/hd.hpp"

#if !defined(__CUDACC__)
#include <cstdio>
#include <cstdlib>
#endif

namespace ctnn::cuda::kernels {

struct Index3 {
  unsigned x = 0, y = 0, z = 0;
};

/// Per-thread state on the host: one value per thread of the block.
template <class T, unsigned Threads>
struct HostLocal {
  T values[Threads];
  CTNN_HD T& operator[](unsigned t) { return values[t]; }
};

/// Per-thread state on the device: the thread's own value.
template <class T>
struct DeviceLocal {
  T value;
  CTNN_HD_INLINE T& operator[](unsigned) { return value; }
};

template <unsigned Threads>
struct HostBlock {
  static constexpr unsigned threads = Threads;
  template <class T>
  using local = HostLocal<T, Threads>;

  Index3 block, grid;

  CTNN_HD Index3 block_index() const { return block; }
  CTNN_HD Index3 grid_size() const { return grid; }
  template <class F>
  CTNN_HD void each(F&& f) const {
    for (unsigned t = 0; t < Threads; ++t) f(t);
  }
  CTNN_HD void sync() const {}
};

#if defined(__CUDACC__)
template <unsigned Threads>
struct DeviceBlock {
  static constexpr unsigned threads = Threads;
  template <class T>
  using local = DeviceLocal<T>;

  __device__ __forceinline__ Index3 block_index() const { return {blockIdx.x, blockIdx.y, blockIdx.z}; }
  __device__ __forceinline__ Index3 grid_size() const { return {gridDim.x, gridDim.y, gridDim.z}; }
  template <class F>
  __device__ __forceinline__ void each(F&& f) const {
    f(threadIdx.x);
  }
  __device__ __forceinline__ void sync() const { __syncthreads(); }
};
#endif

template <class Block, class T>
using local_t = typename Block::template local<T>;

namespace detail {
#if !defined(__CUDACC__)
[[noreturn]] inline void shared_index_failure(unsigned r, unsigned c, unsigned rows, unsigned cols) {
  std::fprintf(stderr, "ctnn::cuda emulation: shared tile index (%u, %u) outside %u x %u\n", r, c, rows, cols);
  std::abort();
}
#endif
}  // namespace detail

/// A rows x cols tile of shared memory. The host emulation checks every index
/// (an out-of-range index aborts with the index); on the device it is a plain
/// array.
template <class T, unsigned Rows, unsigned Cols>
struct SharedTile {
  T v[Rows][Cols];
  CTNN_HD_INLINE T& operator()(unsigned r, unsigned c) {
#if !defined(__CUDACC__)
    if (r >= Rows || c >= Cols) detail::shared_index_failure(r, c, Rows, Cols);
#endif
    return v[r][c];
  }
};

/// The number of blocks for `count` items, `per_block` items per block,
/// capped so that a grid-stride loop covers the rest.
constexpr unsigned blocks_for(std::size_t count, std::size_t per_block, unsigned cap = 65535) {
  const std::size_t b = (count + per_block - 1) / per_block;
  return b == 0 ? 1u : (b > cap ? cap : static_cast<unsigned>(b));
}

}  // namespace ctnn::cuda::kernels

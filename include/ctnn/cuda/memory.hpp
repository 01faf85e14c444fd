// DeviceBuffer<T>: `count` elements of device memory, freed with the object.
// Move-only. Its address is a device_ptr<T>, so host code cannot read it by
// mistake.
//
// Allocation is stream-ordered on the legacy default stream (cudaMallocAsync /
// cudaFreeAsync from the device's default memory pool), so freeing a buffer
// (a batch going out of scope in a training loop) does not wait for the GPU
// the way cudaFree does, and a buffer of a size freed before comes from the
// pool without a call into the driver. The first allocation on a device sets
// its default pool to keep freed memory (cudaMemPoolAttrReleaseThreshold =
// the largest value) instead of returning it at every synchronisation, as
// PyTorch's caching allocator keeps it; cuda::release_cached_memory() gives it
// back. On a device without memory pools it is cudaMalloc / cudaFree.
//
// Work that uses a buffer must be ordered with the legacy default stream (any
// blocking stream is): a buffer used on a cudaStreamNonBlocking stream must
// outlive that work, or the stream be synchronised before the buffer goes.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "ctnn/cuda/device_ptr.hpp"
#include "ctnn/cuda/error.hpp"

namespace ctnn::cuda {

namespace detail {

inline constexpr int max_pooled_devices = 64;

/// Per device: 0 unknown, 1 stream-ordered pool (set to keep memory), 2 plain cudaMalloc.
inline std::atomic<unsigned char>& pool_state(int device) {
  static std::atomic<unsigned char> states[max_pooled_devices] = {};
  return states[device];
}

/// Whether the current device allocates from its (retaining) default pool.
inline bool use_memory_pool() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= max_pooled_devices) {
    (void)cudaGetLastError();
    return false;
  }
  std::atomic<unsigned char>& s = pool_state(device);
  const unsigned char known = s.load(std::memory_order_acquire);
  if (known != 0) return known == 1;
  int supported = 0;
  bool pooled = cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess &&
                supported != 0;
  if (pooled) {
    cudaMemPool_t pool{};
    std::uint64_t keep = UINT64_MAX;
    pooled = cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess &&
             cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess;
  }
  (void)cudaGetLastError();
  s.store(pooled ? 1 : 2, std::memory_order_release);
  return pooled;
}

}  // namespace detail

/// Returns the freed memory that the current device's default pool keeps to
/// the driver (waits for the device first).
inline void release_cached_memory() {
  if (!detail::use_memory_pool()) return;
  int device = 0;
  detail::check(cudaGetDevice(&device), "cudaGetDevice");
  detail::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cudaMemPool_t pool{};
  detail::check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  detail::check(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo(0)");
}

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count == 0) return;
    void* p = nullptr;
    const std::size_t bytes = count * sizeof(T);
    pooled_ = detail::use_memory_pool();
    if (pooled_)
      detail::check(cudaMallocAsync(&p, bytes, cudaStream_t{}),
                    [bytes] { return "cudaMallocAsync(" + detail::bytes_text(bytes) + ")"; });
    else
      detail::check(cudaMalloc(&p, bytes), [bytes] { return "cudaMalloc(" + detail::bytes_text(bytes) + ")"; });
    data_ = static_cast<T*>(p);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        count_(std::exchange(o.count_, 0)),
        pooled_(std::exchange(o.pooled_, false)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
      pooled_ = std::exchange(o.pooled_, false);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  device_ptr<T> get() const { return device_ptr<T>(data_); }
  T* raw() const { return data_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

  /// Sets every byte to zero (cudaMemsetAsync on `stream`).
  void zero(cudaStream_t stream = nullptr) {
    if (count_ == 0) return;
    const std::size_t b = bytes();
    detail::check(cudaMemsetAsync(data_, 0, b, stream),
                  [b] { return "cudaMemsetAsync(" + detail::bytes_text(b) + ")"; });
  }

 private:
  void release() noexcept {
    // Errors are not thrown from a destructor; a failed free at exit
    // (cudaErrorCudartUnloading) leaks nothing the process keeps.
    if (data_) {
      if (pooled_) (void)cudaFreeAsync(data_, cudaStream_t{});
      else (void)cudaFree(data_);
    }
    data_ = nullptr;
    count_ = 0;
    pooled_ = false;
  }

  T* data_ = nullptr;
  std::size_t count_ = 0;
  bool pooled_ = false;
};

}  // namespace ctnn::cuda

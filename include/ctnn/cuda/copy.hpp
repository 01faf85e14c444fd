// Host <-> device copies. The host side is a std::span, the device side a
// device_ptr, so the direction is in the types. The plain forms are
// synchronous; the _async forms queue on a stream and need the host memory to
// stay alive (and, to overlap, pinned) until the stream reaches them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <string>

#include "ctnn/cuda/device_ptr.hpp"
#include "ctnn/cuda/error.hpp"

namespace ctnn::cuda {

namespace detail {
inline std::string copy_call(const char* fn, std::size_t bytes, const char* direction) {
  return std::string(fn) + "(" + bytes_text(bytes) + ", " + direction + ")";
}
}  // namespace detail

template <class T>
void copy_to_device(device_ptr<T> dst, std::span<const T> src, cudaStream_t stream = nullptr) {
  const std::size_t b = src.size_bytes();
  if (b == 0) return;
  detail::check(cudaMemcpyAsync(dst.get(), src.data(), b, cudaMemcpyHostToDevice, stream),
                [b] { return detail::copy_call("cudaMemcpyAsync", b, "host to device"); });
  detail::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

template <class T>
void copy_to_host(std::span<T> dst, device_ptr<const T> src, cudaStream_t stream = nullptr) {
  const std::size_t b = dst.size_bytes();
  if (b == 0) return;
  detail::check(cudaMemcpyAsync(dst.data(), src.get(), b, cudaMemcpyDeviceToHost, stream),
                [b] { return detail::copy_call("cudaMemcpyAsync", b, "device to host"); });
  detail::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

template <class T>
void copy_on_device(device_ptr<T> dst, device_ptr<const T> src, std::size_t count, cudaStream_t stream = nullptr) {
  const std::size_t b = count * sizeof(T);
  if (b == 0) return;
  detail::check(cudaMemcpyAsync(dst.get(), src.get(), b, cudaMemcpyDeviceToDevice, stream),
                [b] { return detail::copy_call("cudaMemcpyAsync", b, "device to device"); });
}

template <class T>
void copy_to_device_async(device_ptr<T> dst, std::span<const T> src, cudaStream_t stream) {
  const std::size_t b = src.size_bytes();
  if (b == 0) return;
  detail::check(cudaMemcpyAsync(dst.get(), src.data(), b, cudaMemcpyHostToDevice, stream),
                [b] { return detail::copy_call("cudaMemcpyAsync", b, "host to device"); });
}

template <class T>
void copy_to_host_async(std::span<T> dst, device_ptr<const T> src, cudaStream_t stream) {
  const std::size_t b = dst.size_bytes();
  if (b == 0) return;
  detail::check(cudaMemcpyAsync(dst.data(), src.get(), b, cudaMemcpyDeviceToHost, stream),
                [b] { return detail::copy_call("cudaMemcpyAsync", b, "device to host"); });
}

}  // namespace ctnn::cuda

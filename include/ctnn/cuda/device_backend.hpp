// The CUDA backend: kernels launched on a stream, memory from cudaMalloc.
// Every kernel of ctnn::cuda is launched through one __global__ template,
// run_kernel<K>, which gives K's body a DeviceBlock and K's shared memory;
// the host emulation (cuda/emulate.hpp) runs the same bodies with a
// HostBlock. Needs nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "ctnn/cuda/device_backend.hpp launches kernels and must be compiled by nvcc (a .cu file)"
#endif

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <typeinfo>

#include "ctnn/cuda/device.hpp"
#include "ctnn/cuda/emulate.hpp"
#include "ctnn/cuda/copy.hpp"
#include "ctnn/cuda/error.hpp"
#include "ctnn/cuda/kernels/block.hpp"
#include "ctnn/cuda/memory.hpp"

namespace ctnn::cuda {

namespace detail {

/// The one entry point of every device kernel.
template <class K, class... Args>
__global__ void __launch_bounds__(K::threads) run_kernel(Args... args) {
  static_assert(sizeof(typename K::shared) <= 48 * 1024,
                "ctnn::cuda: a kernel's static shared memory must fit the 48 KiB every GPU gives a block");
  __shared__ typename K::shared shared;
  K::run(kernels::DeviceBlock<K::threads>{}, shared, args...);
}

}  // namespace detail

struct DeviceBackend {
  template <class T>
  using buffer = DeviceBuffer<T>;
  static constexpr bool on_device = true;
  static constexpr const char* name = "CUDA";

  /// The stream everything of this backend is queued on (the legacy default
  /// stream unless set).
  cudaStream_t stream = nullptr;

  /// Throws the clear error of a machine without a usable GPU.
  static void require() { require_device(); }

  template <class K, class... Args>
  void launch(Grid g, Args... args) const {
    detail::run_kernel<K, Args...><<<dim3(g.x, g.y, g.z), K::threads, 0, stream>>>(args...);
    detail::check(cudaGetLastError(), [] { return std::string("kernel launch <") + typeid(K).name() + ">"; });
  }

  /// Host to device; returns when the host memory may be reused.
  template <class T>
  void copy_in(device_ptr<T> dst, const T* src, std::size_t count) const {
    const std::size_t b = count * sizeof(T);
    if (b == 0) return;
    detail::check(cudaMemcpyAsync(dst.get(), src, b, cudaMemcpyHostToDevice, stream),
                  [b] { return detail::copy_call("cudaMemcpyAsync", b, "host to device"); });
    detail::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  /// Device to host, after everything queued before it.
  template <class T>
  void copy_out(T* dst, device_ptr<const T> src, std::size_t count) const {
    const std::size_t b = count * sizeof(T);
    if (b == 0) return;
    detail::check(cudaMemcpyAsync(dst, src.get(), b, cudaMemcpyDeviceToHost, stream),
                  [b] { return detail::copy_call("cudaMemcpyAsync", b, "device to host"); });
    detail::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  /// Device to device, queued.
  template <class T>
  void copy(device_ptr<T> dst, device_ptr<const T> src, std::size_t count) const {
    const std::size_t b = count * sizeof(T);
    if (b == 0) return;
    detail::check(cudaMemcpyAsync(dst.get(), src.get(), b, cudaMemcpyDeviceToDevice, stream),
                  [b] { return detail::copy_call("cudaMemcpyAsync", b, "device to device"); });
  }
  template <class T>
  void zero(device_ptr<T> dst, std::size_t count) const {
    const std::size_t b = count * sizeof(T);
    if (b == 0) return;
    detail::check(cudaMemsetAsync(dst.get(), 0, b, stream),
                  [b] { return "cudaMemsetAsync(" + detail::bytes_text(b) + ")"; });
  }
  void synchronize() const { detail::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }
};

}  // namespace ctnn::cuda

// CUDA offload: the same network type on an NVIDIA GPU. In a .cu file
// compiled by nvcc:
//
//   #include <ctnn/ctnn.hpp>
//   #include <ctnn/cuda.hpp>
//
//   cuda::Model<Net> gpu = cuda::to_device(model);    // one copy of the flat buffers
//   cuda::Batch<3> x = cuda::to_device(host_x);
//   cuda::Batch<1> y = gpu(x);                         // forward on the GPU
//   cuda::optim::SGD opt(gpu, {.lr = 0.1f});           // step() runs on the GPU
//   auto loss = cuda::MSELoss{}(gpu(x), cuda::to_device(target));
//   opt.zero_grad(); loss.backward(); opt.step();
//   Model<Net> back = cuda::to_host(gpu);              // and save_safetensors(back, ...)
//
// Host and device data are different types: a host batch given to a device
// model, a device batch given to a CPU model or a host loss, or a host
// optimizer on a device model do not compile, and the message says what to
// write instead. Without a GPU or its driver, cuda::to_device throws one
// cuda::Error that says so. What runs where, what is fused and how it is
// tested without a GPU: docs/gpu.md.
//
// Pieces: cuda/runtime.hpp (devices, memory, streams, events, copies, errors;
// plain C++), cuda/kernels/ (the kernel bodies), cuda/emulated.hpp (the same
// API on the host emulation, for tests), cuda/device_backend.hpp (launches).
#pragma once

#if !defined(__CUDACC__)
#error "<ctnn/cuda.hpp> launches CUDA kernels: include it from a .cu file compiled by nvcc. Without nvcc, <ctnn/cuda/runtime.hpp> gives the runtime and <ctnn/cuda/emulated.hpp> the device API on the host emulation."
#endif

#include <cstddef>

#include "ctnn/cuda/device_backend.hpp"
#include "ctnn/cuda/loss.hpp"
#include "ctnn/cuda/model.hpp"
#include "ctnn/cuda/optim.hpp"
#include "ctnn/cuda/runtime.hpp"
#include "ctnn/cuda/tensor.hpp"

namespace ctnn::cuda {

template <LayerSpec Net>
using Model = basic_model<Net, DeviceBackend>;
template <std::size_t F>
using Batch = basic_batch<F, DeviceBackend>;
using Labels = basic_labels<DeviceBackend>;
using Loss = basic_loss<DeviceBackend>;

/// A copy on the current GPU of a CPU Model, a batch (Batch<F>, Tensor<...>,
/// BatchView<F>) or Labels. Throws cuda::Error when there is no usable GPU.
template <class T>
auto to_device(const T& host) -> decltype(to_backend<DeviceBackend>(host)) {
  return to_backend<DeviceBackend>(host);
}

}  // namespace ctnn::cuda

// The device API on the host emulation (cuda/emulate.hpp): the same model,
// batches, losses and optimizers as <ctnn/cuda.hpp>, with every kernel body
// run on the CPU over the GPU's grid and blocks. For tests and for reading
// the kernels with a debugger; it needs neither nvcc nor a GPU.
//
//   namespace gpu = ctnn::cuda::emulated;
//   gpu::Model<Net> m = gpu::to_device(model);
//   gpu::Batch<3> x = gpu::to_device(host_x);
//   auto loss = ctnn::cuda::MSELoss{}(m(x), gpu::to_device(target));
//   ctnn::cuda::optim::SGD opt(m, {.lr = 0.1f});
//   opt.zero_grad(); loss.backward(); opt.step();
//   Model<Net> back = ctnn::cuda::to_host(m);
#pragma once

#include <cstddef>

#include "ctnn/cuda/emulate.hpp"
#include "ctnn/cuda/loss.hpp"
#include "ctnn/cuda/model.hpp"
#include "ctnn/cuda/optim.hpp"
#include "ctnn/cuda/tensor.hpp"

namespace ctnn::cuda::emulated {

using Backend = HostEmulation;
template <LayerSpec Net>
using Model = basic_model<Net, HostEmulation>;
template <std::size_t F>
using Batch = basic_batch<F, HostEmulation>;
using Labels = basic_labels<HostEmulation>;
using Loss = basic_loss<HostEmulation>;

template <class T>
auto to_device(const T& host) -> decltype(to_backend<HostEmulation>(host)) {
  return to_backend<HostEmulation>(host);
}

}  // namespace ctnn::cuda::emulated

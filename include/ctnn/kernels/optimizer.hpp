// The optimizers' elementwise updates over flat buffers, on a chosen
// architecture (body: kernels/detail/body/optimizer.hpp):
//   sgd_update<Decay, Momentum, First, Nesterov>(a, p, g, buf, n, ...)
//   adam_update<L2, Decoupled, AmsGrad>(a, p, g, m, v, vmax, n, scalars)
//   rmsprop_update<Decay, Centered, Momentum>(a, p, g, sq, ga, buf, n, ...)
// Same arithmetic on every architecture; with FMA (AVX2, AVX-512) a multiply
// and an add may be fused, a last-bit difference from SSE4.2.
#pragma once

#include <cstddef>

#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"
#include "ctnn/kernels/optimizer_scalars.hpp"

namespace ctnn::kernels {

template <bool Decay, bool Momentum, bool First, bool Nesterov>
inline void sgd_update(Arch a, float* p, const float* g, float* buf, std::size_t n, float lr, float wd, float mu,
                       float one_minus_dampening) {
  dispatch(a, [&](auto tag) {
    sgd_update<Decay, Momentum, First, Nesterov>(tag, p, g, buf, n, lr, wd, mu, one_minus_dampening);
  });
}

template <bool L2, bool Decoupled, bool AmsGrad>
inline void adam_update(Arch a, float* p, const float* g, float* m, float* v, float* vmax, std::size_t n,
                        const AdamScalars& s) {
  dispatch(a, [&](auto tag) { adam_update<L2, Decoupled, AmsGrad>(tag, p, g, m, v, vmax, n, s); });
}

template <bool Decay, bool Centered, bool Momentum>
inline void rmsprop_update(Arch a, float* p, const float* g, float* sq, float* ga, float* buf, std::size_t n,
                           float lr, float alpha, float one_minus_alpha, float eps, float wd, float mu) {
  dispatch(a, [&](auto tag) {
    rmsprop_update<Decay, Centered, Momentum>(tag, p, g, sq, ga, buf, n, lr, alpha, one_minus_alpha, eps, wd, mu);
  });
}

}  // namespace ctnn::kernels

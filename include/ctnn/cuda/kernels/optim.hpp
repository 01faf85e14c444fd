// Optimizer steps over a slice of the flat buffers: the per-element updates
// of train/optim/*.hpp, operation for operation (same float expressions, same
// order), as grid-stride kernels. The per-tensor scalars (bias corrections)
// are computed on the host in double, exactly as the CPU optimizers do.
#pragma once

#include <math.h>

#include <cstddef>

#include "ctnn/cuda/detail/hd.hpp"
#include "ctnn/cuda/kernels/block.hpp"
#include "ctnn/cuda/kernels/elementwise.hpp"

namespace ctnn::cuda::kernels {

/// torch.optim.SGD (momentum, dampening, Nesterov, L2 weight decay).
template <bool Decay, bool Momentum, bool First, bool Nesterov>
struct SgdStep {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, float* p, const float* g, float* buf, std::size_t n, float lr,
                          float wd, float mu, float one_minus_dampening) {
    grid_stride(blk, n, [&](std::size_t i) {
      float d = g[i];
      if constexpr (Decay) d = d + wd * p[i];
      if constexpr (Momentum) {
        float b;
        if constexpr (First) {
          b = d;
        } else {
          b = buf[i] * mu + one_minus_dampening * d;
        }
        buf[i] = b;
        if constexpr (Nesterov) {
          d = d + mu * b;
        } else {
          d = b;
        }
      }
      p[i] = p[i] - lr * d;
    });
  }
};

/// The scalars of one Adam step of one tensor (its own step count t).
struct AdamStepScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float step_size;   // lr / (1 - beta1^t)
  float bias2_sqrt;  // sqrt(1 - beta2^t)
  float eps, weight_decay;
  float decay_factor;  // 1 - lr * weight_decay (AdamW)
};

/// torch.optim.Adam (L2 decay, AMSGrad) and AdamW (decoupled decay).
template <bool L2, bool Decoupled, bool AmsGrad>
struct AdamStep {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, float* p, const float* g, float* m, float* v, float* vmax,
                          std::size_t n, AdamStepScalars s) {
    grid_stride(blk, n, [&](std::size_t i) {
      float pi = p[i];
      float gi = g[i];
      if constexpr (Decoupled) pi = pi * s.decay_factor;
      if constexpr (L2) gi = gi + s.weight_decay * pi;
      const float mi = m[i] * s.beta1 + s.one_minus_beta1 * gi;
      float vi = v[i] * s.beta2 + s.one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      if constexpr (AmsGrad) {
        vi = vmax[i] < vi ? vi : vmax[i];
        vmax[i] = vi;
      }
      const float denom = ::sqrtf(vi) / s.bias2_sqrt + s.eps;
      p[i] = pi - s.step_size * mi / denom;
    });
  }
};

/// torch.optim.RMSprop (L2 decay, centering, momentum).
template <bool Decay, bool Centered, bool Momentum>
struct RmspropStep {
  static constexpr unsigned threads = elementwise_threads;
  using shared = NoShared;
  struct Scalars {
    float lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
  };
  template <class Block>
  CTNN_HD static void run(const Block& blk, shared&, float* p, const float* g, float* sq, float* ga, float* buf,
                          std::size_t n, Scalars s) {
    grid_stride(blk, n, [&](std::size_t i) {
      float gi = g[i];
      if constexpr (Decay) gi = gi + s.weight_decay * p[i];
      const float sqi = sq[i] * s.alpha + s.one_minus_alpha * gi * gi;
      sq[i] = sqi;
      float avg;
      if constexpr (Centered) {
        const float a = ga[i] * s.alpha + s.one_minus_alpha * gi;
        ga[i] = a;
        avg = ::sqrtf(sqi - a * a) + s.eps;
      } else {
        avg = ::sqrtf(sqi) + s.eps;
      }
      if constexpr (Momentum) {
        const float b = buf[i] * s.momentum + gi / avg;
        buf[i] = b;
        p[i] = p[i] - s.lr * b;
      } else {
        p[i] = p[i] - s.lr * gi / avg;
      }
    });
  }
};

}  // namespace ctnn::cuda::kernels

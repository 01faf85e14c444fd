// The per-step scalars of Adam and AdamW's elementwise update
// (kernels/optimizer.hpp), computed once per tensor by the optimizer.
#pragma once

namespace ctnn::kernels {

struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float step_size;   // lr / (1 - beta1^t)
  float bias2_sqrt;  // sqrt(1 - beta2^t)
  float eps, weight_decay;
  float decay_factor;  // 1 - lr * weight_decay (decoupled decay only)
};

}  // namespace ctnn::kernels

// The optimizers' elementwise updates over the flat parameter buffers, for one
// architecture: whole vectors, then the tail as one partial vector. Each is
// torch.optim's update written once for vectors: the same operations in the
// same order as PyTorch's single-tensor loop, square roots and divisions
// correctly rounded. Where the architecture has FMA the compiler may fuse a
// multiply and the add after it (as PyTorch's own vectorized kernels are
// built), so AVX2 and AVX-512 can differ from SSE4.2 in the last bit of an
// element. Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

#include "ctnn/kernels/optimizer_scalars.hpp"

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// step(at, count) over [0, n): `lanes` floats at a time, the last call with
/// the 1..lanes floats left.
template <class Step>
CTNN_INLINE void in_vectors(std::size_t n, Step step) {
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) step(i, lanes);
  if (i < n) step(i, n - i);
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

namespace ctnn::kernels {

/// SGD with L2 weight decay, momentum (the first step copies d into the
/// buffer, without dampening), and Nesterov momentum.
template <bool Decay, bool Momentum, bool First, bool Nesterov>
void sgd_update(CTNN_KERNELS_TAG, float* p, const float* g, float* buf, std::size_t n, float lr, float wd, float mu,
                float one_minus_dampening) {
  using namespace CTNN_KERNELS_NS;
  in_vectors(n, [&](std::size_t at, std::size_t count) CTNN_LAMBDA_INLINE {
    const V pv = load_n(p + at, count);
    V d = load_n(g + at, count);
    if constexpr (Decay) d = d + wd * pv;
    if constexpr (Momentum) {
      V b;
      if constexpr (First) b = d;
      else b = load_n(buf + at, count) * mu + one_minus_dampening * d;
      store_n(buf + at, b, count);
      if constexpr (Nesterov) d = d + mu * b;
      else d = b;
    }
    store_n(p + at, pv - lr * d, count);
  });
}

/// Adam and AdamW (Decoupled: the decay multiplies the parameter first),
/// optionally with AMSGrad's running maximum of v.
template <bool L2, bool Decoupled, bool AmsGrad>
void adam_update(CTNN_KERNELS_TAG, float* p, const float* g, float* m, float* v, float* vmax, std::size_t n,
                 const AdamScalars& s) {
  using namespace CTNN_KERNELS_NS;
  in_vectors(n, [&](std::size_t at, std::size_t count) CTNN_LAMBDA_INLINE {
    V pv = load_n(p + at, count);
    V gv = load_n(g + at, count);
    if constexpr (Decoupled) pv = pv * s.decay_factor;
    if constexpr (L2) gv = gv + s.weight_decay * pv;
    const V mv = load_n(m + at, count) * s.beta1 + s.one_minus_beta1 * gv;
    V vv = load_n(v + at, count) * s.beta2 + s.one_minus_beta2 * gv * gv;
    store_n(m + at, mv, count);
    store_n(v + at, vv, count);
    if constexpr (AmsGrad) {
      const V seen = load_n(vmax + at, count);
      vv = select(seen < vv, vv, seen);  // max(seen, vv), keeping PyTorch's choice when one is NaN
      store_n(vmax + at, vv, count);
    }
    // eps is added after the bias correction of sqrt(v), as PyTorch does.
    const V denom = vsqrt(vv) / s.bias2_sqrt + s.eps;
    store_n(p + at, pv - s.step_size * mv / denom, count);
  });
}

/// RMSprop with L2 weight decay, centering and momentum.
template <bool Decay, bool Centered, bool Momentum>
void rmsprop_update(CTNN_KERNELS_TAG, float* p, const float* g, float* sq, float* ga, float* buf, std::size_t n,
                    float lr, float alpha, float one_minus_alpha, float eps, float wd, float mu) {
  using namespace CTNN_KERNELS_NS;
  in_vectors(n, [&](std::size_t at, std::size_t count) CTNN_LAMBDA_INLINE {
    const V pv = load_n(p + at, count);
    V gv = load_n(g + at, count);
    if constexpr (Decay) gv = gv + wd * pv;
    const V s = load_n(sq + at, count) * alpha + one_minus_alpha * gv * gv;
    store_n(sq + at, s, count);
    V avg;
    if constexpr (Centered) {
      const V a = load_n(ga + at, count) * alpha + one_minus_alpha * gv;
      store_n(ga + at, a, count);
      avg = vsqrt(s - a * a) + eps;
    } else {
      avg = vsqrt(s) + eps;
    }
    if constexpr (Momentum) {
      const V b = load_n(buf + at, count) * mu + gv / avg;
      store_n(buf + at, b, count);
      store_n(p + at, pv - lr * b, count);
    } else {
      store_n(p + at, pv - lr * gv / avg, count);
    }
  });
}

}  // namespace ctnn::kernels

#endif  // CTNN_KERNELS_NS

// The kernels of a fully connected layer, on the architecture a model chose:
//   linear_forward          y = act(x · wᵀ + b), z = x · wᵀ + b kept if asked
//   linear_backward_input   dx = dy · w, times the derivative of the activation
//                           before the layer if asked (ActivationGradient)
//   linear_backward_weight  dw += dyᵀ · x
//   bias_backward           db += Σ_rows dy
// Row-major throughout: x[n, In], y[n, Out], w[Out, In] (PyTorch's layout).
// Each takes the Arch from the layer's Context (one switch per call) or an
// xsimd tag (kernels/detail/body/linear.hpp) to call one architecture directly,
// and optionally the model's ThreadPool (core/thread_pool.hpp), over which a
// large product splits its rows or columns.
#pragma once

#include <cstddef>

#include "ctnn/kernels/activation_forms.hpp"
#include "ctnn/kernels/arch.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"

namespace ctnn::kernels {

template <class Act, std::size_t In, std::size_t Out>
inline void linear_forward(Arch a, const float* w, const float* bias, const float* x, float* z, float* y,
                           std::size_t n, ThreadPool* pool = nullptr) {
  dispatch(a, [&](auto tag) { linear_forward<Act, In, Out>(tag, w, bias, x, z, y, n, pool); });
}

template <std::size_t In, std::size_t Out, class GradientOf = NoActivation>
inline void linear_backward_input(Arch a, const float* w, const float* dy, float* dx, std::size_t n,
                                  ThreadPool* pool = nullptr, ActivationGradient<GradientOf> gradient = {}) {
  dispatch(a, [&](auto tag) { linear_backward_input<In, Out, GradientOf>(tag, w, dy, dx, n, pool, gradient); });
}

template <std::size_t In, std::size_t Out>
inline void linear_backward_weight(Arch a, const float* x, const float* dy, float* dw, std::size_t n,
                                   ThreadPool* pool = nullptr) {
  dispatch(a, [&](auto tag) { linear_backward_weight<In, Out>(tag, x, dy, dw, n, pool); });
}

template <std::size_t Out>
inline void bias_backward(Arch a, const float* dy, float* db, std::size_t n) {
  dispatch(a, [&](auto tag) { bias_backward<Out>(tag, dy, db, n); });
}

}  // namespace ctnn::kernels

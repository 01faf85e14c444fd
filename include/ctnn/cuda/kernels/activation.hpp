// The device form of each activation: the same f and f' as the activation
// specs in layers/activation.hpp (PyTorch's conventions at the kinks), written
// as CTNN_HD functions so kernels can call them on the GPU and the host
// emulation runs the very same code. The specs are only forward-declared
// here: their constants (negative_slope, alpha, ...) are read when a kernel is
// instantiated.
//
// Another activation gets a device form by specialising device_activation:
//   template <> struct ctnn::cuda::kernels::device_activation<MyAct> {
//     static CTNN_HD float f(float x);
//     static CTNN_HD float df(float x, float y);  // x: input, y: f(x)
//   };
#pragma once

#include <math.h>

#include <type_traits>

#include "ctnn/cuda/detail/hd.hpp"

namespace ctnn {
struct Identity;
struct ReLU;
template <class NegativeSlope>
struct LeakyReLU;
struct GELU;
struct GELUTanh;
struct Sigmoid;
struct Tanh;
struct SiLU;
template <class Alpha>
struct ELU;
template <class Beta, class Threshold>
struct Softplus;
template <class Min, class Max>
struct Hardtanh;
}  // namespace ctnn

namespace ctnn::cuda::kernels {

/// The epilogue of a Linear that no activation follows.
struct NoActivation {
  static CTNN_HD_INLINE float f(float x) { return x; }
  static CTNN_HD_INLINE float df(float, float) { return 1.0f; }
};

template <class Fn>
struct device_activation {
  static_assert(!std::is_same_v<Fn, Fn>,
                "ctnn::cuda: this activation (Fn) has no device form; specialise "
                "ctnn::cuda::kernels::device_activation<Fn> with CTNN_HD f(x) and df(x, y)");
};

template <>
struct device_activation<NoActivation> : NoActivation {};

template <>
struct device_activation<Identity> : NoActivation {};

template <>
struct device_activation<ReLU> {
  static CTNN_HD_INLINE float f(float x) { return x > 0.0f ? x : 0.0f; }
  static CTNN_HD_INLINE float df(float x, float) { return x > 0.0f ? 1.0f : 0.0f; }
};

template <class S>
struct device_activation<LeakyReLU<S>> {
  static constexpr float slope = LeakyReLU<S>::negative_slope;
  static CTNN_HD_INLINE float f(float x) { return x > 0.0f ? x : x * slope; }
  static CTNN_HD_INLINE float df(float x, float) { return x > 0.0f ? 1.0f : slope; }
};

template <>
struct device_activation<GELU> {
  static CTNN_HD_INLINE float f(float x) { return 0.5f * x * (1.0f + ::erff(x * 0.70710678118654752440f)); }
  static CTNN_HD_INLINE float df(float x, float) {
    const float cdf = 0.5f * (1.0f + ::erff(x * 0.70710678118654752440f));
    const float pdf = ::expf(-0.5f * x * x) * 0.39894228040143267794f;
    return cdf + x * pdf;
  }
};

template <>
struct device_activation<GELUTanh> {
  static CTNN_HD_INLINE float f(float x) {
    constexpr float k = 0.79788456080286535588f, c = 0.044715f;
    return 0.5f * x * (1.0f + ::tanhf(k * (x + c * x * x * x)));
  }
  static CTNN_HD_INLINE float df(float x, float) {
    constexpr float k = 0.79788456080286535588f, c = 0.044715f;
    const float t = ::tanhf(k * (x + c * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x);
  }
};

template <>
struct device_activation<Sigmoid> {
  static CTNN_HD_INLINE float f(float x) { return 1.0f / (1.0f + ::expf(-x)); }
  static CTNN_HD_INLINE float df(float, float y) { return y * (1.0f - y); }
};

template <>
struct device_activation<Tanh> {
  static CTNN_HD_INLINE float f(float x) { return ::tanhf(x); }
  static CTNN_HD_INLINE float df(float, float y) { return 1.0f - y * y; }
};

template <>
struct device_activation<SiLU> {
  static CTNN_HD_INLINE float f(float x) { return x / (1.0f + ::expf(-x)); }
  static CTNN_HD_INLINE float df(float x, float) {
    const float s = 1.0f / (1.0f + ::expf(-x));
    return s * (1.0f + x * (1.0f - s));
  }
};

template <class A>
struct device_activation<ELU<A>> {
  static constexpr float alpha = ELU<A>::alpha;
  static CTNN_HD_INLINE float f(float x) { return x > 0.0f ? x : alpha * ::expm1f(x); }
  static CTNN_HD_INLINE float df(float x, float) { return x > 0.0f ? 1.0f : alpha * ::expf(x); }
};

template <class B, class T>
struct device_activation<Softplus<B, T>> {
  static constexpr float beta = Softplus<B, T>::beta;
  static constexpr float threshold = Softplus<B, T>::threshold;
  static CTNN_HD_INLINE float f(float x) {
    return x * beta > threshold ? x : ::log1pf(::expf(x * beta)) / beta;
  }
  static CTNN_HD_INLINE float df(float x, float) {
    return x * beta > threshold ? 1.0f : 1.0f / (1.0f + ::expf(-x * beta));
  }
};

template <class Min, class Max>
struct device_activation<Hardtanh<Min, Max>> {
  static constexpr float lo = Hardtanh<Min, Max>::min_val;
  static constexpr float hi = Hardtanh<Min, Max>::max_val;
  static CTNN_HD_INLINE float f(float x) { return x < lo ? lo : (x > hi ? hi : x); }
  static CTNN_HD_INLINE float df(float x, float) { return (x > lo && x < hi) ? 1.0f : 0.0f; }
};

}  // namespace ctnn::cuda::kernels

// Elementwise activations. An activation spec (ReLU, Tanh, ...) only states its
// function and derivative; it adopts the width of whatever feeds it, and
// `Elementwise<Fn, W>` is the layer it becomes. The derivative follows
// PyTorch's conventions at the kinks (relu'(0) = 0, leaky_relu'(0) = slope,
// hardtanh'(±1) = 0): see tests/data/CONFORMANCE.md 9.5.
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <ratio>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/detail/python_repr.hpp"
#include "ctnn/kernels/activation.hpp"

namespace ctnn {

template <class Fn, std::size_t W>
struct Elementwise : LeafDefaults, FixedSpec<Elementwise<Fn, W>> {
  using function = Fn;
  static constexpr std::string_view kind = Fn::kind;
  static constexpr std::size_t in_features = W;
  static constexpr std::size_t out_features = W;

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float*) {
    kernels::activation_forward<Fn>(c.arch, x, y, n * W);
  }
  static void backward(const Context& c, const float* x, const float* y, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    if (!dx) return;
    kernels::activation_backward<Fn, W>(c.arch, x, y, dy, dx, n, nullptr);
  }
  static void print(std::ostream& os, int) { Fn::print(os); }
};

/// Base of elementwise specs: any width in, the same width out.
template <class Fn>
struct ElementwiseSpec {
  static constexpr std::size_t in_features = any_width;
  static constexpr std::size_t out_width(std::size_t in) { return in; }
  template <std::size_t W>
  using bind = Elementwise<Fn, W>;
};

struct Identity : ElementwiseSpec<Identity> {
  static constexpr std::string_view kind = "Identity";
  static float f(float x) { return x; }
  static float df(float, float) { return 1.0f; }
  static void print(std::ostream& os) { os << "Identity()"; }
};

struct ReLU : ElementwiseSpec<ReLU> {
  static constexpr std::string_view kind = "ReLU";
  static float f(float x) { return x > 0.0f ? x : 0.0f; }
  static float df(float x, float) { return x > 0.0f ? 1.0f : 0.0f; }
  static void print(std::ostream& os) { os << "ReLU()"; }
};

/// LeakyReLU<std::ratio<1, 5>> has slope 0.2; the default is PyTorch's 0.01.
template <class NegativeSlope = std::ratio<1, 100>>
struct LeakyReLU : ElementwiseSpec<LeakyReLU<NegativeSlope>> {
  static constexpr std::string_view kind = "LeakyReLU";
  static constexpr float negative_slope = static_cast<float>(detail::ratio_value<NegativeSlope>);
  static float f(float x) { return x > 0.0f ? x : x * negative_slope; }
  static float df(float x, float) { return x > 0.0f ? 1.0f : negative_slope; }
  static void print(std::ostream& os) {
    os << "LeakyReLU(negative_slope=" << detail::python_float(detail::ratio_value<NegativeSlope>) << ")";
  }
};

/// GELU with the exact erf: x·Φ(x).
struct GELU : ElementwiseSpec<GELU> {
  static constexpr std::string_view kind = "GELU";
  static constexpr float inv_sqrt2 = 0.70710678118654752440f;
  static constexpr float inv_sqrt_2pi = 0.39894228040143267794f;
  static float f(float x) { return 0.5f * x * (1.0f + std::erf(x * inv_sqrt2)); }
  static float df(float x, float) {
    const float cdf = 0.5f * (1.0f + std::erf(x * inv_sqrt2));
    const float pdf = std::exp(-0.5f * x * x) * inv_sqrt_2pi;
    return cdf + x * pdf;
  }
  static void print(std::ostream& os) { os << "GELU(approximate='none')"; }
};

/// GELU with PyTorch's tanh approximation (approximate='tanh').
struct GELUTanh : ElementwiseSpec<GELUTanh> {
  static constexpr std::string_view kind = "GELU";
  static constexpr float k = 0.79788456080286535588f;  // sqrt(2/pi)
  static constexpr float c = 0.044715f;
  static float f(float x) { return 0.5f * x * (1.0f + std::tanh(k * (x + c * x * x * x))); }
  static float df(float x, float) {
    const float t = std::tanh(k * (x + c * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x);
  }
  static void print(std::ostream& os) { os << "GELU(approximate='tanh')"; }
};

struct Sigmoid : ElementwiseSpec<Sigmoid> {
  static constexpr std::string_view kind = "Sigmoid";
  static float f(float x) { return 1.0f / (1.0f + std::exp(-x)); }
  static float df(float, float y) { return y * (1.0f - y); }
  static void print(std::ostream& os) { os << "Sigmoid()"; }
};

struct Tanh : ElementwiseSpec<Tanh> {
  static constexpr std::string_view kind = "Tanh";
  static float f(float x) { return std::tanh(x); }
  static float df(float, float y) { return 1.0f - y * y; }
  static void print(std::ostream& os) { os << "Tanh()"; }
};

struct SiLU : ElementwiseSpec<SiLU> {
  static constexpr std::string_view kind = "SiLU";
  static float f(float x) { return x / (1.0f + std::exp(-x)); }
  static float df(float x, float) {
    const float s = 1.0f / (1.0f + std::exp(-x));
    return s * (1.0f + x * (1.0f - s));
  }
  static void print(std::ostream& os) { os << "SiLU()"; }
};

template <class Alpha = std::ratio<1>>
struct ELU : ElementwiseSpec<ELU<Alpha>> {
  static constexpr std::string_view kind = "ELU";
  static constexpr float alpha = static_cast<float>(detail::ratio_value<Alpha>);
  static float f(float x) { return x > 0.0f ? x : alpha * std::expm1(x); }
  static float df(float x, float) { return x > 0.0f ? 1.0f : alpha * std::exp(x); }
  static void print(std::ostream& os) { os << "ELU(alpha=" << detail::python_float(detail::ratio_value<Alpha>) << ")"; }
};

/// log(1 + exp(beta·x)) / beta, linear where beta·x > threshold (as PyTorch).
template <class Beta = std::ratio<1>, class Threshold = std::ratio<20>>
struct Softplus : ElementwiseSpec<Softplus<Beta, Threshold>> {
  static constexpr std::string_view kind = "Softplus";
  static constexpr float beta = static_cast<float>(detail::ratio_value<Beta>);
  static constexpr float threshold = static_cast<float>(detail::ratio_value<Threshold>);
  static float f(float x) { return x * beta > threshold ? x : std::log1p(std::exp(x * beta)) / beta; }
  static float df(float x, float) {
    return x * beta > threshold ? 1.0f : 1.0f / (1.0f + std::exp(-x * beta));
  }
  static void print(std::ostream& os) {
    // PyTorch stores beta and threshold as given (ints by default): "Softplus(beta=1, threshold=20)".
    auto number = [&](auto ratio_tag, double v) {
      using R = decltype(ratio_tag);
      if constexpr (R::den == 1) os << R::num; else os << detail::python_float(v);
    };
    os << "Softplus(beta=";
    number(Beta{}, detail::ratio_value<Beta>);
    os << ", threshold=";
    number(Threshold{}, detail::ratio_value<Threshold>);
    os << ")";
  }
};

template <class Min = std::ratio<-1>, class Max = std::ratio<1>>
struct Hardtanh : ElementwiseSpec<Hardtanh<Min, Max>> {
  static constexpr std::string_view kind = "Hardtanh";
  static constexpr float min_val = static_cast<float>(detail::ratio_value<Min>);
  static constexpr float max_val = static_cast<float>(detail::ratio_value<Max>);
  static_assert(min_val < max_val, "ctnn: Hardtanh<Min, Max> needs Min < Max");
  static float f(float x) { return x < min_val ? min_val : (x > max_val ? max_val : x); }
  static float df(float x, float) { return (x > min_val && x < max_val) ? 1.0f : 0.0f; }
  static void print(std::ostream& os) {
    os << "Hardtanh(min_val=" << detail::python_float(detail::ratio_value<Min>)
       << ", max_val=" << detail::python_float(detail::ratio_value<Max>) << ")";
  }
};

}  // namespace ctnn

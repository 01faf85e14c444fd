// Which vector form the kernels use for an activation. The activation specs in
// layers/activation.hpp state a scalar f and f'; the kernels recognise the
// common ones here and evaluate them on whole vectors (kernels/detail/body/
// activation.hpp); any other activation runs its scalar f lane by lane.
#pragma once

#include <cstdint>

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
template <class Min, class Max>
struct Hardtanh;
}  // namespace ctnn

namespace ctnn::kernels {

/// The activation applied in a Linear's epilogue when nothing follows it.
struct NoActivation {};

/// What a Linear's input-gradient kernel multiplies dx by before storing it:
/// Fn'(x), where x[n, In] is the input of the activation Fn that ends the
/// layer before that Linear and y[n, In] its output (either may be null when
/// Fn's derivative does not read it). The gradient stored is then already the
/// previous Linear's output gradient, without a pass of its own over dx
/// (compose/fusion.hpp). Unless db is null, the kernel also adds the column
/// sums of what it stores to db[In] (the previous Linear's bias gradient),
/// summed from zero in order of rows and then added, as a separate pass
/// would. With NoActivation, dx is stored as it is. Unless plus is null,
/// plus[n, In] is added to dx first: the gradient that a Residual's skip
/// connection adds to its body's, when the body's first kernel stores the dz
/// of the pair before the Residual (compose/residual.hpp).
template <class Fn>
struct ActivationGradient {
  const float* x = nullptr;
  const float* y = nullptr;
  float* db = nullptr;
  const float* plus = nullptr;
};

enum class ActivationForm : std::uint8_t {
  none,        // NoActivation
  per_lane,    // Fn::f and Fn::df, one lane at a time
  identity,
  relu,
  leaky_relu,  // Fn::negative_slope
  hardtanh,    // Fn::min_val, Fn::max_val
  tanh,
  sigmoid,
  silu,
  gelu_tanh,   // Fn::k, Fn::c
  elu,         // Fn::alpha
};

template <class Fn>
inline constexpr ActivationForm activation_form = ActivationForm::per_lane;
template <>
inline constexpr ActivationForm activation_form<NoActivation> = ActivationForm::none;
template <>
inline constexpr ActivationForm activation_form<Identity> = ActivationForm::identity;
template <>
inline constexpr ActivationForm activation_form<ReLU> = ActivationForm::relu;
template <class S>
inline constexpr ActivationForm activation_form<LeakyReLU<S>> = ActivationForm::leaky_relu;
template <class Min, class Max>
inline constexpr ActivationForm activation_form<Hardtanh<Min, Max>> = ActivationForm::hardtanh;
template <>
inline constexpr ActivationForm activation_form<Tanh> = ActivationForm::tanh;
template <>
inline constexpr ActivationForm activation_form<Sigmoid> = ActivationForm::sigmoid;
template <>
inline constexpr ActivationForm activation_form<SiLU> = ActivationForm::silu;
template <>
inline constexpr ActivationForm activation_form<GELUTanh> = ActivationForm::gelu_tanh;
template <class A>
inline constexpr ActivationForm activation_form<ELU<A>> = ActivationForm::elu;

/// True if the kernels evaluate Fn on whole vectors. The others run the spec's
/// scalar f and f' one element at a time, compiled like the caller's code, and
/// are not fused into a Linear's epilogue.
template <class Fn>
inline constexpr bool has_vector_form = activation_form<Fn> != ActivationForm::per_lane;

/// True if the vector form gives exactly the spec's scalar f and dy·f' (it
/// only compares, selects and multiplies); the others (tanh, sigmoid, SiLU,
/// GELU-tanh, ELU) are polynomial or rational approximations within a few ulp.
template <class Fn>
inline constexpr bool vector_form_is_exact =
    activation_form<Fn> == ActivationForm::none || activation_form<Fn> == ActivationForm::identity ||
    activation_form<Fn> == ActivationForm::relu || activation_form<Fn> == ActivationForm::leaky_relu ||
    activation_form<Fn> == ActivationForm::hardtanh;

/// Which of the activation's input x and output y its vector derivative
/// reads. ReLU's reads y (y > 0 exactly where x > 0, as PyTorch's
/// threshold_backward reads the result), so for ReLU, Tanh and Sigmoid a
/// fused Linear need not keep its output z for the backward.
template <class Fn>
inline constexpr bool derivative_reads_input =
    !(activation_form<Fn> == ActivationForm::none || activation_form<Fn> == ActivationForm::identity ||
      activation_form<Fn> == ActivationForm::relu || activation_form<Fn> == ActivationForm::tanh ||
      activation_form<Fn> == ActivationForm::sigmoid);
template <class Fn>
inline constexpr bool derivative_reads_output =
    activation_form<Fn> == ActivationForm::relu || activation_form<Fn> == ActivationForm::tanh ||
    activation_form<Fn> == ActivationForm::sigmoid || activation_form<Fn> == ActivationForm::per_lane;

}  // namespace ctnn::kernels

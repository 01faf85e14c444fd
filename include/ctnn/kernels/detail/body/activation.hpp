// Activations on whole vectors: exp (Cephes' polynomial, about 1 ulp), tanh
// (a rational function, at most 5 ulp), and f and f' of every form in
// kernels/activation_forms.hpp. Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// e^x for x in [-87.3, 88] (clamped outside: results stay finite and normal).
CTNN_INLINE V vexp(V x) {
  x = vmin(vmax(x, splat(-87.33654f)), splat(88.0f));
  // n = round(x / ln 2) by the 1.5·2^23 trick; r = x - n·ln 2 in two parts.
  const V magic = splat(12582912.0f);
  const V n = (x * 1.44269504088896341f + magic) - magic;
  V r = fma(n, splat(-0.693359375f), x);
  r = fma(n, splat(2.12194440e-4f), r);
  V p = splat(1.9875691500e-4f);
  p = fma(p, r, splat(1.3981999507e-3f));
  p = fma(p, r, splat(8.3334519073e-3f));
  p = fma(p, r, splat(4.1665795894e-2f));
  p = fma(p, r, splat(1.6666665459e-1f));
  p = fma(p, r, splat(5.0000001201e-1f));
  p = fma(p, r * r, r + 1.0f);
  const VI e = (__builtin_convertvector(n, VI) + 127) << 23;
  return p * reinterpret_cast<V>(e);
}

/// 1/d: the hardware estimate and Newton steps (about 1 ulp), or a division.
CTNN_INLINE V reciprocal(V d) {
#if CTNN_KERNELS_ISA == CTNN_ISA_AVX512
  // 14 bits; one step gives 24. (The maskz form: g++ 12 warns that the plain
  // one's undefined source "may be used uninitialized".)
  const V r = _mm512_maskz_rcp14_ps(static_cast<__mmask16>(0xffff), d);
  return fma(r, fma(-d, r, splat(1.0f)), r);
#elif CTNN_KERNELS_ISA == CTNN_ISA_AVX2
  V r = _mm256_rcp_ps(d);  // 12 bits; two steps
  r = fma(r, fma(-d, r, splat(1.0f)), r);
  return fma(r, fma(-d, r, splat(1.0f)), r);
#else
  return 1.0f / d;
#endif
}

/// tanh as a rational function of degree 13/6 on [-7.9988, 7.9988] (the
/// coefficients of Eigen's generic_fast_tanh_float), the clamped value up to
/// 9, exactly ±1 beyond, and x itself below 4e-4: at most 5 ulp, 3e-7
/// absolute, against std::tanh. Twice as fast as 1 - 2/(e^{2x} + 1).
CTNN_INLINE V vtanh(V a) {
  const V x = vmin(vmax(a, splat(-7.99881172180175781f)), splat(7.99881172180175781f));
  const V x2 = x * x;
  V p = fma(x2, splat(-2.76076847742355e-16f), splat(2.00018790482477e-13f));
  p = fma(x2, p, splat(-8.60467152213735e-11f));
  p = fma(x2, p, splat(5.12229709037114e-08f));
  p = fma(x2, p, splat(1.48572235717979e-05f));
  p = fma(x2, p, splat(6.37261928875436e-04f));
  p = fma(x2, p, splat(4.89352455891786e-03f));
  p = p * x;
  V q = fma(x2, splat(1.19825839466702e-06f), splat(1.18534705686654e-04f));
  q = fma(x2, q, splat(2.26843463243900e-03f));
  q = fma(x2, q, splat(4.89352518554385e-03f));
  const V r = select(vabs(a) < 0.0004f, a, p * reciprocal(q));
  // Beyond 9, tanh rounds to ±1 in float, and must be exactly that: GELU-tanh's
  // derivative multiplies 1 - t² by x³, so 2e-7 left over at x = 100 would
  // become 0.005 (the rational function ends at 0.99999976).
  return select(vabs(a) >= 9.0f, copy_sign(splat(1.0f), a), r);
}

CTNN_INLINE V vsigmoid(V x) { return 1.0f / (1.0f + vexp(-x)); }

template <class Fn>
CTNN_INLINE V activation_f(V x) {
  constexpr ActivationForm form = activation_form<Fn>;
  if constexpr (form == ActivationForm::none || form == ActivationForm::identity) {
    return x;
  } else if constexpr (form == ActivationForm::relu) {
    return vmax(x, V{});
  } else if constexpr (form == ActivationForm::leaky_relu) {
    return select(x > 0.0f, x, x * Fn::negative_slope);
  } else if constexpr (form == ActivationForm::hardtanh) {
    return select(x < Fn::min_val, splat(Fn::min_val), select(x > Fn::max_val, splat(Fn::max_val), x));
  } else if constexpr (form == ActivationForm::tanh) {
    return vtanh(x);
  } else if constexpr (form == ActivationForm::sigmoid) {
    return vsigmoid(x);
  } else if constexpr (form == ActivationForm::silu) {
    return x * vsigmoid(x);
  } else if constexpr (form == ActivationForm::gelu_tanh) {
    return 0.5f * x * (1.0f + vtanh(Fn::k * (x + Fn::c * x * x * x)));
  } else if constexpr (form == ActivationForm::elu) {
    return select(x > 0.0f, x, Fn::alpha * (vexp(x) - 1.0f));
  } else {
    V y;
    for (std::size_t i = 0; i < lanes; ++i) y[i] = Fn::f(x[i]);
    return y;
  }
}

/// dy · f'(x), with y = f(x).
template <class Fn>
CTNN_INLINE V activation_grad(V x, V y, V dy) {
  constexpr ActivationForm form = activation_form<Fn>;
  // The piecewise-linear forms multiply dy by the selected slope, as dy·f'
  // does in scalar code (so -0, infinities and NaN come out the same).
  if constexpr (form == ActivationForm::none || form == ActivationForm::identity) {
    return dy * 1.0f;
  } else if constexpr (form == ActivationForm::relu) {
    return dy * select(y > 0.0f, splat(1.0f), V{});
  } else if constexpr (form == ActivationForm::leaky_relu) {
    return dy * select(x > 0.0f, splat(1.0f), splat(Fn::negative_slope));
  } else if constexpr (form == ActivationForm::hardtanh) {
    return dy * select((x > Fn::min_val) & (x < Fn::max_val), splat(1.0f), V{});
  } else if constexpr (form == ActivationForm::tanh) {
    return dy * (1.0f - y * y);
  } else if constexpr (form == ActivationForm::sigmoid) {
    return dy * (y * (1.0f - y));
  } else if constexpr (form == ActivationForm::silu) {
    const V s = vsigmoid(x);
    return dy * (s * (1.0f + x * (1.0f - s)));
  } else if constexpr (form == ActivationForm::gelu_tanh) {
    const V t = vtanh(Fn::k * (x + Fn::c * x * x * x));
    return dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * Fn::k * (1.0f + 3.0f * Fn::c * x * x));
  } else if constexpr (form == ActivationForm::elu) {
    return select(x > 0.0f, dy, dy * (Fn::alpha * vexp(x)));
  } else {
    V g;
    for (std::size_t i = 0; i < lanes; ++i) g[i] = dy[i] * Fn::df(x[i], y[i]);
    return g;
  }
}

/// dy ⊙ f'(x) for `count` floats at offset `at` of x and y, reading x or y
/// only if the form needs it.
template <class Fn>
CTNN_INLINE V activation_grad_at(const float* x, const float* y, V dy, std::size_t at, std::size_t count) {
  V xv{}, yv{};
  if constexpr (derivative_reads_input<Fn>) xv = load_n(x + at, count);
  if constexpr (derivative_reads_output<Fn>) yv = load_n(y + at, count);
  return activation_grad<Fn>(xv, yv, dy);
}

/// A Linear's input gradient g (count floats at offset `at` of dx) as it is
/// stored: (g + plus) ⊙ Fn'(x) for an ActivationGradient<Fn>, g itself for
/// NoActivation (which never has a plus).
template <class Fn>
CTNN_INLINE V apply_gradient(const ActivationGradient<Fn>& grad, V g, std::size_t at, std::size_t count) {
  if constexpr (activation_form<Fn> == ActivationForm::none) {
    return g;
  } else {
    if (grad.plus) g += load_n(grad.plus + at, count);
    return activation_grad_at<Fn>(grad.x, grad.y, g, at, count);
  }
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

#endif  // CTNN_KERNELS_NS

// Linear<In, Out, Bias>: y = x · weightᵀ + bias, PyTorch's nn.Linear.
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/kernels/linear.hpp"

namespace ctnn {

template <std::size_t In, std::size_t Out, bool Bias = true>
struct Linear : LeafDefaults, FixedSpec<Linear<In, Out, Bias>> {
  static_assert(In > 0 && Out > 0, "ctnn: Linear<In, Out> needs In > 0 and Out > 0");

  static constexpr std::string_view kind = "Linear";
  static constexpr std::size_t in_features = In;
  static constexpr std::size_t out_features = Out;
  static constexpr bool has_bias = Bias;
  static constexpr std::size_t weight_offset = 0;
  static constexpr std::size_t bias_offset = In * Out;
  static constexpr std::size_t num_params = In * Out + (Bias ? Out : 0);

  static constexpr auto params = [] {
    if constexpr (Bias)
      return std::array{TensorSpec("weight", {Out, In}, weight_offset),
                        TensorSpec("bias", {Out}, bias_offset)};
    else
      return std::array{TensorSpec("weight", {Out, In}, weight_offset)};
  }();

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float*) {
    kernels::linear_forward<kernels::NoActivation, In, Out>(c.arch, c.params + weight_offset,
                                                            Bias ? c.params + bias_offset : nullptr, x, nullptr, y, n,
                                                            c.pool);
  }

  static void backward(const Context& c, const float* x, const float*, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    backward_through(c, x, dy, dx, n, kernels::ActivationGradient<kernels::NoActivation>{});
  }

  /// The backward, with dx stored times the derivative of the activation
  /// before this layer (`before`): when that activation ends a fused Linear,
  /// the gradient written is that Linear's output gradient (compose/fusion.hpp).
  template <class GradientOf>
  static void backward_through(const Context& c, const float* x, const float* dy, float* dx, std::size_t n,
                               kernels::ActivationGradient<GradientOf> before) {
    kernels::dispatch(c.arch, [&](auto tag) {
      if (c.requires_grad[0]) kernels::linear_backward_weight<In, Out>(tag, x, dy, c.grads + weight_offset, n, c.pool);
      if constexpr (Bias)
        if (c.requires_grad[1]) kernels::bias_backward<Out>(tag, dy, c.grads + bias_offset, n);
      if (dx) kernels::linear_backward_input<In, Out>(tag, c.params + weight_offset, dy, dx, n, c.pool, before);
    });
  }

  /// PyTorch's default: kaiming_uniform_(a=sqrt(5)) on the weight, which is
  /// U(-1/sqrt(In), 1/sqrt(In)), and the same bound for the bias.
  static void reset_parameters(const Context& c, Generator& g) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(In));
    for (std::size_t i = 0; i < num_params; ++i) c.params[i] = g.uniform(-bound, bound);
  }

  static void print(std::ostream& os, int) {
    os << "Linear(in_features=" << In << ", out_features=" << Out
       << ", bias=" << (Bias ? "True" : "False") << ")";
  }
};

template <class T>
inline constexpr bool is_linear = false;
template <std::size_t In, std::size_t Out, bool Bias>
inline constexpr bool is_linear<Linear<In, Out, Bias>> = true;

}  // namespace ctnn

// LayerNorm<F>: normalises each row over its F features, then scales and shifts
// (PyTorch's nn.LayerNorm(F), elementwise_affine=True). Same in train and eval.
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <ratio>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/detail/python_repr.hpp"

namespace ctnn {

template <std::size_t F, class Eps = std::ratio<1, 100000>>
struct LayerNorm : LeafDefaults, FixedSpec<LayerNorm<F, Eps>> {
  static_assert(F > 0, "ctnn: LayerNorm<F> needs F > 0");
  static constexpr std::string_view kind = "LayerNorm";
  static constexpr std::size_t in_features = F;
  static constexpr std::size_t out_features = F;
  static constexpr double eps = detail::ratio_value<Eps>;
  static constexpr std::size_t num_params = 2 * F;
  static constexpr auto params = std::array{TensorSpec("weight", {F}, 0), TensorSpec("bias", {F}, F)};
  // Per row: the mean and 1/sqrt(var + eps), for backward.
  static constexpr std::size_t workspace_floats = 2;

  static void reset_parameters(const Context& c, Generator&) {
    for (std::size_t i = 0; i < F; ++i) c.params[i] = 1.0f, c.params[F + i] = 0.0f;
  }

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    const float* w = c.params;
    const float* b = c.params + F;
    for (std::size_t r = 0; r < n; ++r) {
      const float* xr = x + r * F;
      double sum = 0.0;
      for (std::size_t i = 0; i < F; ++i) sum += xr[i];
      const double mean = sum / F;
      double sq = 0.0;
      for (std::size_t i = 0; i < F; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
      const float rstd = static_cast<float>(1.0 / std::sqrt(sq / F + eps));
      const float m = static_cast<float>(mean);
      for (std::size_t i = 0; i < F; ++i) y[r * F + i] = (xr[i] - m) * rstd * w[i] + b[i];
      ws[2 * r] = m;
      ws[2 * r + 1] = rstd;
    }
  }

  static void backward(const Context& c, const float* x, const float*, const float* dy, float* dx, std::size_t n,
                       float* ws, float*) {
    const float* w = c.params;
    const bool train_weight = c.requires_grad[0], train_bias = c.requires_grad[1];
    for (std::size_t r = 0; r < n; ++r) {
      const float* xr = x + r * F;
      const float* gr = dy + r * F;
      const float m = ws[2 * r], rstd = ws[2 * r + 1];
      double mean_g = 0.0, mean_gx = 0.0;
      for (std::size_t i = 0; i < F; ++i) {
        const float xhat = (xr[i] - m) * rstd;
        const float g = gr[i] * w[i];
        mean_g += g;
        mean_gx += static_cast<double>(g) * xhat;
        if (train_weight) c.grads[i] += gr[i] * xhat;
        if (train_bias) c.grads[F + i] += gr[i];
      }
      if (!dx) continue;
      const float a = static_cast<float>(mean_g / F), bcoef = static_cast<float>(mean_gx / F);
      for (std::size_t i = 0; i < F; ++i) {
        const float xhat = (xr[i] - m) * rstd;
        dx[r * F + i] = rstd * (gr[i] * w[i] - a - xhat * bcoef);
      }
    }
  }

  static void print(std::ostream& os, int) {
    os << "LayerNorm((" << F << ",), eps=" << detail::python_float(eps) << ", elementwise_affine=True)";
  }
};

}  // namespace ctnn

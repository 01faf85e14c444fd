// BatchNorm1d<F>: PyTorch's nn.BatchNorm1d(F) on [N, F] input. Training mode
// normalises with the batch's statistics (biased variance) and updates the
// running statistics (unbiased variance) and num_batches_tracked; evaluation
// mode normalises with the running statistics. See CONFORMANCE.md 9.2.
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <ratio>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/detail/python_repr.hpp"

namespace ctnn {

template <std::size_t F, class Momentum = std::ratio<1, 10>, class Eps = std::ratio<1, 100000>>
struct BatchNorm1d : LeafDefaults, FixedSpec<BatchNorm1d<F, Momentum, Eps>> {
  static_assert(F > 0, "ctnn: BatchNorm1d<F> needs F > 0");
  static constexpr std::string_view kind = "BatchNorm1d";
  static constexpr std::size_t in_features = F;
  static constexpr std::size_t out_features = F;
  static constexpr double eps = detail::ratio_value<Eps>;
  static constexpr double momentum = detail::ratio_value<Momentum>;
  static constexpr std::size_t num_params = 2 * F;
  static constexpr std::size_t num_buffers = 2 * F;
  static constexpr std::size_t num_counters = 1;
  static constexpr auto params = std::array{TensorSpec("weight", {F}, 0), TensorSpec("bias", {F}, F)};
  static constexpr auto buffers = std::array{TensorSpec("running_mean", {F}, 0, Storage::buffer),
                                             TensorSpec("running_var", {F}, F, Storage::buffer),
                                             TensorSpec("num_batches_tracked", {}, 0, Storage::counter)};
  // Per row: x̂ (F floats) and, after the n rows, the batch mean and 1/sqrt(var + eps)
  // (2F floats, which fit because training needs at least 2 rows).
  static constexpr std::size_t workspace_floats = 2 * F;

  static void reset_parameters(const Context& c, Generator&) {
    for (std::size_t i = 0; i < F; ++i) {
      c.params[i] = 1.0f;
      c.params[F + i] = 0.0f;
      c.buffers[i] = 0.0f;
      c.buffers[F + i] = 1.0f;
    }
    c.counters[0] = 0;
  }

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    const float* w = c.params;
    const float* b = c.params + F;
    float* running_mean = c.buffers;
    float* running_var = c.buffers + F;
    if (!c.training) {
      for (std::size_t i = 0; i < F; ++i) {
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[i]) + eps)) * w[i];
        for (std::size_t r = 0; r < n; ++r) y[r * F + i] = (x[r * F + i] - running_mean[i]) * scale + b[i];
      }
      return;
    }
    if (n < 2)
      throw ValueError("ctnn: BatchNorm1d in training mode needs more than 1 row per batch, got " +
                       std::to_string(n) + " (as PyTorch: 'Expected more than 1 value per channel when training')");
    float* xhat = ws;
    float* mean_out = ws + n * F;
    float* rstd_out = mean_out + F;
    for (std::size_t i = 0; i < F; ++i) {
      double sum = 0.0;
      for (std::size_t r = 0; r < n; ++r) sum += x[r * F + i];
      const double mean = sum / static_cast<double>(n);
      double sq = 0.0;
      for (std::size_t r = 0; r < n; ++r) sq += (x[r * F + i] - mean) * (x[r * F + i] - mean);
      const double var = sq / static_cast<double>(n);
      const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
      const float m = static_cast<float>(mean);
      for (std::size_t r = 0; r < n; ++r) {
        const float h = (x[r * F + i] - m) * rstd;
        xhat[r * F + i] = h;
        y[r * F + i] = h * w[i] + b[i];
      }
      mean_out[i] = m;
      rstd_out[i] = rstd;
      running_mean[i] = static_cast<float>((1.0 - momentum) * running_mean[i] + momentum * mean);
      running_var[i] = static_cast<float>((1.0 - momentum) * running_var[i] +
                                          momentum * var * static_cast<double>(n) / static_cast<double>(n - 1));
    }
    c.counters[0] += 1;
  }

  static void backward(const Context& c, const float*, const float*, const float* dy, float* dx, std::size_t n,
                       float* ws, float*) {
    const float* w = c.params;
    const float* xhat = ws;
    const float* rstd = ws + n * F + F;
    const bool train_weight = c.requires_grad[0], train_bias = c.requires_grad[1];
    for (std::size_t i = 0; i < F; ++i) {
      double sum_g = 0.0, sum_gx = 0.0, sum_dy = 0.0, sum_dy_xhat = 0.0;
      for (std::size_t r = 0; r < n; ++r) {
        const float g = dy[r * F + i];
        sum_dy += g;
        sum_dy_xhat += static_cast<double>(g) * xhat[r * F + i];
        sum_g += static_cast<double>(g) * w[i];
        sum_gx += static_cast<double>(g) * w[i] * xhat[r * F + i];
      }
      if (train_weight) c.grads[i] += static_cast<float>(sum_dy_xhat);
      if (train_bias) c.grads[F + i] += static_cast<float>(sum_dy);
      if (!dx) continue;
      const float mean_g = static_cast<float>(sum_g / static_cast<double>(n));
      const float mean_gx = static_cast<float>(sum_gx / static_cast<double>(n));
      for (std::size_t r = 0; r < n; ++r)
        dx[r * F + i] = rstd[i] * (dy[r * F + i] * w[i] - mean_g - xhat[r * F + i] * mean_gx);
    }
  }

  static void print(std::ostream& os, int) {
    os << "BatchNorm1d(" << F << ", eps=" << detail::python_float(eps)
       << ", momentum=" << detail::python_float(momentum) << ", affine=True, track_running_stats=True)";
  }
};

}  // namespace ctnn

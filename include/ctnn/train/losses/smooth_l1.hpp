// torch.nn.SmoothL1Loss: quadratic below `beta`, linear above, with the
// quadratic part divided by beta (unlike HuberLoss, which multiplies by delta).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct SmoothL1Loss {
  Reduction reduction = Reduction::mean;
  float beta = 1.0f;

  static constexpr std::string_view name = "SmoothL1Loss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  double compute(const float* pred, const float* target, std::size_t rows, std::size_t cols,
                 float* grad) const {
    if (!(beta >= 0.0f)) {
      throw ValueError("SmoothL1Loss: beta must be >= 0, got " + detail::loss_format_value(beta));
    }
    const std::size_t n = rows * cols;
    const double scale = detail::reduction_scale(reduction, n);
    // beta == 0 is exactly L1 (PyTorch special-cases it too); the general
    // formula would divide by zero.
    const bool l1 = beta == 0.0f;
    const float inv_beta = l1 ? 0.0f : 1.0f / beta;
    if (grad != nullptr) {
      const float gscale = static_cast<float>(scale);
      for (std::size_t i = 0; i < n; ++i) {
        const float d = pred[i] - target[i];
        const float sign = (d > 0.0f ? 1.0f : 0.0f) - (d < 0.0f ? 1.0f : 0.0f);
        grad[i] = (std::fabs(d) < beta ? d * inv_beta : sign) * gscale;
      }
    }
    const double b = beta;
    return scale * detail::sum_terms(n, [&](std::size_t i) {
             const double a = std::fabs(static_cast<double>(pred[i] - target[i]));
             return a < b ? 0.5 * a * a / b : a - 0.5 * b;
           });
  }
};

}  // namespace ctnn

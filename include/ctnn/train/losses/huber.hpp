// torch.nn.HuberLoss: quadratic up to `delta`, linear with slope delta beyond.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct HuberLoss {
  Reduction reduction = Reduction::mean;
  float delta = 1.0f;

  static constexpr std::string_view name = "HuberLoss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  double compute(const float* pred, const float* target, std::size_t rows, std::size_t cols,
                 float* grad) const {
    if (!(delta > 0.0f)) {
      throw ValueError("HuberLoss: delta must be > 0, got " + detail::loss_format_value(delta));
    }
    const std::size_t n = rows * cols;
    const double scale = detail::reduction_scale(reduction, n);
    if (grad != nullptr) {
      const float gscale = static_cast<float>(scale);
      const float dl = delta;
      for (std::size_t i = 0; i < n; ++i) {
        const float d = pred[i] - target[i];
        // Clamping d to [-delta, delta] is the derivative on both pieces.
        const float c = d < -dl ? -dl : (d > dl ? dl : d);
        grad[i] = c * gscale;
      }
    }
    const double dd = delta;
    return scale * detail::sum_terms(n, [&](std::size_t i) {
             const double a = std::fabs(static_cast<double>(pred[i] - target[i]));
             return a <= dd ? 0.5 * a * a : dd * (a - 0.5 * dd);
           });
  }
};

}  // namespace ctnn

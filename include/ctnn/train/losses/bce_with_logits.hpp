// torch.nn.BCEWithLogitsLoss: sigmoid and binary cross-entropy fused, so the
// loss stays finite for logits of any size.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct BCEWithLogitsLoss {
  Reduction reduction = Reduction::mean;

  static constexpr std::string_view name = "BCEWithLogitsLoss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  /// `pred` are logits, `target` probabilities in [0, 1] of the same layout.
  double compute(const float* pred, const float* target, std::size_t rows, std::size_t cols,
                 float* grad) const {
    const std::size_t n = rows * cols;
    const double scale = detail::reduction_scale(reduction, n);
    if (grad != nullptr) {
      const float gscale = static_cast<float>(scale);
      for (std::size_t i = 0; i < n; ++i) {
        const float x = pred[i];
        // sigmoid from exp(-|x|) <= 1 on both sides of zero: no overflow, and
        // no cancellation in 1 - sigmoid for large negative x.
        const float e = std::exp(-std::fabs(x));
        const float sig = (x >= 0.0f ? 1.0f : e) / (1.0f + e);
        grad[i] = (sig - target[i]) * gscale;
      }
    }
    return scale * detail::sum_terms(n, [&](std::size_t i) {
             const double x = pred[i];
             const double y = target[i];
             return (x > 0.0 ? x : 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
           });
  }
};

}  // namespace ctnn

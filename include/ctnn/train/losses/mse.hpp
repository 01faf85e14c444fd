// Mean squared error, torch.nn.MSELoss.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct MSELoss {
  Reduction reduction = Reduction::mean;

  static constexpr std::string_view name = "MSELoss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  /// PyTorch prints losses without their options: "MSELoss()".
  std::string repr() const { return std::string(name) + "()"; }

  /// Loss of `rows x cols` predictions against targets of the same layout;
  /// writes dLoss/dpred to `grad` when it is not null.
  double compute(const float* pred, const float* target, std::size_t rows, std::size_t cols,
                 float* grad) const {
    const std::size_t n = rows * cols;
    const double scale = detail::reduction_scale(reduction, n);
    if (grad != nullptr) {
      const float gscale = static_cast<float>(2.0 * scale);
      for (std::size_t i = 0; i < n; ++i) grad[i] = (pred[i] - target[i]) * gscale;
    }
    // Kept apart from the gradient loop, which vectorises in float.
    return scale * detail::sum_terms(n, [&](std::size_t i) {
             const double d = static_cast<double>(pred[i] - target[i]);
             return d * d;
           });
  }
};

}  // namespace ctnn

// Mean absolute error, torch.nn.L1Loss.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct L1Loss {
  Reduction reduction = Reduction::mean;

  static constexpr std::string_view name = "L1Loss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  double compute(const float* pred, const float* target, std::size_t rows, std::size_t cols,
                 float* grad) const {
    const std::size_t n = rows * cols;
    const double scale = detail::reduction_scale(reduction, n);
    if (grad != nullptr) {
      const float gscale = static_cast<float>(scale);
      // sign(0) = 0, PyTorch's subgradient at the kink.
      for (std::size_t i = 0; i < n; ++i) {
        const float d = pred[i] - target[i];
        grad[i] = (d > 0.0f ? gscale : 0.0f) - (d < 0.0f ? gscale : 0.0f);
      }
    }
    return scale *
           detail::sum_terms(n, [&](std::size_t i) { return std::fabs(static_cast<double>(pred[i] - target[i])); });
  }
};

}  // namespace ctnn

// torch.nn.NLLLoss over class indices: the input holds log-probabilities.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {
namespace detail {

/// Every class loss checks all labels before it writes anything, so a bad
/// label leaves `grad` as it was.
inline void check_class_labels(std::string_view loss, const std::int64_t* labels, std::size_t rows,
                               std::size_t cols) {
  const auto classes = static_cast<std::int64_t>(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || labels[r] >= classes) {
      throw ValueError(std::string(loss) + ": label " + std::to_string(labels[r]) + " in row " +
                       std::to_string(r) + " is out of range for " + std::to_string(cols) +
                       " classes (expected 0 <= label < " + std::to_string(cols) + ")");
    }
  }
}

}  // namespace detail

struct NLLLoss {
  Reduction reduction = Reduction::mean;

  static constexpr std::string_view name = "NLLLoss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  /// `pred` is `rows x cols` log-probabilities, `labels` one class index per
  /// row. `mean` divides by the batch size.
  double compute(const float* pred, const std::int64_t* labels, std::size_t rows, std::size_t cols,
                 float* grad) const {
    detail::check_class_labels(name, labels, rows, cols);
    const double scale = detail::reduction_scale(reduction, rows);
    double acc = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
      acc -= static_cast<double>(pred[r * cols + static_cast<std::size_t>(labels[r])]);
    }
    if (grad != nullptr) {
      const std::size_t n = rows * cols;
      for (std::size_t i = 0; i < n; ++i) grad[i] = 0.0f;
      const float g = static_cast<float>(-scale);
      for (std::size_t r = 0; r < rows; ++r)
        grad[r * cols + static_cast<std::size_t>(labels[r])] = g;
    }
    return acc * scale;
  }
};

}  // namespace ctnn

// torch.nn.CrossEntropyLoss over class indices: log-softmax of the logits
// followed by NLL, with optional label smoothing.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/train/losses/nll.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn {

struct CrossEntropyLoss {
  Reduction reduction = Reduction::mean;
  /// Weight of the uniform distribution mixed into the one-hot target:
  /// target = (1 - ls) * onehot + ls / C.
  float label_smoothing = 0.0f;

  static constexpr std::string_view name = "CrossEntropyLoss";

  /// loss_fn(predictions, targets): the value, and on a training-mode output
  /// the gradient that loss.backward() sends back through the model.
  template <class Predictions, class Targets>
  Loss operator()(const Predictions& predictions, const Targets& targets) const {
    return detail::evaluate_loss(*this, predictions, targets);
  }
  std::string repr() const { return std::string(name) + "()"; }

  /// `pred` is `rows x cols` logits, `labels` one class index per row. `mean`
  /// divides by the batch size. The softmax is built in `grad` itself (or
  /// recomputed on the fly without one), so nothing is allocated.
  double compute(const float* pred, const std::int64_t* labels, std::size_t rows, std::size_t cols,
                 float* grad) const {
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f)) {
      throw ValueError("CrossEntropyLoss: label_smoothing must be in [0, 1], got " +
                       detail::loss_format_value(label_smoothing));
    }
    detail::check_class_labels(name, labels, rows, cols);
    const double scale = detail::reduction_scale(reduction, rows);
    const double ls = label_smoothing;
    const double classes = static_cast<double>(cols);
    // Per-class share of the smoothed target, already scaled by the reduction.
    const float uniform = static_cast<float>(scale * ls / classes);
    const float hit = static_cast<float>(scale * (1.0 - ls));

    double acc = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
      const float* x = pred + r * cols;
      const auto y = static_cast<std::size_t>(labels[r]);
      // Subtracting the row maximum keeps every exp() <= 1, so large logits
      // cannot overflow.
      float m = x[0];
      for (std::size_t c = 1; c < cols; ++c) m = x[c] > m ? x[c] : m;

      double s = 0.0;
      if (grad != nullptr) {
        float* g = grad + r * cols;
        for (std::size_t c = 0; c < cols; ++c) g[c] = std::exp(x[c] - m);
        for (std::size_t c = 0; c < cols; ++c) s += static_cast<double>(g[c]);
      } else {
        for (std::size_t c = 0; c < cols; ++c) s += static_cast<double>(std::exp(x[c] - m));
      }
      const double lse = static_cast<double>(m) + std::log(s);
      double row = lse - static_cast<double>(x[y]);
      if (ls != 0.0) {
        // sum_c (lse - x_c) = C * lse - sum_c x_c
        double xs = 0.0;
        for (std::size_t c = 0; c < cols; ++c) xs += static_cast<double>(x[c]);
        row = (1.0 - ls) * row + ls / classes * (classes * lse - xs);
      }
      acc += row;

      if (grad != nullptr) {
        float* g = grad + r * cols;
        const float inv = static_cast<float>(scale / s);
        for (std::size_t c = 0; c < cols; ++c) g[c] = g[c] * inv - uniform;
        g[y] -= hit;
      }
    }
    return acc * scale;
  }
};

}  // namespace ctnn

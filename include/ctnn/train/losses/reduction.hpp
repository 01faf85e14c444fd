// How a loss folds its per-element (or per-sample) terms into one number, and
// the small pieces every loss kernel shares.
#pragma once

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>

namespace ctnn {

/// PyTorch's `reduction` argument without 'none': a training loss must be a
/// scalar. `mean` divides by the number of elements for elementwise losses and
/// by the batch size for class losses (CrossEntropyLoss, NLLLoss).
enum class Reduction { mean, sum };

namespace detail {

/// Factor applied to the summed loss. An empty batch under `mean` gives 0/0 =
/// NaN, as PyTorch does, instead of an exception in the middle of training.
inline double reduction_scale(Reduction r, std::size_t count) noexcept {
  return r == Reduction::mean ? 1.0 / static_cast<double>(count) : 1.0;
}

/// Shortest text that reads back as the same float, for error messages.
inline std::string loss_format_value(float v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace detail
}  // namespace ctnn

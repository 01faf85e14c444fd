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

/// Σ term(i) over i < n, in double, as eight partial sums (i mod 8) added
/// pairwise at the end: one fixed order on every run and architecture, and
/// eight additions in flight where one chain of n waits on each add's latency
/// (an in-order sum of W1's 256 squared errors took ~180 ns, 4 % of its whole
/// training step). The compiler may put the eight sums in vector lanes; each
/// lane keeps its own order, so the bits do not change.
template <class Term>
double sum_terms(std::size_t n, Term&& term) {
  constexpr std::size_t parts = 8;
  double partial[parts] = {};
  std::size_t i = 0;
  for (; i + parts <= n; i += parts)
    for (std::size_t j = 0; j < parts; ++j) partial[j] += term(i + j);
  for (std::size_t j = 0; i < n; ++i, ++j) partial[j] += term(i);
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

/// Shortest text that reads back as the same float, for error messages.
inline std::string loss_format_value(float v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace detail
}  // namespace ctnn

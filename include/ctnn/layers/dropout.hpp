// Dropout<P>: in training mode each element is zeroed with probability P and
// the survivors are scaled by 1/(1-P) (inverted dropout), with the mask drawn
// from the model's seeded generator; in evaluation mode it is the identity.
// Dropout<> has PyTorch's default p = 0.5; Dropout<std::ratio<1, 10>> has 0.1.
#pragma once

#include <algorithm>
#include <cstddef>
#include <ostream>
#include <ratio>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/detail/python_repr.hpp"

namespace ctnn {

template <class P, std::size_t W>
struct DropoutLayer : LeafDefaults, FixedSpec<DropoutLayer<P, W>> {
  static constexpr double p = detail::ratio_value<P>;
  static_assert(p >= 0.0 && p <= 1.0, "ctnn: Dropout<P> needs 0 <= P <= 1");
  static constexpr std::string_view kind = "Dropout";
  static constexpr std::size_t in_features = W;
  static constexpr std::size_t out_features = W;
  // The mask of the last training-mode forward, already scaled: 0 or 1/(1-p).
  static constexpr std::size_t workspace_floats = W;

  static void forward(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
    if (!c.training || p == 0.0) {
      std::copy_n(x, n * W, y);
      if (c.training) std::fill_n(ws, n * W, 1.0f);
      return;
    }
    const float keep_scale = p >= 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - p));
    const float threshold = static_cast<float>(p);
    for (std::size_t i = 0; i < n * W; ++i) {
      const float mask = c.generator->uniform() < threshold ? 0.0f : keep_scale;
      ws[i] = mask;
      y[i] = x[i] * mask;
    }
  }

  static void backward(const Context&, const float*, const float*, const float* dy, float* dx, std::size_t n,
                       float* ws, float*) {
    if (!dx) return;
    for (std::size_t i = 0; i < n * W; ++i) dx[i] = dy[i] * ws[i];
  }

  static void print(std::ostream& os, int) { os << "Dropout(p=" << detail::python_float(p) << ", inplace=False)"; }
};

template <class P = std::ratio<1, 2>>
struct Dropout {
  static constexpr std::size_t in_features = any_width;
  static constexpr std::size_t out_width(std::size_t in) { return in; }
  template <std::size_t W>
  using bind = DropoutLayer<P, W>;
};

}  // namespace ctnn

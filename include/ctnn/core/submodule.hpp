// A child of a model, run on its own with the model's parameters: the
// tutorial's `model.encoder(x)` is `model.submodule<"encoder">()(x)`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>

#include "ctnn/core/batch.hpp"
#include "ctnn/core/buffer_cache.hpp"
#include "ctnn/core/children.hpp"
#include "ctnn/core/fixed_string.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
template <std::size_t Position, std::size_t ChildCount, class Parent>
struct unknown_child_name_check {
  static_assert(Position < ChildCount, "ctnn: submodule<\"name\">(): this module has no child with that name");
  static constexpr bool ok = true;
};

template <class L>
constexpr std::size_t child_index(std::string_view name) {
  for (std::size_t i = 0; i < L::placements.size(); ++i)
    if (L::placements[i].registered && L::placements[i].label.view() == name) return i;
  return L::placements.size();
}
}  // namespace detail

/// Layer L at its place in a model. Forward only: it runs in the model's mode
/// but keeps nothing for backward.
template <class L>
class SubmoduleView {
 public:
  using layer = L;
  static constexpr std::size_t in_features = L::in_features;
  static constexpr std::size_t out_features = L::out_features;

  SubmoduleView(const Context& c, float* eval_workspace, std::size_t tile_rows)
      : context_(c), eval_workspace_(eval_workspace), tile_rows_(tile_rows) {}

  template <RowsOf<in_features> X>
    requires(!L::multi_output)
  Batch<out_features> operator()(const X& x) const {
    const std::size_t n = x.rows();
    Batch<out_features> y(n);
    if (n == 0) return y;
    if (!context_.training) {
      for (std::size_t r = 0; r < n; r += tile_rows_) {
        const std::size_t t = std::min(tile_rows_, n - r);
        L::forward(context_, x.data() + r * in_features, y.data() + r * out_features, t, eval_workspace_);
      }
    } else {  // batch statistics need the whole batch at once
      std::unique_ptr<float[], void (*)(float*)> ws(
          L::workspace_floats ? detail::aligned_floats(n * L::workspace_floats) : nullptr,
          [](float* p) { detail::free_aligned_floats(p); });
      L::forward(context_, x.data(), y.data(), n, ws.get());
    }
    return y;
  }

  /// A child of this submodule, by name.
  template <fixed_string Name>
  auto submodule() const {
    constexpr std::size_t i = detail::child_index<L>(Name.view());
    static_assert(detail::unknown_child_name_check<i, L::placements.size(), L>::ok);
    const ChildPlacement& p = L::placements[i];
    return SubmoduleView<type_at<i, typename L::children>>(
        context_.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset), eval_workspace_,
        tile_rows_);
  }

  const Context& context() const { return context_; }

 private:
  Context context_;
  float* eval_workspace_;
  std::size_t tile_rows_;
};

}  // namespace ctnn

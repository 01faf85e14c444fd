// The output of a network that ends in Heads<...>: one batch per head, each
// reachable by its compile-time name, `out.get<"classify">()`. The heads'
// outputs are stored as consecutive blocks of rows × width.
#pragma once

#include <cstddef>
#include <string>

#include "ctnn/core/batch.hpp"
#include "ctnn/core/fixed_string.hpp"

namespace ctnn {

namespace detail {
template <std::size_t Position, std::size_t HeadCount>
struct unknown_head_name_check {
  static_assert(Position < HeadCount, "ctnn: get<\"name\">(): the network has no head with that name");
  static constexpr bool ok = true;
};
}  // namespace detail

template <class HeadsLayer>
class NamedOutputs {
 public:
  static constexpr std::size_t row_size = HeadsLayer::out_features;
  static constexpr std::size_t num_heads = HeadsLayer::K;

  NamedOutputs() = default;
  explicit NamedOutputs(std::size_t rows) : storage_(rows) {}

  std::size_t rows() const { return storage_.rows(); }
  float* data() { return storage_.data(); }
  const float* data() const { return storage_.data(); }

  template <fixed_string Name>
  static constexpr std::size_t index_of() {
    constexpr std::size_t i = HeadsLayer::index_of(Name.view());
    static_assert(detail::unknown_head_name_check<i, num_heads>::ok);
    return i;
  }

  /// The output of the head called Name.
  template <fixed_string Name>
  auto get() {
    constexpr std::size_t i = index_of<Name>();
    constexpr std::size_t w = HeadsLayer::head_widths[i];
    detail::GradLink link = storage_.grad_link();
    link.head = static_cast<std::uint32_t>(i);
    return BatchView<w>(storage_.data() + rows() * HeadsLayer::head_offsets[i], rows(), link);
  }
  template <fixed_string Name>
  auto get() const {
    return const_cast<NamedOutputs*>(this)->template get<Name>();
  }

  const detail::GradLink& grad_link() const { return storage_.grad_link(); }
  void set_grad_link(const detail::GradLink& link) { storage_.set_grad_link(link); }

 private:
  Tensor<row_size> storage_;
};

template <fixed_string Name, class H>
auto get(NamedOutputs<H>& outputs) {
  return outputs.template get<Name>();
}

}  // namespace ctnn

// What an optimizer sees of a model: one flat parameter buffer, a gradient
// buffer of the same layout, and where each parameter tensor lies in them.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

namespace ctnn {

/// One parameter tensor inside the flat buffer. A frozen tensor
/// (requires_grad == false) is skipped entirely by optimizers: no update, no
/// weight decay, no state change, as PyTorch skips parameters whose grad is None.
struct ParamRange {
  std::size_t offset = 0, size = 0;
  bool requires_grad = true;
};

/// Non-owning. `tensors` may be empty, in which case the whole buffer is one
/// trainable tensor. Optimizers keep the view, so the buffers (and the storage
/// behind `tensors`) must outlive them and stay where they are; freezing a
/// tensor by flipping its requires_grad later is seen by the next step().
struct ParameterView {
  float* params = nullptr;
  float* grads = nullptr;
  std::size_t size = 0;
  std::span<const ParamRange> tensors;
};

template <class M>
concept HasParameterView = requires(M& m) {
  { m.parameter_view() } -> std::convertible_to<ParameterView>;
};

}  // namespace ctnn

// What a layer's forward and backward see of the model at run time: pointers
// into the flat storage, already moved to the layer's own slice, and the mode.
// Every offset is a compile-time constant of the architecture, so moving a
// Context to a child is a handful of pointer additions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctnn/core/rng.hpp"
#include "ctnn/core/thread_pool.hpp"
#include "ctnn/kernels/arch.hpp"

namespace ctnn {

struct Context {
  float* params = nullptr;            // this layer's parameters
  float* grads = nullptr;             // same layout as params; accumulated into (+=)
  float* buffers = nullptr;           // non-trainable float state
  std::int64_t* counters = nullptr;   // non-trainable integer state
  const bool* requires_grad = nullptr;  // one flag per parameter tensor of this layer
  Generator* generator = nullptr;     // dropout masks
  bool training = false;
  kernels::Arch arch = kernels::Arch::automatic;  // the instruction set the model chose (kernels/arch.hpp)
  ThreadPool* pool = nullptr;         // threads for large products, if the model was given some

  /// The same context moved to a child whose storage starts at the given offsets
  /// (in floats, floats, counters, and parameter tensors).
  constexpr Context child(std::size_t param_offset, std::size_t buffer_offset,
                          std::size_t counter_offset, std::size_t tensor_offset) const {
    Context c = *this;
    c.params += param_offset;
    c.grads += param_offset;
    c.buffers += buffer_offset;
    c.counters += counter_offset;
    c.requires_grad += tensor_offset;
    return c;
  }

  /// True if any of `count` parameter tensors starting at `first` is trainable.
  constexpr bool any_trainable(std::size_t first, std::size_t count) const {
    for (std::size_t i = 0; i < count; ++i)
      if (requires_grad[first + i]) return true;
    return false;
  }
};

}  // namespace ctnn

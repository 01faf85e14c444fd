// A parameter tensor as init functions see it: its values, its shape (for fan
// in and fan out) and the generator of the model it belongs to, so that
// `init::xavier_uniform_(m.weight())` draws from the model's seeded stream.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "ctnn/core/rng.hpp"
#include "ctnn/core/tensor_spec.hpp"

namespace ctnn {

struct TensorRef {
  std::span<float> values;
  std::array<std::size_t, max_rank> dims{};
  std::size_t rank = 0;
  Generator* generator = nullptr;

  std::size_t size() const { return values.size(); }
  float* data() const { return values.data(); }
  std::span<const std::size_t> shape() const { return {dims.data(), rank}; }
  explicit operator bool() const { return values.data() != nullptr; }
};

}  // namespace ctnn

// ctnn::init: PyTorch's torch.nn.init, on TensorRefs (a module's m.weight(), or
// model.parameter("fc1.weight")). Draws come from the tensor's model generator,
// so a model seeded with seed(s) initialises the same way every run; pass a
// Generator explicitly to use another stream. Formulas follow PyTorch 1.13.
//
//   model.apply([](auto m) {                 // the tutorial's init_weights
//     if constexpr (ctnn::is_linear<typename decltype(m)::layer>) {
//       ctnn::init::xavier_uniform_(m.weight());
//       ctnn::init::zeros_(m.bias());
//     }
//   });
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "ctnn/core/errors.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/core/tensor_ref.hpp"

namespace ctnn::init {

enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu, selu };
enum class FanMode { fan_in, fan_out };

/// torch.nn.init.calculate_gain. `param` is leaky_relu's negative slope.
inline double calculate_gain(Nonlinearity n, double param = 0.01) {
  switch (n) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  return 1.0;
}

struct Fans {
  std::size_t fan_in, fan_out;
};

/// PyTorch's _calculate_fan_in_and_fan_out: dims[1]·receptive and dims[0]·receptive.
inline Fans fans(const TensorRef& t) {
  if (t.rank < 2)
    throw ValueError("ctnn::init: fan in and fan out need a tensor of at least 2 dimensions, got " +
                     std::to_string(t.rank) + " (a bias?)");
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < t.rank; ++i) receptive *= t.dims[i];
  return {t.dims[1] * receptive, t.dims[0] * receptive};
}

namespace detail {
inline Generator& generator_of(const TensorRef& t, Generator* g) {
  if (g) return *g;
  if (t.generator) return *t.generator;
  throw ValueError("ctnn::init: this tensor has no model generator; pass a ctnn::Generator");
}
}  // namespace detail

inline void constant_(const TensorRef& t, float value) {
  for (float& v : t.values) v = value;
}
inline void zeros_(const TensorRef& t) { constant_(t, 0.0f); }
inline void ones_(const TensorRef& t) { constant_(t, 1.0f); }

inline void uniform_(const TensorRef& t, float low = 0.0f, float high = 1.0f, Generator* g = nullptr) {
  Generator& gen = detail::generator_of(t, g);
  for (float& v : t.values) v = gen.uniform(low, high);
}

inline void normal_(const TensorRef& t, float mean = 0.0f, float std = 1.0f, Generator* g = nullptr) {
  Generator& gen = detail::generator_of(t, g);
  for (float& v : t.values) v = static_cast<float>(mean + std * gen.normal());
}

inline void xavier_uniform_(const TensorRef& t, double gain = 1.0, Generator* g = nullptr) {
  const Fans f = fans(t);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  const float bound = static_cast<float>(std::sqrt(3.0) * std);
  uniform_(t, -bound, bound, g);
}

inline void xavier_normal_(const TensorRef& t, double gain = 1.0, Generator* g = nullptr) {
  const Fans f = fans(t);
  normal_(t, 0.0f, static_cast<float>(gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out))), g);
}

/// `a` is the negative slope of the rectifier after this layer (leaky_relu only).
inline void kaiming_uniform_(const TensorRef& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                             Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* g = nullptr) {
  const Fans f = fans(t);
  const double fan = static_cast<double>(mode == FanMode::fan_in ? f.fan_in : f.fan_out);
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(fan);
  const float bound = static_cast<float>(std::sqrt(3.0) * std);
  uniform_(t, -bound, bound, g);
}

inline void kaiming_normal_(const TensorRef& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                            Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* g = nullptr) {
  const Fans f = fans(t);
  const double fan = static_cast<double>(mode == FanMode::fan_in ? f.fan_in : f.fan_out);
  normal_(t, 0.0f, static_cast<float>(calculate_gain(nonlinearity, a) / std::sqrt(fan)), g);
}

}  // namespace ctnn::init

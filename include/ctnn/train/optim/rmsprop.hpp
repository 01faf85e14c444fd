// RMSprop with L2 weight decay, momentum and centering, following
// torch.optim.RMSprop of PyTorch 1.13 (eps outside the square root, no bias
// correction).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/kernels/optimizer.hpp"
#include "ctnn/train/optim/parameter_view.hpp"
#include "ctnn/train/optim/state.hpp"

namespace ctnn::optim {

// Outside the class: a nested struct with default member initialisers cannot
// be the `= {}` default argument of its enclosing class's constructors.
struct RMSpropOptions {
  float lr = 1e-2f;
  float alpha = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;
  bool centered = false;
};


/// State: "step", "tensor_steps" (steps each tensor took), "square_avg", with
/// momentum "momentum_buffer", and when centered "grad_avg". Every buffer is
/// allocated up front, so that changing options later does not allocate inside
/// step().
class RMSprop {
 public:
  using Options = RMSpropOptions;
  static constexpr std::string_view name = "RMSprop";

  template <HasParameterView M>
  explicit RMSprop(M& model, Options options = {})
      : RMSprop(static_cast<ParameterView>(model.parameter_view()), options) {}

  explicit RMSprop(ParameterView view, Options options = {})
      : params_(view, name),
        options_(validated(options)),
        square_avg_(view.size, 0.0f),
        grad_avg_(view.size, 0.0f),
        momentum_buffer_(view.size, 0.0f) {}

  void step() noexcept {
    const Options& o = options_;
    const ParameterView& v = params_.view();
    const auto ranges = params_.ranges();
    const float one_minus_alpha = static_cast<float>(1.0 - static_cast<double>(o.alpha));
    const kernels::Arch arch = kernels::default_arch();
    for (std::size_t k = 0; k < ranges.size(); ++k) {
      const ParamRange& r = ranges[k];
      if (!r.requires_grad) continue;
      ++params_.tensor_steps[k];
      const std::size_t off = r.offset;
      detail::with_flag(o.weight_decay != 0.0f, [&](auto dc) {
        detail::with_flag(o.centered, [&](auto cc) {
          detail::with_flag(o.momentum > 0.0f, [&](auto mc) {
            kernels::rmsprop_update<decltype(dc)::value, decltype(cc)::value, decltype(mc)::value>(
                arch, v.params + off, v.grads + off, square_avg_.data() + off, grad_avg_.data() + off,
                momentum_buffer_.data() + off, r.size, o.lr, o.alpha, one_minus_alpha, o.eps,
                o.weight_decay, o.momentum);
          });
        });
      });
    }
    ++params_.steps;
  }

  /// Sets every gradient of the view to 0; optimizer state is kept.
  void zero_grad() noexcept { params_.zero_grad(); }

  const Options& options() const noexcept { return options_; }
  /// Mutable so that schedulers can change lr between steps; not re-validated.
  Options& options() noexcept { return options_; }
  std::int64_t steps() const noexcept { return params_.steps; }

  std::vector<NamedState> state_dict() const {
    std::vector<NamedState> out;
    detail::save_counters(params_, true, out);
    out.push_back({"square_avg", square_avg_});
    if (options_.momentum > 0.0f) out.push_back({"momentum_buffer", momentum_buffer_});
    if (options_.centered) out.push_back({"grad_avg", grad_avg_});
    return out;
  }

  /// Expects exactly the entries state_dict() gives under the current
  /// options; "tensor_steps" may be left out. Throws LoadError and changes
  /// nothing on any mismatch.
  void load_state_dict(std::span<const NamedState> state) {
    const bool mom = options_.momentum > 0.0f;
    const bool cen = options_.centered;
    const detail::BufferSlot sq{"square_avg", &square_avg_};
    const detail::BufferSlot mb{"momentum_buffer", &momentum_buffer_};
    const detail::BufferSlot ga{"grad_avg", &grad_avg_};
    if (mom && cen) {
      detail::load_state(name, params_, state, true, {sq, mb, ga});
    } else if (mom) {
      detail::load_state(name, params_, state, true, {sq, mb});
    } else if (cen) {
      detail::load_state(name, params_, state, true, {sq, ga});
    } else {
      detail::load_state(name, params_, state, true, {sq});
    }
  }

  /// "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False)"
  std::string repr() const {
    using detail::python_float_repr;
    const Options& o = options_;
    return "RMSprop(lr=" + python_float_repr(o.lr) + ", alpha=" + python_float_repr(o.alpha) +
           ", eps=" + python_float_repr(o.eps) +
           ", weight_decay=" + python_float_repr(o.weight_decay) +
           ", momentum=" + python_float_repr(o.momentum) +
           ", centered=" + detail::python_bool_repr(o.centered) + ")";
  }

 private:
  static Options validated(const Options& o) {
    detail::require_at_least(name, "learning rate", o.lr, 0.0f);
    detail::require_at_least(name, "epsilon value", o.eps, 0.0f);
    detail::require_at_least(name, "momentum value", o.momentum, 0.0f);
    detail::require_at_least(name, "weight_decay value", o.weight_decay, 0.0f);
    detail::require_at_least(name, "alpha value", o.alpha, 0.0f);
    return o;
  }

  detail::ParamSet params_;
  Options options_;
  std::vector<float> square_avg_, grad_avg_, momentum_buffer_;
};

}  // namespace ctnn::optim

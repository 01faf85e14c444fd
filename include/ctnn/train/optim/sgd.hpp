// Stochastic gradient descent with momentum, dampening, Nesterov momentum and
// L2 weight decay, following torch.optim.SGD of PyTorch 1.13.
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
struct SGDOptions {
  float lr = 1e-3f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
};


/// State: "step"; with momentum also "momentum_buffer" and "tensor_steps", the
/// number of momentum updates of each tensor (0 where PyTorch's buffer is
/// still None, so the next step starts it without dampening).
class SGD {
 public:
  using Options = SGDOptions;
  static constexpr std::string_view name = "SGD";

  template <HasParameterView M>
  explicit SGD(M& model, Options options = {})
      : SGD(static_cast<ParameterView>(model.parameter_view()), options) {}

  explicit SGD(ParameterView view, Options options = {})
      : params_(view, name), options_(validated(options)), momentum_buffer_(view.size, 0.0f) {}

  void step() noexcept {
    const Options& o = options_;
    const ParameterView& v = params_.view();
    const auto ranges = params_.ranges();
    const bool momentum = o.momentum != 0.0f;
    const float one_minus_dampening = static_cast<float>(1.0 - static_cast<double>(o.dampening));
    const kernels::Arch arch = kernels::default_arch();
    for (std::size_t k = 0; k < ranges.size(); ++k) {
      const ParamRange& r = ranges[k];
      if (!r.requires_grad) continue;
      const bool first = momentum && params_.tensor_steps[k] == 0;
      if (momentum) ++params_.tensor_steps[k];
      float* p = v.params + r.offset;
      const float* g = v.grads + r.offset;
      float* buf = momentum_buffer_.data() + r.offset;
      detail::with_flag(o.weight_decay != 0.0f, [&](auto decay) {
        detail::with_flag(momentum, [&](auto mom) {
          detail::with_flag(first, [&](auto fst) {
            detail::with_flag(o.nesterov, [&](auto nest) {
              kernels::sgd_update<decltype(decay)::value, decltype(mom)::value, decltype(fst)::value,
                                  decltype(nest)::value>(arch, p, g, buf, r.size, o.lr, o.weight_decay,
                                                         o.momentum, one_minus_dampening);
            });
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
    const bool momentum = options_.momentum != 0.0f;
    detail::save_counters(params_, momentum, out);
    if (momentum) out.push_back({"momentum_buffer", momentum_buffer_});
    return out;
  }

  /// Expects exactly the entries state_dict() gives under the current
  /// options; "tensor_steps" may be left out. Throws LoadError and changes
  /// nothing on any mismatch.
  void load_state_dict(std::span<const NamedState> state) {
    if (options_.momentum != 0.0f) {
      detail::load_state(name, params_, state, true, {{"momentum_buffer", &momentum_buffer_}});
    } else {
      detail::load_state(name, params_, state, false, {});
    }
  }

  /// The constructor call, as in the conformance metadata:
  /// "SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)".
  std::string repr() const {
    using detail::python_float_repr;
    return "SGD(lr=" + python_float_repr(options_.lr) +
           ", momentum=" + python_float_repr(options_.momentum) +
           ", dampening=" + python_float_repr(options_.dampening) +
           ", weight_decay=" + python_float_repr(options_.weight_decay) +
           ", nesterov=" + detail::python_bool_repr(options_.nesterov) + ")";
  }

 private:
  static Options validated(const Options& o) {
    detail::require_at_least(name, "learning rate", o.lr, 0.0f);
    detail::require_at_least(name, "momentum value", o.momentum, 0.0f);
    detail::require_at_least(name, "weight_decay value", o.weight_decay, 0.0f);
    if (std::isnan(o.dampening)) throw ValueError("SGD: invalid dampening value: nan");
    if (o.nesterov && (o.momentum <= 0.0f || o.dampening != 0.0f)) {
      throw ValueError(
          "SGD: Nesterov momentum requires a momentum and zero dampening (got momentum=" +
          detail::python_float_repr(o.momentum) +
          ", dampening=" + detail::python_float_repr(o.dampening) + ")");
    }
    return o;
  }

  detail::ParamSet params_;
  Options options_;
  std::vector<float> momentum_buffer_;
};

}  // namespace ctnn::optim

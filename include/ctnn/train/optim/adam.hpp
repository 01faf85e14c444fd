// Adam with L2 weight decay (added to the gradient) and AMSGrad, following
// torch.optim.Adam of PyTorch 1.13 (single-tensor float32 path).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/kernels/optimizer.hpp"
#include "ctnn/train/optim/parameter_view.hpp"
#include "ctnn/train/optim/state.hpp"

namespace ctnn::optim {

// Outside the class: a nested struct with default member initialisers cannot
// be the `= {}` default argument of its enclosing class's constructors.
struct AdamOptions {
  float lr = 1e-3f;
  std::pair<float, float> betas = {0.9f, 0.999f};
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool amsgrad = false;
};

namespace detail {

/// Per-step scalars, computed once per tensor (they depend on its step count).
using AdamScalars = kernels::AdamScalars;

inline void validate_adam(std::string_view owner, float lr, std::pair<float, float> betas,
                          float eps, float weight_decay) {
  require_at_least(owner, "learning rate", lr, 0.0f);
  require_at_least(owner, "epsilon value", eps, 0.0f);
  if (!(betas.first >= 0.0f && betas.first < 1.0f)) {
    throw ValueError(std::string(owner) + ": invalid beta parameter at index 0: " +
                     python_float_repr(betas.first) + " (must be in [0, 1))");
  }
  if (!(betas.second >= 0.0f && betas.second < 1.0f)) {
    throw ValueError(std::string(owner) + ": invalid beta parameter at index 1: " +
                     python_float_repr(betas.second) + " (must be in [0, 1))");
  }
  require_at_least(owner, "weight_decay value", weight_decay, 0.0f);
}

/// State and step shared by Adam and AdamW, which differ only in where the
/// weight decay goes. State: "step", "tensor_steps" (each tensor's own t, used
/// in its bias corrections), "exp_avg", "exp_avg_sq", and with AMSGrad
/// "max_exp_avg_sq". Every buffer is allocated up front, so that switching
/// amsgrad on later does not allocate inside step().
class AdamCore {
 public:
  AdamCore(ParameterView view, std::string_view owner)
      : params(view, owner),
        exp_avg(view.size, 0.0f),
        exp_avg_sq(view.size, 0.0f),
        max_exp_avg_sq(view.size, 0.0f) {}

  void step(float lr, std::pair<float, float> betas, float eps, float weight_decay, bool amsgrad,
            bool decoupled) noexcept {
    const ParameterView& v = params.view();
    const auto ranges = params.ranges();
    const double b1 = betas.first, b2 = betas.second;
    AdamScalars s{};
    s.beta1 = betas.first;
    s.beta2 = betas.second;
    s.one_minus_beta1 = static_cast<float>(1.0 - b1);
    s.one_minus_beta2 = static_cast<float>(1.0 - b2);
    s.eps = eps;
    s.weight_decay = weight_decay;
    s.decay_factor = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
    const bool l2 = !decoupled && weight_decay != 0.0f;
    const bool decay = decoupled && weight_decay != 0.0f;
    const kernels::Arch arch = kernels::default_arch();
    for (std::size_t k = 0; k < ranges.size(); ++k) {
      const ParamRange& r = ranges[k];
      if (!r.requires_grad) continue;
      const auto t = static_cast<double>(++params.tensor_steps[k]);
      s.step_size = static_cast<float>(lr / (1.0 - std::pow(b1, t)));
      s.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
      const std::size_t o = r.offset;
      with_flag(l2, [&](auto l2c) {
        with_flag(decay, [&](auto dc) {
          with_flag(amsgrad, [&](auto ac) {
            kernels::adam_update<decltype(l2c)::value, decltype(dc)::value, decltype(ac)::value>(
                arch, v.params + o, v.grads + o, exp_avg.data() + o, exp_avg_sq.data() + o,
                max_exp_avg_sq.data() + o, r.size, s);
          });
        });
      });
    }
    ++params.steps;
  }

  std::vector<NamedState> state_dict(bool amsgrad) const {
    std::vector<NamedState> out;
    save_counters(params, true, out);
    out.push_back({"exp_avg", exp_avg});
    out.push_back({"exp_avg_sq", exp_avg_sq});
    if (amsgrad) out.push_back({"max_exp_avg_sq", max_exp_avg_sq});
    return out;
  }

  void load_state_dict(std::string_view owner, std::span<const NamedState> state, bool amsgrad) {
    if (amsgrad) {
      load_state(owner, params, state, true,
                 {{"exp_avg", &exp_avg},
                  {"exp_avg_sq", &exp_avg_sq},
                  {"max_exp_avg_sq", &max_exp_avg_sq}});
    } else {
      load_state(owner, params, state, true, {{"exp_avg", &exp_avg}, {"exp_avg_sq", &exp_avg_sq}});
    }
  }

  std::string repr(std::string_view owner, float lr, std::pair<float, float> betas, float eps,
                   float weight_decay, bool amsgrad) const {
    return std::string(owner) + "(lr=" + python_float_repr(lr) + ", betas=(" +
           python_float_repr(betas.first) + ", " + python_float_repr(betas.second) +
           "), eps=" + python_float_repr(eps) +
           ", weight_decay=" + python_float_repr(weight_decay) +
           ", amsgrad=" + python_bool_repr(amsgrad) + ")";
  }

  ParamSet params;
  std::vector<float> exp_avg, exp_avg_sq, max_exp_avg_sq;
};

}  // namespace detail

class Adam {
 public:
  using Options = AdamOptions;
  static constexpr std::string_view name = "Adam";

  template <HasParameterView M>
  explicit Adam(M& model, Options options = {})
      : Adam(static_cast<ParameterView>(model.parameter_view()), options) {}

  explicit Adam(ParameterView view, Options options = {})
      : core_(view, name), options_(validated(options)) {}

  void step() noexcept {
    const Options& o = options_;
    core_.step(o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad, false);
  }
  /// Sets every gradient of the view to 0; optimizer state is kept.
  void zero_grad() noexcept { core_.params.zero_grad(); }

  const Options& options() const noexcept { return options_; }
  /// Mutable so that schedulers can change lr between steps; not re-validated.
  Options& options() noexcept { return options_; }
  std::int64_t steps() const noexcept { return core_.params.steps; }

  std::vector<NamedState> state_dict() const { return core_.state_dict(options_.amsgrad); }
  /// Expects exactly the entries state_dict() gives under the current
  /// options; "tensor_steps" may be left out. Throws LoadError and changes
  /// nothing on any mismatch.
  void load_state_dict(std::span<const NamedState> state) {
    core_.load_state_dict(name, state, options_.amsgrad);
  }

  /// "Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)"
  std::string repr() const {
    const Options& o = options_;
    return core_.repr(name, o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad);
  }

 private:
  static Options validated(const Options& o) {
    detail::validate_adam(name, o.lr, o.betas, o.eps, o.weight_decay);
    return o;
  }

  detail::AdamCore core_;
  Options options_;
};

}  // namespace ctnn::optim

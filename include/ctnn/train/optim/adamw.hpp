// AdamW: Adam with decoupled weight decay (p *= 1 - lr * weight_decay before
// the Adam update, gradient untouched), following torch.optim.AdamW of
// PyTorch 1.13.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctnn/train/optim/adam.hpp"
#include "ctnn/train/optim/parameter_view.hpp"
#include "ctnn/train/optim/state.hpp"

namespace ctnn::optim {

/// Same fields as AdamOptions; only the weight_decay default differs.
struct AdamWOptions {
  float lr = 1e-3f;
  std::pair<float, float> betas = {0.9f, 0.999f};
  float eps = 1e-8f;
  float weight_decay = 1e-2f;
  bool amsgrad = false;
};

/// State as Adam's: "step", "tensor_steps", "exp_avg", "exp_avg_sq" and, with
/// AMSGrad, "max_exp_avg_sq".
class AdamW {
 public:
  using Options = AdamWOptions;
  static constexpr std::string_view name = "AdamW";

  template <HasParameterView M>
  explicit AdamW(M& model, Options options = {})
      : AdamW(static_cast<ParameterView>(model.parameter_view()), options) {}

  explicit AdamW(ParameterView view, Options options = {})
      : core_(view, name), options_(validated(options)) {}

  void step() noexcept {
    const Options& o = options_;
    core_.step(o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad, true);
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

  /// "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False)"
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

// Optimizers whose step runs on the device: cuda::optim::SGD, Adam, AdamW and
// RMSprop. Same options structs, same validation and messages, same state
// names, same reprs and the same arithmetic as ctnn::optim (the host
// optimizer of the same options is kept as a twin for everything but the
// buffers); the state buffers (momentum, exp_avg, ...) live on the device.
//
//   cuda::optim::SGD opt(gpu, {.lr = 0.1f, .momentum = 0.9f});
//   opt.zero_grad(); loss.backward(); opt.step();
//
// ctnn::optim::SGD on a device model does not compile (cuda/model.hpp says
// which optimizer to use instead): a host optimizer would step host memory.
//
// A step launches one kernel per run of neighbouring trainable tensors that
// share their per-tensor scalars (normally one launch for the whole model).
// state_dict() copies the buffers to the host; load_state_dict() checks
// everything first, as the host optimizers do, then copies them back.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctnn/cuda/kernels/optim.hpp"
#include "ctnn/cuda/model.hpp"
#include "ctnn/train/optim/adam.hpp"
#include "ctnn/train/optim/adamw.hpp"
#include "ctnn/train/optim/rmsprop.hpp"
#include "ctnn/train/optim/sgd.hpp"
#include "ctnn/train/optim/state.hpp"

namespace ctnn::cuda::optim {

using ctnn::optim::NamedState;

namespace detail {

using ctnn::optim::detail::ParamSet;

/// Calls f(first_tensor, offset, count) for each maximal run of neighbouring
/// trainable tensors with equal key(k).
template <class Key, class F>
void for_each_run(const ParamSet& ps, Key&& key, F&& f) {
  const auto r = ps.ranges();
  std::size_t k = 0;
  while (k < r.size()) {
    if (!r[k].requires_grad || r[k].size == 0) {
      ++k;
      continue;
    }
    const std::size_t start = k;
    std::size_t end = r[k].offset + r[k].size;
    ++k;
    while (k < r.size() && r[k].requires_grad && r[k].offset == end && key(k) == key(start)) {
      end += r[k].size;
      ++k;
    }
    f(start, r[start].offset, end - r[start].offset);
  }
}

/// The parameter view as host optimizers' ParamSet sees it: raw device
/// addresses it validates and never dereferences.
template <class Backend>
ParameterView raw_view(const DeviceParameterView<Backend>& v) {
  return ParameterView{v.params.get(), v.grads.get(), v.size, v.tensors};
}

template <class Backend>
using buffer = typename Backend::template buffer<float>;

template <class Backend>
buffer<Backend> zeros(const Backend& b, std::size_t n) {
  buffer<Backend> out(n);
  b.zero(out.get(), n);
  return out;
}

template <class Backend>
std::vector<float> to_vector(const Backend& b, const buffer<Backend>& d, std::size_t n) {
  std::vector<float> out(n);
  b.copy_out(out.data(), device_ptr<const float>(d.get()), n);
  return out;
}

/// Launches K over `count` elements.
template <class K, class Backend, class... Args>
void launch_over(const Backend& b, std::size_t count, Args... args) {
  if (count == 0) return;
  b.template launch<K>(Grid{kernels::blocks_for(count, K::threads)}, args...);
}

}  // namespace detail

// ---- SGD ------------------------------------------------------------------

template <class Backend>
class SGD {
 public:
  using Options = ctnn::optim::SGDOptions;
  static constexpr std::string_view name = "SGD";

  template <LayerSpec Net>
  explicit SGD(basic_model<Net, Backend>& model, Options options = {}) : SGD(model.parameter_view(), options) {}
  explicit SGD(DeviceParameterView<Backend> view, Options options = {})
      : twin_(ParameterView{}, options),
        backend_(*view.backend),
        params_(detail::raw_view(view), name),
        momentum_buffer_(detail::zeros(backend_, view.size)) {}

  void step() {
    const Options& o = twin_.options();
    const ParameterView& v = params_.view();
    const bool momentum = o.momentum != 0.0f;
    const float one_minus_dampening = static_cast<float>(1.0 - static_cast<double>(o.dampening));
    auto first = [&](std::size_t k) { return momentum && params_.tensor_steps[k] == 0; };
    detail::for_each_run(params_, first, [&](std::size_t k, std::size_t off, std::size_t count) {
      ctnn::optim::detail::with_flag(o.weight_decay != 0.0f, [&](auto decay) {
        ctnn::optim::detail::with_flag(momentum, [&](auto mom) {
          ctnn::optim::detail::with_flag(first(k), [&](auto fst) {
            ctnn::optim::detail::with_flag(o.nesterov, [&](auto nest) {
              using K = kernels::SgdStep<decltype(decay)::value, decltype(mom)::value, decltype(fst)::value,
                                         decltype(nest)::value>;
              detail::launch_over<K>(backend_, count, v.params + off, static_cast<const float*>(v.grads + off),
                                     momentum_buffer_.raw() + off, count, o.lr, o.weight_decay, o.momentum,
                                     one_minus_dampening);
            });
          });
        });
      });
    });
    const auto ranges = params_.ranges();
    for (std::size_t k = 0; k < ranges.size(); ++k)
      if (ranges[k].requires_grad && momentum) ++params_.tensor_steps[k];
    ++params_.steps;
  }

  /// Sets every gradient to 0 (on the device); optimizer state is kept.
  void zero_grad() { backend_.zero(device_ptr<float>(params_.view().grads), params_.view().size); }

  const Options& options() const noexcept { return twin_.options(); }
  Options& options() noexcept { return twin_.options(); }
  std::int64_t steps() const noexcept { return params_.steps; }

  std::vector<NamedState> state_dict() const {
    std::vector<NamedState> out;
    const bool momentum = options().momentum != 0.0f;
    ctnn::optim::detail::save_counters(params_, momentum, out);
    if (momentum) out.push_back({"momentum_buffer", detail::to_vector(backend_, momentum_buffer_, size())});
    return out;
  }
  void load_state_dict(std::span<const NamedState> state) {
    std::vector<float> mb(size());
    if (options().momentum != 0.0f) {
      ctnn::optim::detail::load_state(name, params_, state, true, {{"momentum_buffer", &mb}});
      backend_.copy_in(momentum_buffer_.get(), mb.data(), size());
    } else {
      ctnn::optim::detail::load_state(name, params_, state, false, {});
    }
  }
  std::string repr() const { return twin_.repr(); }

 private:
  std::size_t size() const { return params_.view().size; }

  ctnn::optim::SGD twin_;
  Backend backend_;
  ctnn::optim::detail::ParamSet params_;
  detail::buffer<Backend> momentum_buffer_;
};

template <LayerSpec Net, class B>
SGD(basic_model<Net, B>&, ctnn::optim::SGDOptions = {}) -> SGD<B>;
template <class B>
SGD(DeviceParameterView<B>, ctnn::optim::SGDOptions = {}) -> SGD<B>;

// ---- Adam and AdamW ---------------------------------------------------------

namespace detail {

/// State and step shared by Adam and AdamW, as ctnn::optim::detail::AdamCore.
template <class Backend>
class AdamCore {
 public:
  AdamCore(DeviceParameterView<Backend> view, std::string_view owner)
      : backend(*view.backend),
        params(raw_view(view), owner),
        exp_avg(zeros(backend, view.size)),
        exp_avg_sq(zeros(backend, view.size)),
        max_exp_avg_sq(zeros(backend, view.size)) {}

  void step(float lr, std::pair<float, float> betas, float eps, float weight_decay, bool amsgrad, bool decoupled) {
    const ParameterView& v = params.view();
    const double b1 = betas.first, b2 = betas.second;
    kernels::AdamStepScalars s{};
    s.beta1 = betas.first;
    s.beta2 = betas.second;
    s.one_minus_beta1 = static_cast<float>(1.0 - b1);
    s.one_minus_beta2 = static_cast<float>(1.0 - b2);
    s.eps = eps;
    s.weight_decay = weight_decay;
    s.decay_factor = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
    const bool l2 = !decoupled && weight_decay != 0.0f;
    const bool decay = decoupled && weight_decay != 0.0f;
    auto steps_of = [&](std::size_t k) { return params.tensor_steps[k]; };
    for_each_run(params, steps_of, [&](std::size_t k, std::size_t o, std::size_t count) {
      const auto t = static_cast<double>(params.tensor_steps[k] + 1);
      s.step_size = static_cast<float>(lr / (1.0 - std::pow(b1, t)));
      s.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
      ctnn::optim::detail::with_flag(l2, [&](auto l2c) {
        ctnn::optim::detail::with_flag(decay, [&](auto dc) {
          ctnn::optim::detail::with_flag(amsgrad, [&](auto ac) {
            using K = kernels::AdamStep<decltype(l2c)::value, decltype(dc)::value, decltype(ac)::value>;
            launch_over<K>(backend, count, v.params + o, static_cast<const float*>(v.grads + o), exp_avg.raw() + o,
                           exp_avg_sq.raw() + o, max_exp_avg_sq.raw() + o, count, s);
          });
        });
      });
    });
    const auto ranges = params.ranges();
    for (std::size_t k = 0; k < ranges.size(); ++k)
      if (ranges[k].requires_grad) ++params.tensor_steps[k];
    ++params.steps;
  }

  std::vector<NamedState> state_dict(bool amsgrad) const {
    std::vector<NamedState> out;
    ctnn::optim::detail::save_counters(params, true, out);
    const std::size_t n = params.view().size;
    out.push_back({"exp_avg", to_vector(backend, exp_avg, n)});
    out.push_back({"exp_avg_sq", to_vector(backend, exp_avg_sq, n)});
    if (amsgrad) out.push_back({"max_exp_avg_sq", to_vector(backend, max_exp_avg_sq, n)});
    return out;
  }

  void load_state_dict(std::string_view owner, std::span<const NamedState> state, bool amsgrad) {
    const std::size_t n = params.view().size;
    std::vector<float> m(n), v(n), vmax(n);
    if (amsgrad)
      ctnn::optim::detail::load_state(owner, params, state, true,
                                      {{"exp_avg", &m}, {"exp_avg_sq", &v}, {"max_exp_avg_sq", &vmax}});
    else
      ctnn::optim::detail::load_state(owner, params, state, true, {{"exp_avg", &m}, {"exp_avg_sq", &v}});
    backend.copy_in(exp_avg.get(), m.data(), n);
    backend.copy_in(exp_avg_sq.get(), v.data(), n);
    if (amsgrad) backend.copy_in(max_exp_avg_sq.get(), vmax.data(), n);
  }

  void zero_grad() { backend.zero(device_ptr<float>(params.view().grads), params.view().size); }

  Backend backend;
  ParamSet params;
  buffer<Backend> exp_avg, exp_avg_sq, max_exp_avg_sq;
};

}  // namespace detail

template <class Backend>
class Adam {
 public:
  using Options = ctnn::optim::AdamOptions;
  static constexpr std::string_view name = "Adam";

  template <LayerSpec Net>
  explicit Adam(basic_model<Net, Backend>& model, Options options = {}) : Adam(model.parameter_view(), options) {}
  explicit Adam(DeviceParameterView<Backend> view, Options options = {})
      : twin_(ParameterView{}, options), core_(view, name) {}

  void step() {
    const Options& o = twin_.options();
    core_.step(o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad, false);
  }
  void zero_grad() { core_.zero_grad(); }
  const Options& options() const noexcept { return twin_.options(); }
  Options& options() noexcept { return twin_.options(); }
  std::int64_t steps() const noexcept { return core_.params.steps; }
  std::vector<NamedState> state_dict() const { return core_.state_dict(options().amsgrad); }
  void load_state_dict(std::span<const NamedState> state) { core_.load_state_dict(name, state, options().amsgrad); }
  std::string repr() const { return twin_.repr(); }

 private:
  ctnn::optim::Adam twin_;
  detail::AdamCore<Backend> core_;
};

template <LayerSpec Net, class B>
Adam(basic_model<Net, B>&, ctnn::optim::AdamOptions = {}) -> Adam<B>;
template <class B>
Adam(DeviceParameterView<B>, ctnn::optim::AdamOptions = {}) -> Adam<B>;

template <class Backend>
class AdamW {
 public:
  using Options = ctnn::optim::AdamWOptions;
  static constexpr std::string_view name = "AdamW";

  template <LayerSpec Net>
  explicit AdamW(basic_model<Net, Backend>& model, Options options = {}) : AdamW(model.parameter_view(), options) {}
  explicit AdamW(DeviceParameterView<Backend> view, Options options = {})
      : twin_(ParameterView{}, options), core_(view, name) {}

  void step() {
    const Options& o = twin_.options();
    core_.step(o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad, true);
  }
  void zero_grad() { core_.zero_grad(); }
  const Options& options() const noexcept { return twin_.options(); }
  Options& options() noexcept { return twin_.options(); }
  std::int64_t steps() const noexcept { return core_.params.steps; }
  std::vector<NamedState> state_dict() const { return core_.state_dict(options().amsgrad); }
  void load_state_dict(std::span<const NamedState> state) { core_.load_state_dict(name, state, options().amsgrad); }
  std::string repr() const { return twin_.repr(); }

 private:
  ctnn::optim::AdamW twin_;
  detail::AdamCore<Backend> core_;
};

template <LayerSpec Net, class B>
AdamW(basic_model<Net, B>&, ctnn::optim::AdamWOptions = {}) -> AdamW<B>;
template <class B>
AdamW(DeviceParameterView<B>, ctnn::optim::AdamWOptions = {}) -> AdamW<B>;

// ---- RMSprop ------------------------------------------------------------------

template <class Backend>
class RMSprop {
 public:
  using Options = ctnn::optim::RMSpropOptions;
  static constexpr std::string_view name = "RMSprop";

  template <LayerSpec Net>
  explicit RMSprop(basic_model<Net, Backend>& model, Options options = {})
      : RMSprop(model.parameter_view(), options) {}
  explicit RMSprop(DeviceParameterView<Backend> view, Options options = {})
      : twin_(ParameterView{}, options),
        backend_(*view.backend),
        params_(detail::raw_view(view), name),
        square_avg_(detail::zeros(backend_, view.size)),
        grad_avg_(detail::zeros(backend_, view.size)),
        momentum_buffer_(detail::zeros(backend_, view.size)) {}

  void step() {
    const Options& o = twin_.options();
    const ParameterView& v = params_.view();
    const float one_minus_alpha = static_cast<float>(1.0 - static_cast<double>(o.alpha));
    auto same = [](std::size_t) { return 0; };
    detail::for_each_run(params_, same, [&](std::size_t, std::size_t off, std::size_t count) {
      ctnn::optim::detail::with_flag(o.weight_decay != 0.0f, [&](auto dc) {
        ctnn::optim::detail::with_flag(o.centered, [&](auto cc) {
          ctnn::optim::detail::with_flag(o.momentum > 0.0f, [&](auto mc) {
            using K = kernels::RmspropStep<decltype(dc)::value, decltype(cc)::value, decltype(mc)::value>;
            const typename K::Scalars s{o.lr, o.alpha, one_minus_alpha, o.eps, o.weight_decay, o.momentum};
            detail::launch_over<K>(backend_, count, v.params + off, static_cast<const float*>(v.grads + off),
                                   square_avg_.raw() + off, grad_avg_.raw() + off, momentum_buffer_.raw() + off, count,
                                   s);
          });
        });
      });
    });
    const auto ranges = params_.ranges();
    for (std::size_t k = 0; k < ranges.size(); ++k)
      if (ranges[k].requires_grad) ++params_.tensor_steps[k];
    ++params_.steps;
  }

  void zero_grad() { backend_.zero(device_ptr<float>(params_.view().grads), params_.view().size); }
  const Options& options() const noexcept { return twin_.options(); }
  Options& options() noexcept { return twin_.options(); }
  std::int64_t steps() const noexcept { return params_.steps; }

  std::vector<NamedState> state_dict() const {
    std::vector<NamedState> out;
    ctnn::optim::detail::save_counters(params_, true, out);
    const std::size_t n = params_.view().size;
    out.push_back({"square_avg", detail::to_vector(backend_, square_avg_, n)});
    if (options().momentum > 0.0f) out.push_back({"momentum_buffer", detail::to_vector(backend_, momentum_buffer_, n)});
    if (options().centered) out.push_back({"grad_avg", detail::to_vector(backend_, grad_avg_, n)});
    return out;
  }
  void load_state_dict(std::span<const NamedState> state) {
    const std::size_t n = params_.view().size;
    std::vector<float> sq(n), mb(n), ga(n);
    const bool mom = options().momentum > 0.0f, cen = options().centered;
    const ctnn::optim::detail::BufferSlot s1{"square_avg", &sq}, s2{"momentum_buffer", &mb}, s3{"grad_avg", &ga};
    if (mom && cen) ctnn::optim::detail::load_state(name, params_, state, true, {s1, s2, s3});
    else if (mom) ctnn::optim::detail::load_state(name, params_, state, true, {s1, s2});
    else if (cen) ctnn::optim::detail::load_state(name, params_, state, true, {s1, s3});
    else ctnn::optim::detail::load_state(name, params_, state, true, {s1});
    backend_.copy_in(square_avg_.get(), sq.data(), n);
    if (mom) backend_.copy_in(momentum_buffer_.get(), mb.data(), n);
    if (cen) backend_.copy_in(grad_avg_.get(), ga.data(), n);
  }
  std::string repr() const { return twin_.repr(); }

 private:
  ctnn::optim::RMSprop twin_;
  Backend backend_;
  ctnn::optim::detail::ParamSet params_;
  detail::buffer<Backend> square_avg_, grad_avg_, momentum_buffer_;
};

template <LayerSpec Net, class B>
RMSprop(basic_model<Net, B>&, ctnn::optim::RMSpropOptions = {}) -> RMSprop<B>;
template <class B>
RMSprop(DeviceParameterView<B>, ctnn::optim::RMSpropOptions = {}) -> RMSprop<B>;

}  // namespace ctnn::cuda::optim

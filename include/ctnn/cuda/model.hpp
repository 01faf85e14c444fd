// basic_model<Net, Backend>: the state of a network on a device. The same
// architecture type as the CPU Model, the same flat parameter layout and
// names; its buffers are device memory:
//   * parameters and gradients, one flat buffer each (one copy to or from
//     the CPU model),
//   * the training workspace (input, every hidden output, pre-activations,
//     output gradient, backward scratch), which grows to the largest batch
//     seen and is then reused, so a training step allocates nothing,
//   * the running statistics (BatchNorm1d's running_mean and running_var),
//   * the reduction scratch of bias and weight gradients and of losses.
// requires_grad flags and the train/eval flag stay on the host: they decide
// which kernels are launched; so do the integer counters (num_batches_tracked).
//
// cuda::Model<Net> is basic_model<Net, DeviceBackend> (cuda.hpp, nvcc);
// cuda::emulated::Model<Net> is basic_model<Net, HostEmulation>.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "ctnn/core/errors.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/cuda/network.hpp"
#include "ctnn/cuda/tensor.hpp"
#include "ctnn/train/optim/parameter_view.hpp"

namespace ctnn::cuda {

namespace detail {

/// The graph of a device model's latest training-mode forward: what a device
/// loss needs to reach it. As on the CPU there is no tape: the model keeps
/// what its backward needs in its workspace.
class DeviceGraphOwner {
 public:
  /// Where a loss writes dLoss/dOutput; checks that `link` is the latest
  /// forward's and that the shapes agree.
  float* claim_output_gradient(const DeviceLink& link, std::size_t rows, std::size_t width) {
    check_current(link, "compute a loss");
    if (rows != rows_ || width != width_)
      throw ShapeError("ctnn::cuda: loss on an output of " + std::to_string(rows) + " x " + std::to_string(width) +
                       ", but the model's last forward produced " + std::to_string(rows_) + " x " +
                       std::to_string(width_));
    return dy_;
  }
  /// Runs the backward from the output gradient a loss wrote, scaled by `scale`.
  void backward_from(const DeviceLink& link, float scale) {
    check_current(link, "call backward()");
    graph_alive_ = false;
    run_backward_(this, scale);
  }
  /// Room for one loss evaluation's partial sums and result (device memory).
  double* loss_scratch() { return loss_scratch_(this); }
  /// Losses on this model's output take turns in loss_scratch() and in the
  /// output-gradient slot; each evaluation gets a number, and only the latest
  /// may be read or run backward.
  std::uint64_t next_loss_writer() { return ++loss_writer_; }
  std::uint64_t current_loss_writer() const { return loss_writer_; }
  /// The model's backend object (its type is the one of the batches it makes).
  const void* backend_address() const { return backend_address_; }

 protected:
  void check_current(const DeviceLink& link, const char* action) const {
    if (link.generation != generation_)
      throw ctnn::Error(std::string("ctnn::cuda: cannot ") + action +
                  ": the model has run another forward since this output was computed (a training-mode "
                  "model keeps only its latest forward for backward)");
    if (!graph_alive_)
      throw ctnn::Error(std::string("ctnn::cuda: cannot ") + action +
                  ": backward() already ran for this forward (run the forward again)");
  }
  DeviceLink begin_graph(float* dy, std::size_t rows, std::size_t width) {
    dy_ = dy;
    rows_ = rows;
    width_ = width;
    ++generation_;
    graph_alive_ = true;
    return DeviceLink{this, generation_};
  }
  void end_graph() { graph_alive_ = false; }

  void (*run_backward_)(DeviceGraphOwner*, float) = nullptr;
  double* (*loss_scratch_)(DeviceGraphOwner*) = nullptr;
  const void* backend_address_ = nullptr;
  std::uint64_t loss_writer_ = 0;
  float* dy_ = nullptr;
  std::size_t rows_ = 0, width_ = 0;
  std::uint64_t generation_ = 0;
  bool graph_alive_ = false;
};

}  // namespace detail

/// What device optimizers see of a model: device addresses of the flat
/// parameter and gradient buffers, and each tensor's range (host memory, the
/// model's own flags, so freezing later is seen by the next step).
template <class Backend>
struct DeviceParameterView {
  device_ptr<float> params;
  device_ptr<float> grads;
  std::size_t size = 0;
  std::span<const ParamRange> tensors;
  const Backend* backend = nullptr;

  /// Host optimizers (ctnn::optim::SGD, ...) step host memory: for a device
  /// model this conversion is a compile error that names the device optimizer.
  template <class T = void>
  operator ParameterView() const {
    static_assert(detail::dependent_false<T>,
                  "ctnn::cuda: ctnn::optim optimizers update parameters in host memory, and this model's "
                  "parameters are on the GPU; use ctnn::cuda::optim::SGD / Adam / AdamW / RMSprop (same options), "
                  "whose step() runs on the device");
    return {};
  }
};

/// Floats of loss scratch: partial sums and first-invalid-row of up to 1024
/// blocks, then the result slots.
inline constexpr std::size_t loss_partial_blocks = 1024;
inline constexpr std::size_t loss_scratch_doubles = 2 * loss_partial_blocks + 2;

template <LayerSpec Net, class Backend>
class basic_model : public detail::DeviceGraphOwner {
  static_assert(Net::in_features != any_width,
                "ctnn::cuda: a model needs a network whose input width is known: start it with Linear<In, Out>");

 public:
  using network = Net;
  using backend_type = Backend;
  using layer = bind_t<Net, Net::in_features>;
  using op = detail::device_op<layer>;
  using host_model = ctnn::Model<Net>;

  static constexpr std::size_t in_features = layer::in_features;
  static constexpr std::size_t out_features = layer::out_features;
  static constexpr std::size_t num_params = layer::num_params;
  static constexpr std::size_t num_buffers = layer::num_buffers;
  static constexpr std::size_t num_counters = layer::num_counters;
  /// A network ending in Heads: the output batch holds out_features floats a
  /// row in the layout of the CPU's NamedOutputs (head i's n x width block at
  /// data + n * head_offsets[i]), and backward(dy) takes dy in that layout.
  static constexpr bool multi_output = layer::multi_output;
  static constexpr std::size_t num_param_tensors = layer::params.size();

  using input_type = basic_batch<in_features, Backend>;
  using output_type = std::conditional_t<multi_output, basic_head_blocks<out_features, Backend>,
                                        basic_batch<out_features, Backend>>;

  /// A copy of `host` on the device: parameters, gradients, requires_grad
  /// flags and the train/eval mode.
  explicit basic_model(const host_model& host, const Backend& backend = {})
      : backend_(backend),
        params_(num_params),
        grads_(num_params),
        buffers_(num_buffers),
        loss_scratch_buffer_(loss_scratch_doubles) {
    run_backward_ = [](detail::DeviceGraphOwner* self, float scale) {
      static_cast<basic_model*>(self)->backward_from_output_gradient(scale);
    };
    loss_scratch_ = [](detail::DeviceGraphOwner* self) {
      return static_cast<basic_model*>(self)->loss_scratch_buffer_.raw();
    };
    backend_address_ = &backend_;
    copy_from(host);
  }

  // The graph links point at the model: it stays where it was made.
  basic_model(const basic_model&) = delete;
  basic_model& operator=(const basic_model&) = delete;

  /// Overwrites parameters, gradients, flags and mode with the host model's.
  void copy_from(const host_model& host) {
    backend_.copy_in(params_.get(), host.parameters().data(), num_params);
    backend_.copy_in(grads_.get(), host.gradients().data(), num_params);
    auto& h = const_cast<host_model&>(host);  // named_parameters() is not const; it is only read
    if constexpr (num_buffers > 0) backend_.copy_in(buffers_.get(), h.buffer_values().data(), num_buffers);
    if constexpr (num_counters > 0) std::copy_n(h.counter_values().data(), num_counters, counters_.begin());
    std::size_t i = 0;
    for (auto&& p : h.named_parameters()) {
      requires_grad_[i] = p.requires_grad();
      ranges_[i] = {layer::params[i].offset, layer::params[i].numel(), requires_grad_[i]};
      ++i;
    }
    training_ = host.is_training();
    end_graph();
  }

  /// Writes parameters, gradients, flags and mode into a host model of the
  /// same type (waits for the device).
  void copy_to(host_model& host) const {
    backend_.copy_out(host.parameters().data(), device_ptr<const float>(params_.get()), num_params);
    backend_.copy_out(host.gradients().data(), device_ptr<const float>(grads_.get()), num_params);
    if constexpr (num_buffers > 0)
      backend_.copy_out(host.buffer_values().data(), device_ptr<const float>(buffers_.get()), num_buffers);
    if constexpr (num_counters > 0) std::copy_n(counters_.begin(), num_counters, host.counter_values().data());
    std::size_t i = 0;
    for (auto&& p : host.named_parameters()) p.requires_grad(requires_grad_[i++]);
    host.train(training_);
  }
  host_model to_host() const {
    host_model m;
    copy_to(m);
    return m;
  }

  // ---- parameters --------------------------------------------------------

  device_ptr<float> parameters() { return params_.get(); }
  device_ptr<float> gradients() { return grads_.get(); }
  DeviceParameterView<Backend> parameter_view() {
    return {params_.get(), grads_.get(), num_params, std::span<const ParamRange>(ranges_), &backend_};
  }
  void zero_grad() { backend_.zero(grads_.get(), num_params); }

  /// As Model::set_requires_grad: every parameter whose dotted name starts
  /// with `prefix` (a whole component); throws if none matches.
  std::size_t set_requires_grad(std::string_view prefix, bool on) {
    std::size_t matched = 0;
    for (std::size_t i = 0; i < num_param_tensors; ++i) {
      const std::string_view n = layer::params[i].name.view();
      if (prefix.empty() || n == prefix || (n.starts_with(prefix) && n[prefix.size()] == '.')) {
        requires_grad_[i] = ranges_[i].requires_grad = on;
        ++matched;
      }
    }
    if (matched == 0) throw ValueError("ctnn::cuda: no parameter name starts with '" + std::string(prefix) + "'");
    return matched;
  }
  std::size_t freeze(std::string_view prefix = "") { return set_requires_grad(prefix, false); }
  std::size_t unfreeze(std::string_view prefix = "") { return set_requires_grad(prefix, true); }

  basic_model& train(bool on = true) {
    training_ = on;
    end_graph();
    return *this;
  }
  basic_model& eval() { return train(false); }
  bool is_training() const { return training_; }

  const Backend& backend() const { return backend_; }
  Backend& backend() { return backend_; }

  // ---- forward and backward ------------------------------------------------

  /// Runs a batch on the device. In training mode the output is linked to this
  /// model, so a device loss on it can call backward().
  output_type operator()(const input_type& x) {
    output_type y(output_type::uninitialized, x.rows());
    y.set_link(forward_into(x.data(), y.data(), x.rows()));
    return y;
  }

  /// A host batch given to a device model: a compile error.
  template <class X>
    requires RowsOf<X, in_features>
  output_type operator()(const X&) {
    static_assert(detail::dependent_false<X>,
                  "ctnn::cuda: this model's parameters are on the GPU and the batch is in host memory (PyTorch: "
                  "'Expected all tensors to be on the same device'); copy it first: gpu(cuda::to_device(x))");
    return {};
  }

  /// y[n, out] = net(x[n, in]) between device buffers; returns the training
  /// link (empty in evaluation mode).
  detail::DeviceLink forward_into(device_ptr<const float> x, device_ptr<float> y, std::size_t n) {
    if (n == 0) return {};
    ensure_workspace(n);
    const Areas a = areas(n);
    if (!training_) {
      // Nothing is kept for backward: straight from x to y.
      end_graph();
      op::forward(exec(), context(), x.get(), y.get(), n, a.layer);
      return {};
    }
    // Training keeps its own copies of the input and the output (backward
    // reads them; the caller's batches may change or go first).
    backend_.copy(device_ptr<float>(a.input), x, n * in_features);
    op::forward(exec(), context(), a.input, a.output, n, a.layer);
    backend_.copy(y, device_ptr<const float>(a.output), n * out_features);
    return begin_graph(a.output_grad, n, out_features);
  }

  /// The lower-level backward: dLoss/dOutput of the last training-mode forward
  /// in, dLoss/dInput out; parameter gradients accumulate.
  input_type backward(const basic_batch<out_features, Backend>& dy) {
    check_current(DeviceLink_for_current(), "call backward()");
    if (dy.rows() != rows_)
      throw ShapeError("ctnn::cuda: backward() got a gradient of " + std::to_string(dy.rows()) +
                       " rows, but the last forward had " + std::to_string(rows_));
    const Areas a = areas(rows_);
    backend_.copy(device_ptr<float>(a.output_grad), dy.data(), rows_ * out_features);
    op::backward(exec(), context(), a.input, a.output, a.output_grad, a.input_grad, rows_, a.layer, a.scratch);
    input_type dx(input_type::uninitialized, rows_);
    backend_.copy(dx.data(), device_ptr<const float>(a.input_grad), rows_ * in_features);
    end_graph();
    return dx;
  }

  /// Whether pipelines of Linear layers run their forward as one kernel:
  /// FusedMlp::automatic (the default) when no width exceeds 64, always (up
  /// to 128), or never (one kernel per layer); fused_mlp(true) is always,
  /// fused_mlp(false) never. The results are the same up to rounding.
  basic_model& fused_mlp(FusedMlp mode) {
    fused_mlp_ = mode;
    return *this;
  }
  basic_model& fused_mlp(bool on) { return fused_mlp(on ? FusedMlp::always : FusedMlp::never); }
  FusedMlp fused_mlp() const { return fused_mlp_; }

  /// Dropout's masks on the device: element i of a training-mode forward
  /// draws from a hash of (seed, how many Dropout forwards ran since the seed
  /// was set, i); the same seed gives the same masks again. They are not the
  /// CPU Model's masks (docs/gpu.md). The seed is 0 until set.
  basic_model& dropout_seed(std::uint64_t seed) {
    dropout_seed_ = seed;
    dropout_draws_ = 0;
    return *this;
  }

  /// Rows the workspace holds now.
  std::size_t workspace_rows() const { return workspace_rows_; }

 private:
  detail::DeviceLink DeviceLink_for_current() const { return detail::DeviceLink{nullptr, generation_}; }

  void backward_from_output_gradient(float scale) {
    const Areas a = areas(rows_);
    if (scale != 1.0f)
      exec().template elementwise<kernels::Scale>(rows_ * out_features, a.output_grad, scale, rows_ * out_features);
    op::backward(exec(), context(), a.input, a.output, a.output_grad, nullptr, rows_, a.layer, a.scratch);
  }

  detail::Exec<Backend> exec() const {
    return {backend_, partial_.raw(), fused_mlp_, training_, dropout_seed_, &dropout_draws_};
  }
  detail::DeviceContext context() {
    return {params_.raw(), grads_.raw(), requires_grad_.data(), buffers_.raw(), counters_.data()};
  }

  struct Areas {
    float* input;
    float* output;
    float* layer;
    float* output_grad;
    float* scratch;
    float* input_grad;
  };
  static constexpr std::size_t floats_per_row =
      2 * in_features + 2 * out_features + op::ws_floats + op::scratch_floats;
  Areas areas(std::size_t n) const {
    Areas a{};
    a.input = workspace_.raw();
    a.output = a.input + n * in_features;
    a.layer = a.output + n * out_features;
    a.output_grad = a.layer + n * op::ws_floats;
    a.scratch = a.output_grad + n * out_features;
    a.input_grad = a.scratch + n * op::scratch_floats;
    return a;
  }
  void ensure_workspace(std::size_t n) {
    if (n > workspace_rows_) {
      end_graph();  // the old workspace held the last forward
      workspace_ = typename Backend::template buffer<float>(n * floats_per_row);
      workspace_rows_ = n;
    }
    const std::size_t partial = op::partial_floats(n);
    if (partial > partial_.size()) partial_ = typename Backend::template buffer<float>(partial);
  }

  Backend backend_;
  typename Backend::template buffer<float> params_, grads_;
  typename Backend::template buffer<float> buffers_;  // running statistics (BatchNorm1d)
  std::array<std::int64_t, num_counters> counters_{};  // num_batches_tracked: counted on the host
  typename Backend::template buffer<double> loss_scratch_buffer_;
  typename Backend::template buffer<float> workspace_, partial_;
  std::size_t workspace_rows_ = 0;
  std::array<bool, num_param_tensors> requires_grad_{};
  std::array<ParamRange, num_param_tensors> ranges_{};
  bool training_ = true;
  FusedMlp fused_mlp_ = FusedMlp::automatic;
  std::uint64_t dropout_seed_ = 0;
  mutable std::uint64_t dropout_draws_ = 0;  // training-mode Dropout forwards since the seed was set
};

/// A device copy of a CPU model on `Backend`.
template <class Backend, LayerSpec Net>
basic_model<Net, Backend> to_backend(const Model<Net>& host, const Backend& backend = {}) {
  Backend::require();
  return basic_model<Net, Backend>(host, backend);
}

/// The host copy of a device model (waits for the device).
template <LayerSpec Net, class Backend>
Model<Net> to_host(const basic_model<Net, Backend>& m) {
  return m.to_host();
}

}  // namespace ctnn::cuda

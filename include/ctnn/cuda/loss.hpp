// Losses on the device, with the options and numbers of the host ones
// (train/losses/): cuda::MSELoss and cuda::CrossEntropyLoss.
//
//   auto loss = cuda::MSELoss{}(gpu(x), y);   // y: a device batch
//   opt.zero_grad(); loss.backward(); opt.step();
//   float v = loss.item();                    // waits for the GPU
//
// On a training-mode output the loss writes dLoss/dOutput straight into the
// model's output-gradient slot (device memory), as the host losses do; its
// value stays on the device until item() asks for it. A loss can be scaled
// (0.5f * loss); sums of losses are a host-only feature for now.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ctnn/core/errors.hpp"
#include "ctnn/cuda/kernels/loss.hpp"
#include "ctnn/cuda/model.hpp"
#include "ctnn/cuda/tensor.hpp"
#include "ctnn/train/losses/reduction.hpp"

namespace ctnn::cuda {

template <class Backend>
class basic_loss {
 public:
  /// The loss as PyTorch's loss.item() (waits for the device).
  float item() const { return static_cast<float>(value()); }
  /// The loss in double (waits for the device).
  double value() const {
    const Result r = fetch();
    return r.value * value_scale_;
  }
  bool requires_grad() const { return static_cast<bool>(link_); }

  /// Gradients of every trainable parameter of the model whose output this
  /// loss depends on, accumulated on the device.
  void backward() const {
    if (!link_)
      throw ctnn::Error(
          "ctnn::cuda: backward() on a loss that depends on no training-mode model output; the model was in "
          "eval() mode during the forward (call model.train() first)");
    check_writer();
    if (checks_labels_) (void)fetch();  // an invalid label throws here, before any gradient is used
    link_.owner->backward_from(link_, grad_scale_);
  }

  basic_loss& operator*=(float k) {
    value_scale_ *= k;
    grad_scale_ *= k;
    return *this;
  }
  friend basic_loss operator*(basic_loss a, float k) { return a *= k; }
  friend basic_loss operator*(float k, basic_loss a) { return a *= k; }
  friend basic_loss operator/(basic_loss a, float k) { return a *= 1.0f / k; }

  // Internal: made by the loss functions below.
  struct Parts {
    Backend backend;
    detail::DeviceLink link;
    std::uint64_t writer;
    const double* result;                                          // device: value, first invalid row
    std::shared_ptr<typename Backend::template buffer<double>> own;  // when not in a model's scratch
    bool checks_labels = false;
    std::string loss_name;
    const std::int64_t* labels = nullptr;  // device, for the error message
    std::size_t classes = 0;
  };
  explicit basic_loss(Parts p)
      : backend_(std::move(p.backend)),
        link_(p.link),
        writer_(p.writer),
        result_(p.result),
        own_(std::move(p.own)),
        checks_labels_(p.checks_labels),
        loss_name_(std::move(p.loss_name)),
        labels_(p.labels),
        classes_(p.classes) {}

 private:
  struct Result {
    double value;
    double first_invalid_row;
  };
  void check_writer() const {
    if (link_ && link_.owner->current_loss_writer() != writer_)
      throw ctnn::Error(
          "ctnn::cuda: this loss's value and gradient were replaced by a later loss on the same model output; "
          "call item() and backward() before computing another loss on it");
  }
  Result fetch() const {
    check_writer();
    double r[2];
    backend_.copy_out(r, device_ptr<const double>(result_), 2);
    if (checks_labels_ && r[1] < HUGE_VAL) {
      const auto row = static_cast<std::size_t>(r[1]);
      std::int64_t label = 0;
      backend_.copy_out(&label, device_ptr<const std::int64_t>(labels_ + row), 1);
      throw ValueError(loss_name_ + ": label " + std::to_string(label) + " in row " + std::to_string(row) +
                       " is out of range for " + std::to_string(classes_) + " classes (expected 0 <= label < " +
                       std::to_string(classes_) + ")");
    }
    return {r[0], r[1]};
  }

  Backend backend_;
  detail::DeviceLink link_;
  std::uint64_t writer_;
  const double* result_;
  std::shared_ptr<typename Backend::template buffer<double>> own_;
  bool checks_labels_;
  std::string loss_name_;
  const std::int64_t* labels_;
  std::size_t classes_;
  double value_scale_ = 1.0;
  float grad_scale_ = 1.0f;
};

namespace detail {

/// Where a loss evaluation writes: the gradient slot and scratch of the model
/// that produced `pred` (training mode), or nowhere and a scratch of its own.
template <class Backend>
struct LossTarget {
  float* grad = nullptr;
  double* scratch = nullptr;
  std::uint64_t writer = 0;
  std::shared_ptr<typename Backend::template buffer<double>> own;
};

template <std::size_t F, class Backend>
LossTarget<Backend> loss_target(const basic_batch<F, Backend>& pred, std::size_t rows) {
  LossTarget<Backend> t;
  const DeviceLink link = pred.link();
  if (link) {
    t.grad = link.owner->claim_output_gradient(link, rows, F);
    t.scratch = link.owner->loss_scratch();
    t.writer = link.owner->next_loss_writer();
  } else {
    t.own = std::make_shared<typename Backend::template buffer<double>>(loss_scratch_doubles);
    t.scratch = t.own->raw();
  }
  return t;
}

/// The backend a loss on `pred` runs on: the model's that produced it, so the
/// loss kernels queue behind its forward (same stream).
template <std::size_t F, class Backend>
Backend backend_for(const basic_batch<F, Backend>& pred) {
  if (pred.link()) return *static_cast<const Backend*>(pred.link().owner->backend_address());
  return Backend{};
}

}  // namespace detail

namespace detail {
/// The device losses given the output of a network ending in Heads.
template <class T>
struct loss_on_head_blocks {
  static_assert(dependent_false<T>,
                "ctnn::cuda: this batch holds the outputs of several heads, one block per head (the layout of "
                "NamedOutputs), not rows: compute each head's loss on the host from cuda::to_host(output) and pass "
                "the summed loss's output gradient to model.backward(dy)");
};
}  // namespace detail

/// torch.nn.MSELoss on the device.
struct MSELoss {
  Reduction reduction = Reduction::mean;
  static constexpr std::string_view name = "MSELoss";
  std::string repr() const { return std::string(name) + "()"; }

  template <std::size_t F, class Backend>
  basic_loss<Backend> operator()(const basic_batch<F, Backend>& pred, const basic_batch<F, Backend>& target) const {
    const std::size_t rows = pred.rows();
    if (target.rows() != rows)
      throw ShapeError("ctnn::cuda: MSELoss: predictions have " + std::to_string(rows) + " rows but targets have " +
                       std::to_string(target.rows()));
    const std::size_t n = rows * F;
    const double scale = ctnn::detail::reduction_scale(reduction, n);
    const Backend backend = detail::backend_for(pred);
    detail::LossTarget<Backend> t = detail::loss_target(pred, rows);
    const unsigned blocks = kernels::blocks_for(n, kernels::MseLoss::threads, loss_partial_blocks);
    double* partial = t.scratch;
    double* result = t.scratch + 2 * loss_partial_blocks;
    backend.template launch<kernels::MseLoss>(Grid{blocks}, pred.data().get(), target.data().get(), t.grad, n,
                                              static_cast<float>(2.0 * scale), partial);
    backend.template launch<kernels::FinishLoss>(Grid{1}, static_cast<const double*>(partial),
                                                 static_cast<std::size_t>(blocks), scale, false, result);
    return basic_loss<Backend>({backend, pred.link(), t.writer, result, std::move(t.own), false, {}, nullptr, 0});
  }

  template <std::size_t F, class Backend, class Other>
  auto operator()(const basic_batch<F, Backend>&, const Other&) const {
    static_assert(detail::dependent_false<Other>,
                  "ctnn::cuda: MSELoss on the device needs targets on the same device with as many features "
                  "(cuda::to_device(targets))");
  }
  /// A network ending in Heads: its output is blocks, not rows.
  template <std::size_t F, class Backend, class Other>
  void operator()(const basic_head_blocks<F, Backend>&, const Other&) const {
    (void)sizeof(detail::loss_on_head_blocks<Other>);
  }
};

/// torch.nn.CrossEntropyLoss over class indices, on the device.
struct CrossEntropyLoss {
  Reduction reduction = Reduction::mean;
  float label_smoothing = 0.0f;
  static constexpr std::string_view name = "CrossEntropyLoss";
  std::string repr() const { return std::string(name) + "()"; }

  template <std::size_t C, class Backend>
  basic_loss<Backend> operator()(const basic_batch<C, Backend>& pred, const basic_labels<Backend>& labels) const {
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
      throw ValueError("CrossEntropyLoss: label_smoothing must be in [0, 1], got " +
                       ctnn::detail::loss_format_value(label_smoothing));
    const std::size_t rows = pred.rows();
    if (labels.rows() != rows)
      throw ShapeError("ctnn::cuda: CrossEntropyLoss: predictions have " + std::to_string(rows) +
                       " rows but targets have " + std::to_string(labels.rows()));
    const double scale = ctnn::detail::reduction_scale(reduction, rows);
    const double ls = label_smoothing;
    const float uniform = static_cast<float>(scale * ls / static_cast<double>(C));
    const float hit = static_cast<float>(scale * (1.0 - ls));
    const Backend backend = detail::backend_for(pred);
    detail::LossTarget<Backend> t = detail::loss_target(pred, rows);
    const unsigned blocks = kernels::blocks_for(rows, kernels::CrossEntropyLoss::threads, loss_partial_blocks);
    double* partial = t.scratch;
    double* result = t.scratch + 2 * loss_partial_blocks;
    backend.template launch<kernels::CrossEntropyLoss>(Grid{blocks}, pred.data().get(), labels.data().get(), t.grad,
                                                       rows, C, scale, ls, uniform, hit, partial);
    backend.template launch<kernels::FinishLoss>(Grid{1}, static_cast<const double*>(partial),
                                                 static_cast<std::size_t>(blocks), scale, true, result);
    return basic_loss<Backend>({backend, pred.link(), t.writer, result, std::move(t.own), true,
                                std::string(name), labels.data().get(), C});
  }
  /// A network ending in Heads: its output is blocks, not rows.
  template <std::size_t C, class Backend, class Other>
  void operator()(const basic_head_blocks<C, Backend>&, const Other&) const {
    (void)sizeof(detail::loss_on_head_blocks<Other>);
  }
};

}  // namespace ctnn::cuda

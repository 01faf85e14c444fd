// Data on a device: basic_batch<F, Backend> (rows x F floats) and
// basic_labels<Backend> (class indices). They are not the host types: their
// data() is a device_ptr, so a device batch passed to host code (a CPU Model,
// a host loss) does not compile, and a host batch passed to a device model
// does not compile either; each of these mistakes has its own message.
//
// cuda::Batch<F> and cuda::Labels are these types on the GPU (cuda.hpp);
// cuda::emulated::Batch<F> on the host emulation (cuda/emulated.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "ctnn/core/batch.hpp"
#include "ctnn/core/graph.hpp"
#include "ctnn/cuda/device_ptr.hpp"

namespace ctnn::cuda {

namespace detail {

template <class T>
inline constexpr bool dependent_false = false;

class DeviceGraphOwner;

/// Carried by an output of a training-mode forward on the device.
struct DeviceLink {
  DeviceGraphOwner* owner = nullptr;
  std::uint64_t generation = 0;
  explicit operator bool() const { return owner != nullptr; }
};

/// What a host-side API gets when it asks a device tensor for its gradient
/// link: a compile error that says what to use instead.
struct DeviceTensorInHostCode {
  template <class T = void>
  operator ctnn::detail::GradLink() const {
    static_assert(dependent_false<T>,
                  "ctnn::cuda: a host loss (ctnn::MSELoss, ctnn::CrossEntropyLoss, ...) got tensors that live on "
                  "the GPU; use ctnn::cuda::MSELoss / ctnn::cuda::CrossEntropyLoss, which compute there, or copy "
                  "the tensors back with cuda::to_host");
    return {};
  }
};

}  // namespace detail

template <std::size_t F, class Backend>
class basic_batch {
  static_assert(F > 0, "ctnn::cuda: Batch<F> needs F > 0");

 public:
  using backend_type = Backend;
  static constexpr std::size_t row_size = F;

  basic_batch() = default;
  /// `rows` rows of zeros.
  explicit basic_batch(std::size_t rows, const Backend& backend = {}) : buffer_(rows * F), rows_(rows) {
    backend.zero(buffer_.get(), rows * F);
  }
  basic_batch(basic_batch&&) noexcept = default;
  basic_batch& operator=(basic_batch&&) noexcept = default;
  /// Copies are explicit (clone()): a device copy is not free.
  basic_batch(const basic_batch&) = delete;
  basic_batch& operator=(const basic_batch&) = delete;

  std::size_t rows() const { return rows_; }
  std::size_t size() const { return rows_ * F; }
  device_ptr<float> data() { return buffer_.get(); }
  device_ptr<const float> data() const { return device_ptr<const float>(buffer_.get()); }

  basic_batch clone(const Backend& backend = {}) const {
    basic_batch out(uninitialized, rows_);
    backend.copy(out.data(), data(), size());
    out.link_ = link_;
    return out;
  }

  /// The model whose training-mode forward produced this batch (empty otherwise).
  const detail::DeviceLink& link() const { return link_; }
  void set_link(const detail::DeviceLink& l) { link_ = l; }

  /// For host APIs that look for a gradient link: a compile error.
  detail::DeviceTensorInHostCode grad_link() const { return {}; }

  struct uninitialized_t {};
  static constexpr uninitialized_t uninitialized{};
  /// `rows` rows whose contents are unspecified (device memory as allocated).
  basic_batch(uninitialized_t, std::size_t rows) : buffer_(rows * F), rows_(rows) {}

 private:
  typename Backend::template buffer<float> buffer_;
  std::size_t rows_ = 0;
  detail::DeviceLink link_{};
};

/// The output of a device model whose network ends in Heads: one buffer with
/// head i's rows × width block at data + rows · head_offsets[i], the layout of
/// the CPU's NamedOutputs. A batch in every other respect (data(), rows(),
/// to_host), but its rows are not rows of F features, so the device losses
/// refuse it at compile time (cuda/loss.hpp).
template <std::size_t F, class Backend>
class basic_head_blocks : public basic_batch<F, Backend> {
 public:
  using basic_batch<F, Backend>::basic_batch;
};

template <class Backend>
class basic_labels {
 public:
  using backend_type = Backend;
  basic_labels() = default;
  basic_labels(basic_labels&&) noexcept = default;
  basic_labels& operator=(basic_labels&&) noexcept = default;
  explicit basic_labels(std::size_t rows) : buffer_(rows), rows_(rows) {}

  std::size_t rows() const { return rows_; }
  std::size_t size() const { return rows_; }
  device_ptr<std::int64_t> data() { return buffer_.get(); }
  device_ptr<const std::int64_t> data() const { return device_ptr<const std::int64_t>(buffer_.get()); }

 private:
  typename Backend::template buffer<std::int64_t> buffer_;
  std::size_t rows_ = 0;
};

// ---- copies between host and device data -----------------------------------

template <class Backend, std::size_t... Dims>
basic_batch<Tensor<Dims...>::row_size, Backend> to_backend(const Tensor<Dims...>& host, const Backend& backend = {}) {
  Backend::require();
  using Out = basic_batch<Tensor<Dims...>::row_size, Backend>;
  Out out(Out::uninitialized, host.rows());
  backend.copy_in(out.data(), host.data(), host.size());
  return out;
}

template <class Backend, std::size_t F>
basic_batch<F, Backend> to_backend(const BatchView<F>& host, const Backend& backend = {}) {
  Backend::require();
  using Out = basic_batch<F, Backend>;
  Out out(Out::uninitialized, host.rows());
  backend.copy_in(out.data(), static_cast<const float*>(host.data()), host.size());
  return out;
}

template <class Backend>
basic_labels<Backend> to_backend(const Labels& host, const Backend& backend = {}) {
  Backend::require();
  basic_labels<Backend> out(host.rows());
  backend.copy_in(out.data(), host.data(), host.size());
  return out;
}

/// The batch in host memory (waits for the work that produces it).
template <std::size_t F, class Backend>
Batch<F> to_host(const basic_batch<F, Backend>& x, const Backend& backend = {}) {
  Batch<F> out(x.rows());
  backend.copy_out(out.data(), x.data(), x.size());
  return out;
}

template <class Backend>
Labels to_host(const basic_labels<Backend>& y, const Backend& backend = {}) {
  Labels out(y.rows());
  backend.copy_out(out.data(), y.data(), y.size());
  return out;
}

}  // namespace ctnn::cuda

// Data that flows through a network.
//
//   Tensor<Dims...>   an owning batch of rows, each row of static shape Dims
//                     (row-major, 64-byte aligned); Batch<F> = Tensor<F>.
//   BatchView<F>      a non-owning view of rows × F floats.
//   Vec<F>            one row on the stack: the single-sample path.
//   Labels            class indices (int64), one per row.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <ostream>
#include <span>
#include <utility>
#include <string>
#include <vector>

#include "ctnn/core/buffer_cache.hpp"
#include "ctnn/core/errors.hpp"
#include "ctnn/core/graph.hpp"

namespace ctnn {

template <std::size_t... Dims>
class Tensor {
  static_assert(sizeof...(Dims) >= 1 && ((Dims > 0) && ...), "ctnn: Tensor<Dims...> needs positive dimensions");

 public:
  static constexpr std::size_t row_size = (Dims * ...);
  static constexpr std::array<std::size_t, sizeof...(Dims)> row_shape{Dims...};

  Tensor() = default;

  /// `rows` rows of zeros.
  explicit Tensor(std::size_t rows) { allocate(rows); std::fill_n(data_, size(), 0.0f); }

  /// `rows` rows from row-major values; there must be exactly rows × row_size of them.
  Tensor(std::size_t rows, std::initializer_list<float> values) : Tensor(rows, std::span<const float>(values)) {}
  Tensor(std::size_t rows, std::span<const float> values) {
    if (values.size() != rows * row_size)
      throw ShapeError("ctnn: Tensor of " + std::to_string(rows) + " rows x " + std::to_string(row_size) +
                       " features needs " + std::to_string(rows * row_size) + " values, got " +
                       std::to_string(values.size()));
    allocate(rows);
    std::copy(values.begin(), values.end(), data_);
  }

  Tensor(const Tensor& other) : link_(other.link_) {
    allocate(other.rows_);
    std::copy_n(other.data_, size(), data_);
  }
  Tensor(Tensor&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        rows_(std::exchange(other.rows_, 0)),
        capacity_(std::exchange(other.capacity_, 0)),
        link_(std::exchange(other.link_, {})) {}
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      resize(other.rows_);
      std::copy_n(other.data_, size(), data_);
      link_ = other.link_;
    }
    return *this;
  }
  Tensor& operator=(Tensor&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      rows_ = std::exchange(other.rows_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
      link_ = std::exchange(other.link_, {});
    }
    return *this;
  }
  ~Tensor() { release(); }

  std::size_t rows() const { return rows_; }
  std::size_t size() const { return rows_ * row_size; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  float* begin() { return data_; }
  float* end() { return data_ + size(); }
  const float* begin() const { return data_; }
  const float* end() const { return data_ + size(); }
  std::span<float> values() { return {data_, size()}; }
  std::span<const float> values() const { return {data_, size()}; }
  std::span<float, row_size> row(std::size_t r) { return std::span<float, row_size>(data_ + r * row_size, row_size); }
  std::span<const float, row_size> row(std::size_t r) const {
    return std::span<const float, row_size>(data_ + r * row_size, row_size);
  }

  /// Element (r, c) of a batch of flat rows.
  float& operator()(std::size_t r, std::size_t c) { return data_[r * row_size + c]; }
  float operator()(std::size_t r, std::size_t c) const { return data_[r * row_size + c]; }

  /// Changes the number of rows; keeps the memory when it is large enough. New
  /// contents are unspecified.
  void resize(std::size_t rows) {
    if (rows * row_size > capacity_) {
      release();
      allocate(rows);
    }
    rows_ = rows;
  }

  /// The model that produced this output in training mode (empty otherwise).
  const detail::GradLink& grad_link() const { return link_; }
  void set_grad_link(const detail::GradLink& link) { link_ = link; }

 private:
  void allocate(std::size_t rows) {
    data_ = rows == 0 ? nullptr : detail::BufferCache::local().take(rows * row_size, capacity_);
    rows_ = rows;
  }
  void release() {
    if (data_) detail::BufferCache::local().give_back(data_, capacity_);
    data_ = nullptr;
    rows_ = capacity_ = 0;
  }

  float* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t capacity_ = 0;
  detail::GradLink link_{};
};

template <std::size_t Features>
using Batch = Tensor<Features>;

/// Rows × F floats owned elsewhere (one head of a multi-output model, a slice).
template <std::size_t F>
class BatchView {
 public:
  static constexpr std::size_t row_size = F;
  BatchView(float* data, std::size_t rows, detail::GradLink link = {}) : data_(data), rows_(rows), link_(link) {}
  BatchView(Tensor<F>& t) : data_(t.data()), rows_(t.rows()), link_(t.grad_link()) {}

  std::size_t rows() const { return rows_; }
  std::size_t size() const { return rows_ * F; }
  float* data() const { return data_; }
  float* begin() const { return data_; }
  float* end() const { return data_ + size(); }
  float& operator()(std::size_t r, std::size_t c) const { return data_[r * F + c]; }
  const detail::GradLink& grad_link() const { return link_; }
  /// An owning copy.
  Tensor<F> clone() const { return Tensor<F>(rows_, std::span<const float>(data_, size())); }

 private:
  float* data_;
  std::size_t rows_;
  detail::GradLink link_;
};

/// One row of F features, on the stack: the single-sample path never touches
/// the heap.
template <std::size_t F>
struct Vec {
  static constexpr std::size_t row_size = F;
  alignas(64) std::array<float, F> values{};

  static constexpr std::size_t rows() { return 1; }
  static constexpr std::size_t size() { return F; }
  float* data() { return values.data(); }
  const float* data() const { return values.data(); }
  float& operator[](std::size_t i) { return values[i]; }
  float operator[](std::size_t i) const { return values[i]; }
  detail::GradLink grad_link() const { return {}; }
};

/// Class indices in [0, C), one per row: the targets of CrossEntropyLoss and NLLLoss.
class Labels {
 public:
  Labels() = default;
  explicit Labels(std::size_t rows) : values_(rows, 0) {}
  Labels(std::initializer_list<std::int64_t> values) : values_(values) {}
  std::size_t rows() const { return values_.size(); }
  std::size_t size() const { return values_.size(); }
  std::int64_t* data() { return values_.data(); }
  const std::int64_t* data() const { return values_.data(); }
  std::int64_t& operator[](std::size_t i) { return values_[i]; }
  std::int64_t operator[](std::size_t i) const { return values_[i]; }

 private:
  std::vector<std::int64_t> values_;
};

/// Anything that is rows of F floats: Batch<F>, BatchView<F>, Vec<F>.
template <class T, std::size_t F>
concept RowsOf = T::row_size == F && requires(const T& t) {
  { t.data() } -> std::convertible_to<const float*>;
  { t.rows() } -> std::convertible_to<std::size_t>;
};

template <std::size_t... Dims>
std::ostream& operator<<(std::ostream& os, const Tensor<Dims...>& t) {
  os << "Tensor(" << t.rows();
  ((os << " x " << Dims), ...);
  os << ")[";
  for (std::size_t r = 0; r < t.rows(); ++r) {
    os << (r ? ", [" : "[");
    for (std::size_t c = 0; c < Tensor<Dims...>::row_size; ++c) os << (c ? ", " : "") << t.data()[r * t.row_size + c];
    os << ']';
  }
  return os << ']';
}

}  // namespace ctnn

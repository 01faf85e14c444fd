// device_ptr<T>: the address of memory the host must not touch. It is a
// different type from T*, so device memory cannot be handed to host code (a
// CPU Model, a host loss, std::copy) by mistake: that is a compile error, not
// a crash. Kernels and copies take the raw address with get().
#pragma once

#include <cstddef>
#include <type_traits>

namespace ctnn::cuda {

template <class T>
class device_ptr {
 public:
  using element_type = T;

  constexpr device_ptr() = default;
  constexpr explicit device_ptr(T* p) : p_(p) {}
  template <class U>
    requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>)
  constexpr device_ptr(device_ptr<U> other) : p_(other.get()) {}  // device_ptr<float> -> device_ptr<const float>

  /// The raw device address, for kernels and cudaMemcpy.
  constexpr T* get() const { return p_; }
  constexpr explicit operator bool() const { return p_ != nullptr; }
  constexpr device_ptr operator+(std::size_t i) const { return device_ptr(p_ + i); }
  constexpr friend bool operator==(device_ptr a, device_ptr b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace ctnn::cuda

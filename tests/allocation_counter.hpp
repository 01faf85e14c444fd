// Counting heap allocations, for the tests that promise none: every operator
// new of the program goes through the replacements below. Include it in one
// translation unit per test executable (each test group is its own program).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace ctnn::test {
inline std::atomic<long> allocations{0};

/// How many times fn() called operator new.
template <class Fn>
long count_allocations(Fn&& fn) {
  const long before = allocations.load();
  fn();
  return allocations.load() - before;
}
}  // namespace ctnn::test

[[gnu::noinline]] void* operator new(std::size_t n) {
  ++ctnn::test::allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t n, std::align_val_t a) {
  ++ctnn::test::allocations;
  const std::size_t align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// Aligned float storage for batches, recycled through a small per-thread cache.
// A training loop creates an output batch every step (`auto y = model(x)`); the
// cache hands the previous step's memory back, so a steady-state loop does not
// touch the heap. Per-thread, so it takes no lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ctnn::detail {

inline constexpr std::size_t simd_alignment = 64;

inline float* aligned_floats(std::size_t count) {
  const std::size_t bytes = ((count * sizeof(float) + simd_alignment - 1) / simd_alignment) * simd_alignment;
  void* p = ::operator new(bytes == 0 ? simd_alignment : bytes, std::align_val_t{simd_alignment});
  return static_cast<float*>(p);
}
inline void free_aligned_floats(float* p) {
  if (p) ::operator delete(p, std::align_val_t{simd_alignment});
}

class BufferCache {
 public:
  static constexpr std::size_t slots = 8;

  ~BufferCache() {
    for (auto& e : entries_) free_aligned_floats(e.data);
  }

  /// A buffer of at least `count` floats (its real capacity goes to `capacity`).
  float* take(std::size_t count, std::size_t& capacity) {
    Entry* best = nullptr;
    for (auto& e : entries_)
      if (e.data && e.capacity >= count && (!best || e.capacity < best->capacity)) best = &e;
    // A cached buffer much larger than needed stays for the request it fits.
    if (best && best->capacity <= 4 * count + 64) {
      float* p = best->data;
      capacity = best->capacity;
      *best = {};
      return p;
    }
    capacity = count;
    return aligned_floats(count);
  }

  /// Keeps `p` for a later take(). When every slot is full, the buffer given
  /// back longest ago is freed: what a loop uses now stays cached.
  void give_back(float* p, std::size_t capacity) {
    if (!p) return;
    Entry* slot = nullptr;
    for (auto& e : entries_)
      if (!e.data) { slot = &e; break; }
    if (!slot) {
      slot = &entries_[0];
      for (auto& e : entries_)
        if (e.returned_at < slot->returned_at) slot = &e;
      free_aligned_floats(slot->data);
    }
    *slot = {p, capacity, ++clock_};
  }

  static BufferCache& local() {
    thread_local BufferCache cache;
    return cache;
  }

 private:
  struct Entry {
    float* data = nullptr;
    std::size_t capacity = 0;
    std::uint64_t returned_at = 0;
  };
  std::array<Entry, slots> entries_{};
  std::uint64_t clock_ = 0;
};

}  // namespace ctnn::detail

// The host emulation of the device: a backend with the same interface as the
// CUDA one (cuda/device_backend.hpp) that runs every kernel body on the CPU,
// block after block, over the same grid and block decomposition (see
// cuda/kernels/block.hpp for why this computes exactly what the GPU
// computes). It exists for testing: `cuda::emulated::Model<Net>` is the same
// code as `cuda::Model<Net>` down to the kernel bodies, with only the launch
// and the memory replaced, so machines without a GPU check the arithmetic, the
// indexing and the orchestration of every kernel.
//
// It also checks what a GPU would not report:
//   * shared memory is filled with NaN before every block, so a body that reads
//     a tile element no thread wrote gives NaN in its output;
//   * "device" buffers are filled with NaN when allocated (cudaMalloc gives
//     garbage) and have guard zones on both sides; after every launch the guards
//     are checked, and a kernel that wrote outside a buffer stops the program
//     with the kernel's name;
//   * every shared-tile index is checked (kernels::SharedTile).
// It is not fast and not meant to be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ctnn/cuda/device_ptr.hpp"
#include "ctnn/cuda/kernels/block.hpp"

namespace ctnn::cuda {

/// A launch's grid, in blocks.
struct Grid {
  unsigned x = 1, y = 1, z = 1;
};

namespace detail {

inline constexpr std::size_t guard_bytes = 256;
inline constexpr unsigned char guard_byte = 0xA5;
inline constexpr unsigned char poison_byte = 0xFF;  // every float reads as NaN

struct GuardedRegion {
  unsigned char* base;  // start of the front guard
  std::size_t bytes;    // payload bytes
};

/// Live emulated allocations, checked after every launch.
inline std::vector<GuardedRegion>& live_regions() {
  static std::vector<GuardedRegion> regions;
  return regions;
}

inline bool guards_intact(const GuardedRegion& r) {
  for (std::size_t i = 0; i < guard_bytes; ++i)
    if (r.base[i] != guard_byte || r.base[guard_bytes + r.bytes + i] != guard_byte) return false;
  return true;
}

[[noreturn]] inline void guard_failure(const char* kernel, std::size_t bytes) {
  std::fprintf(stderr,
               "ctnn::cuda emulation: kernel %s wrote outside a device buffer of %zu bytes\n",
               kernel, bytes);
  std::abort();
}

inline void check_guards(const char* kernel) {
  for (const GuardedRegion& r : live_regions())
    if (!guards_intact(r)) guard_failure(kernel, r.bytes);
}

}  // namespace detail

/// "Device" memory of the emulation: host memory behind a device_ptr, so the
/// type rules are those of the GPU.
template <class T>
class EmulatedBuffer {
 public:
  EmulatedBuffer() = default;
  explicit EmulatedBuffer(std::size_t count) : count_(count) {
    if (count == 0) return;
    const std::size_t bytes = count * sizeof(T);
    storage_.reset(new unsigned char[bytes + 2 * detail::guard_bytes + alignof(std::max_align_t)]);
    // Keep the payload aligned as cudaMalloc's is (256 bytes there; max_align_t here).
    auto addr = reinterpret_cast<std::uintptr_t>(storage_.get());
    const std::uintptr_t a = alignof(std::max_align_t);
    unsigned char* base = reinterpret_cast<unsigned char*>((addr + a - 1) / a * a);
    std::memset(base, detail::guard_byte, detail::guard_bytes);
    std::memset(base + detail::guard_bytes, detail::poison_byte, bytes);
    std::memset(base + detail::guard_bytes + bytes, detail::guard_byte, detail::guard_bytes);
    region_ = {base, bytes};
    data_ = reinterpret_cast<T*>(base + detail::guard_bytes);
    detail::live_regions().push_back(region_);
  }
  EmulatedBuffer(EmulatedBuffer&& o) noexcept
      : storage_(std::move(o.storage_)),
        region_(std::exchange(o.region_, {})),
        data_(std::exchange(o.data_, nullptr)),
        count_(std::exchange(o.count_, 0)) {}
  EmulatedBuffer& operator=(EmulatedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      storage_ = std::move(o.storage_);
      region_ = std::exchange(o.region_, {});
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  EmulatedBuffer(const EmulatedBuffer&) = delete;
  EmulatedBuffer& operator=(const EmulatedBuffer&) = delete;
  ~EmulatedBuffer() { release(); }

  device_ptr<T> get() const { return device_ptr<T>(data_); }
  T* raw() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  void release() noexcept {
    if (!data_) return;
    if (!detail::guards_intact(region_)) detail::guard_failure("(found when freeing)", region_.bytes);
    auto& regions = detail::live_regions();
    for (std::size_t i = 0; i < regions.size(); ++i)
      if (regions[i].base == region_.base) {
        regions[i] = regions.back();
        regions.pop_back();
        break;
      }
    storage_.reset();
    data_ = nullptr;
    count_ = 0;
  }

  std::unique_ptr<unsigned char[]> storage_;
  detail::GuardedRegion region_{};
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

/// The backend that runs kernels on the host.
struct HostEmulation {
  template <class T>
  using buffer = EmulatedBuffer<T>;
  static constexpr bool on_device = false;
  static constexpr const char* name = "host emulation";

  /// The emulation is always there.
  static void require() {}

  /// Runs K over the grid: for every block (x fastest, then y, then z), fresh
  /// NaN-filled shared memory, then K::run with a HostBlock.
  template <class K, class... Args>
  void launch(Grid g, Args... args) const {
    using Block = kernels::HostBlock<K::threads>;
    auto shared = std::make_unique<typename K::shared>();
    for (unsigned z = 0; z < g.z; ++z)
      for (unsigned y = 0; y < g.y; ++y)
        for (unsigned x = 0; x < g.x; ++x) {
          std::memset(static_cast<void*>(shared.get()), detail::poison_byte, sizeof(typename K::shared));
          const Block blk{{x, y, z}, {g.x, g.y, g.z}};
          K::run(blk, *shared, args...);
        }
    detail::check_guards(typeid(K).name());
    ++launches;
  }

  template <class T>
  void copy_in(device_ptr<T> dst, const T* src, std::size_t count) const {
    if (count) std::memcpy(dst.get(), src, count * sizeof(T));
  }
  template <class T>
  void copy_out(T* dst, device_ptr<const T> src, std::size_t count) const {
    if (count) std::memcpy(dst, src.get(), count * sizeof(T));
  }
  template <class T>
  void copy(device_ptr<T> dst, device_ptr<const T> src, std::size_t count) const {
    if (count) std::memmove(dst.get(), src.get(), count * sizeof(T));
  }
  template <class T>
  void zero(device_ptr<T> dst, std::size_t count) const {
    if (count) std::memset(static_cast<void*>(dst.get()), 0, count * sizeof(T));
  }
  void synchronize() const {}

  /// Kernels launched so far by this backend object (tests count fusions with it).
  mutable std::size_t launches = 0;
};

}  // namespace ctnn::cuda

// Stream: an owned cudaStream_t. Work queued on one stream runs in order;
// work on different streams may overlap. Stream::null() names the legacy
// default stream, which every ctnn object uses unless given another.
#pragma once

#include <cuda_runtime_api.h>

#include <utility>

#include "ctnn/cuda/error.hpp"

namespace ctnn::cuda {

class Stream {
 public:
  /// A new stream. `blocking = false` gives cudaStreamNonBlocking: it does not
  /// wait for the legacy default stream.
  explicit Stream(bool blocking = true) {
    detail::check(cudaStreamCreateWithFlags(&s_, blocking ? cudaStreamDefault : cudaStreamNonBlocking),
                  "cudaStreamCreateWithFlags");
    owned_ = true;
  }
  /// The legacy default stream (not owned).
  static Stream null() { return Stream(nullptr, false); }

  Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)), owned_(std::exchange(o.owned_, false)) {}
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      release();
      s_ = std::exchange(o.s_, nullptr);
      owned_ = std::exchange(o.owned_, false);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { release(); }

  cudaStream_t native() const { return s_; }
  /// Waits for everything queued so far; reports an earlier launch's error.
  void synchronize() const { detail::check(cudaStreamSynchronize(s_), "cudaStreamSynchronize"); }
  /// True when everything queued has finished.
  bool done() const {
    const cudaError_t e = cudaStreamQuery(s_);
    if (e == cudaErrorNotReady) return false;
    detail::check(e, "cudaStreamQuery");
    return true;
  }

 private:
  Stream(cudaStream_t s, bool owned) : s_(s), owned_(owned) {}
  void release() noexcept {
    if (owned_ && s_) (void)cudaStreamDestroy(s_);
    s_ = nullptr;
    owned_ = false;
  }
  cudaStream_t s_ = nullptr;
  bool owned_ = false;
};

}  // namespace ctnn::cuda

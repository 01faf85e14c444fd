// Event: an owned cudaEvent_t, to order streams and to time work on the GPU:
//   Event start, stop; start.record(s); ...; stop.record(s);
//   float ms = elapsed_ms(start, stop);
#pragma once

#include <cuda_runtime_api.h>

#include <utility>

#include "ctnn/cuda/error.hpp"
#include "ctnn/cuda/stream.hpp"

namespace ctnn::cuda {

class Event {
 public:
  Event() { detail::check(cudaEventCreate(&e_), "cudaEventCreate"); }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      release();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { release(); }

  void record(const Stream& s) { detail::check(cudaEventRecord(e_, s.native()), "cudaEventRecord"); }
  void record(cudaStream_t s = nullptr) { detail::check(cudaEventRecord(e_, s), "cudaEventRecord"); }
  void synchronize() const { detail::check(cudaEventSynchronize(e_), "cudaEventSynchronize"); }
  /// Makes `s` wait for this event before running what is queued after.
  void make_wait(const Stream& s) const {
    detail::check(cudaStreamWaitEvent(s.native(), e_, 0), "cudaStreamWaitEvent");
  }
  cudaEvent_t native() const { return e_; }

 private:
  void release() noexcept {
    if (e_) (void)cudaEventDestroy(e_);
    e_ = nullptr;
  }
  cudaEvent_t e_ = nullptr;
};

/// Milliseconds between two recorded events (waits for `stop`).
inline float elapsed_ms(const Event& start, const Event& stop) {
  stop.synchronize();
  float ms = 0.0f;
  detail::check(cudaEventElapsedTime(&ms, start.native(), stop.native()), "cudaEventElapsedTime");
  return ms;
}

}  // namespace ctnn::cuda

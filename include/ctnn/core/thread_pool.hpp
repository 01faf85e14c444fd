// ThreadPool: a fixed set of worker threads, made once, over which the large
// matrix products of a model split their rows or columns (kernels/detail/body/gemm.hpp).
// Off unless a model is given one (Model::set_thread_pool); the batch-1 paths
// and the kernels of narrow layers never use it.
//
// A job is one call of run(parts, f): f(0) runs on the calling thread and
// f(1) .. f(parts - 1) on the workers, and run returns when all have finished.
// Handing a job over takes no lock (a second caller finding the pool busy
// runs its parts itself) and no allocation: the caller publishes a
// pointer to f and bumps a generation counter; each worker, spinning on that
// counter for up to spin_time after its last job and then sleeping on it
// (std::atomic::wait, a futex on Linux), runs its part if it has one and
// counts down; the caller waits for every worker's count, so no worker still
// reads a job when the next one is written. A training loop's back-to-back
// products find the workers awake; an idle pool costs nothing after the spin.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ctnn/core/errors.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ctnn {

class ThreadPool {
 public:
  /// A pool of `threads` threads in all: the caller of run() and threads - 1
  /// workers, started now. ThreadPool(1) has no workers (run is a plain call).
  explicit ThreadPool(std::size_t threads) {
    if (threads == 0) throw ValueError("ctnn: ThreadPool needs at least 1 thread (the caller's), got 0");
    workers_.reserve(threads - 1);
    try {
      for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
    } catch (...) {
      stop();  // the workers already started
      throw;
    }
  }
  /// As many threads as the hardware runs at once (at least 1).
  static ThreadPool for_hardware() { return ThreadPool(std::max(1u, std::thread::hardware_concurrency())); }
  // (Returned by guaranteed copy elision: the workers hold `this`, so a pool never moves.)

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() { stop(); }

  /// Threads in all, the caller's included.
  std::size_t size() const { return workers_.size() + 1; }
  /// Jobs handed to the workers so far (run() calls of more than one part
  /// that found the pool free): shows whether a model's products are large
  /// enough to be split.
  std::size_t jobs() const { return jobs_; }

  /// Calls f(part) for every part in [0, parts), at most size() parts, part 0
  /// on this thread, and returns when every part has returned. f must not
  /// throw on a worker (it has nowhere to send the exception: the program
  /// terminates); an exception from part 0 leaves run once the workers are done.
  /// The pool runs one job at a time: a run() that finds it busy (a call from
  /// another thread, e.g. two models sharing the pool, or from inside f) runs
  /// its parts one after another on its own thread instead.
  template <class F>
  void run(std::size_t parts, const F& f) {
    static_assert(std::is_invocable_v<const F&, std::size_t>, "ctnn: ThreadPool::run needs f(std::size_t part)");
    if (parts > size())
      throw ValueError("ctnn: ThreadPool::run got " + std::to_string(parts) + " parts, but the pool has " +
                       std::to_string(size()) + " threads");
    if (parts <= 1 || busy_.exchange(true, std::memory_order_acquire)) {
      for (std::size_t part = 0; part < parts; ++part) f(part);
      return;
    }
    const Release release{busy_};
    ++jobs_;
    job_ = {[](const void* fn, std::size_t part) { (*static_cast<const F*>(fn))(part); }, &f, parts};
    remaining_.store(static_cast<std::uint32_t>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    try {
      f(0);
    } catch (...) {
      wait_for_workers();  // they still read f
      throw;
    }
    wait_for_workers();
  }

 private:
  /// Clears the busy flag when a job ends, by return or by exception.
  struct Release {
    std::atomic<bool>& busy;
    ~Release() { busy.store(false, std::memory_order_release); }
  };

  void stop() {
    stopping_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
  }

  struct Job {
    void (*call)(const void* fn, std::size_t part) = nullptr;
    const void* fn = nullptr;
    std::size_t parts = 0;
  };

  /// How long a thread spins on a value before sleeping on it: meant to
  /// outlast the elementwise work between two products of a training step,
  /// and short enough that a pool left idle soon stops using its cores.
  static constexpr std::chrono::microseconds spin_time{50};

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
  }

  /// Until every worker has counted down this job. The other parts take
  /// about as long as the caller's: spin, then sleep.
  void wait_for_workers() {
    for (std::uint32_t left; (left = remaining_.load(std::memory_order_acquire)) != 0;)
      if (!spin_while_equal(remaining_, left)) remaining_.wait(left, std::memory_order_acquire);
  }

  /// Spins while `a` holds `value`; false if it still does after spin_time.
  static bool spin_while_equal(const std::atomic<std::uint32_t>& a, std::uint32_t value) {
    const auto until = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (a.load(std::memory_order_acquire) != value) return true;
        pause();
      }
      if (std::chrono::steady_clock::now() >= until) return false;
    }
  }

  void work(std::size_t index) {
    std::uint32_t seen = 0;
    for (;;) {
      if (!spin_while_equal(generation_, seen)) generation_.wait(seen, std::memory_order_acquire);
      const std::uint32_t now = generation_.load(std::memory_order_acquire);
      if (now == seen) continue;  // woken without a new job
      seen = now;
      if (stopping_.load(std::memory_order_relaxed)) return;
      const Job job = job_;
      if (index < job.parts) job.call(job.fn, index);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
  }

  std::size_t jobs_ = 0;
  std::atomic<bool> busy_{false};
  Job job_;  // written by run() before the generation is bumped, read by workers after
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<std::uint32_t> remaining_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
};

}  // namespace ctnn

// Device selection: how many GPUs there are, which one is current, and what
// each one is. `require_device()` is what every entry point that touches a GPU
// calls first (cuda::to_device among them): without a GPU or without a driver
// it throws one cuda::Error that says so, instead of failing later in some
// allocation or launch.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "ctnn/cuda/error.hpp"

namespace ctnn::cuda {

/// Number of CUDA devices; throws cuda::Error when there is no device or no
/// usable driver.
inline int device_count() {
  int n = 0;
  detail::check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  return n;
}

/// Whether a CUDA device can be used, and if not, CUDA's reason.
struct Availability {
  bool available = false;
  std::string reason;  // empty when available
  explicit operator bool() const { return available; }
};
inline Availability availability() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return {false, std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")"};
  }
  if (n == 0) return {false, "cudaGetDeviceCount reported 0 devices"};
  return {true, {}};
}

/// Throws the one clear error of a machine without a usable GPU.
inline void require_device() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error("cudaGetDeviceCount", e,
                "ctnn::cuda needs an NVIDIA GPU and its driver; this process sees none");
  }
  if (n == 0) throw Error("cudaGetDeviceCount", cudaErrorNoDevice, "ctnn::cuda needs an NVIDIA GPU");
}

inline int current_device() {
  int d = 0;
  detail::check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

inline void set_device(int device) {
  detail::check(cudaSetDevice(device), [device] { return "cudaSetDevice(" + std::to_string(device) + ")"; });
}

/// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : previous_(current_device()) {
    if (device != previous_) set_device(device);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() { (void)cudaSetDevice(previous_); }

 private:
  int previous_;
};

/// What a device is: cudaDeviceProp's most useful fields.
struct DeviceInfo {
  int id = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability, e.g. 9.0 for an H100
  std::size_t total_memory = 0;
  int multiprocessors = 0;
  std::size_t shared_memory_per_block = 0;
};
inline DeviceInfo device_info(int device) {
  cudaDeviceProp p{};
  detail::check(cudaGetDeviceProperties(&p, device),
                [device] { return "cudaGetDeviceProperties(" + std::to_string(device) + ")"; });
  return DeviceInfo{device, p.name, p.major, p.minor, p.totalGlobalMem, p.multiProcessorCount,
                    p.sharedMemPerBlock};
}
inline DeviceInfo device_info() { return device_info(current_device()); }

/// Waits for all work on the current device; reports the first error of an
/// earlier asynchronous launch.
inline void synchronize() { detail::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace ctnn::cuda

// cuda::Error: a CUDA runtime call failed. The message names the call (with
// its sizes) and carries CUDA's own words and error name:
//   ctnn::cuda::Error: cudaMalloc(4096 bytes) failed: no CUDA-capable device is
//   detected (cudaErrorNoDevice)
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>
#include <utility>

#include "ctnn/core/errors.hpp"

namespace ctnn::cuda {

class Error : public ctnn::Error {
 public:
  Error(std::string call, cudaError_t code, std::string_view hint = {})
      : ctnn::Error(message(call, code, hint)), call_(std::move(call)), code_(code) {}

  /// The call that failed, as in the message: "cudaMalloc(4096 bytes)".
  const std::string& call() const noexcept { return call_; }
  cudaError_t code() const noexcept { return code_; }
  /// CUDA's description of the code ("no CUDA-capable device is detected").
  const char* cuda_message() const noexcept { return cudaGetErrorString(code_); }

 private:
  static std::string message(const std::string& call, cudaError_t code, std::string_view hint) {
    std::string m = "ctnn::cuda::Error: " + call + " failed: " + cudaGetErrorString(code) + " (" +
                    cudaGetErrorName(code) + ")";
    if (!hint.empty()) m.append("; ").append(hint);
    return m;
  }

  std::string call_;
  cudaError_t code_;
};

namespace detail {

/// Throws cuda::Error for anything but cudaSuccess. `call` is built only on
/// failure, so the success path formats nothing.
template <class DescribeCall>
inline void check(cudaError_t code, DescribeCall&& describe_call) {
  if (code != cudaSuccess) {
    (void)cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
    throw Error(std::forward<DescribeCall>(describe_call)(), code);
  }
}
inline void check(cudaError_t code, const char* call) {
  check(code, [call] { return std::string(call); });
}

inline std::string bytes_text(std::size_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace detail
}  // namespace ctnn::cuda

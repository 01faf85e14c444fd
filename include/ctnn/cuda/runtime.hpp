// The thin CUDA runtime of ctnn: device selection, device memory, streams,
// events, copies, and errors as exceptions. Plain C++ over the CUDA runtime
// API (cuda_runtime_api.h); it needs nvcc only where kernels are launched
// (cuda/device_backend.hpp), so a .cpp compiled by g++ or clang++ with the
// CUDA include path and -lcudart can use it too.
#pragma once

#include "ctnn/cuda/copy.hpp"
#include "ctnn/cuda/device.hpp"
#include "ctnn/cuda/device_ptr.hpp"
#include "ctnn/cuda/error.hpp"
#include "ctnn/cuda/event.hpp"
#include "ctnn/cuda/memory.hpp"
#include "ctnn/cuda/stream.hpp"

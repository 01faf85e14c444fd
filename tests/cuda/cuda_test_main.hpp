// main() of the nvcc-built tests: GoogleTest as usual, and exit status 77
// (meson's "skipped") when the tests passed but there was no CUDA device to
// run the device tests on, so `meson test` shows SKIP with the reason in the
// log instead of an OK that ran nothing on a GPU. The tests that need no
// device (the one clear error of a machine without one) still run, and a
// failure among them is still a failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

#include <ctnn/cuda/device.hpp>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (rc != 0) return rc;
  if (const auto a = ctnn::cuda::availability(); !a) {
    std::printf("no CUDA device: %s; the device tests were skipped (exit status 77)\n", a.reason.c_str());
    return 77;
  }
  return 0;
}

// The device path on a GPU, compiled by nvcc: the same cases as the host
// emulation (device_cases.hpp) plus the runtime. Without a usable GPU every
// device test is skipped with CUDA's reason ("no CUDA device: ..."), and the
// runtime test checks that the failure is the one clear cuda::Error.
#include <gtest/gtest.h>

#include <string>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda.hpp>

#include "device_cases.hpp"

namespace ctnn::test {
namespace {

using cuda::DeviceBackend;
using namespace device;

#define CTNN_REQUIRE_CUDA_DEVICE()                                         \
  do {                                                                     \
    if (const auto a = cuda::availability(); !a)                           \
      GTEST_SKIP() << "no CUDA device: " << a.reason;                      \
  } while (false)

TEST(CudaRuntime, NoDeviceIsOneClearErrorAtToDevice) {
  const auto a = cuda::availability();
  Model<OddMlp> cpu;
  if (a) {
    EXPECT_NO_THROW((void)cuda::to_device(cpu));
    GTEST_SKIP() << "a CUDA device is present: " << cuda::device_info().name;
  }
  try {
    (void)cuda::to_device(cpu);
    FAIL() << "to_device without a device did not throw";
  } catch (const cuda::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.call(), "cudaGetDeviceCount");
    EXPECT_NE(what.find("ctnn::cuda::Error: cudaGetDeviceCount failed: "), std::string::npos) << what;
    EXPECT_NE(what.find(e.cuda_message()), std::string::npos) << what;
  }
  EXPECT_THROW((void)cuda::to_device(random_batch<5>(3, 1)), cuda::Error);
}

TEST(CudaRuntime, ErrorsNameTheCall) {
  CTNN_REQUIRE_CUDA_DEVICE();
  try {
    cuda::DeviceBuffer<float> huge(std::size_t{1} << 60);
    FAIL() << "a 4 EiB allocation succeeded";
  } catch (const cuda::Error& e) {
    EXPECT_NE(std::string(e.what()).find("(4611686018427387904 bytes) failed: "), std::string::npos)
        << e.what();
  }
  cuda::Stream s;
  cuda::Event start, stop;
  start.record(s);
  stop.record(s);
  EXPECT_GE(cuda::elapsed_ms(start, stop), 0.0f);
}

TEST(CudaDevice, ForwardBackwardOddMlp) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 5u, 13u, 37u, 257u, 9000u}) {
    expect_forward_backward_match_cpu<DeviceBackend, OddMlp>(rows, 100 + rows);
    expect_forward_backward_match_cpu<DeviceBackend, OddMlp>(rows, 100 + rows, false);
  }
}

TEST(CudaDevice, ForwardBackwardOddResidualAndProjected) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 13u, 257u}) {
    expect_forward_backward_match_cpu<DeviceBackend, OddResidual>(rows, 200 + rows);
    expect_forward_backward_match_cpu<DeviceBackend, OddProjected>(rows, 300 + rows);
  }
}

TEST(CudaDevice, LayerNormBatchNorm1dAndHeadsMatchTheCpu) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 5u, 13u, 37u, 300u, 9000u}) {
    expect_stateful_match_cpu<DeviceBackend, LayerNorm<3>>(rows, 1000 + rows);
    expect_stateful_match_cpu<DeviceBackend, LayerNorm<37>>(rows, 1100 + rows);
    expect_stateful_match_cpu<DeviceBackend, LayerNorm<64>>(rows, 1200 + rows);
    expect_stateful_match_cpu<DeviceBackend, BatchNorm1d<5>>(rows, 2000 + rows);
    expect_stateful_match_cpu<DeviceBackend, BatchNorm1d<37, std::ratio<3, 10>, std::ratio<1, 1000>>>(rows,
                                                                                                   2100 + rows);
    expect_stateful_match_cpu<DeviceBackend, BatchNorm1d<64>>(rows, 2200 + rows);
    const Tolerance pipeline = rows > 300 ? cancelling_gradient_sums : gradient_tolerance;
    expect_stateful_match_cpu<DeviceBackend, NormPipeline<13>>(rows, 3000 + rows, true, {}, pipeline);
    expect_stateful_match_cpu<DeviceBackend, NormPipeline<64>>(rows, 3100 + rows, false, {}, pipeline);
    expect_stateful_match_cpu<DeviceBackend, OddHeads>(rows, 4000 + rows);
  }
  expect_stateful_match_cpu<DeviceBackend, NormPipeline<16>>(13, 3200, true, "mid");
  expect_stateful_match_cpu<DeviceBackend, OddHeads>(37, 4100, true, "heads.b");
}

TEST(CudaDevice, SoftmaxLogSoftmaxAndDropoutInEvaluation) {
  CTNN_REQUIRE_CUDA_DEVICE();
  using WithSoftmax = Sequential<Linear<5, 37>, Softmax>;
  using WithLogSoftmax = Sequential<Linear<5, 64>, Dropout<>, LogSoftmax>;
  for (std::size_t rows : {1u, 13u, 300u, 9000u}) {
    expect_stateful_match_cpu<DeviceBackend, WithSoftmax>(rows, 5000 + rows);
    // Dropout's masks are not the CPU's: compare in evaluation mode only.
    Model<WithLogSoftmax> cpu{seed(rows)};
    cpu.eval();
    auto dev = cuda::to_device(cpu);
    const Batch<5> x = random_batch<5>(rows, 5100 + rows);
    EXPECT_TRUE(all_close("eval output", cuda::to_host(dev(cuda::to_device(x))).values(), cpu(x).values(),
                          forward_tolerance));
  }
}

TEST(CudaDevice, LossesAndOptimizersMatchTheCpu) {
  CTNN_REQUIRE_CUDA_DEVICE();
  expect_cross_entropy_matches_cpu<DeviceBackend, OddMlp>(257, CrossEntropyLoss{.label_smoothing = 0.1f});
  expect_mse_training_matches_cpu<DeviceBackend, OddResidual>(
      13, [](auto& m) { return optim::SGD(m, {.lr = 0.05f, .momentum = 0.9f, .nesterov = true}); },
      [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.05f, .momentum = 0.9f, .nesterov = true}); });
  expect_mse_training_matches_cpu<DeviceBackend, OddMlp>(
      37, [](auto& m) { return optim::Adam(m, {.lr = 1e-2f, .amsgrad = true}); },
      [](auto& m) { return cuda::optim::Adam(m, {.lr = 1e-2f, .amsgrad = true}); });
  expect_mse_training_matches_cpu<DeviceBackend, OddProjected>(
      37, [](auto& m) { return optim::AdamW(m, {.lr = 1e-2f, .weight_decay = 0.1f}); },
      [](auto& m) { return cuda::optim::AdamW(m, {.lr = 1e-2f, .weight_decay = 0.1f}); });
  expect_mse_training_matches_cpu<DeviceBackend, OddMlp>(
      13, [](auto& m) { return optim::RMSprop(m, {.lr = 1e-2f, .momentum = 0.5f, .centered = true}); },
      [](auto& m) { return cuda::optim::RMSprop(m, {.lr = 1e-2f, .momentum = 0.5f, .centered = true}); },
      Reduction::mean, 3, {}, centered_rmsprop_state);
}

using Cases = ConformanceCases<DeviceBackend>;
TEST(CudaDeviceConformance, TinyLinear) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::tiny_linear(); }
TEST(CudaDeviceConformance, Mlp381) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::mlp_3_8_1(); }
TEST(CudaDeviceConformance, SeedResidualMlp) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::seed_residual_mlp(); }
TEST(CudaDeviceConformance, SimpleNet) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::simplenet(); }
TEST(CudaDeviceConformance, SineNet) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::sinenet(); }
TEST(CudaDeviceConformance, MnistMlp) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::mnist_mlp(); }
TEST(CudaDeviceConformance, ResBlocks) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::resblocks(); }
TEST(CudaDeviceConformance, Autoencoder) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::autoencoder(); }
TEST(CudaDeviceConformance, DynamicMlp) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::dynamic_mlp(); }
TEST(CudaDeviceConformance, LayerNorm) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::layernorm(); }
TEST(CudaDeviceConformance, BatchNorm1d) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::batchnorm1d(); }
TEST(CudaDeviceConformance, MultiTask) { CTNN_REQUIRE_CUDA_DEVICE(); Cases::multitask(); }

}  // namespace
}  // namespace ctnn::test

#include "cuda_test_main.hpp"

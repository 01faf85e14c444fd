// The issue-6 workloads as ctnn types, with the numbers every benchmark in
// bench/ shares (batch sizes, FLOP counts, the sine task's settings). The
// Eigen and PyTorch benchmarks build the same networks at run time
// (bench_eigen.cpp, bench_torch.py).
#pragma once

#include <ctnn/ctnn.hpp>

#include <cstddef>
#include <cstdint>

namespace bench {

using namespace ctnn;

// W6: one Linear layer.
using W6 = Linear<3, 1>;
// W1: the tutorial's residual MLP, h = relu(fc1 x); h = relu(fc2 h) + h; y = head h.
using W1 = Sequential<Named<"fc1", Linear<3, 16>>, ReLU, Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                      Named<"head", Linear<16, 1>>>;
// W2: SineNet 1 -> 64 -> 64 -> 1 with Tanh.
using W2 = Sequential<Named<"net", Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>>>;
// W3: MNIST MLP 784 -> 256 -> 128 -> 10 with ReLU (input already flat).
using W3 = Sequential<Named<"net", Sequential<Linear<784, 256>, ReLU, Linear<256, 128>, ReLU, Linear<128, 10>>>>;
// W4: four residual blocks of width 128.
using W4 = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
// W5: 1024 -> 1024 -> 1024 -> 1024 with ReLU.
using W5 = Sequential<Linear<1024, 1024>, ReLU, Linear<1024, 1024>, ReLU, Linear<1024, 1024>>;

static_assert(W1::num_params == 353);

// W1 and W2 again, written as custom modules (issue 4: a module and the same
// pipeline run at the same speed). Same parameters, same names, same numbers.
struct W1Module {
  CTNN_MODULE(W1Module, (Linear<3, 16>, fc1), (Linear<16, 16>, fc2), (Linear<16, 1>, head), (ReLU, act));
  constexpr auto forward(auto x) const {
    auto h = act(fc1(x));
    h = act(fc2(h)) + h;
    return head(h);
  }
};
struct W2Module {
  CTNN_MODULE(W2Module, (Linear<1, 64>, fc1), (Linear<64, 64>, fc2), (Linear<64, 1>, out));
  constexpr auto forward(auto x) const { return out(tanh(fc2(tanh(fc1(x))))); }
};
static_assert(W1Module::num_params == W1::num_params && W2Module::num_params == W2::num_params);

// Forward FLOPs per sample: 2 * In * Out per Linear (bias and activations not counted).
inline constexpr double flops_w6 = 2.0 * 3 * 1;
inline constexpr double flops_w1 = 2.0 * (3 * 16 + 16 * 16 + 16 * 1);
inline constexpr double flops_w2 = 2.0 * (1 * 64 + 64 * 64 + 64 * 1);
inline constexpr double flops_w3 = 2.0 * (784 * 256 + 256 * 128 + 128 * 10);
inline constexpr double flops_w4 = 2.0 * 8 * (128 * 128);
inline constexpr double flops_w5 = 2.0 * 3 * (1024 * 1024);

// Training FLOPs per sample, nominal: forward (2 In Out), weight gradient
// (2 In Out) and input gradient (2 In Out) for every Linear but the first,
// whose input needs no gradient.
inline constexpr double train_flops_w6 = 2.0 * flops_w6;
inline constexpr double train_flops_w1 = 3.0 * flops_w1 - 2.0 * 3 * 16;
inline constexpr double train_flops_w2 = 3.0 * flops_w2 - 2.0 * 1 * 64;
inline constexpr double train_flops_w3 = 3.0 * flops_w3 - 2.0 * 784 * 256;
inline constexpr double train_flops_w4 = 3.0 * flops_w4 - 2.0 * 128 * 128;
inline constexpr double train_flops_w5 = 3.0 * flops_w5 - 2.0 * 1024 * 1024;

// Batch sizes.
inline constexpr std::size_t throughput_batch = 256;
inline constexpr std::size_t throughput_batch_w5 = 512;
inline constexpr std::size_t train_batch = 256;
inline constexpr std::size_t train_batch_w2 = 200;

// The sine task: SineNet, full batch of 200 points, SGD lr 0.05, MSE, until the
// loss (computed before the update, as PyTorch's loop prints it) is below 0.02.
inline constexpr float sine_lr = 0.05f;
inline constexpr float sine_target_mse = 0.02f;
inline constexpr int sine_max_epochs = 20000;

// Chained latency: the next input is the first input plus 1e-3 times the
// previous output's first value in its first feature, so every call waits for
// the one before and the values stay bounded.
inline constexpr float chain_gain = 1e-3f;

/// A deterministic pseudo-random fill in [-1, 1) (xorshift), the same for every
/// C++ benchmark.
inline void fill_uniform(float* p, std::size_t n, std::uint32_t seed) {
  std::uint32_t s = seed * 2654435761u + 12345u;
  for (std::size_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    p[i] = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}

}  // namespace bench

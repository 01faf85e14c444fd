// GPU throughput of cuda::Model: evaluation forward and full training steps
// (forward, MSE loss, backward, SGD step) for the tutorial's networks (W1-W5
// of bench/workloads.hpp; the largest batches are capped for W3-W5) and for
// MLPs of widths 16/32/64/128 (five Linear layers, ReLU between: the fully
// fused forward's range) over batches of 2^14 to 2^21 rows, timed with CUDA
// events. The PyTorch side of the comparison is bench/gpu_pytorch.py (same
// networks, batches, timing and CSV columns); docs/gpu-performance.md has the
// figures and the commands that made them.
//
// Built by nvcc with -Dbench=true (tests/cuda/meson.build); not a test. Prints
// CSV on stdout: network, rows, mode (forward | train_step), path (fused |
// per_layer: the fully fused forward on or off; networks with nothing it
// applies to print fused only), milliseconds per iteration, rows per second.
//
//   ./build/tests/cuda/gpu_throughput [max_log2_rows=21] [min_log2_rows=14] > gpu.csv
#include <cstdio>
#include <cstdlib>
#include <string>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda.hpp>

using namespace ctnn;

namespace {

// The tutorial's networks W1-W5, the types of bench/workloads.hpp (written
// out here so that nvcc compiles only what this program runs).
// W1: the residual MLP, h = relu(fc1 x); h = relu(fc2 h) + h; y = head h.
using W1 = Sequential<Named<"fc1", Linear<3, 16>>, ReLU, Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                      Named<"head", Linear<16, 1>>>;
// W2: SineNet 1 -> 64 -> 64 -> 1 with Tanh.
using W2 = Sequential<Named<"net", Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>>>;
// W3: the MNIST MLP 784 -> 256 -> 128 -> 10 with ReLU (input already flat).
using W3 = Sequential<Named<"net", Sequential<Linear<784, 256>, ReLU, Linear<256, 128>, ReLU, Linear<128, 10>>>>;
// W4: four residual blocks of width 128.
using W4 = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
// W5: 1024 -> 1024 -> 1024 -> 1024 with ReLU.
using W5 = Sequential<Linear<1024, 1024>, ReLU, Linear<1024, 1024>, ReLU, Linear<1024, 1024>>;
template <std::size_t W>
using Wide = Sequential<Linear<W, W>, ReLU, Linear<W, W>, ReLU, Linear<W, W>, ReLU, Linear<W, W>, ReLU,
                        Linear<W, W>>;

constexpr int warmup = 3;

template <class F>
float milliseconds_per_call(F&& f, int iterations) {
  for (int i = 0; i < warmup; ++i) f();
  cuda::Event start, stop;
  start.record();
  for (int i = 0; i < iterations; ++i) f();
  stop.record();
  return cuda::elapsed_ms(start, stop) / float(iterations);
}

/// Deterministic inputs in [-1, 1) without a per-element generator call
/// (the largest batches have 10^8 elements).
template <std::size_t F>
Batch<F> inputs(std::size_t rows) {
  Batch<F> b(rows);
  std::uint32_t s = 12345u;
  for (float& v : b) {
    s = s * 1664525u + 1013904223u;
    v = float(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return b;
}

template <class Net>
void run(const char* name, bool has_fused_path, int max_log2_rows, int min_log2_rows) {
  constexpr std::size_t In = Model<Net>::in_features, Out = Model<Net>::out_features;
  Model<Net> host{seed(0)};
  cuda::Model<Net> gpu = cuda::to_device(host);
  cuda::optim::SGD opt(gpu, {.lr = 1e-4f});
  for (int lg = min_log2_rows; lg <= max_log2_rows; ++lg) {
    const std::size_t rows = std::size_t{1} << lg;
    const cuda::Batch<In> x = cuda::to_device(inputs<In>(rows));
    const cuda::Batch<Out> t = cuda::to_device(Batch<Out>(rows));
    // Fewer iterations for the big batches keep each point near a second.
    const int iterations = lg >= 19 ? 10 : 50;
    for (bool fused : {true, false}) {
      if (!fused && !has_fused_path) continue;
      gpu.fused_mlp(fused);
      const char* path = fused ? "fused" : "per_layer";
      gpu.eval();
      const float f_ms = milliseconds_per_call([&] { (void)gpu(x); }, iterations);
      gpu.train();
      const float t_ms = milliseconds_per_call(
          [&] {
            auto loss = cuda::MSELoss{}(gpu(x), t);
            opt.zero_grad();
            loss.backward();
            opt.step();
          },
          iterations);
      std::printf("%s,%zu,forward,%s,%.4f,%.4g\n", name, rows, path, f_ms, double(rows) / (f_ms * 1e-3));
      std::printf("%s,%zu,train_step,%s,%.4f,%.4g\n", name, rows, path, t_ms, double(rows) / (t_ms * 1e-3));
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto a = cuda::availability();
  if (!a) {
    std::fprintf(stderr, "no CUDA device: %s\n", a.reason.c_str());
    return 77;
  }
  const int max_log2 = argc > 1 ? std::atoi(argv[1]) : 21;
  const int min_log2 = argc > 2 ? std::atoi(argv[2]) : 14;
  const auto info = cuda::device_info();
  std::printf("# device: %s (sm_%d%d, %d SMs)\n", info.name.c_str(), info.major, info.minor, info.multiprocessors);
  std::printf("network,rows,mode,path,ms,rows_per_s\n");
  run<Wide<16>>("mlp_w16x5", true, max_log2, min_log2);
  run<Wide<32>>("mlp_w32x5", true, max_log2, min_log2);
  run<Wide<64>>("mlp_w64x5", true, max_log2, min_log2);
  run<Wide<128>>("mlp_w128x5", true, max_log2, min_log2);
  run<W1>("w1_residual_mlp", false, max_log2, min_log2);
  run<W2>("w2_sinenet", true, max_log2, min_log2);
  run<W3>("w3_mnist_mlp", false, max_log2 < 19 ? max_log2 : 19, min_log2);
  run<W4>("w4_resblocks", true, max_log2 < 20 ? max_log2 : 20, min_log2);
  run<W5>("w5_wide1024", false, max_log2 < 17 ? max_log2 : 17, min_log2);
}

// GPU throughput of cuda::Model: evaluation forward and full training steps
// (forward, MSE loss, backward, SGD step) for the tutorial's networks and for
// MLPs of widths 16/32/64/128 (four hidden layers, the fully fused forward's
// range) over batches of 2^14 to 2^21 rows, timed with CUDA events.
//
// Built by nvcc with -Dbench=true (tests/cuda/meson.build); not a test. Prints
// CSV on stdout: network, rows, mode (forward | train_step), kernel path
// (fused | per_layer), milliseconds per iteration, rows per second. The
// PyTorch side of the comparison is the script in docs/gpu.md ("Measuring").
//
//   ./build/tests/cuda/gpu_throughput [max_log2_rows=21] > gpu.csv
//
// Not run in the session that wrote it (no GPU was available).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda.hpp>

using namespace ctnn;

namespace {

using Tutorial = Sequential<Named<"fc1", Linear<3, 16>>, ReLU, Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                            Named<"head", Linear<16, 1>>>;
using SineNet = Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>;
using MnistMlp = Sequential<Linear<784, 256>, ReLU, Linear<256, 128>, ReLU, Linear<128, 10>>;
using ResBlocks = Repeat<4, Residual<Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>;
template <std::size_t W>
using Wide = Sequential<Linear<W, W>, ReLU, Linear<W, W>, ReLU, Linear<W, W>, ReLU, Linear<W, W>, ReLU,
                        Linear<W, W>>;

constexpr int warmup = 5;

template <class F>
float milliseconds_per_call(F&& f, int iterations) {
  for (int i = 0; i < warmup; ++i) f();
  cuda::Event start, stop;
  start.record();
  for (int i = 0; i < iterations; ++i) f();
  stop.record();
  return cuda::elapsed_ms(start, stop) / float(iterations);
}

template <class Net>
void run(const char* name, int max_log2_rows, int min_log2_rows = 14) {
  constexpr std::size_t In = Model<Net>::in_features, Out = Model<Net>::out_features;
  Model<Net> host{seed(0)};
  cuda::Model<Net> gpu = cuda::to_device(host);
  cuda::optim::SGD opt(gpu, {.lr = 1e-3f});
  for (int lg = min_log2_rows; lg <= max_log2_rows; ++lg) {
    const std::size_t rows = std::size_t{1} << lg;
    Batch<In> hx(rows);
    Generator g(seed(1));
    for (float& v : hx) v = g.uniform(-1.0f, 1.0f);
    const cuda::Batch<In> x = cuda::to_device(hx);
    const cuda::Batch<Out> t = cuda::to_device(Batch<Out>(rows));
    // Fewer iterations for the big batches keep each point near a second.
    const int iterations = lg >= 19 ? 10 : 50;
    for (bool fused : {true, false}) {
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
    return 1;
  }
  const int max_log2 = argc > 1 ? std::atoi(argv[1]) : 21;
  const auto info = cuda::device_info();
  std::printf("# device: %s (sm_%d%d, %d SMs)\n", info.name.c_str(), info.major, info.minor, info.multiprocessors);
  std::printf("network,rows,mode,path,ms,rows_per_s\n");
  run<Wide<16>>("mlp_w16x5", max_log2);
  run<Wide<32>>("mlp_w32x5", max_log2);
  run<Wide<64>>("mlp_w64x5", max_log2);
  run<Wide<128>>("mlp_w128x5", max_log2);
  run<Tutorial>("tutorial_residual_mlp", max_log2);
  run<SineNet>("sinenet", max_log2);
  run<ResBlocks>("resblocks", max_log2 < 20 ? max_log2 : 20);
  run<MnistMlp>("mnist_mlp", max_log2 < 18 ? max_log2 : 18);
}

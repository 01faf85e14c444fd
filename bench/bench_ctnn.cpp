// ctnn on the issue-6 workloads (bench/workloads.hpp): batch-1 latency
// (independent and chained calls, the Vec<F> single-sample path in eval mode),
// forward throughput, one training step, and the sine task. Run by
// bench/run.sh; names are "ctnn/<workload>/<measure>".
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <type_traits>
#include <string>
#include <vector>

#include "workloads.hpp"

using namespace ctnn;
using namespace bench;

namespace {

// What a batch-1 benchmark calls: the Model itself, or an InferenceModel
// snapshot of it (weights packed for the row kernels; core/inference_model.hpp).
template <class Net, bool Packed>
struct SingleSample {
  Model<Net> model{seed(1)};
  std::conditional_t<Packed, InferenceModel<Net>, Model<Net>&> runner{model};
  SingleSample() { model.eval(); }
};

template <class Net, bool Packed>
void latency(benchmark::State& st) {
  constexpr std::size_t in = Model<Net>::in_features;
  SingleSample<Net, Packed> s;
  Vec<in> x;
  fill_uniform(x.data(), in, 7);
  for (auto _ : st) {
    benchmark::DoNotOptimize(x);
    auto y = s.runner(x);
    benchmark::DoNotOptimize(y);
  }
}

template <class Net, bool Packed>
void chained(benchmark::State& st) {
  constexpr std::size_t in = Model<Net>::in_features;
  SingleSample<Net, Packed> s;
  Vec<in> x0;
  fill_uniform(x0.data(), in, 7);
  Vec<in> x = x0;
  for (auto _ : st) {
    auto y = s.runner(x);
    x[0] = x0[0] + chain_gain * y[0];  // the next call needs this call's output
  }
  benchmark::DoNotOptimize(x);
}

template <class Net>
void throughput(benchmark::State& st, std::size_t rows, double flops, std::size_t threads = 1) {
  constexpr std::size_t in = Model<Net>::in_features;
  constexpr std::size_t out = Model<Net>::out_features;
  Model<Net> model{seed(1)};
  model.eval();
  ThreadPool pool(threads);
  if (threads > 1) model.set_thread_pool(&pool);
  Batch<in> x(rows);
  Batch<out> y(rows);
  fill_uniform(x.data(), x.size(), 11);
  for (auto _ : st) {
    model.forward_into(x.data(), y.data(), rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * rows));
  st.counters["GFLOPs"] = benchmark::Counter(flops * static_cast<double>(rows) * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

template <class Net, bool Classify = false>
void train_step(benchmark::State& st, std::size_t rows, std::size_t threads = 1) {
  constexpr std::size_t in = Model<Net>::in_features;
  constexpr std::size_t out = Model<Net>::out_features;
  Model<Net> model{seed(1)};
  model.train();
  ThreadPool pool(threads);
  if (threads > 1) model.set_thread_pool(&pool);
  optim::SGD opt(model, {.lr = 1e-3f});
  Batch<in> x(rows);
  fill_uniform(x.data(), x.size(), 13);
  Batch<out> target(rows);
  fill_uniform(target.data(), target.size(), 17);
  Labels labels(rows);
  for (std::size_t i = 0; i < rows; ++i) labels[i] = static_cast<std::int64_t>(i % out);
  for (auto _ : st) {
    opt.zero_grad();
    if constexpr (Classify) {
      auto loss = CrossEntropyLoss{}(model(x), labels);
      loss.backward();
      benchmark::DoNotOptimize(loss);
    } else {
      auto loss = MSELoss{}(model(x), target);
      loss.backward();
      benchmark::DoNotOptimize(loss);
    }
    opt.step();
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * rows));
}

std::string sine_data_file() {
  if (const char* p = std::getenv("CTNN_BENCH_SINE_DATA")) return p;
  return CTNN_BENCH_SINE_DATA;
}

// The tutorial's sine task. Data and the Xavier-initialised starting weights
// come from tests/data/sinenet.safetensors (PyTorch: manual_seed(42) for the
// model, manual_seed(0) for 200 points x ~ U(0, 2 pi), y = sin x + 0.1 noise),
// so every implementation starts from the same numbers. One epoch: zero_grad,
// forward of all 200 points, MSE, backward, SGD step (lr 0.05); training stops
// after the first epoch whose loss is below 0.02.
void sine_task(benchmark::State& st) {
  const std::string file = sine_data_file();
  const auto data = SafetensorsFile::read(file);
  const Batch<1> x(200, data.to_f32("input"));
  const Batch<1> t(200, data.to_f32("target"));
  Model<W2> model;
  load_safetensors(model, file, {.prefix = "param."});
  const std::vector<float> initial(model.parameters().begin(), model.parameters().end());
  model.train();
  int epochs = 0;
  float last = 0.0f;
  for (auto _ : st) {
    std::copy(initial.begin(), initial.end(), model.parameters().begin());
    optim::SGD opt(model, {.lr = sine_lr});
    epochs = 0;
    while (epochs < sine_max_epochs) {
      opt.zero_grad();
      auto loss = MSELoss{}(model(x), t);
      loss.backward();
      opt.step();
      ++epochs;
      last = loss.item();
      if (last < sine_target_mse) break;
    }
  }
  st.counters["epochs"] = epochs;
  st.counters["final_loss"] = last;
}

// The GEMM alone, for docs/performance.md's account of the missed throughput
// targets: how close its register tile comes to the peak FMA rate when
// everything is in L1, and how much of that W5's and W3's layers keep.
//   tile-L1          dx[12, 32] = dy[12, 256] · w[256, 32] (linear_backward_input):
//                    A, B and C in L1, B read in place, one K block
//   forward-512x256x1024    Linear<256, 1024> + ReLU, 512 rows: W5's width and
//                    batch, one K block (B, the weights, packed transposed)
//   forward-512x1024x1024   Linear<1024, 1024> + ReLU, 512 rows: one layer of W5
//                    (four K blocks: C's partial sums go out and come back)
//   forward-256x784x256     Linear<784, 256> + ReLU, 256 rows: W3's first layer
//   forward-200x64x64       Linear<64, 64>, 200 rows: each of W2's training
//                    step's three GEMMs (forward, dW, dx) has this shape
//   forward-200x64x64-tanh  the same with Tanh in the epilogue (W2's forward)
template <class Fn, std::size_t In, std::size_t Out>
void kernel_forward(benchmark::State& st, std::size_t rows) {
  std::vector<float> w(In * Out), b(Out), x(rows * In), y(rows * Out);
  fill_uniform(w.data(), w.size(), 3);
  fill_uniform(b.data(), b.size(), 5);
  fill_uniform(x.data(), x.size(), 7);
  const kernels::Arch arch = kernels::best_arch();
  for (auto _ : st) {
    kernels::linear_forward<Fn, In, Out>(arch, w.data(), b.data(), x.data(), nullptr, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * static_cast<double>(rows * In * Out) * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

void kernel_tile_in_l1(benchmark::State& st) {
  constexpr std::size_t rows = 12, In = 32, Out = 256;
  std::vector<float> w(Out * In), dy(rows * Out), dx(rows * In);
  fill_uniform(w.data(), w.size(), 3);
  fill_uniform(dy.data(), dy.size(), 5);
  const kernels::Arch arch = kernels::best_arch();
  for (auto _ : st) {
    kernels::linear_backward_input<In, Out>(arch, w.data(), dy.data(), dx.data(), rows);
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * rows * In * Out * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_kernels() {
  benchmark::RegisterBenchmark("ctnn-kernel/tile-L1", kernel_tile_in_l1);
  benchmark::RegisterBenchmark("ctnn-kernel/forward-512x256x1024",
                               [](benchmark::State& st) { kernel_forward<ReLU, 256, 1024>(st, 512); });
  benchmark::RegisterBenchmark("ctnn-kernel/forward-512x1024x1024",
                               [](benchmark::State& st) { kernel_forward<ReLU, 1024, 1024>(st, 512); });
  benchmark::RegisterBenchmark("ctnn-kernel/forward-256x784x256",
                               [](benchmark::State& st) { kernel_forward<ReLU, 784, 256>(st, 256); });
  benchmark::RegisterBenchmark("ctnn-kernel/forward-200x64x64",
                               [](benchmark::State& st) { kernel_forward<kernels::NoActivation, 64, 64>(st, 200); });
  benchmark::RegisterBenchmark("ctnn-kernel/forward-200x64x64-tanh",
                               [](benchmark::State& st) { kernel_forward<Tanh, 64, 64>(st, 200); });
}

template <class Net>
void register_workload(const std::string& w, std::size_t tp_rows, double flops, std::size_t train_rows,
                       bool classify = false, const std::string& system = "ctnn") {
  const std::string p = system + "/" + w + "/";
  benchmark::RegisterBenchmark((p + "latency").c_str(), latency<Net, false>);
  benchmark::RegisterBenchmark((p + "chained").c_str(), chained<Net, false>);
  if (system == "ctnn") {
    const std::string q = "ctnn-inference/" + w + "/";
    benchmark::RegisterBenchmark((q + "latency").c_str(), latency<Net, true>);
    benchmark::RegisterBenchmark((q + "chained").c_str(), chained<Net, true>);
  }
  benchmark::RegisterBenchmark((p + "throughput").c_str(),
                               [=](benchmark::State& st) { throughput<Net>(st, tp_rows, flops); });
  if (classify)
    benchmark::RegisterBenchmark((p + "train").c_str(),
                                 [=](benchmark::State& st) { train_step<Net, true>(st, train_rows); });
  else
    benchmark::RegisterBenchmark((p + "train").c_str(),
                                 [=](benchmark::State& st) { train_step<Net, false>(st, train_rows); });
}

// The same throughput and training step with a ThreadPool of `threads`
// (core/thread_pool.hpp), for the workloads whose products are large enough to
// be split; run on as many cores (bench/run.sh: taskset over two cores), timed
// by the wall clock.
template <class Net>
void register_threaded(const std::string& w, std::size_t tp_rows, double flops, std::size_t train_rows,
                       std::size_t threads, bool classify = false) {
  const std::string p = "ctnn-" + std::to_string(threads) + "threads/" + w + "/";
  benchmark::RegisterBenchmark((p + "throughput").c_str(), [=](benchmark::State& st) {
    throughput<Net>(st, tp_rows, flops, threads);
  })->UseRealTime();
  if (classify)
    benchmark::RegisterBenchmark((p + "train").c_str(), [=](benchmark::State& st) {
      train_step<Net, true>(st, train_rows, threads);
    })->UseRealTime();
  else
    benchmark::RegisterBenchmark((p + "train").c_str(), [=](benchmark::State& st) {
      train_step<Net, false>(st, train_rows, threads);
    })->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_workload<W6>("W6", throughput_batch, flops_w6, train_batch);
  register_workload<W1>("W1", throughput_batch, flops_w1, train_batch);
  register_workload<W2>("W2", throughput_batch, flops_w2, train_batch_w2);
  register_workload<W3>("W3", throughput_batch, flops_w3, train_batch, true);
  register_workload<W4>("W4", throughput_batch, flops_w4, train_batch);
  register_workload<W5>("W5", throughput_batch_w5, flops_w5, train_batch);
  register_workload<W1Module>("W1", throughput_batch, flops_w1, train_batch, false, "ctnn-module");
  register_workload<W2Module>("W2", throughput_batch, flops_w2, train_batch_w2, false, "ctnn-module");
  benchmark::RegisterBenchmark("ctnn/sine/task", sine_task)->Unit(benchmark::kMillisecond);
  register_threaded<W3>("W3", throughput_batch, flops_w3, train_batch, 2, true);
  register_threaded<W4>("W4", throughput_batch, flops_w4, train_batch, 2);
  register_threaded<W5>("W5", throughput_batch_w5, flops_w5, train_batch, 2);
  register_kernels();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

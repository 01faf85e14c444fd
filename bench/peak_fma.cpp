// This core's peak FP32 FMA rate: independent FMA chains, enough of them to
// cover the FMA latency on every FMA pipe, on the widest vectors the CPU has
// (AVX-512 when compiled with -march=native on an AVX-512 machine), and on
// 256-bit vectors for comparison. Every GFLOP/s figure in docs/performance.md
// is reported as a fraction of the widest rate. One FMA = 2 FLOPs per lane.
//
// It also measures the read bandwidth of one core from buffers that fit L1,
// L2, L3 and only DRAM: docs/performance.md uses it to say what bounds a
// workload whose weights must stream through the core on every call.
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int chains = 16;      // >= latency (4) x pipes (2), with room to spare
constexpr int inner = 1 << 16;  // FMA rounds per benchmark iteration

#if defined(__AVX512F__)
void peak_512(benchmark::State& st) {
  __m512 acc[chains];
  for (int k = 0; k < chains; ++k) acc[k] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(k));
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(1e-6f);
  for (auto _ : st) {
    for (int i = 0; i < inner; ++i) {
#pragma GCC unroll 16
      for (int k = 0; k < chains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], mul, add);
    }
    for (int k = 0; k < chains; ++k) benchmark::DoNotOptimize(acc[k]);
  }
  st.counters["flops_per_iter"] = 2.0 * 16 * chains * inner;
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * 16 * chains * inner * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(peak_512)->Name("peak/fma512");
#endif

#if defined(__AVX2__) && defined(__FMA__)
void peak_256(benchmark::State& st) {
  __m256 acc[chains];
  for (int k = 0; k < chains; ++k) acc[k] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(k));
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(1e-6f);
  for (auto _ : st) {
    for (int i = 0; i < inner; ++i) {
#pragma GCC unroll 16
      for (int k = 0; k < chains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], mul, add);
    }
    for (int k = 0; k < chains; ++k) benchmark::DoNotOptimize(acc[k]);
  }
  st.counters["flops_per_iter"] = 2.0 * 8 * chains * inner;
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * 8 * chains * inner * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(peak_256)->Name("peak/fma256");
#endif

// Sum of a buffer of st.range(0) bytes, 8 independent vector accumulators.
void read_bandwidth(benchmark::State& st) {
  const std::size_t bytes = static_cast<std::size_t>(st.range(0));
  auto* buf = static_cast<float*>(std::aligned_alloc(64, bytes));
  std::memset(buf, 0, bytes);
  const std::size_t n = bytes / sizeof(float);
#if defined(__AVX512F__)
  using V = __m512;
  constexpr std::size_t w = 16;
  auto load = [](const float* p) { return _mm512_load_ps(p); };
  auto add = [](V a, V b) { return _mm512_add_ps(a, b); };
  auto zero = [] { return _mm512_setzero_ps(); };
#else
  using V = __m256;
  constexpr std::size_t w = 8;
  auto load = [](const float* p) { return _mm256_load_ps(p); };
  auto add = [](V a, V b) { return _mm256_add_ps(a, b); };
  auto zero = [] { return _mm256_setzero_ps(); };
#endif
  for (auto _ : st) {
    V a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero(), a4 = zero(), a5 = zero(), a6 = zero(), a7 = zero();
    for (std::size_t i = 0; i < n; i += 8 * w) {
      a0 = add(a0, load(buf + i));
      a1 = add(a1, load(buf + i + w));
      a2 = add(a2, load(buf + i + 2 * w));
      a3 = add(a3, load(buf + i + 3 * w));
      a4 = add(a4, load(buf + i + 4 * w));
      a5 = add(a5, load(buf + i + 5 * w));
      a6 = add(a6, load(buf + i + 6 * w));
      a7 = add(a7, load(buf + i + 7 * w));
    }
    V s = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7)));
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(bytes));
  st.counters["bytes_per_iter"] = static_cast<double>(bytes);
  std::free(buf);
}
BENCHMARK(read_bandwidth)->Name("bw/read")->Arg(16 << 10)->Arg(512 << 10)->Arg(8 << 20)->Arg(256 << 20);

}  // namespace

BENCHMARK_MAIN();

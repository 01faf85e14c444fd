// The runtime and the kernel bodies on a GPU, compiled by nvcc: each kernel
// runs on the device and on the host emulation (the same body over the same
// grid), and the two must agree. Includes nothing of the CPU library, so it
// builds wherever nvcc does. Without a usable GPU the device tests are
// skipped with CUDA's reason, and the runtime test checks the one clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <ctnn/cuda/device_backend.hpp>
#include <ctnn/cuda/emulate.hpp>
#include <ctnn/cuda/kernels/elementwise.hpp>
#include <ctnn/cuda/kernels/fused_mlp.hpp>
#include <ctnn/cuda/kernels/fused_mlp_backward.hpp>
#include <ctnn/cuda/kernels/gemm.hpp>
#include <ctnn/cuda/kernels/loss.hpp>
#include <ctnn/cuda/kernels/norm.hpp>
#include <ctnn/cuda/kernels/optim.hpp>
#include <ctnn/cuda/kernels/rowwise.hpp>
#include <ctnn/cuda/runtime.hpp>

namespace {

namespace cuda = ctnn::cuda;
namespace k = ctnn::cuda::kernels;
using cuda::DeviceBackend;
using cuda::HostEmulation;

#define CTNN_REQUIRE_CUDA_DEVICE()                    \
  do {                                                \
    if (const auto a = cuda::availability(); !a)      \
      GTEST_SKIP() << "no CUDA device: " << a.reason; \
  } while (false)

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed * 2654435761u + 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return v;
}

template <class Backend>
typename Backend::template buffer<float> upload(const Backend& b, const std::vector<float>& v) {
  typename Backend::template buffer<float> d(v.size());
  b.copy_in(d.get(), v.data(), v.size());
  return d;
}
template <class Backend>
std::vector<float> download(const Backend& b, const typename Backend::template buffer<float>& d) {
  std::vector<float> v(d.size());
  b.copy_out(v.data(), cuda::device_ptr<const float>(d.get()), d.size());
  return v;
}

::testing::AssertionResult close(const char* what, const std::vector<float>& dev, const std::vector<float>& emu,
                                 double rtol = 1e-5, double atol = 1e-5) {
  if (dev.size() != emu.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (std::size_t i = 0; i < dev.size(); ++i)
    if (!(dev[i] == emu[i] || std::fabs(double(dev[i]) - double(emu[i])) <= atol + rtol * std::fabs(double(emu[i]))))
      return ::testing::AssertionFailure() << what << "[" << i << "]: device " << dev[i] << ", emulation " << emu[i];
  return ::testing::AssertionSuccess();
}

// ---- the runtime -------------------------------------------------------------------

TEST(CudaRuntime, WithoutADeviceEveryEntryPointSaysSo) {
  const auto a = cuda::availability();
  if (a) GTEST_SKIP() << "a CUDA device is present: " << cuda::device_info().name;
  EXPECT_FALSE(a.reason.empty());
  try {
    cuda::require_device();
    FAIL() << "require_device() did not throw";
  } catch (const cuda::Error& e) {
    EXPECT_EQ(e.call(), "cudaGetDeviceCount");
    EXPECT_EQ(std::string(e.what()).rfind("ctnn::cuda::Error: cudaGetDeviceCount failed: ", 0), 0u) << e.what();
  }
  try {
    cuda::DeviceBuffer<float> b(1024);
    FAIL() << "cudaMalloc without a device did not throw";
  } catch (const cuda::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("ctnn::cuda::Error: cudaMalloc(4096 bytes) failed: ", 0), 0u) << e.what();
  }
}

TEST(CudaRuntime, BuffersStreamsEventsCopies) {
  CTNN_REQUIRE_CUDA_DEVICE();
  const auto info = cuda::device_info();
  EXPECT_GT(info.multiprocessors, 0);
  cuda::Stream s;
  cuda::DeviceBuffer<float> d(1000);
  const auto v = random_values(1000, 1);
  std::vector<float> back(1000);
  cuda::Event start, stop;
  start.record(s);
  cuda::copy_to_device(d.get(), std::span<const float>(v), s.native());
  cuda::copy_to_host(std::span<float>(back), cuda::device_ptr<const float>(d.get()), s.native());
  stop.record(s);
  EXPECT_EQ(back, v);
  EXPECT_GE(cuda::elapsed_ms(start, stop), 0.0f);
  try {
    cuda::DeviceBuffer<float> huge(std::size_t{1} << 60);
    FAIL() << "a 4 EiB allocation succeeded";
  } catch (const cuda::Error& e) {
    EXPECT_NE(std::string(e.what()).find("(4611686018427387904 bytes) failed: "), std::string::npos);
  }
}

// ---- kernels: the device against the emulation --------------------------------------------

template <class Backend, std::size_t In, std::size_t Out, class Act>
std::vector<float> linear_forward(const Backend& b, std::size_t rows) {
  auto x = upload(b, random_values(rows * In, 1));
  auto w = upload(b, random_values(Out * In, 2));
  auto bias = upload(b, random_values(Out, 3));
  typename Backend::template buffer<float> z(rows * Out), y(rows * Out);
  using Epi = k::LinearForwardEpilogue<Act, true>;
  using G = k::Gemm<k::gemm_tile_for<Out>, In, 1, 1, In, Epi>;
  b.template launch<G>(cuda::Grid{unsigned((rows + G::BM - 1) / G::BM), unsigned((Out + G::BN - 1) / G::BN), 1},
                       static_cast<const float*>(x.raw()), static_cast<const float*>(w.raw()), rows, Out, In, In,
                       Epi{bias.raw(), z.raw(), y.raw(), Out});
  auto out = download(b, y);
  auto zz = download(b, z);
  out.insert(out.end(), zz.begin(), zz.end());
  return out;
}

template <std::size_t In, std::size_t Out, class Act>
void expect_linear_forward(std::size_t rows) {
  SCOPED_TRACE(std::to_string(In) + " -> " + std::to_string(Out) + ", rows " + std::to_string(rows));
  EXPECT_TRUE(close("y, z", linear_forward<DeviceBackend, In, Out, Act>(DeviceBackend{}, rows),
                    linear_forward<HostEmulation, In, Out, Act>(HostEmulation{}, rows)));
}

TEST(CudaKernels, LinearForwardAtEveryTileShape) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 5u, 257u, 9000u}) {
    expect_linear_forward<5, 1, k::NoActivation>(rows);
    expect_linear_forward<13, 7, ctnn::ReLU>(rows);
    expect_linear_forward<37, 13, ctnn::Tanh>(rows);
    expect_linear_forward<50, 50, ctnn::ReLU>(rows);
    expect_linear_forward<70, 130, ctnn::GELU>(rows);
  }
}

template <class Backend>
std::vector<float> fused_mlp(const Backend& b, std::size_t rows, bool keep_hidden) {
  using KF = k::FusedMlpForward<k::FusedLayer<5, 37, true, ctnn::ReLU>, k::FusedLayer<37, 128, false, ctnn::Tanh>,
                                k::FusedLayer<128, 13, true, k::NoActivation>>;
  auto x = upload(b, random_values(rows * 5, 15));
  auto w0 = upload(b, random_values(37 * 5, 16)), b0 = upload(b, random_values(37, 17));
  auto w1 = upload(b, random_values(128 * 37, 18));
  auto w2 = upload(b, random_values(13 * 128, 19)), b2 = upload(b, random_values(13, 20));
  typename Backend::template buffer<float> z0(rows * 37), y0(rows * 37), z1(rows * 128), y1(rows * 128), y(rows * 13);
  for (auto* buf : {&z0, &y0, &z1, &y1}) b.zero(buf->get(), buf->size());
  typename KF::Addresses a{};
  a.layer[0] = {w0.raw(), b0.raw(), z0.raw(), y0.raw()};
  a.layer[1] = {w1.raw(), nullptr, z1.raw(), y1.raw()};
  a.layer[2] = {w2.raw(), b2.raw(), nullptr, y.raw()};
  b.template launch<KF>(cuda::Grid{unsigned((rows + KF::rows - 1) / KF::rows)}, static_cast<const float*>(x.raw()), rows,
                        a, keep_hidden);
  std::vector<float> out;
  for (const auto* buf : {&y, &z0, &y0, &z1, &y1}) {
    const auto v = download(b, *buf);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

TEST(CudaKernels, FusedMlpForward) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 33u, 9000u})
    for (bool keep : {true, false}) {
      SCOPED_TRACE(std::to_string(rows) + (keep ? " rows, training" : " rows, evaluation"));
      EXPECT_TRUE(close("y, z, hidden", fused_mlp(DeviceBackend{}, rows, keep), fused_mlp(HostEmulation{}, rows, keep),
                        1e-4, 1e-5));
    }
}

/// The fused backward (kernels/fused_mlp_backward.hpp) with `blocks` blocks
/// (0: its own grid) and the sum of the blocks' partials: dW, db of every
/// layer and dx.
using FusedBackwardKernel =
    k::FusedMlpBackward<k::FusedLayer<5, 37, true, ctnn::ReLU>, k::FusedLayer<37, 16, false, ctnn::Tanh>,
                        k::FusedLayer<16, 13, true, k::NoActivation>>;

template <class Backend>
std::vector<float> fused_mlp_backward(const Backend& b, std::size_t rows, unsigned blocks) {
  using KB = FusedBackwardKernel;
  static_assert(KB::eligible);
  auto x = upload(b, random_values(rows * 5, 21));
  auto w0 = upload(b, random_values(37 * 5, 22)), w1 = upload(b, random_values(16 * 37, 23));
  auto w2 = upload(b, random_values(13 * 16, 24));
  auto z0 = upload(b, random_values(rows * 37, 25)), y0 = upload(b, random_values(rows * 37, 26));
  auto z1 = upload(b, random_values(rows * 16, 27)), y1 = upload(b, random_values(rows * 16, 28));
  auto dy = upload(b, random_values(rows * 13, 29));
  auto dw0 = upload(b, random_values(37 * 5, 30)), db0 = upload(b, random_values(37, 31));
  auto dw1 = upload(b, random_values(16 * 37, 32));
  auto dw2 = upload(b, random_values(13 * 16, 33)), db2 = upload(b, random_values(13, 34));
  typename Backend::template buffer<float> dx(rows * 5);
  const unsigned grid = blocks == 0 ? KB::grid_for(rows) : blocks;
  typename Backend::template buffer<float> partial(std::size_t{grid} * (37 * 5 + 37 + 16 * 37 + 13 * 16 + 13));
  using Sum = k::SumPartials<6>;
  typename Sum::Segments segs{};
  unsigned used = 0;
  std::size_t offset = 0;
  auto target = [&](float* grad, std::size_t count) -> float* {
    if (grid == 1) return grad;
    float* part = partial.raw() + offset;
    segs.s[used++] = {part, grad, count};
    offset += grid * count;
    return part;
  };
  typename KB::Addresses a{};
  a.layer[0] = {w0.raw(), x.raw(), z0.raw(), target(dw0.raw(), 37 * 5), target(db0.raw(), 37)};
  a.layer[1] = {w1.raw(), y0.raw(), z1.raw(), target(dw1.raw(), 16 * 37), nullptr};
  a.layer[2] = {w2.raw(), y1.raw(), nullptr, target(dw2.raw(), 13 * 16), target(db2.raw(), 13)};
  b.template launch<KB>(cuda::Grid{grid}, static_cast<const float*>(dy.raw()), static_cast<const float*>(nullptr),
                        dx.raw(), rows, a, 0u);
  if (used > 0) b.template launch<Sum>(cuda::Grid{k::add_partials_blocks(37 * 16), used, 1}, segs, std::size_t{grid});
  std::vector<float> out;
  for (const auto* buf : {&dw0, &db0, &dw1, &dw2, &db2, &dx}) {
    const auto v = download(b, *buf);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

TEST(CudaKernels, FusedMlpBackward) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 37u, 300u, 9000u, 200000u})
    for (unsigned blocks : {0u, 3u}) {
      SCOPED_TRACE(std::to_string(rows) + " rows, " + std::to_string(blocks) + " blocks");
      // With 3 blocks for 200000 rows each thread adds up about 67000 rows in
      // float, where the GPU's fused multiply-adds round differently from the
      // host's (2e-4 relative seen on an H100): a wider tolerance there.
      const unsigned grid = blocks == 0 ? FusedBackwardKernel::grid_for(rows) : blocks;
      const double tol = double(rows) / grid > 20000 ? 1e-3 : 1e-4;
      EXPECT_TRUE(close("dW, db, dx", fused_mlp_backward(DeviceBackend{}, rows, blocks),
                        fused_mlp_backward(HostEmulation{}, rows, blocks), tol, tol));
    }
}

template <class Backend, std::size_t In, std::size_t Out>
std::vector<float> linear_backward(const Backend& b, std::size_t rows) {
  auto x = upload(b, random_values(rows * In, 4));
  auto w = upload(b, random_values(Out * In, 5));
  auto dy = upload(b, random_values(rows * Out, 6));
  auto z = upload(b, random_values(rows * Out, 7));
  auto y = upload(b, random_values(rows * Out, 8));
  auto dw = upload(b, random_values(Out * In, 9));
  auto db = upload(b, random_values(Out, 10));
  typename Backend::template buffer<float> dz(rows * Out), dx(rows * In);
  using Tile = k::gemm_tile_for<In>;       // dx
  using WTile = k::gemm_tile_2d<Out, In>;  // dw
  const std::size_t chunks = std::min<std::size_t>((rows + 255) / 256, 1024);
  const std::size_t chunk_rows = (rows + chunks - 1) / chunks;
  const k::SplitK s = k::split_k(rows, In * Out, WTile::bk);
  typename Backend::template buffer<float> partial(std::max<std::size_t>(chunks * Out, s.splits * Out * In));
  b.template launch<k::OutputGradient<ctnn::ReLU, true, true>>(
      cuda::Grid{unsigned((Out + 31) / 32), unsigned((rows + chunk_rows - 1) / chunk_rows), 1},
      static_cast<const float*>(dy.raw()), static_cast<const float*>(z.raw()), static_cast<const float*>(y.raw()),
      dz.raw(), partial.raw(), rows, Out, chunk_rows, false);
  b.template launch<k::AddPartials>(cuda::Grid{k::add_partials_blocks(Out)}, static_cast<const float*>(partial.raw()),
                                    (rows + chunk_rows - 1) / chunk_rows, db.raw(), Out, true);
  using G = k::Gemm<WTile, 1, Out, In, 1, k::SplitEpilogue>;
  b.template launch<G>(cuda::Grid{unsigned((Out + WTile::bm - 1) / WTile::bm), unsigned((In + WTile::bn - 1) / WTile::bn),
                                  unsigned(s.splits)},
                       static_cast<const float*>(dz.raw()), static_cast<const float*>(x.raw()), Out, In, rows,
                       s.chunk, k::SplitEpilogue{partial.raw(), In, In * Out});
  b.template launch<k::AddPartials>(cuda::Grid{k::add_partials_blocks(In * Out)},
                                    static_cast<const float*>(partial.raw()), s.splits, dw.raw(), In * Out, true);
  using GX = k::Gemm<Tile, Out, 1, In, 1, k::StoreEpilogue>;
  b.template launch<GX>(cuda::Grid{unsigned((rows + GX::BM - 1) / GX::BM), unsigned((In + GX::BN - 1) / GX::BN), 1},
                        static_cast<const float*>(dz.raw()), static_cast<const float*>(w.raw()), rows, In, Out, Out,
                        k::StoreEpilogue{dx.raw(), In, false});
  std::vector<float> out;
  for (const auto* buf : {&dz, &dw, &db, &dx}) {
    const auto v = download(b, *buf);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

template <std::size_t In, std::size_t Out>
void expect_linear_backward(std::size_t rows) {
  SCOPED_TRACE(std::to_string(In) + " -> " + std::to_string(Out) + ", rows " + std::to_string(rows));
  EXPECT_TRUE(close("dz, dw, db, dx", linear_backward<DeviceBackend, In, Out>(DeviceBackend{}, rows),
                    linear_backward<HostEmulation, In, Out>(HostEmulation{}, rows), 1e-4, 1e-4));
}

TEST(CudaKernels, LinearBackward) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 13u, 257u, 9000u}) {
    expect_linear_backward<5, 13>(rows);
    expect_linear_backward<37, 5>(rows);
    expect_linear_backward<50, 1>(rows);
    expect_linear_backward<130, 100>(rows);
  }
}

template <class Backend>
std::vector<float> losses(const Backend& b, std::size_t rows, std::size_t cols) {
  auto pred = upload(b, random_values(rows * cols, 11));
  auto target = upload(b, random_values(rows * cols, 12));
  std::vector<std::int64_t> labels(rows);
  for (std::size_t r = 0; r < rows; ++r) labels[r] = static_cast<std::int64_t>((r * 7) % cols);
  typename Backend::template buffer<std::int64_t> dl(rows);
  b.copy_in(dl.get(), labels.data(), rows);
  typename Backend::template buffer<float> grad(rows * cols), grad2(rows * cols);
  typename Backend::template buffer<double> partial(2 * 1024 + 4);
  const unsigned blocks = k::blocks_for(rows * cols, 256, 1024);
  b.template launch<k::MseLoss>(cuda::Grid{blocks}, static_cast<const float*>(pred.raw()),
                                static_cast<const float*>(target.raw()), grad.raw(), rows * cols, 0.5f, partial.raw());
  b.template launch<k::FinishLoss>(cuda::Grid{1}, static_cast<const double*>(partial.raw()), std::size_t{blocks}, 0.25,
                                   false, partial.raw() + 2048);
  double results[4];
  b.copy_out(results, cuda::device_ptr<const double>(partial.raw() + 2048), 2);
  const unsigned ce_blocks = k::blocks_for(rows, 256, 1024);
  b.template launch<k::CrossEntropyLoss>(cuda::Grid{ce_blocks}, static_cast<const float*>(pred.raw()),
                                         static_cast<const std::int64_t*>(dl.raw()), grad2.raw(), rows, cols,
                                         1.0 / double(rows), 0.1, 0.01f, 0.9f, partial.raw());
  b.template launch<k::FinishLoss>(cuda::Grid{1}, static_cast<const double*>(partial.raw()), std::size_t{ce_blocks},
                                   1.0 / double(rows), true, partial.raw() + 2050);
  b.copy_out(results + 2, cuda::device_ptr<const double>(partial.raw() + 2050), 2);
  auto out = download(b, grad);
  const auto g2 = download(b, grad2);
  out.insert(out.end(), g2.begin(), g2.end());
  for (double r : results) out.push_back(static_cast<float>(r));
  return out;
}

TEST(CudaKernels, Losses) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 37u, 9000u})
    for (std::size_t cols : {1u, 5u, 13u}) {
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
      EXPECT_TRUE(close("grads, values", losses(DeviceBackend{}, rows, cols), losses(HostEmulation{}, rows, cols)));
    }
}

/// LayerNorm (forward with statistics, weight and bias sums over row chunks,
/// input gradient) and BatchNorm1d (training forward with the running
/// statistics, backward, evaluation forward) over `rows` rows of F features.
template <class Backend, std::size_t F>
std::vector<float> norm_kernels(const Backend& b, std::size_t rows) {
  auto x = upload(b, random_values(rows * F, 21));
  auto dy = upload(b, random_values(rows * F, 22));
  std::vector<float> wb = random_values(2 * F, 23);
  auto params = upload(b, wb);
  std::vector<float> running = random_values(2 * F, 24);
  for (float& r : running) r = r * 0.5f + 1.0f;
  auto buffers = upload(b, running);
  const std::vector<float> zeros(2 * F, 0.0f);
  auto grads = upload(b, zeros), bn_grads = upload(b, zeros);
  const std::size_t chunks = (rows + 255) / 256, chunk_rows = (rows + chunks - 1) / chunks;
  typename Backend::template buffer<float> y(rows * F), stats(2 * rows), dx(rows * F), partial(2 * chunks * F);
  typename Backend::template buffer<float> by(rows * F), ws(rows * F + 2 * F), bdx(rows * F), ey(rows * F);
  const float* w = params.raw();
  const float* bias = params.raw() + F;
  const unsigned row_blocks = k::blocks_for(rows, 256);
  const unsigned groups = static_cast<unsigned>((F + 31) / 32);
  b.template launch<k::LayerNormForward<F>>(cuda::Grid{row_blocks}, static_cast<const float*>(x.raw()), w, bias,
                                            y.raw(), stats.raw(), rows, 1e-5);
  b.template launch<k::LayerNormParamGradient<F>>(cuda::Grid{groups, static_cast<unsigned>(chunks), 1},
                                                  static_cast<const float*>(x.raw()),
                                                  static_cast<const float*>(dy.raw()),
                                                  static_cast<const float*>(stats.raw()), partial.raw(),
                                                  partial.raw() + chunks * F, rows, chunk_rows, false);
  b.template launch<k::AddPartials>(cuda::Grid{k::add_partials_blocks(F)}, static_cast<const float*>(partial.raw()),
                                    chunks, grads.raw(), F, true);
  b.template launch<k::AddPartials>(cuda::Grid{k::add_partials_blocks(F)},
                                    static_cast<const float*>(partial.raw() + chunks * F), chunks, grads.raw() + F, F,
                                    true);
  b.template launch<k::LayerNormInputGradient<F>>(cuda::Grid{row_blocks}, static_cast<const float*>(x.raw()),
                                                  static_cast<const float*>(dy.raw()), w,
                                                  static_cast<const float*>(stats.raw()), dx.raw(), rows);
  b.template launch<k::BatchNormTrainForward<F>>(cuda::Grid{groups}, static_cast<const float*>(x.raw()), w, bias,
                                                 by.raw(), ws.raw(), ws.raw() + rows * F, ws.raw() + rows * F + F,
                                                 buffers.raw(), buffers.raw() + F, rows, 1e-5, 0.1);
  b.template launch<k::BatchNormBackward<F>>(cuda::Grid{groups}, static_cast<const float*>(dy.raw()),
                                             static_cast<const float*>(ws.raw()),
                                             static_cast<const float*>(ws.raw() + rows * F + F), w, bn_grads.raw(),
                                             bn_grads.raw() + F, bdx.raw(), rows);
  b.template launch<k::BatchNormEvalForward<F>>(cuda::Grid{k::blocks_for(rows * F, 256)},
                                                static_cast<const float*>(x.raw()), w, bias,
                                                static_cast<const float*>(buffers.raw()),
                                                static_cast<const float*>(buffers.raw() + F), ey.raw(), rows * F, 1e-5);
  std::vector<float> out;
  for (const auto* d : {&y, &stats, &grads, &dx, &by, &ws, &bn_grads, &bdx, &buffers, &ey}) {
    const auto h = download(b, *d);
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

TEST(CudaKernels, LayerNormAndBatchNorm) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {2u, 37u, 300u, 9000u}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    EXPECT_TRUE(close("width 5", norm_kernels<DeviceBackend, 5>(DeviceBackend{}, rows),
                      norm_kernels<HostEmulation, 5>(HostEmulation{}, rows), 1e-4, 1e-4));
    EXPECT_TRUE(close("width 37", norm_kernels<DeviceBackend, 37>(DeviceBackend{}, rows),
                      norm_kernels<HostEmulation, 37>(HostEmulation{}, rows), 1e-4, 1e-4));
  }
}

/// Softmax and LogSoftmax forward and backward, and a dropout mask (the same
/// bits on both: a hash of the key and the element).
template <class Backend, std::size_t W>
std::vector<float> rowwise_kernels(const Backend& b, std::size_t rows) {
  auto x = upload(b, random_values(rows * W, 31));
  auto dy = upload(b, random_values(rows * W, 32));
  typename Backend::template buffer<float> y(rows * W), ly(rows * W), dx(rows * W), ldx(rows * W), dy_out(rows * W),
      mask(rows * W), ddx(rows * W);
  const unsigned row_blocks = k::blocks_for(rows, 256);
  const float* xs = x.raw();
  const float* dys = dy.raw();
  b.template launch<k::RowSoftmaxForward<W, false>>(cuda::Grid{row_blocks}, xs, y.raw(), rows);
  b.template launch<k::RowSoftmaxForward<W, true>>(cuda::Grid{row_blocks}, xs, ly.raw(), rows);
  b.template launch<k::RowSoftmaxBackward<W, false>>(cuda::Grid{row_blocks}, static_cast<const float*>(y.raw()), dys,
                                                     dx.raw(), rows);
  b.template launch<k::RowSoftmaxBackward<W, true>>(cuda::Grid{row_blocks}, static_cast<const float*>(ly.raw()), dys,
                                                    ldx.raw(), rows);
  const std::size_t count = rows * W;
  b.template launch<k::DropoutForward>(cuda::Grid{k::blocks_for(count, 256)}, xs, dy_out.raw(), mask.raw(), count,
                                       k::dropout_key(7, 3), 0.3f, 1.0f / 0.7f);
  b.template launch<k::Multiply>(cuda::Grid{k::blocks_for(count, 256)}, dys, static_cast<const float*>(mask.raw()),
                                 ddx.raw(), count);
  std::vector<float> out;
  for (const auto* d : {&y, &ly, &dx, &ldx, &dy_out, &mask, &ddx}) {
    const auto h = download(b, *d);
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

TEST(CudaKernels, SoftmaxAndDropout) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t rows : {1u, 37u, 9000u}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    EXPECT_TRUE(close("width 5", rowwise_kernels<DeviceBackend, 5>(DeviceBackend{}, rows),
                      rowwise_kernels<HostEmulation, 5>(HostEmulation{}, rows)));
    EXPECT_TRUE(close("width 64", rowwise_kernels<DeviceBackend, 64>(DeviceBackend{}, rows),
                      rowwise_kernels<HostEmulation, 64>(HostEmulation{}, rows)));
  }
}

template <class Backend>
std::vector<float> optimizer_steps(const Backend& b, std::size_t n) {
  auto p = upload(b, random_values(n, 13));
  auto g = upload(b, random_values(n, 14));
  const std::vector<float> zeros(n, 0.0f);
  auto momentum = upload(b, zeros);
  auto m = upload(b, zeros), v = upload(b, zeros), vmax = upload(b, zeros);
  auto square_avg = upload(b, zeros), grad_avg = upload(b, zeros), buf = upload(b, zeros);
  const unsigned blocks = k::blocks_for(n, 256);
  const float* grad = g.raw();
  // SGD (Nesterov, weight decay): a first step, then one with dampening.
  b.template launch<k::SgdStep<true, true, true, true>>(cuda::Grid{blocks}, p.raw(), grad, momentum.raw(), n, 0.1f,
                                                        0.01f, 0.9f, 1.0f);
  b.template launch<k::SgdStep<true, true, false, false>>(cuda::Grid{blocks}, p.raw(), grad, momentum.raw(), n, 0.1f,
                                                          0.01f, 0.9f, 0.7f);
  // Adam with L2 decay and AMSGrad, two steps.
  k::AdamStepScalars s{0.9f, 0.1f, 0.999f, 0.001f, 0.01f / 0.1f, 0.0316227766f, 1e-8f, 0.01f, 0.9999f};
  b.template launch<k::AdamStep<true, false, true>>(cuda::Grid{blocks}, p.raw(), grad, m.raw(), v.raw(), vmax.raw(),
                                                    n, s);
  s.step_size = 0.01f / 0.19f;
  s.bias2_sqrt = 0.0447101778f;
  b.template launch<k::AdamStep<true, false, true>>(cuda::Grid{blocks}, p.raw(), grad, m.raw(), v.raw(), vmax.raw(),
                                                    n, s);
  // AdamW's decoupled decay.
  b.template launch<k::AdamStep<false, true, false>>(cuda::Grid{blocks}, p.raw(), grad, m.raw(), v.raw(), vmax.raw(),
                                                     n, s);
  // RMSprop, centred, with momentum and weight decay.
  using R = k::RmspropStep<true, true, true>;
  b.template launch<R>(cuda::Grid{blocks}, p.raw(), grad, square_avg.raw(), grad_avg.raw(), buf.raw(), n,
                       R::Scalars{0.01f, 0.99f, 0.01f, 1e-8f, 0.01f, 0.5f});
  std::vector<float> out;
  for (const auto* d : {&p, &momentum, &m, &v, &vmax, &square_avg, &grad_avg, &buf}) {
    const auto h = download(b, *d);
    out.insert(out.end(), h.begin(), h.end());
  }
  for (float x : out)
    if (!std::isfinite(x)) ADD_FAILURE() << "an optimizer step gave " << x;
  return out;
}

TEST(CudaKernels, OptimizerSteps) {
  CTNN_REQUIRE_CUDA_DEVICE();
  for (std::size_t n : {1u, 37u, 70000u})
    EXPECT_TRUE(close("parameters", optimizer_steps(DeviceBackend{}, n), optimizer_steps(HostEmulation{}, n)));
}

}  // namespace

#include "cuda_test_main.hpp"

// The device kernels on the host emulation (cuda/emulate.hpp), compiled by the
// host C++ compiler: every kernel body runs over the same grid and blocks as
// on a GPU, and is compared with the CPU path on odd sizes (5, 13, 37, 50;
// batches of 1 to 257 rows, and 9000 for the split-K weight gradients) and
// with PyTorch's conformance data. Runs on every machine; needs no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda/emulated.hpp>
#include <ctnn/cuda/kernels/activation.hpp>
#include <ctnn/cuda/kernels/elementwise.hpp>
#include <ctnn/cuda/kernels/fused_mlp.hpp>
#include <ctnn/cuda/kernels/fused_mlp_backward.hpp>
#include <ctnn/cuda/kernels/gemm.hpp>

#include "device_cases.hpp"

namespace ctnn::test {
namespace {

using cuda::HostEmulation;
namespace k = cuda::kernels;
namespace emu = cuda::emulated;
using namespace device;

// ---- activations: the device forms against the CPU's f and f' ------------------------

template <class Fn>
void expect_device_form_matches() {
  SCOPED_TRACE(std::string(Fn::kind));
  using D = k::device_activation<Fn>;
  for (int i = -1200; i <= 1200; ++i) {
    const float x = i == 0 ? 0.0f : float(i) * 0.005f;
    const float y = Fn::f(x);
    ASSERT_NEAR(D::f(x), y, 1e-6f + 1e-6f * std::fabs(y)) << "f(" << x << ")";
    const float d = Fn::df(x, y);
    ASSERT_NEAR(D::df(x, y), d, 1e-6f + 1e-6f * std::fabs(d)) << "f'(" << x << ")";
  }
  for (float x : {-1.0f, 1.0f, -20.0f, 20.0f, 25.0f, -0.0f}) {
    const float y = Fn::f(x);
    EXPECT_NEAR(D::f(x), y, 1e-6f + 1e-6f * std::fabs(y)) << "f(" << x << ")";
    EXPECT_EQ(D::df(x, y), Fn::df(x, y)) << "f'(" << x << ")";
  }
}

TEST(CudaEmulationKernels, ActivationDeviceFormsMatchTheCpu) {
  expect_device_form_matches<Identity>();
  expect_device_form_matches<ReLU>();
  expect_device_form_matches<LeakyReLU<>>();
  expect_device_form_matches<LeakyReLU<std::ratio<1, 5>>>();
  expect_device_form_matches<GELU>();
  expect_device_form_matches<GELUTanh>();
  expect_device_form_matches<Sigmoid>();
  expect_device_form_matches<Tanh>();
  expect_device_form_matches<SiLU>();
  expect_device_form_matches<ELU<>>();
  expect_device_form_matches<ELU<std::ratio<1, 2>>>();
  expect_device_form_matches<Softplus<>>();
  expect_device_form_matches<Softplus<std::ratio<2>, std::ratio<10>>>();
  expect_device_form_matches<Hardtanh<>>();
  expect_device_form_matches<Hardtanh<std::ratio<-2>, std::ratio<1, 2>>>();
}

// ---- the GEMM body on its own, against double-precision loops ------------------------

/// y = relu(x.w^T + b) with the forward tile for Out, on odd shapes.
template <std::size_t In, std::size_t Out>
void expect_forward_gemm(std::size_t rows) {
  SCOPED_TRACE("In " + std::to_string(In) + " Out " + std::to_string(Out) + " rows " + std::to_string(rows));
  HostEmulation emu;
  const auto xv = random_values(rows * In, 1), wv = random_values(Out * In, 2), bv = random_values(Out, 3);
  cuda::EmulatedBuffer<float> x(rows * In), w(Out * In), b(Out), z(rows * Out), y(rows * Out);
  emu.copy_in(x.get(), xv.data(), xv.size());
  emu.copy_in(w.get(), wv.data(), wv.size());
  emu.copy_in(b.get(), bv.data(), bv.size());
  using Tile = k::gemm_tile_for<Out>;
  using Epi = k::LinearForwardEpilogue<ReLU, true>;
  using G = k::Gemm<Tile, In, 1, 1, In, Epi>;
  emu.launch<G>(cuda::Grid{unsigned((rows + G::BM - 1) / G::BM), unsigned((Out + G::BN - 1) / G::BN), 1},
                static_cast<const float*>(x.raw()), static_cast<const float*>(w.raw()), rows, Out, In, In,
                Epi{b.raw(), z.raw(), y.raw(), Out});
  std::vector<float> ref_z(rows * Out), ref_y(rows * Out);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < Out; ++o) {
      double acc = bv[o];
      for (std::size_t i = 0; i < In; ++i) acc += double(xv[r * In + i]) * double(wv[o * In + i]);
      ref_z[r * Out + o] = float(acc);
      ref_y[r * Out + o] = acc > 0 ? float(acc) : 0.0f;
    }
  EXPECT_TRUE(all_close("z", {z.raw(), rows * Out}, ref_z, {1e-5, 1e-5}));
  EXPECT_TRUE(all_close("y", {y.raw(), rows * Out}, ref_y, {1e-5, 1e-5}));
}

TEST(CudaEmulationKernels, ForwardGemmAtEveryTileShape) {
  for (std::size_t rows : {1u, 5u, 13u, 37u, 257u}) {
    expect_forward_gemm<5, 1>(rows);    // 4-wide tile
    expect_forward_gemm<13, 5>(rows);   // 4-wide tile, two column blocks
    expect_forward_gemm<37, 7>(rows);   // 8-wide tile
    expect_forward_gemm<5, 13>(rows);   // 32-wide tile
    expect_forward_gemm<13, 37>(rows);  // 32-wide tile, two column blocks
    expect_forward_gemm<37, 50>(rows);  // 64-wide tile
  }
  expect_forward_gemm<130, 70>(300);  // several K slices and column blocks
  expect_forward_gemm<70, 130>(300);  // 128 x 128 tiles, 8 x 8 a thread
}

/// dw += dz^T.x with and without split-K, and dx = dz.w.
template <std::size_t In, std::size_t Out>
void expect_backward_gemms(std::size_t rows) {
  SCOPED_TRACE("In " + std::to_string(In) + " Out " + std::to_string(Out) + " rows " + std::to_string(rows));
  HostEmulation emu;
  const auto xv = random_values(rows * In, 4), wv = random_values(Out * In, 5), dzv = random_values(rows * Out, 6);
  const auto dw0 = random_values(Out * In, 7);
  cuda::EmulatedBuffer<float> x(rows * In), w(Out * In), dz(rows * Out), dw(Out * In), dx(rows * In);
  emu.copy_in(x.get(), xv.data(), xv.size());
  emu.copy_in(w.get(), wv.data(), wv.size());
  emu.copy_in(dz.get(), dzv.data(), dzv.size());
  emu.copy_in(dw.get(), dw0.data(), dw0.size());
  using Tile = k::gemm_tile_for<In>;         // dx: M = rows, N = In
  using WTile = k::gemm_tile_2d<Out, In>;    // dw: M = Out, N = In
  const k::SplitK s = k::split_k(rows, In * Out, WTile::bk);
  const unsigned gx = unsigned((Out + WTile::bm - 1) / WTile::bm), gy = unsigned((In + WTile::bn - 1) / WTile::bn);
  if (s.splits == 1) {
    using G = k::Gemm<WTile, 1, Out, In, 1, k::StoreEpilogue>;
    emu.launch<G>(cuda::Grid{gx, gy, 1}, static_cast<const float*>(dz.raw()), static_cast<const float*>(x.raw()), Out,
                  In, rows, rows, k::StoreEpilogue{dw.raw(), In, true});
  } else {
    cuda::EmulatedBuffer<float> partial(s.splits * In * Out);
    using G = k::Gemm<WTile, 1, Out, In, 1, k::SplitEpilogue>;
    emu.launch<G>(cuda::Grid{gx, gy, unsigned(s.splits)}, static_cast<const float*>(dz.raw()),
                  static_cast<const float*>(x.raw()), Out, In, rows, s.chunk,
                  k::SplitEpilogue{partial.raw(), In, In * Out});
    emu.launch<k::AddPartials>(cuda::Grid{k::add_partials_blocks(In * Out)}, static_cast<const float*>(partial.raw()),
                               s.splits, dw.raw(), In * Out, true);
  }
  {
    using G = k::Gemm<Tile, Out, 1, In, 1, k::StoreEpilogue>;
    emu.launch<G>(cuda::Grid{unsigned((rows + G::BM - 1) / G::BM), unsigned((In + G::BN - 1) / G::BN), 1}, static_cast<const float*>(dz.raw()),
                  static_cast<const float*>(w.raw()), rows, In, Out, Out, k::StoreEpilogue{dx.raw(), In, false});
  }
  std::vector<float> ref_dw(Out * In), ref_dx(rows * In);
  for (std::size_t o = 0; o < Out; ++o)
    for (std::size_t i = 0; i < In; ++i) {
      double acc = dw0[o * In + i];
      for (std::size_t r = 0; r < rows; ++r) acc += double(dzv[r * Out + o]) * double(xv[r * In + i]);
      ref_dw[o * In + i] = float(acc);
    }
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < In; ++i) {
      double acc = 0;
      for (std::size_t o = 0; o < Out; ++o) acc += double(dzv[r * Out + o]) * double(wv[o * In + i]);
      ref_dx[r * In + i] = float(acc);
    }
  // float sums over up to 20000 rows: the allowance grows with K.
  EXPECT_TRUE(all_close("dw", {dw.raw(), Out * In}, ref_dw, {1e-4, rows > 1000 ? 1e-4 : 1e-5}));
  EXPECT_TRUE(all_close("dx", {dx.raw(), rows * In}, ref_dx, {1e-5, 1e-5}));
}

TEST(CudaEmulationKernels, BackwardGemms) {
  for (std::size_t rows : {1u, 5u, 13u, 37u, 257u}) {
    expect_backward_gemms<5, 13>(rows);
    expect_backward_gemms<13, 37>(rows);
    expect_backward_gemms<37, 5>(rows);
    expect_backward_gemms<50, 1>(rows);
  }
  EXPECT_EQ(k::split_k(600, 13 * 37, 16).splits, 2u);
  EXPECT_EQ(k::split_k(9000, 7 * 5, 16).splits, 18u);
  EXPECT_EQ(k::split_k(std::size_t{1} << 21, 128 * 128, 16, 4).splits, 128u);  // 512 blocks in all
  expect_backward_gemms<13, 37>(600);    // split-K: 2 splits, the second one short
  expect_backward_gemms<7, 5>(9000);     // split-K: 18 splits
  expect_backward_gemms<50, 13>(20000);  // split-K: 40 splits over a 16 x 64 tile
  expect_backward_gemms<130, 100>(700);  // 128 x 128 tiles (8 x 8 a thread), two by two; 2 splits
}

// ---- the fused MLP kernels on their own, against double-precision loops ----------------

/// One pipeline of fused layers: the forward kernel in training mode (z and y of
/// every layer, stored through shared memory), then the backward kernel with
/// `blocks` blocks (0: its own grid; fewer blocks than tiles make each block walk
/// several tiles) and SumPartials, against loops in double. Layers below
/// `first_trainable` are frozen; with `input_gradient` the kernel also gives dx.
template <class... Layers>
struct FusedPipelineCase {
  static constexpr std::size_t L = sizeof...(Layers);
  using Forward = k::FusedMlpForward<Layers...>;
  using Backward = k::FusedMlpBackward<Layers...>;
  static_assert(Backward::eligible);
  static constexpr std::size_t in[L] = {Layers::in_features...};
  static constexpr std::size_t out[L] = {Layers::out_features...};
  static constexpr bool bias[L] = {Layers::bias...};

  static void check(std::size_t rows, unsigned blocks, std::size_t first_trainable, bool input_gradient) {
    SCOPED_TRACE("rows " + std::to_string(rows) + ", blocks " + std::to_string(blocks) + ", first trainable " +
                 std::to_string(first_trainable) + (input_gradient ? ", with dx" : ""));
    HostEmulation emu;
    const std::size_t n0 = in[0], nl = out[L - 1];
    const auto xv = random_values(rows * n0, 31, -2.0f, 2.0f);
    cuda::EmulatedBuffer<float> x(rows * n0);
    emu.copy_in(x.get(), xv.data(), xv.size());
    std::vector<std::vector<float>> wv(L), bv(L), dw0(L), db0(L);
    std::vector<cuda::EmulatedBuffer<float>> w, b, z, y, dw, db;
    typename Forward::Addresses fa{};
    for (std::size_t l = 0; l < L; ++l) {
      wv[l] = random_values(out[l] * in[l], 40 + l);
      bv[l] = random_values(out[l], 50 + l);
      dw0[l] = random_values(out[l] * in[l], 60 + l);
      db0[l] = random_values(out[l], 70 + l);
      w.emplace_back(out[l] * in[l]);
      b.emplace_back(out[l]);
      z.emplace_back(rows * out[l]);
      y.emplace_back(rows * out[l]);
      dw.emplace_back(out[l] * in[l]);
      db.emplace_back(out[l]);
      emu.copy_in(w[l].get(), wv[l].data(), wv[l].size());
      emu.copy_in(b[l].get(), bv[l].data(), bv[l].size());
      emu.copy_in(dw[l].get(), dw0[l].data(), dw0[l].size());
      emu.copy_in(db[l].get(), db0[l].data(), db0[l].size());
    }
    const bool has_act[L] = {!std::is_same_v<typename Layers::activation, k::NoActivation>...};
    for (std::size_t l = 0; l < L; ++l)
      fa.layer[l] = {w[l].raw(), bias[l] ? b[l].raw() : nullptr, has_act[l] ? z[l].raw() : nullptr, y[l].raw()};
    emu.launch<Forward>(cuda::Grid{unsigned((rows + Forward::rows - 1) / Forward::rows)},
                        static_cast<const float*>(x.raw()), rows, fa, true);

    // The forward in double: z and y of every layer (the backward reads the kernel's own).
    std::vector<std::vector<float>> zk(L), yk(L);
    {
      std::vector<double> a(xv.begin(), xv.end());
      for (std::size_t l = 0; l < L; ++l) {
        zk[l].assign(z[l].raw(), z[l].raw() + rows * out[l]);
        yk[l].assign(y[l].raw(), y[l].raw() + rows * out[l]);
        std::vector<double> next(rows * out[l]), zz(rows * out[l]);
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t o = 0; o < out[l]; ++o) {
            double acc = bias[l] ? bv[l][o] : 0.0;
            for (std::size_t i = 0; i < in[l]; ++i) acc += a[r * in[l] + i] * wv[l][o * in[l] + i];
            zz[r * out[l] + o] = acc;
          }
        apply_forward(l, zz, next);
        if (has_act[l]) {
          EXPECT_TRUE(all_close("z" + std::to_string(l), zk[l], std::vector<float>(zz.begin(), zz.end()), {1e-5, 1e-4}));
        }
        EXPECT_TRUE(all_close("y" + std::to_string(l), yk[l], std::vector<float>(next.begin(), next.end()), {1e-5, 1e-4}));
        a = std::move(next);
      }
    }

    // The backward kernel.
    const auto dyv = random_values(rows * nl, 32);
    cuda::EmulatedBuffer<float> dy(rows * nl), dx(rows * n0);
    emu.copy_in(dy.get(), dyv.data(), dyv.size());
    const unsigned grid = blocks == 0 ? Backward::grid_for(rows) : blocks;
    std::size_t per_block = 0;
    for (std::size_t l = 0; l < L; ++l) per_block += out[l] * in[l] + out[l];
    cuda::EmulatedBuffer<float> partial(grid * per_block);
    using Sum = k::SumPartials<2 * L>;
    typename Sum::Segments segs{};
    unsigned used = 0;
    std::size_t offset = 0, longest = 0;
    auto target = [&](bool on, float* grad, std::size_t count) -> float* {
      if (!on) return nullptr;
      if (grid == 1) return grad;
      float* part = partial.raw() + offset;
      segs.s[used++] = {part, grad, count};
      offset += grid * count;
      longest = std::max(longest, count);
      return part;
    };
    typename Backward::Addresses ba{};
    for (std::size_t l = 0; l < L; ++l) {
      const bool on = l >= first_trainable;
      ba.layer[l] = {w[l].raw(), l == 0 ? x.raw() : y[l - 1].raw(), has_act[l] ? z[l].raw() : nullptr,
                     target(on, dw[l].raw(), out[l] * in[l]), target(on && bias[l], db[l].raw(), out[l])};
    }
    const std::size_t first = input_gradient ? 0 : first_trainable;
    emu.launch<Backward>(cuda::Grid{grid}, static_cast<const float*>(dy.raw()), static_cast<const float*>(y[L - 1].raw()),
                         input_gradient ? dx.raw() : nullptr, rows, ba, unsigned(first));
    if (used > 0)
      emu.launch<Sum>(cuda::Grid{k::add_partials_blocks(longest), used, 1}, segs, std::size_t{grid});

    // The backward in double, from the kernel's z and y.
    std::vector<double> g(dyv.begin(), dyv.end());
    for (std::size_t l = L; l-- > first;) {
      std::vector<double> dz(rows * out[l]);
      for (std::size_t e = 0; e < rows * out[l]; ++e) dz[e] = g[e] * activation_df(l, zk[l][e], yk[l][e]);
      const std::vector<float>& xl = l == 0 ? xv : yk[l - 1];
      std::vector<float> ref_dw(out[l] * in[l]), ref_db(out[l]);
      for (std::size_t o = 0; o < out[l]; ++o) {
        double sb = db0[l][o];
        if (l >= first_trainable && bias[l])
          for (std::size_t r = 0; r < rows; ++r) sb += dz[r * out[l] + o];
        ref_db[o] = float(sb);
        for (std::size_t i = 0; i < in[l]; ++i) {
          double sw = dw0[l][o * in[l] + i];
          if (l >= first_trainable)
            for (std::size_t r = 0; r < rows; ++r) sw += dz[r * out[l] + o] * double(xl[r * in[l] + i]);
          ref_dw[o * in[l] + i] = float(sw);
        }
      }
      const std::string tag = std::to_string(l);
      EXPECT_TRUE(all_close("dw" + tag, {dw[l].raw(), out[l] * in[l]}, ref_dw, {1e-4, 1e-4}));
      EXPECT_TRUE(all_close("db" + tag, {db[l].raw(), out[l]}, ref_db, {1e-4, 1e-4}));
      std::vector<double> gp(rows * in[l], 0.0);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < in[l]; ++i)
          for (std::size_t o = 0; o < out[l]; ++o) gp[r * in[l] + i] += dz[r * out[l] + o] * wv[l][o * in[l] + i];
      g = std::move(gp);
    }
    for (std::size_t l = 0; l < first; ++l) {  // skipped: untouched
      EXPECT_EQ(std::vector<float>(dw[l].raw(), dw[l].raw() + out[l] * in[l]), dw0[l]);
      EXPECT_EQ(std::vector<float>(db[l].raw(), db[l].raw() + out[l]), db0[l]);
    }
    if (input_gradient) {
      EXPECT_TRUE(all_close("dx", {dx.raw(), rows * n0}, std::vector<float>(g.begin(), g.end()), {1e-4, 1e-4}));
    }
  }

  static void apply_forward(std::size_t l, const std::vector<double>& zz, std::vector<double>& y) {
    std::size_t i = 0;
    (void)((i++ == l ? (apply<typename Layers::activation>(zz, y), true) : false) || ...);
  }
  template <class Act>
  static void apply(const std::vector<double>& zz, std::vector<double>& y) {
    for (std::size_t e = 0; e < zz.size(); ++e) y[e] = k::device_activation<Act>::f(float(zz[e]));
  }
  static double activation_df(std::size_t l, float zv, float yv) {
    std::size_t i = 0;
    double d = 1.0;
    (void)((i++ == l ? (d = k::device_activation<typename Layers::activation>::df(zv, yv), true) : false) || ...);
    return d;
  }
};

TEST(CudaEmulationKernels, FusedMlpForwardAndBackwardOnOddSizes) {
  using P1 = FusedPipelineCase<k::FusedLayer<3, 16, true, ReLU>, k::FusedLayer<16, 5, false, Tanh>,
                               k::FusedLayer<5, 13, true, k::NoActivation>, k::FusedLayer<13, 3, true, Sigmoid>>;
  using P2 = FusedPipelineCase<k::FusedLayer<13, 37, true, GELU>, k::FusedLayer<37, 64, true, ReLU>,
                               k::FusedLayer<64, 5, true, k::NoActivation>>;
  using P3 = FusedPipelineCase<k::FusedLayer<64, 64, true, Tanh>, k::FusedLayer<64, 64, false, SiLU>,
                               k::FusedLayer<64, 16, true, k::NoActivation>>;
  for (std::size_t rows : {1u, 5u, 13u, 37u, 300u}) {
    P1::check(rows, 0, 0, true);
    P2::check(rows, 0, 0, true);
    P3::check(rows, 0, 0, false);
    P1::check(rows, 0, 2, false);  // the first two layers frozen: the kernel stops at layer 2
  }
  P1::check(300, 1, 0, true);  // one block walks every tile, adds to the gradients directly
  P2::check(300, 2, 1, false);  // two blocks, several tiles each, partial sums
  P3::check(300, 3, 0, true);
  P2::check(9000, 0, 0, true);  // 141 tiles, one block each
}

TEST(CudaEmulationKernels, FusedBackwardBudget) {
  // Five 16- or 32-wide layers fit the fused backward; five 64-wide ones
  // (16 weight-gradient registers a layer) do not, and run one layer at a time.
  using W16 = k::FusedLayer<16, 16, true, ReLU>;
  using W32 = k::FusedLayer<32, 32, true, ReLU>;
  using W64 = k::FusedLayer<64, 64, true, ReLU>;
  EXPECT_TRUE((k::FusedMlpBackward<W16, W16, W16, W16, W16>::eligible));
  EXPECT_EQ((k::FusedMlpBackward<W16, W16, W16, W16, W16>::rows), 128u);
  EXPECT_TRUE((k::FusedMlpBackward<W32, W32, W32, W32, W32>::eligible));
  EXPECT_TRUE((k::FusedMlpBackward<W64, W64>::eligible));
  EXPECT_FALSE((k::FusedMlpBackward<W64, W64, W64, W64, W64>::eligible));
  EXPECT_EQ(k::weight_tiling(16, 16, 256).tm * k::weight_tiling(16, 16, 256).tn, 1u);
  EXPECT_EQ(k::weight_tiling(64, 64, 256).tm * k::weight_tiling(64, 64, 256).tn, 16u);
}

TEST(CudaEmulationKernels, EmulationPoisonsSharedMemoryAndBuffers) {
  cuda::EmulatedBuffer<float> b(3);
  EXPECT_TRUE(std::isnan(b.raw()[0]) && std::isnan(b.raw()[2]));  // as cudaMalloc: not zero
}

// ---- whole models against the CPU Model -----------------------------------------------

TEST(CudaEmulation, ForwardBackwardOddMlp) {
  for (std::size_t rows : {1u, 5u, 13u, 37u, 257u}) {
    expect_forward_backward_match_cpu<HostEmulation, OddMlp>(rows, 100 + rows);
    expect_forward_backward_match_cpu<HostEmulation, OddMlp>(rows, 100 + rows, false);
  }
}

TEST(CudaEmulation, ForwardBackwardOddResidual) {
  for (std::size_t rows : {1u, 13u, 257u}) {
    expect_forward_backward_match_cpu<HostEmulation, OddResidual>(rows, 200 + rows);
    expect_forward_backward_match_cpu<HostEmulation, OddResidual>(rows, 200 + rows, false);
  }
}

TEST(CudaEmulation, ForwardBackwardOddProjected) {
  for (std::size_t rows : {1u, 37u, 257u})
    expect_forward_backward_match_cpu<HostEmulation, OddProjected>(rows, 300 + rows);
}

TEST(CudaEmulation, ForwardBackwardLargeBatchSplitsTheWeightGradient) {
  expect_forward_backward_match_cpu<HostEmulation, Sequential<Linear<5, 7>, ReLU, Linear<7, 3>>>(9000, 400);
}

TEST(CudaEmulation, LinearAndActivationRunAsOneKernel) {
  using Net = Sequential<Linear<5, 13>, ReLU, Linear<13, 5>>;
  Model<Net> cpu;
  auto dev = emu::to_device(cpu);
  const auto x = emu::to_device(random_batch<5>(7, 1));
  std::size_t before = dev.backend().launches;
  (void)dev(x);
  EXPECT_EQ(dev.backend().launches - before, 1u);  // the whole forward in one kernel
  dev.fused_mlp(false);
  before = dev.backend().launches;
  auto y = dev(x);
  EXPECT_EQ(dev.backend().launches - before, 2u);  // Linear+ReLU fused, then the last Linear
  const std::size_t before_backward = dev.backend().launches;
  (void)dev.backward(emu::to_device(random_batch<5>(7, 2)));
  // last Linear: bias sum, dW, dX; first pair: dz + bias sum, dW, dX
  EXPECT_EQ(dev.backend().launches - before_backward, 6u);
  dev.fused_mlp(true);
  (void)dev(x);
  const std::size_t before_fused_backward = dev.backend().launches;
  (void)dev.backward(emu::to_device(random_batch<5>(7, 2)));
  EXPECT_EQ(dev.backend().launches - before_fused_backward, 1u);  // the whole backward in one kernel
}

TEST(CudaEmulation, FusedForwardIsAutomaticUpTo64Wide) {
  using Narrow = Sequential<Linear<5, 64>, ReLU, Linear<64, 5>>;
  using Wide = Sequential<Linear<5, 65>, ReLU, Linear<65, 5>>;
  Model<Narrow> narrow_cpu;
  Model<Wide> wide_cpu;
  auto narrow = emu::to_device(narrow_cpu);
  auto wide = emu::to_device(wide_cpu);
  EXPECT_EQ(wide.fused_mlp(), cuda::FusedMlp::automatic);
  const auto x = emu::to_device(random_batch<5>(7, 1));
  auto launches = [&](auto& m) {
    const std::size_t before = m.backend().launches;
    (void)m(x);
    return m.backend().launches - before;
  };
  EXPECT_EQ(launches(narrow), 1u);
  EXPECT_EQ(launches(wide), 2u);  // one GEMM per Linear above 64 wide
  wide.fused_mlp(true);
  EXPECT_EQ(wide.fused_mlp(), cuda::FusedMlp::always);
  EXPECT_EQ(launches(wide), 1u);
  expect_forward_backward_match_cpu<HostEmulation, Wide>(300, 500, true);
}

TEST(CudaEmulation, FrozenLayersLaunchNothingAndGetNoGradient) {
  using Net = OddMlp;
  Model<Net> cpu{seed(5)};
  cpu.freeze("0");
  cpu.freeze("2");
  auto dev = emu::to_device(cpu);
  const auto x = random_batch<5>(13, 6);
  const auto t = random_batch<5>(13, 7);
  cpu.zero_grad();
  dev.zero_grad();
  MSELoss{}(cpu(x), t).backward();
  const std::size_t before = dev.backend().launches;
  auto loss = cuda::MSELoss{}(dev(emu::to_device(x)), emu::to_device(t));
  const std::size_t after_forward = dev.backend().launches;
  loss.backward();
  Model<Net> back = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grads", grads_of(back), grads_of(cpu), gradient_tolerance));
  EXPECT_EQ(back.parameter("0.weight").grad()[0], 0.0f);
  EXPECT_FALSE(back.parameter("2.bias").requires_grad());
  // The fused backward: one kernel (13 rows: one block, which adds to the
  // gradients itself), and it stops at the third pair: nothing before it is trainable.
  EXPECT_EQ(dev.backend().launches - after_forward, 1u) << "forward took " << after_forward - before;

  // One layer at a time: the last Linear: bias sum, dW, dX; the pair before
  // it: dz with bias sum, dW (its dX feeds nothing trainable).
  dev.fused_mlp(false);
  dev.zero_grad();
  auto loss2 = cuda::MSELoss{}(dev(emu::to_device(x)), emu::to_device(t));
  const std::size_t after_forward2 = dev.backend().launches;
  loss2.backward();
  EXPECT_EQ(dev.backend().launches - after_forward2, 5u);
  Model<Net> back2 = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grads, one layer at a time", grads_of(back2), grads_of(cpu), gradient_tolerance));
}

// The fused backward through every layer against the CPU Model: widths 3 to
// 64, batches of 1 to 300 rows (several blocks and their partial sums) and
// 9000 rows.
using Fused3To16 = Sequential<Linear<3, 16>, ReLU, Linear<16, 16>, Tanh, Linear<16, 5, false>, Sigmoid, Linear<5, 3>>;
using Fused13To64 = Sequential<Linear<13, 64>, GELU, Linear<64, 37>, SiLU, Linear<37, 3>>;

TEST(CudaEmulation, FusedBackwardMatchesTheCpu) {
  for (std::size_t rows : {1u, 5u, 13u, 37u, 300u}) {
    expect_forward_backward_match_cpu<HostEmulation, Fused3To16>(rows, 600 + rows);
    expect_forward_backward_match_cpu<HostEmulation, Fused13To64>(rows, 700 + rows);
  }
  expect_forward_backward_match_cpu<HostEmulation, Fused3To16>(9000, 800);
}

TEST(CudaEmulation, FusedBackwardLaunches) {
  Model<Fused13To64> cpu{seed(4)};
  auto dev = emu::to_device(cpu);
  auto launches_of_backward = [&](std::size_t rows) {
    (void)dev(emu::to_device(random_batch<13>(rows, 1)));
    const std::size_t before = dev.backend().launches;
    (void)dev.backward(emu::to_device(random_batch<3>(rows, 2)));
    return dev.backend().launches - before;
  };
  EXPECT_EQ(launches_of_backward(32), 1u);   // one tile: the block adds to the gradients
  EXPECT_EQ(launches_of_backward(300), 2u);  // 10 blocks, then one kernel adds their partial sums
  dev.fused_mlp(false);
  EXPECT_EQ(launches_of_backward(300), 3u * 4u);  // per Linear: dz and bias sums (2 row chunks), their sum, dW, dX
}

TEST(CudaEmulation, CopiesBackAndForth) {
  Model<OddResidual> cpu{seed(9)};
  cpu.freeze("inp");
  cpu.eval();
  auto dev = emu::to_device(cpu);
  EXPECT_FALSE(dev.is_training());
  Model<OddResidual> back = cuda::to_host(dev);
  EXPECT_EQ(params_of(back), params_of(cpu));
  EXPECT_FALSE(back.is_training());
  EXPECT_FALSE(back.parameter("inp.weight").requires_grad());
  EXPECT_TRUE(back.parameter("out.weight").requires_grad());
  const auto x = random_batch<13>(4, 3);
  EXPECT_EQ(cuda::to_host(emu::to_device(x)).values().size(), x.values().size());
  const Labels l{1, 0, 4};
  const Labels l2 = cuda::to_host(emu::to_device(l));
  EXPECT_EQ(l2[0], 1);
  EXPECT_EQ(l2[2], 4);
}

// ---- LayerNorm, BatchNorm1d and Heads against the CPU layers --------------------------------
// Each network alone as a model, so its kernels run against the CPU layer of
// the same type: widths 3, 5, 13, 16, 37 and 64, batches of 1, 5, 13, 37 and
// 300 rows (300: two row chunks of LayerNorm's weight and bias sums).

template <class Net>
void expect_stateful_at_every_batch(std::uint64_t s) {
  SCOPED_TRACE(std::string(Model<Net>::layer::kind) + " " + std::to_string(Model<Net>::in_features));
  for (std::size_t rows : {1u, 5u, 13u, 37u, 300u}) expect_stateful_match_cpu<HostEmulation, Net>(rows, s + rows);
}

TEST(CudaEmulation, LayerNormMatchesTheCpuLayer) {
  expect_stateful_at_every_batch<LayerNorm<3>>(1000);
  expect_stateful_at_every_batch<LayerNorm<5>>(1100);
  expect_stateful_at_every_batch<LayerNorm<13>>(1200);
  expect_stateful_at_every_batch<LayerNorm<16>>(1300);
  expect_stateful_at_every_batch<LayerNorm<37, std::ratio<1, 1000>>>(1400);
  expect_stateful_at_every_batch<LayerNorm<64>>(1500);
  expect_stateful_match_cpu<HostEmulation, LayerNorm<37>>(9000, 1600);
  expect_stateful_match_cpu<HostEmulation, LayerNorm<13>>(300, 1700, true, "weight");
  expect_stateful_match_cpu<HostEmulation, LayerNorm<13>>(37, 1800, true, "bias");
}

TEST(CudaEmulation, BatchNorm1dMatchesTheCpuLayer) {
  expect_stateful_at_every_batch<BatchNorm1d<3>>(2000);
  expect_stateful_at_every_batch<BatchNorm1d<5>>(2100);
  expect_stateful_at_every_batch<BatchNorm1d<13>>(2200);
  expect_stateful_at_every_batch<BatchNorm1d<16>>(2300);
  expect_stateful_at_every_batch<BatchNorm1d<37, std::ratio<3, 10>, std::ratio<1, 1000>>>(2400);
  expect_stateful_at_every_batch<BatchNorm1d<64>>(2500);
  expect_stateful_match_cpu<HostEmulation, BatchNorm1d<37>>(9000, 2600);
  expect_stateful_match_cpu<HostEmulation, BatchNorm1d<13>>(37, 2700, true, "weight");
}

TEST(CudaEmulation, NormalisationInPipelinesMatchesTheCpu) {
  for (std::size_t rows : {1u, 5u, 37u, 300u}) {
    expect_stateful_match_cpu<HostEmulation, NormPipeline<13>>(rows, 3000 + rows);
    expect_stateful_match_cpu<HostEmulation, NormPipeline<64>>(rows, 3100 + rows, false);
  }
  // Frozen trunk: the normalisation layers still pass the input gradient.
  expect_stateful_match_cpu<HostEmulation, NormPipeline<16>>(13, 3200, true, "mid");
}

TEST(CudaEmulation, HeadsMatchTheCpu) {
  for (std::size_t rows : {1u, 5u, 13u, 37u, 300u}) expect_stateful_match_cpu<HostEmulation, OddHeads>(rows, 4000 + rows);
  expect_stateful_match_cpu<HostEmulation, OddHeads>(37, 4100, true, "heads.b");
  expect_stateful_match_cpu<HostEmulation, OddHeads>(37, 4200, true, "heads");
  expect_stateful_match_cpu<HostEmulation, MultiTask>(37, 4300);
}

TEST(CudaEmulation, BatchNorm1dCountsBatchesAndKeepsRunningStatistics) {
  Model<BatchNorm1d<5>> cpu;
  auto dev = emu::to_device(cpu);
  for (int i = 0; i < 3; ++i) (void)dev(emu::to_device(random_batch<5>(7, 50 + i)));
  dev.eval();
  (void)dev(emu::to_device(random_batch<5>(1, 60)));  // evaluation: one row is fine, nothing counted
  Model<BatchNorm1d<5>> back = cuda::to_host(dev);
  EXPECT_EQ(counters_of(back), std::vector<std::int64_t>{3});
  for (int i = 0; i < 3; ++i) (void)cpu(random_batch<5>(7, 50 + i));
  EXPECT_TRUE(all_close("running statistics", buffers_of(back), buffers_of(cpu), forward_tolerance));
}

template <std::size_t W>
using SoftmaxAfterLinear = Sequential<Linear<5, W>, Softmax>;
template <std::size_t W>
using LogSoftmaxAfterLinear = Sequential<Linear<5, W>, LogSoftmax>;

TEST(CudaEmulation, SoftmaxAndLogSoftmaxMatchTheCpuLayers) {
  expect_stateful_at_every_batch<SoftmaxAfterLinear<3>>(5000);
  expect_stateful_at_every_batch<SoftmaxAfterLinear<13>>(5100);
  expect_stateful_at_every_batch<SoftmaxAfterLinear<64>>(5200);
  expect_stateful_at_every_batch<LogSoftmaxAfterLinear<5>>(5300);
  expect_stateful_at_every_batch<LogSoftmaxAfterLinear<16>>(5400);
  expect_stateful_at_every_batch<LogSoftmaxAfterLinear<37>>(5500);
}

/// Dropout<P> after a Linear<5, 64>: in training mode every output is 0 or the
/// Linear's output / (1 - p), about p of them 0; the Linear's gradients are
/// those of the mask the forward drew; the same seed draws the same masks,
/// the next forward another; evaluation mode is the identity.
template <class P>
void expect_dropout_behaves(std::size_t rows, std::uint64_t s) {
  using Net = Sequential<Linear<5, 64>, Dropout<P>>;
  constexpr double p = ctnn::detail::ratio_value<P>;
  SCOPED_TRACE("p = " + std::to_string(p) + ", rows = " + std::to_string(rows));
  Model<Net> cpu{seed(s)};
  auto dev = emu::to_device(cpu);
  dev.dropout_seed(s);
  const Batch<5> x = random_batch<5>(rows, s + 1);
  const auto xd = emu::to_device(x);
  cpu.eval();
  const Batch<64> z = cpu(x);  // the Linear's output: Dropout is the identity in evaluation mode
  const Batch<64> y = cuda::to_host(dev(xd));
  const float keep = p >= 1.0 ? 0.0f : float(1.0 / (1.0 - p));
  std::vector<float> mask(rows * 64);
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < rows * 64; ++i) {
    const float yi = y.data()[i], zi = z.data()[i];
    if (yi == 0.0f) {
      ++dropped;
    } else {
      mask[i] = keep;
      ASSERT_NEAR(yi, zi * keep, 1e-5 + 1e-5 * std::fabs(zi * keep)) << "element " << i;
    }
  }
  const double fraction = double(dropped) / double(rows * 64);
  EXPECT_NEAR(fraction, p, 0.03) << dropped << " of " << rows * 64 << " dropped";

  // Gradients through the drawn mask, in double.
  const Batch<64> dy = random_batch<64>(rows, s + 2);
  dev.zero_grad();
  const Batch<5> dx = cuda::to_host(dev.backward(emu::to_device(dy)));
  const auto params = params_of(cpu);  // weight [64][5], then bias [64]
  std::vector<float> want_dx(rows * 5), want_grads(64 * 5 + 64);
  for (std::size_t o = 0; o < 64; ++o) {
    double db = 0.0;
    std::vector<double> dw(5, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
      const double g = double(dy.data()[r * 64 + o]) * mask[r * 64 + o];
      db += g;
      for (std::size_t i = 0; i < 5; ++i) dw[i] += g * x.data()[r * 5 + i];
    }
    for (std::size_t i = 0; i < 5; ++i) want_grads[o * 5 + i] = float(dw[i]);
    want_grads[64 * 5 + o] = float(db);
  }
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < 5; ++i) {
      double sum = 0.0;
      for (std::size_t o = 0; o < 64; ++o) sum += double(dy.data()[r * 64 + o]) * mask[r * 64 + o] * params[o * 5 + i];
      want_dx[r * 5 + i] = float(sum);
    }
  Model<Net> back = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grad.input", dx.values(), want_dx, gradient_tolerance));
  EXPECT_TRUE(all_close("grad.params", grads_of(back), want_grads, gradient_tolerance));

  // The same seed, the same masks; the next forward, another one.
  auto again = emu::to_device(cpu);
  again.train();
  again.dropout_seed(s);
  EXPECT_TRUE(all_close("same seed", cuda::to_host(again(xd)).values(), y.values(), {0.0, 0.0}));
  if (p > 0.0 && p < 1.0) {
    const Batch<64> next = cuda::to_host(dev(xd));
    EXPECT_FALSE(all_close("next forward", next.values(), y.values(), {0.0, 0.0}));
  }

  dev.eval();
  EXPECT_TRUE(all_close("eval", cuda::to_host(dev(xd)).values(), z.values(), forward_tolerance));
}

TEST(CudaEmulation, DropoutMasksScalingAndGradients) {
  expect_dropout_behaves<std::ratio<1, 2>>(300, 6000);
  expect_dropout_behaves<std::ratio<1, 10>>(37, 6100);
  expect_dropout_behaves<std::ratio<0>>(13, 6200);
  expect_dropout_behaves<std::ratio<1>>(5, 6300);
}

// ---- losses --------------------------------------------------------------------------------

TEST(CudaEmulation, MseLossAndSgdMatchTheCpu) {
  expect_mse_training_matches_cpu<HostEmulation, OddMlp>(
      37, [](auto& m) { return optim::SGD(m, {.lr = 0.05f}); },
      [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.05f}); });
  expect_mse_training_matches_cpu<HostEmulation, OddMlp>(
      5, [](auto& m) { return optim::SGD(m, {.lr = 0.05f}); },
      [](auto& m) { return cuda::optim::SGD(m, {.lr = 0.05f}); }, Reduction::sum);
}

TEST(CudaEmulation, CrossEntropyMatchesTheCpu) {
  expect_cross_entropy_matches_cpu<HostEmulation, OddMlp>(257, CrossEntropyLoss{});
  expect_cross_entropy_matches_cpu<HostEmulation, OddMlp>(13, CrossEntropyLoss{.label_smoothing = 0.1f});
  expect_cross_entropy_matches_cpu<HostEmulation, OddMlp>(
      1, CrossEntropyLoss{.reduction = Reduction::sum, .label_smoothing = 0.3f});
}

TEST(CudaEmulation, CrossEntropyRejectsAnInvalidLabelAsTheCpuDoes) {
  Model<OddMlp> cpu;
  auto dev = emu::to_device(cpu);
  const auto x = random_batch<5>(4, 1);
  const Labels bad{0, 3, 7, 1};
  std::string cpu_message, dev_message;
  try {
    (void)CrossEntropyLoss{}(cpu(x), bad);
  } catch (const ValueError& e) {
    cpu_message = e.what();
  }
  auto loss = cuda::CrossEntropyLoss{}(dev(emu::to_device(x)), emu::to_device(bad));
  try {
    loss.backward();
  } catch (const ValueError& e) {
    dev_message = e.what();
  }
  EXPECT_FALSE(cpu_message.empty());
  EXPECT_EQ(dev_message, cpu_message);
  EXPECT_THROW((void)loss.item(), ValueError);
}

TEST(CudaEmulation, ScaledLossAndStaleLosses) {
  using Net = Sequential<Linear<5, 13>, Tanh, Linear<13, 5>>;
  Model<Net> cpu{seed(3)};
  auto dev = emu::to_device(cpu);
  const auto x = random_batch<5>(9, 1), t = random_batch<5>(9, 2);
  const auto xd = emu::to_device(x), td = emu::to_device(t);
  cpu.zero_grad();
  dev.zero_grad();
  (0.5f * MSELoss{}(cpu(x), t)).backward();
  auto dl = 0.5f * cuda::MSELoss{}(dev(xd), td);
  dl.backward();
  Model<Net> back = cuda::to_host(dev);
  EXPECT_TRUE(all_close("grads", grads_of(back), grads_of(cpu), gradient_tolerance));
  EXPECT_THROW(dl.backward(), Error);  // the graph is gone, as in PyTorch

  auto y = dev(xd);
  auto first = cuda::MSELoss{}(y, td);
  auto second = cuda::MSELoss{}(y, td);
  EXPECT_THROW((void)first.item(), Error);  // its slot holds the second loss now
  EXPECT_NO_THROW(second.backward());
  auto old = dev(xd);
  (void)dev(xd);
  EXPECT_THROW((void)cuda::MSELoss{}(old, td), Error);  // another forward ran since
}

// ---- optimizers ---------------------------------------------------------------------------

TEST(CudaEmulation, SgdVariantsMatchTheCpu) {
  const optim::SGDOptions configs[] = {
      {.lr = 0.05f, .momentum = 0.9f},
      {.lr = 0.05f, .momentum = 0.9f, .dampening = 0.3f, .weight_decay = 0.01f},
      {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true},
  };
  for (const auto& o : configs)
    expect_mse_training_matches_cpu<HostEmulation, OddResidual>(
        13, [&](auto& m) { return optim::SGD(m, o); }, [&](auto& m) { return cuda::optim::SGD(m, o); });
}

TEST(CudaEmulation, AdamVariantsMatchTheCpu) {
  const optim::AdamOptions configs[] = {
      {.lr = 1e-2f},
      {.lr = 1e-2f, .betas = {0.8f, 0.99f}, .weight_decay = 0.01f, .amsgrad = true},
  };
  for (const auto& o : configs)
    expect_mse_training_matches_cpu<HostEmulation, OddMlp>(
        13, [&](auto& m) { return optim::Adam(m, o); }, [&](auto& m) { return cuda::optim::Adam(m, o); });
  // A tensor frozen from step 2 on keeps its own step count for bias correction.
  expect_mse_training_matches_cpu<HostEmulation, OddMlp>(
      13, [&](auto& m) { return optim::Adam(m, {.lr = 1e-2f}); },
      [&](auto& m) { return cuda::optim::Adam(m, {.lr = 1e-2f}); }, Reduction::mean, 4, "2");
}

TEST(CudaEmulation, AdamWMatchesTheCpu) {
  expect_mse_training_matches_cpu<HostEmulation, OddProjected>(
      37, [](auto& m) { return optim::AdamW(m, {.lr = 1e-2f, .weight_decay = 0.1f}); },
      [](auto& m) { return cuda::optim::AdamW(m, {.lr = 1e-2f, .weight_decay = 0.1f}); });
}

TEST(CudaEmulation, RmspropVariantsMatchTheCpu) {
  const optim::RMSpropOptions configs[] = {
      {.lr = 1e-2f},
      {.lr = 1e-2f, .alpha = 0.9f, .weight_decay = 0.01f, .momentum = 0.5f, .centered = true},
  };
  for (const auto& o : configs)
    expect_mse_training_matches_cpu<HostEmulation, OddMlp>(
        13, [&](auto& m) { return optim::RMSprop(m, o); }, [&](auto& m) { return cuda::optim::RMSprop(m, o); },
        Reduction::mean, 3, {}, o.centered ? centered_rmsprop_state : gradient_tolerance);
}

TEST(CudaEmulation, OptimizerOptionsAreValidatedAsOnTheCpu) {
  Model<OddMlp> cpu;
  auto dev = emu::to_device(cpu);
  EXPECT_THROW(cuda::optim::SGD(dev, {.lr = -1.0f}), ValueError);
  EXPECT_THROW(cuda::optim::Adam(dev, {.betas = {1.0f, 0.9f}}), ValueError);
  cuda::optim::SGD opt(dev, {.lr = 0.1f, .momentum = 0.9f});
  EXPECT_THROW(opt.load_state_dict(std::vector<optim::NamedState>{{"step", {1.0f}}}), LoadError);
  EXPECT_EQ(opt.steps(), 0);
}

// ---- PyTorch's conformance cases ------------------------------------------------------------

using Cases = ConformanceCases<HostEmulation>;
TEST(CudaEmulationConformance, TinyLinear) { Cases::tiny_linear(); }
TEST(CudaEmulationConformance, Mlp381) { Cases::mlp_3_8_1(); }
TEST(CudaEmulationConformance, SeedResidualMlp) { Cases::seed_residual_mlp(); }
TEST(CudaEmulationConformance, SimpleNet) { Cases::simplenet(); }
TEST(CudaEmulationConformance, SineNet) { Cases::sinenet(); }
TEST(CudaEmulationConformance, MnistMlp) { Cases::mnist_mlp(); }
TEST(CudaEmulationConformance, ResBlocks) { Cases::resblocks(); }
TEST(CudaEmulationConformance, Autoencoder) { Cases::autoencoder(); }
TEST(CudaEmulationConformance, DynamicMlp) { Cases::dynamic_mlp(); }
TEST(CudaEmulationConformance, LayerNorm) { Cases::layernorm(); }
TEST(CudaEmulationConformance, BatchNorm1d) { Cases::batchnorm1d(); }
TEST(CudaEmulationConformance, MultiTask) { Cases::multitask(); }

}  // namespace
}  // namespace ctnn::test

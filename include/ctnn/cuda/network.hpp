// What each layer of an architecture type is on the device: which kernels its
// forward and backward launch, and how much workspace they need. Read from the
// same type as the CPU path (in/out features, parameter offsets, children and
// their placements: core/layer.hpp), so names and the flat parameter layout are
// the CPU model's, and a copy between the two is one memcpy.
//
// Fusion, decided here from the types:
//   Linear followed by an elementwise activation (also when Named or
//   Functional)  forward: one GEMM whose epilogue adds the bias, applies the
//                activation and stores both z = x.w^T + b (for backward) and
//                y = act(z);
//                backward: one pass computes dz = dy * act'(z, y) and the bias
//                gradient (row-chunk partial sums), then dw += dz^T.x (split-K
//                GEMM) and dx = dz.w (GEMM).
//   Linear alone the same with the identity.
//   an activation alone, a residual add: elementwise kernels.
//   LayerNorm, BatchNorm1d, Softmax / LogSoftmax, Dropout: kernels of their
//                own (kernels/norm.hpp, kernels/rowwise.hpp); BatchNorm1d's
//                running statistics are device buffers of the model, its
//                num_batches_tracked a host counter.
//   Heads        every head on the same input, outputs in the CPU's
//                NamedOutputs layout (one block per head).
//   a pipeline made only of Linear layers (each with or without the activation
//   after it), at most 64 wide (128 when asked for): forward as one kernel
//   through every layer (kernels/fused_mlp.hpp); backward as one kernel too
//   (kernels/fused_mlp_backward.hpp: dz, the input gradient and the weight and
//   bias gradients of every layer, then one kernel that adds the blocks'
//   partial sums) where its register and shared-memory budget allows, else
//   per layer as above.
// Backward skips what the CPU path skips: layers whose parameters are frozen
// and that pass no gradient on launch nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "ctnn/compose/chain.hpp"
#include "ctnn/compose/heads.hpp"
#include "ctnn/compose/residual.hpp"
#include "ctnn/core/errors.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/type_list.hpp"
#include "ctnn/cuda/emulate.hpp"
#include "ctnn/cuda/kernels/activation.hpp"
#include "ctnn/cuda/kernels/elementwise.hpp"
#include "ctnn/cuda/kernels/fused_mlp.hpp"
#include "ctnn/cuda/kernels/fused_mlp_backward.hpp"
#include "ctnn/cuda/kernels/gemm.hpp"
#include "ctnn/cuda/kernels/norm.hpp"
#include "ctnn/cuda/kernels/rowwise.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/batch_norm.hpp"
#include "ctnn/layers/dropout.hpp"
#include "ctnn/layers/flatten.hpp"
#include "ctnn/layers/layer_norm.hpp"
#include "ctnn/layers/linear.hpp"
#include "ctnn/layers/softmax.hpp"

namespace ctnn::cuda {

/// When a pipeline of Linear layers runs its forward as one kernel
/// (kernels/fused_mlp.hpp): `automatic` when no width exceeds
/// fused_mlp_auto_width (where it measured faster than one GEMM per layer on an
/// H100, docs/gpu-performance.md), `always` up to the kernel's 128, `never`.
enum class FusedMlp : unsigned char { automatic, always, never };
inline constexpr std::size_t fused_mlp_auto_width = 64;

}  // namespace ctnn::cuda

namespace ctnn::cuda::detail {

/// A layer's slice of the device model: parameter, gradient and buffer
/// addresses (device), requires_grad flags and counters (host: a counter such
/// as BatchNorm1d's num_batches_tracked is counted where the launches are
/// decided).
struct DeviceContext {
  float* params = nullptr;
  float* grads = nullptr;
  const bool* requires_grad = nullptr;
  float* buffers = nullptr;
  std::int64_t* counters = nullptr;

  DeviceContext child(const ChildPlacement& p) const {
    return {params + p.param_offset, grads + p.param_offset, requires_grad + p.tensor_offset,
            buffers + p.buffer_offset, counters + p.counter_offset};
  }
  bool any_trainable(std::size_t first, std::size_t count) const {
    for (std::size_t i = 0; i < count; ++i)
      if (requires_grad[first + i]) return true;
    return false;
  }
};

/// What a layer's kernels launch with: the backend and the model's reduction
/// scratch (partial sums of bias and split-K weight gradients).
template <class Backend>
struct Exec {
  const Backend& backend;
  float* partial;
  FusedMlp fused_mlp = FusedMlp::automatic;  // run pipelines of narrow Linear layers as one kernel
  bool training = true;   // keep what backward needs
  std::uint64_t dropout_seed = 0;             // the model's dropout seed
  std::uint64_t* dropout_draws = nullptr;     // training-mode dropout forwards so far (host)

  template <class K, class... Args>
  void launch(Grid g, Args... args) const {
    backend.template launch<K>(g, args...);
  }
  /// dst = src, `count` floats, queued like a kernel.
  void copy(float* dst, const float* src, std::size_t count) const {
    backend.copy(device_ptr<float>(dst), device_ptr<const float>(src), count);
  }
  /// dst = 0, `count` floats, queued like a kernel.
  void zero(float* dst, std::size_t count) const { backend.zero(device_ptr<float>(dst), count); }
  /// One grid-stride elementwise kernel over `count` elements.
  template <class K, class... Args>
  void elementwise(std::size_t count, Args... args) const {
    if (count == 0) return;
    backend.template launch<K>(Grid{kernels::blocks_for(count, K::threads)}, args...);
  }
};

// ---- recognising layers by their base class template ---------------------

template <std::size_t I, std::size_t O, bool B>
Linear<I, O, B> linear_base(const Linear<I, O, B>*);
void linear_base(const void*);
template <class Fn, std::size_t W>
Elementwise<Fn, W> elementwise_base(const Elementwise<Fn, W>*);
void elementwise_base(const void*);
template <std::size_t... D>
Flatten<D...> flatten_base(const Flatten<D...>*);
void flatten_base(const void*);
template <std::size_t W, class... S>
ResidualLayer<W, S...> residual_base(const ResidualLayer<W, S...>*);
void residual_base(const void*);
template <std::size_t W, class P, class B>
ProjectedResidualLayer<W, P, B> projected_base(const ProjectedResidualLayer<W, P, B>*);
void projected_base(const void*);
template <class List>
ctnn::detail::Chain<List> chain_base(const ctnn::detail::Chain<List>*);
void chain_base(const void*);
template <std::size_t F, class E>
LayerNorm<F, E> layer_norm_base(const LayerNorm<F, E>*);
void layer_norm_base(const void*);
template <std::size_t F, class M, class E>
BatchNorm1d<F, M, E> batch_norm_base(const BatchNorm1d<F, M, E>*);
void batch_norm_base(const void*);
template <std::size_t W, class... H>
HeadsLayer<W, H...> heads_base(const HeadsLayer<W, H...>*);
void heads_base(const void*);
template <std::size_t W, bool Log>
RowSoftmax<W, Log> softmax_base(const RowSoftmax<W, Log>*);
void softmax_base(const void*);
template <std::size_t W, bool Log>
constexpr bool softmax_is_log(const RowSoftmax<W, Log>*) {
  return Log;
}
template <class P, std::size_t W>
DropoutLayer<P, W> dropout_base(const DropoutLayer<P, W>*);
void dropout_base(const void*);

template <class L>
using linear_base_t = decltype(linear_base(static_cast<const L*>(nullptr)));
template <class L>
using elementwise_base_t = decltype(elementwise_base(static_cast<const L*>(nullptr)));
template <class L>
using chain_base_t = decltype(chain_base(static_cast<const L*>(nullptr)));

enum class DeviceKind {
  linear,
  elementwise,
  flatten,
  layer_norm,
  batch_norm,
  softmax,
  dropout,
  projected_residual,
  residual,
  chain,
  heads,
  unsupported
};

template <class L>
constexpr DeviceKind device_kind() {
  if constexpr (!std::is_void_v<linear_base_t<L>>) return DeviceKind::linear;
  else if constexpr (!std::is_void_v<elementwise_base_t<L>>) return DeviceKind::elementwise;
  else if constexpr (!std::is_void_v<decltype(flatten_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::flatten;
  else if constexpr (!std::is_void_v<decltype(layer_norm_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::layer_norm;
  else if constexpr (!std::is_void_v<decltype(batch_norm_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::batch_norm;
  else if constexpr (!std::is_void_v<decltype(softmax_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::softmax;
  else if constexpr (!std::is_void_v<decltype(dropout_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::dropout;
  else if constexpr (!std::is_void_v<decltype(heads_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::heads;
  else if constexpr (!std::is_void_v<decltype(projected_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::projected_residual;
  else if constexpr (!std::is_void_v<decltype(residual_base(static_cast<const L*>(nullptr)))>)
    return DeviceKind::residual;
  else if constexpr (!std::is_void_v<chain_base_t<L>>) return DeviceKind::chain;
  else return DeviceKind::unsupported;
}

template <class Layer>
struct device_layer_unsupported_check {
  static_assert(!std::is_same_v<Layer, Layer>,
                "ctnn::cuda: this layer (Layer) has no device kernels yet; the device runs Linear, the "
                "elementwise activations, Flatten, LayerNorm, BatchNorm1d, Softmax, LogSoftmax, Dropout, Sequential "
                "/ ModuleList / MLP, Named, Functional, Residual, ProjectedResidual and Heads");
  static constexpr bool ok = false;
};

template <class L, DeviceKind = device_kind<L>()>
struct device_op {
  static_assert(device_layer_unsupported_check<L>::ok);
};

/// The fixed decomposition of a batch into row chunks for column sums (bias
/// gradients): at most 256 chunks of at least 256 rows.
struct RowChunks {
  std::size_t chunks = 1, rows = 0;
};
constexpr RowChunks row_chunks(std::size_t n) {
  std::size_t chunks = (n + 255) / 256;
  chunks = std::clamp<std::size_t>(chunks, 1, 256);
  const std::size_t rows = (n + chunks - 1) / chunks;
  return {rows == 0 ? 1 : (n + rows - 1) / rows, rows == 0 ? 1 : rows};
}

// ---- Linear (+ activation) -------------------------------------------------

template <class Lin, class Act>
struct linear_op {
  static constexpr std::size_t In = Lin::in_features, Out = Lin::out_features;
  static constexpr bool Bias = Lin::has_bias;
  static constexpr bool has_activation = !std::is_same_v<Act, kernels::NoActivation>;
  using forward_tile = kernels::gemm_tile_for<Out>;
  using input_tile = kernels::gemm_tile_for<In>;
  using weight_tile = kernels::gemm_tile_2d<Out, In>;

  static constexpr std::size_t weight_tiles =
      ((Out + weight_tile::bm - 1) / weight_tile::bm) * ((In + weight_tile::bn - 1) / weight_tile::bn);
  static constexpr kernels::SplitK weight_split(std::size_t n) {
    return kernels::split_k(n, In * Out, weight_tile::bk, weight_tiles);
  }
  static constexpr std::size_t partial_floats(std::size_t n) {
    const kernels::SplitK s = weight_split(n);
    const RowChunks rc = row_chunks(n);
    return std::max<std::size_t>(rc.chunks > 1 ? rc.chunks * Out : 0, s.splits > 1 ? s.splits * In * Out : 0);
  }

  /// y = act(x.w^T + b); z = x.w^T + b too when z is not null.
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* z, float* y, std::size_t n) {
    using Epi = kernels::LinearForwardEpilogue<Act, Bias>;
    using G = kernels::Gemm<forward_tile, In, 1, 1, In, Epi>;
    const float* w = c.params + Lin::weight_offset;
    const float* b = Bias ? c.params + Lin::bias_offset : nullptr;
    const Grid g{static_cast<unsigned>((n + G::BM - 1) / G::BM), static_cast<unsigned>((Out + G::BN - 1) / G::BN), 1};
    ex.template launch<G>(g, x, w, n, Out, In, In, Epi{b, has_activation ? z : nullptr, y, Out});
  }

  /// dy: gradient of y; dz: room for the gradient of z (unused without an
  /// activation); dx: input gradient or null. Accumulates dw and db.
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float* z, const float* y,
                       const float* dy, float* dz, float* dx, std::size_t n) {
    const bool train_w = c.requires_grad[0];
    const bool train_b = Bias && c.requires_grad[Bias ? 1 : 0];
    if (!train_w && !train_b && !dx) return;
    const float* g = dy;  // gradient of z
    if (has_activation || train_b) {
      const RowChunks rc = row_chunks(n);
      float* db = train_b ? c.grads + Lin::bias_offset : nullptr;
      float* partial = rc.chunks > 1 ? ex.partial : db;
      const Grid grid{static_cast<unsigned>((Out + 31) / 32), static_cast<unsigned>(rc.chunks), 1};
      if (has_activation && (train_w || dx || train_b)) {
        if (train_b)
          ex.template launch<kernels::OutputGradient<Act, true, true>>(grid, dy, z, y, dz, partial, n, Out, rc.rows,
                                                                       rc.chunks == 1);
        else
          ex.template launch<kernels::OutputGradient<Act, true, false>>(grid, dy, z, y, dz, partial, n, Out,
                                                                        rc.rows, false);
        g = dz;
      } else {
        ex.template launch<kernels::OutputGradient<kernels::NoActivation, false, true>>(
            grid, dy, z, y, dz, partial, n, Out, rc.rows, rc.chunks == 1);
      }
      if (train_b && rc.chunks > 1)
        ex.template launch<kernels::AddPartials>(Grid{kernels::add_partials_blocks(Out)},
                                                 static_cast<const float*>(ex.partial), rc.chunks, db, Out, true);
    }
    if (train_w) {
      float* dw = c.grads + Lin::weight_offset;
      const kernels::SplitK s = weight_split(n);
      const unsigned gx = static_cast<unsigned>((Out + weight_tile::bm - 1) / weight_tile::bm);
      const unsigned gy = static_cast<unsigned>((In + weight_tile::bn - 1) / weight_tile::bn);
      if (s.splits == 1) {
        using G = kernels::Gemm<weight_tile, 1, Out, In, 1, kernels::StoreEpilogue>;
        ex.template launch<G>(Grid{gx, gy, 1}, g, x, Out, In, n, n, kernels::StoreEpilogue{dw, In, true});
      } else {
        using G = kernels::Gemm<weight_tile, 1, Out, In, 1, kernels::SplitEpilogue>;
        ex.template launch<G>(Grid{gx, gy, static_cast<unsigned>(s.splits)}, g, x, Out, In, n, s.chunk,
                              kernels::SplitEpilogue{ex.partial, In, In * Out});
        ex.template launch<kernels::AddPartials>(Grid{kernels::add_partials_blocks(In * Out)},
                                                 static_cast<const float*>(ex.partial), s.splits, dw, In * Out, true);
      }
    }
    if (dx) {
      using G = kernels::Gemm<input_tile, Out, 1, In, 1, kernels::StoreEpilogue>;
      const Grid grid{static_cast<unsigned>((n + G::BM - 1) / G::BM), static_cast<unsigned>((In + G::BN - 1) / G::BN),
                      1};
      ex.template launch<G>(grid, g, c.params + Lin::weight_offset, n, In, Out, Out,
                            kernels::StoreEpilogue{dx, In, false});
    }
  }
};

template <class L>
struct device_op<L, DeviceKind::linear> {
  using lin = linear_base_t<L>;
  using op = linear_op<lin, kernels::NoActivation>;
  static constexpr std::size_t ws_floats = 0, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t n) { return op::partial_floats(n); }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float*) {
    op::forward(ex, c, x, nullptr, y, n);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float* y, const float* dy,
                       float* dx, std::size_t n, float*, float*) {
    op::backward(ex, c, x, nullptr, y, dy, nullptr, dx, n);
  }
};

// ---- elementwise activations ----------------------------------------------

template <class L>
struct device_op<L, DeviceKind::elementwise> {
  using fn = typename elementwise_base_t<L>::function;
  static constexpr std::size_t W = L::in_features;
  static constexpr std::size_t ws_floats = 0, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t) { return 0; }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext&, const float* x, float* y, std::size_t n, float*) {
    ex.template elementwise<kernels::ActivationForward<fn>>(n * W, x, y, n * W);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext&, const float* x, const float* y, const float* dy,
                       float* dx, std::size_t n, float*, float*) {
    if (dx) ex.template elementwise<kernels::ActivationBackward<fn>>(n * W, x, y, dy, dx, n * W);
  }
};

// ---- Flatten: rows are contiguous either way, so a copy ----------------------

template <class L>
struct device_op<L, DeviceKind::flatten> {
  static constexpr std::size_t W = L::in_features;
  static constexpr std::size_t ws_floats = 0, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t) { return 0; }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext&, const float* x, float* y, std::size_t n, float*) {
    ex.copy(y, x, n * W);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext&, const float*, const float*, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    if (dx) ex.copy(dx, dy, n * W);
  }
};

// ---- LayerNorm: statistics per row --------------------------------------------

template <class L>
struct device_op<L, DeviceKind::layer_norm> {
  static constexpr std::size_t F = L::in_features;
  static constexpr double eps = L::eps;
  static constexpr unsigned column_groups = static_cast<unsigned>((F + 31) / 32);
  // Per row: the mean and 1/sqrt(var + eps), for backward (the CPU layer's layout).
  static constexpr std::size_t ws_floats = 2, scratch_floats = 0;
  /// Row-chunk partial sums of the weight and the bias gradient.
  static constexpr std::size_t partial_floats(std::size_t n) {
    const RowChunks rc = row_chunks(n);
    return rc.chunks > 1 ? 2 * rc.chunks * F : 0;
  }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    ex.template launch<kernels::LayerNormForward<F>>(Grid{kernels::blocks_for(n, 256)}, x,
                                                    static_cast<const float*>(c.params),
                                                    static_cast<const float*>(c.params + F), y,
                                                    ex.training ? ws : nullptr, n, eps);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float*, const float* dy,
                       float* dx, std::size_t n, float* ws, float*) {
    const bool train_w = c.requires_grad[0], train_b = c.requires_grad[1];
    const float* stats = ws;
    if (train_w || train_b) {
      const RowChunks rc = row_chunks(n);
      using K = kernels::LayerNormParamGradient<F>;
      const Grid g{column_groups, static_cast<unsigned>(rc.chunks), 1};
      if (rc.chunks == 1) {
        ex.template launch<K>(g, x, dy, stats, train_w ? c.grads : nullptr, train_b ? c.grads + F : nullptr, n,
                              rc.rows, true);
      } else {
        float* pw = ex.partial;
        float* pb = ex.partial + rc.chunks * F;
        ex.template launch<K>(g, x, dy, stats, train_w ? pw : nullptr, train_b ? pb : nullptr, n, rc.rows, false);
        if (train_w)
          ex.template launch<kernels::AddPartials>(Grid{kernels::add_partials_blocks(F)},
                                                   static_cast<const float*>(pw), rc.chunks, c.grads, F, true);
        if (train_b)
          ex.template launch<kernels::AddPartials>(Grid{kernels::add_partials_blocks(F)},
                                                   static_cast<const float*>(pb), rc.chunks, c.grads + F, F, true);
      }
    }
    if (dx)
      ex.template launch<kernels::LayerNormInputGradient<F>>(Grid{kernels::blocks_for(n, 256)}, x, dy,
                                                            static_cast<const float*>(c.params), stats, dx, n);
  }
};

// ---- BatchNorm1d: statistics per feature over the batch ------------------------

template <class L>
struct device_op<L, DeviceKind::batch_norm> {
  static constexpr std::size_t F = L::in_features;
  static constexpr double eps = L::eps, momentum = L::momentum;
  static constexpr unsigned column_groups = static_cast<unsigned>((F + 31) / 32);
  // The CPU layer's layout: x̂ (n x F), then the batch mean and rstd (2F,
  // which fit because training needs at least 2 rows).
  static constexpr std::size_t ws_floats = 2 * F, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t) { return 0; }

  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    const float* w = c.params;
    const float* b = c.params + F;
    if (!ex.training) {
      ex.template elementwise<kernels::BatchNormEvalForward<F>>(n * F, x, w, b, static_cast<const float*>(c.buffers),
                                                                static_cast<const float*>(c.buffers + F), y, n * F,
                                                                eps);
      return;
    }
    if (n < 2)
      throw ValueError("ctnn: BatchNorm1d in training mode needs more than 1 row per batch, got " +
                       std::to_string(n) + " (as PyTorch: 'Expected more than 1 value per channel when training')");
    ex.template launch<kernels::BatchNormTrainForward<F>>(Grid{column_groups}, x, w, b, y, ws, ws + n * F,
                                                          ws + n * F + F, c.buffers, c.buffers + F, n, eps,
                                                          momentum);
    c.counters[0] += 1;
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float*, const float*, const float* dy, float* dx,
                       std::size_t n, float* ws, float*) {
    const bool train_w = c.requires_grad[0], train_b = c.requires_grad[1];
    if (!train_w && !train_b && !dx) return;
    ex.template launch<kernels::BatchNormBackward<F>>(Grid{column_groups}, dy, static_cast<const float*>(ws),
                                                      static_cast<const float*>(ws + n * F + F),
                                                      static_cast<const float*>(c.params),
                                                      train_w ? c.grads : nullptr, train_b ? c.grads + F : nullptr,
                                                      dx, n);
  }
};

// ---- Softmax and LogSoftmax over each row ---------------------------------------

template <class L>
struct device_op<L, DeviceKind::softmax> {
  static constexpr std::size_t W = L::in_features;
  static constexpr bool Log = softmax_is_log(static_cast<const L*>(nullptr));
  static constexpr std::size_t ws_floats = 0, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t) { return 0; }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext&, const float* x, float* y, std::size_t n, float*) {
    ex.template launch<kernels::RowSoftmaxForward<W, Log>>(Grid{kernels::blocks_for(n, 256)}, x, y, n);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext&, const float*, const float* y, const float* dy, float* dx,
                       std::size_t n, float*, float*) {
    if (dx) ex.template launch<kernels::RowSoftmaxBackward<W, Log>>(Grid{kernels::blocks_for(n, 256)}, y, dy, dx, n);
  }
};

// ---- Dropout: identity in evaluation mode, a hashed mask in training -------------

template <class L>
struct device_op<L, DeviceKind::dropout> {
  static constexpr std::size_t W = L::in_features;
  static constexpr double p = L::p;
  // The scaled mask of the last training-mode forward (0 or 1/(1-p)).
  static constexpr std::size_t ws_floats = W, scratch_floats = 0;
  static constexpr std::size_t partial_floats(std::size_t) { return 0; }
  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext&, const float* x, float* y, std::size_t n, float* ws) {
    if (!ex.training) {
      ex.copy(y, x, n * W);
      return;
    }
    const float keep_scale = p >= 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - p));
    const std::uint64_t key = kernels::dropout_key(ex.dropout_seed, (*ex.dropout_draws)++);
    ex.template elementwise<kernels::DropoutForward>(n * W, x, y, ws, n * W, key, static_cast<float>(p), keep_scale);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext&, const float*, const float*, const float* dy, float* dx,
                       std::size_t n, float* ws, float*) {
    if (dx) ex.template elementwise<kernels::Multiply>(n * W, dy, static_cast<const float*>(ws), dx, n * W);
  }
};

// ---- pipelines (Sequential, ModuleList, MLP, a Residual's body) ------------

template <class A, class B>
inline constexpr bool fuses_on_device =
    device_kind<A>() == DeviceKind::linear && device_kind<B>() == DeviceKind::elementwise;

enum class Role : unsigned char { alone, fused_head, fused_tail };

template <class L>
struct device_op<L, DeviceKind::chain> {
  using base = chain_base_t<L>;
  using children = typename base::children;
  static constexpr std::size_t K = children::size;
  static constexpr auto placements = base::placements;

  static constexpr auto roles = [] {
    std::array<Role, K> r{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      std::array<bool, K> head{};
      ((head[I] = [] {
         if constexpr (I + 1 < K) return fuses_on_device<type_at<I, children>, type_at<I + 1, children>>;
         else return false;
       }()),
       ...);
      for (std::size_t i = 0; i < K; ++i) {
        if (r[i] == Role::fused_tail) continue;
        if (head[i]) {
          r[i] = Role::fused_head;
          r[i + 1] = Role::fused_tail;
        }
      }
    }(std::make_index_sequence<K>{});
    return r;
  }();

  static constexpr std::array<std::size_t, K> out_widths = []<class... Ls>(type_list<Ls...>) {
    return std::array<std::size_t, K>{Ls::out_features...};
  }(children{});
  static constexpr std::array<std::size_t, K> child_ws = []<class... Ls>(type_list<Ls...>) {
    return std::array<std::size_t, K>{device_op<Ls>::ws_floats...};
  }(children{});
  static constexpr std::array<std::size_t, K> child_scratch = []<class... Ls>(type_list<Ls...>) {
    return std::array<std::size_t, K>{device_op<Ls>::scratch_floats...};
  }(children{});

  // Workspace of one row: [outputs of children 0..K-2][each child's workspace].
  static constexpr auto output_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + out_widths[i - 1];
    return off;
  }();
  static constexpr std::size_t hidden_floats = output_offsets[K - 1];
  static constexpr auto ws_offsets = [] {
    std::array<std::size_t, K> off{};
    off[0] = hidden_floats;
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + child_ws[i - 1];
    return off;
  }();
  static constexpr std::size_t ws_floats = ws_offsets[K - 1] + child_ws[K - 1];
  static constexpr std::size_t widest_hidden = [] {
    std::size_t m = 0;
    for (std::size_t i = 0; i + 1 < K; ++i) m = std::max(m, out_widths[i]);
    return m;
  }();
  static constexpr std::size_t scratch_floats =
      2 * widest_hidden + *std::max_element(child_scratch.begin(), child_scratch.end());

  static constexpr std::size_t partial_floats(std::size_t n) {
    const std::size_t children_need = []<class... Ls>(type_list<Ls...>, std::size_t rows) {
      return std::max({device_op<Ls>::partial_floats(rows)...});
    }(children{}, n);
    return std::max(children_need, fused_backward_partial_floats(n));
  }

  template <std::size_t I>
  static const float* input_of(const float* x, const float* ws, std::size_t n) {
    if constexpr (I == 0) return x; else return ws + n * output_offsets[I - 1];
  }
  template <std::size_t I>
  static float* output_of(float* y, float* ws, std::size_t n) {
    if constexpr (I == K - 1) return y; else return ws + n * output_offsets[I];
  }

  // ---- the fully fused forward -------------------------------------------
  // Eligible: every child is a Linear, alone or with the activation after it,
  // at least two of them, no width above kernels::fused_mlp_max_width.
  static constexpr bool only_linears = []<class... Ls>(type_list<Ls...>) {
    std::size_t i = 0;
    bool ok = true;
    ((ok = ok && (roles[i] != Role::alone || device_kind<Ls>() == DeviceKind::linear), ++i), ...);
    return ok;
  }(children{});
  static constexpr std::size_t linear_count = [] {
    std::size_t c = 0;
    for (Role r : roles) c += r != Role::fused_tail;
    return c;
  }();
  static constexpr std::size_t widest = []<class... Ls>(type_list<Ls...>) {
    return std::max({Ls::in_features..., Ls::out_features...});
  }(children{});
  static constexpr bool fully_fusable =
      only_linears && linear_count >= 2 && widest <= kernels::fused_mlp_max_width;
  /// Child index of each fused layer's Linear.
  static constexpr auto linear_children = [] {
    std::array<std::size_t, linear_count> at{};
    std::size_t j = 0;
    for (std::size_t i = 0; i < K; ++i)
      if (roles[i] != Role::fused_tail) at[j++] = i;
    return at;
  }();
  template <std::size_t I>
  static auto fused_layer_of() {
    using Lin = linear_base_t<type_at<I, children>>;
    if constexpr (roles[I] == Role::fused_head)
      return kernels::FusedLayer<Lin::in_features, Lin::out_features, Lin::has_bias,
                                 typename elementwise_base_t<type_at<I + 1, children>>::function>{};
    else
      return kernels::FusedLayer<Lin::in_features, Lin::out_features, Lin::has_bias, kernels::NoActivation>{};
  }
  template <std::size_t... J>
  static auto fused_kernel_of(std::index_sequence<J...>)
      -> kernels::FusedMlpForward<decltype(fused_layer_of<linear_children[J]>())...>;

  template <std::size_t... J>
  static auto fused_backward_kernel_of(std::index_sequence<J...>)
      -> kernels::FusedMlpBackward<decltype(fused_layer_of<linear_children[J]>())...>;
  /// Whether the backward runs as one kernel (a function: the kernel type is
  /// only formed for pipelines that fuse at all).
  static constexpr bool backward_fusable() {
    if constexpr (fully_fusable)
      return decltype(fused_backward_kernel_of(std::make_index_sequence<linear_count>{}))::eligible;
    else
      return false;
  }
  /// Partial sums of the fused backward: a block's Out x In + Out floats for
  /// every layer.
  static constexpr std::size_t fused_backward_partial_floats(std::size_t n) {
    if constexpr (backward_fusable()) {
      using KB = decltype(fused_backward_kernel_of(std::make_index_sequence<linear_count>{}));
      const std::size_t blocks = KB::grid_for(n);
      if (blocks == 1) return 0;
      std::size_t per_block = 0;
      [&]<std::size_t... J>(std::index_sequence<J...>) {
        ((per_block += linear_base_t<type_at<linear_children[J], children>>::in_features *
                           linear_base_t<type_at<linear_children[J], children>>::out_features +
                       linear_base_t<type_at<linear_children[J], children>>::out_features),
         ...);
      }(std::make_index_sequence<linear_count>{});
      return blocks * per_block;
    } else {
      (void)n;
      return 0;
    }
  }

  template <class Ex>
  static bool use_fused(const Ex& ex) {
    return ex.fused_mlp == FusedMlp::always || (ex.fused_mlp == FusedMlp::automatic && widest <= fused_mlp_auto_width);
  }

  /// The backward as one kernel through every layer, then one kernel adding
  /// the blocks' partial weight and bias gradients (none for one block).
  template <class Ex>
  static void backward_fused(const Ex& ex, const DeviceContext& c, const float* x, const float* y, const float* dy,
                             float* dx, std::size_t n, float* ws) {
    using KB = decltype(fused_backward_kernel_of(std::make_index_sequence<linear_count>{}));
    constexpr std::size_t FL = linear_count;
    std::array<bool, FL> train_w{}, train_b{};
    [&]<std::size_t... J>(std::index_sequence<J...>) {
      ((train_w[J] = c.child(placements[linear_children[J]]).requires_grad[0],
        train_b[J] = linear_base_t<type_at<linear_children[J], children>>::has_bias &&
                     c.child(placements[linear_children[J]]).requires_grad[1]),
       ...);
    }(std::make_index_sequence<FL>{});
    std::size_t first = FL;
    if (dx) {
      first = 0;
    } else {
      for (std::size_t j = 0; j < FL && first == FL; ++j)
        if (train_w[j] || train_b[j]) first = j;
    }
    if (first == FL) return;  // nothing trainable and no input gradient: the CPU path computes nothing either

    const unsigned blocks = KB::grid_for(n);
    using Sum = kernels::SumPartials<2 * FL>;
    typename Sum::Segments segments{};
    std::size_t used = 0, longest = 0, offset = 0;
    typename KB::Addresses a{};
    [&]<std::size_t... J>(std::index_sequence<J...>) {
      (
          [&] {
            constexpr std::size_t I = linear_children[J];
            using Lin = linear_base_t<type_at<I, children>>;
            const DeviceContext lc = c.child(placements[I]);
            kernels::FusedLayerGradientAddresses& la = a.layer[J];
            la.w = lc.params + Lin::weight_offset;
            la.x = input_of<I>(x, ws, n);
            if constexpr (roles[I] == Role::fused_head) la.z = ws + n * output_offsets[I];
            else la.z = nullptr;
            auto target = [&](bool on, float* grad, std::size_t count) -> float* {
              if (!on) return nullptr;
              if (blocks == 1) return grad;
              float* part = ex.partial + offset;
              segments.s[used++] = {part, grad, count};
              longest = std::max(longest, count);
              offset += blocks * count;
              return part;
            };
            la.dw = target(train_w[J], lc.grads + Lin::weight_offset, Lin::in_features * Lin::out_features);
            la.db = target(train_b[J], Lin::has_bias ? lc.grads + Lin::bias_offset : nullptr, Lin::out_features);
          }(),
          ...);
    }(std::make_index_sequence<FL>{});
    ex.template launch<KB>(Grid{blocks}, dy, y, dx, n, a, static_cast<unsigned>(first));
    if (used > 0)
      ex.template launch<Sum>(Grid{kernels::add_partials_blocks(longest), static_cast<unsigned>(used), 1}, segments,
                              static_cast<std::size_t>(blocks));
  }

  template <class Ex>
  static void forward_fused(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n,
                            float* ws) {
    using KF = decltype(fused_kernel_of(std::make_index_sequence<linear_count>{}));
    typename KF::Addresses a{};
    [&]<std::size_t... J>(std::index_sequence<J...>) {
      (
          [&] {
            constexpr std::size_t I = linear_children[J];
            using Lin = linear_base_t<type_at<I, children>>;
            const DeviceContext lc = c.child(placements[I]);
            kernels::FusedLayerAddresses& la = a.layer[J];
            la.w = lc.params + Lin::weight_offset;
            la.b = Lin::has_bias ? lc.params + Lin::bias_offset : nullptr;
            if constexpr (roles[I] == Role::fused_head) {
              la.z = output_of<I>(y, ws, n);
              la.y = output_of<I + 1>(y, ws, n);
            } else {
              la.z = nullptr;
              la.y = output_of<I>(y, ws, n);
            }
          }(),
          ...);
    }(std::make_index_sequence<linear_count>{});
    ex.template launch<KF>(Grid{static_cast<unsigned>((n + KF::rows - 1) / KF::rows)}, x, n, a, ex.training);
  }

  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    if constexpr (fully_fusable) {
      if (use_fused(ex)) {
        forward_fused(ex, c, x, y, n, ws);
        return;
      }
    }
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            using Li = type_at<I, children>;
            if constexpr (roles[I] == Role::fused_head) {
              using Act = typename elementwise_base_t<type_at<I + 1, children>>::function;
              linear_op<linear_base_t<Li>, Act>::forward(ex, c.child(placements[I]), input_of<I>(x, ws, n),
                                                         output_of<I>(y, ws, n), output_of<I + 1>(y, ws, n), n);
            } else if constexpr (roles[I] == Role::alone) {
              device_op<Li>::forward(ex, c.child(placements[I]), input_of<I>(x, ws, n), output_of<I>(y, ws, n), n,
                                     ws + n * ws_offsets[I]);
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }

  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float* y, const float* dy,
                       float* dx, std::size_t n, float* ws, float* scratch) {
    if constexpr (backward_fusable()) {
      if (use_fused(ex)) {
        backward_fused(ex, c, x, y, dy, dx, n, ws);
        return;
      }
    }
    float* const ping = scratch;
    float* const pong = scratch + n * widest_hidden;
    float* const child_scratch_area = scratch + 2 * n * widest_hidden;
    auto grad_of_output = [&](std::size_t i) -> float* { return i % 2 == 0 ? ping : pong; };
    auto out = [&](std::size_t i) -> const float* { return i == K - 1 ? y : ws + n * output_offsets[i]; };
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (
          [&] {
            constexpr std::size_t I = K - 1 - R;
            using Li = type_at<I, children>;
            const ChildPlacement& p = placements[I];
            const bool pass_gradient = dx != nullptr || c.any_trainable(0, p.tensor_offset);
            float* g_in = nullptr;
            if constexpr (I == 0) g_in = dx;
            else if (pass_gradient) g_in = grad_of_output(I - 1);
            if constexpr (roles[I] == Role::fused_tail) {
              return;  // runs with the Linear before it
            } else if constexpr (roles[I] == Role::fused_head) {
              constexpr std::size_t T = I + 1;
              if (dx == nullptr && !c.any_trainable(0, placements[T].tensor_offset)) return;
              using Act = typename elementwise_base_t<type_at<T, children>>::function;
              linear_op<linear_base_t<Li>, Act>::backward(ex, c.child(p), input_of<I>(x, ws, n), out(I), out(T),
                                                          T == K - 1 ? dy : grad_of_output(T), grad_of_output(I),
                                                          g_in, n);
            } else {
              if (!pass_gradient && !c.any_trainable(p.tensor_offset, Li::params.size())) return;
              device_op<Li>::backward(ex, c.child(p), input_of<I>(x, ws, n), out(I),
                                      I == K - 1 ? dy : grad_of_output(I), g_in, n, ws + n * ws_offsets[I],
                                      child_scratch_area);
            }
          }(),
          ...);
    }(std::make_index_sequence<K>{});
  }
};

// ---- residual blocks --------------------------------------------------------

template <class L>
struct device_op<L, DeviceKind::residual> {
  using body = device_op<typename L::body>;
  static constexpr std::size_t W = L::in_features;
  static constexpr std::size_t body_output_offset = body::ws_floats;
  static constexpr std::size_t ws_floats = body::ws_floats + W;
  static constexpr std::size_t scratch_floats = body::scratch_floats;
  static constexpr std::size_t partial_floats(std::size_t n) { return body::partial_floats(n); }

  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    float* body_out = ws + n * body_output_offset;
    body::forward(ex, c, x, body_out, n, ws);
    ex.template elementwise<kernels::Add>(n * W, static_cast<const float*>(body_out), x, y, n * W);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float*, const float* dy,
                       float* dx, std::size_t n, float* ws, float* scratch) {
    body::backward(ex, c, x, ws + n * body_output_offset, dy, dx, n, ws, scratch);
    if (dx) ex.template elementwise<kernels::Accumulate>(n * W, dy, dx, n * W);
  }
};

template <class L>
struct device_op<L, DeviceKind::projected_residual> {
  using projection = device_op<typename L::projection>;
  using body = device_op<typename L::body>;
  static constexpr std::size_t W = L::in_features, Out = L::out_features;
  // Workspace of one row: [projection output][body output][projection ws][body ws].
  static constexpr std::size_t projection_ws = 2 * Out;
  static constexpr std::size_t body_ws = projection_ws + projection::ws_floats;
  static constexpr std::size_t ws_floats = body_ws + body::ws_floats;
  static constexpr std::size_t scratch_floats = W + std::max(projection::scratch_floats, body::scratch_floats);
  static constexpr std::size_t partial_floats(std::size_t n) {
    return std::max(projection::partial_floats(n), body::partial_floats(n));
  }

  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    float* p_out = ws;
    float* b_out = ws + n * Out;
    projection::forward(ex, c.child(L::placements[0]), x, p_out, n, ws + n * projection_ws);
    body::forward(ex, c.child(L::placements[1]), x, b_out, n, ws + n * body_ws);
    ex.template elementwise<kernels::Add>(n * Out, static_cast<const float*>(p_out), static_cast<const float*>(b_out),
                                          y, n * Out);
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float*, const float* dy,
                       float* dx, std::size_t n, float* ws, float* scratch) {
    float* body_dx = dx ? scratch : nullptr;
    float* child_scratch = scratch + n * W;
    projection::backward(ex, c.child(L::placements[0]), x, ws, dy, dx, n, ws + n * projection_ws, child_scratch);
    body::backward(ex, c.child(L::placements[1]), x, ws + n * Out, dy, body_dx, n, ws + n * body_ws, child_scratch);
    if (dx) ex.template elementwise<kernels::Accumulate>(n * W, static_cast<const float*>(body_dx), dx, n * W);
  }
};

// ---- Heads: several outputs of one input -----------------------------------------

/// The output is the CPU's NamedOutputs layout: head i's n x width block at
/// y + n * head_offsets[i]. Backward sums every head's input gradient into dx,
/// in head order, as the CPU layer does.
template <class L>
struct device_op<L, DeviceKind::heads> {
  using children = typename L::children;
  static constexpr std::size_t K = children::size;
  static constexpr std::size_t W = L::in_features;
  static constexpr auto placements = L::placements;
  static constexpr auto head_offsets = L::head_offsets;
  static constexpr std::array<std::size_t, K> child_ws = []<class... Ls>(type_list<Ls...>) {
    return std::array<std::size_t, K>{device_op<Ls>::ws_floats...};
  }(children{});
  static constexpr auto ws_offsets = [] {
    std::array<std::size_t, K> off{};
    for (std::size_t i = 1; i < K; ++i) off[i] = off[i - 1] + child_ws[i - 1];
    return off;
  }();
  static constexpr std::size_t ws_floats = ws_offsets[K - 1] + child_ws[K - 1];
  // Per row: one head's input gradient, then the children's scratch.
  static constexpr std::size_t scratch_floats = W + []<class... Ls>(type_list<Ls...>) {
    return std::max({device_op<Ls>::scratch_floats...});
  }(children{});
  static constexpr std::size_t partial_floats(std::size_t n) {
    return []<class... Ls>(type_list<Ls...>, std::size_t rows) {
      return std::max({device_op<Ls>::partial_floats(rows)...});
    }(children{}, n);
  }

  template <class Ex>
  static void forward(const Ex& ex, const DeviceContext& c, const float* x, float* y, std::size_t n, float* ws) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (device_op<type_at<I, children>>::forward(ex, c.child(placements[I]), x, y + n * head_offsets[I], n,
                                                ws + n * ws_offsets[I]),
       ...);
    }(std::make_index_sequence<K>{});
  }
  template <class Ex>
  static void backward(const Ex& ex, const DeviceContext& c, const float* x, const float* y, const float* dy,
                       float* dx, std::size_t n, float* ws, float* scratch) {
    float* head_dx = scratch;
    float* child_scratch = scratch + n * W;
    bool first = true;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            using Li = type_at<I, children>;
            const bool trains = c.any_trainable(placements[I].tensor_offset, Li::params.size());
            if (!dx && !trains) return;
            float* target = dx == nullptr ? nullptr : (first ? dx : head_dx);
            device_op<Li>::backward(ex, c.child(placements[I]), x, y + n * head_offsets[I],
                                    dy + n * head_offsets[I], target, n, ws + n * ws_offsets[I], child_scratch);
            if (dx && !first)
              ex.template elementwise<kernels::Accumulate>(n * W, static_cast<const float*>(head_dx), dx, n * W);
            if (dx) first = false;
          }(),
          ...);
    }(std::make_index_sequence<K>{});
    if (dx && first) ex.zero(dx, n * W);
  }
};

}  // namespace ctnn::cuda::detail

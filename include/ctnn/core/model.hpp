// Model<Net>: the state of a network. The architecture type fixes everything
// else at compile time; a Model owns
//   * one flat, 64-byte-aligned parameter buffer and a gradient buffer of the
//     same layout (inline in the object for small nets, so a model can live on
//     the stack or in a static; on the heap, allocated once, for large ones),
//   * the non-trainable buffers and counters (BatchNorm's running statistics),
//   * one requires_grad flag per parameter tensor, the train/eval flag and the
//     seeded generator,
//   * the workspaces: a fixed one for evaluation (rows are processed in tiles,
//     so any batch size runs in it) and one for training that grows to the
//     largest batch seen and keeps what backward needs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctnn/compose/heads.hpp"
#include "ctnn/compose/lane_program.hpp"
#include "ctnn/core/batch.hpp"
#include "ctnn/core/buffer_cache.hpp"
#include "ctnn/core/graph.hpp"
#include "ctnn/core/hooks.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/module_ref.hpp"
#include "ctnn/core/named_outputs.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/core/submodule.hpp"
#include "ctnn/core/thread_pool.hpp"
#include "ctnn/module/module.hpp"
#include "ctnn/train/optim/parameter_view.hpp"

namespace ctnn {

namespace detail {

/// Floats inline in the object.
template <std::size_t N, bool Inline>
class FloatStorage {
 public:
  FloatStorage() = default;
  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }

 private:
  alignas(simd_alignment) std::array<float, N> values_{};
};

/// Floats on the heap, allocated once with the model.
template <std::size_t N>
class FloatStorage<N, false> {
 public:
  FloatStorage() : values_(aligned_floats(N)) { std::fill_n(values_.get(), N, 0.0f); }
  FloatStorage(const FloatStorage& o) : FloatStorage() { std::copy_n(o.data(), N, data()); }
  FloatStorage& operator=(const FloatStorage& o) {
    std::copy_n(o.data(), N, data());
    return *this;
  }
  float* data() { return values_.get(); }
  const float* data() const { return values_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { free_aligned_floats(p); }
  };
  std::unique_ptr<float[], Free> values_;
};

/// Nets whose parameters and gradients fit in this many bytes live inline.
inline constexpr std::size_t inline_storage_bytes = 64 * 1024;

template <class L>
constexpr auto heads_of() {
  if constexpr (requires { L::head_offsets; }) return std::type_identity<L>{};
  else return heads_of<typename L::last>();
}

template <class Net>
constexpr auto input_shape_of() {
  if constexpr (requires { Net::input_shape; }) return Net::input_shape;
  else return std::array<std::size_t, 1>{Net::in_features};
}

/// An evaluation-mode forward of a one-output layer over n rows, TileRows at a
/// time through one tile's workspace `ws`.
template <class L, std::size_t TileRows>
void forward_in_tiles(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
  for (std::size_t r = 0; r < n; r += TileRows) {
    const std::size_t t = std::min(TileRows, n - r);
    L::forward(c, x + r * L::in_features, y + r * L::out_features, t, ws);
  }
}

/// An evaluation-mode forward of a one-output layer over n rows: in lanes
/// (compose/lane_program.hpp) where every layer is narrow and there is at
/// least one block of rows, in tiles through the batch kernels otherwise.
template <class L, std::size_t TileRows>
void forward_for_evaluation(const Context& c, const float* x, float* y, std::size_t n, float* ws) {
  if constexpr (runs_in_lanes<L>) {
    const bool in_lanes = kernels::dispatch(c.arch, [&](auto tag) {
      if (n < kernels::block_lanes(tag)) return false;
      forward_in_lanes<L>(tag, c, x, y, n);
      return true;
    });
    if (in_lanes) return;
  }
  forward_in_tiles<L, TileRows>(c, x, y, n, ws);
}

template <auto Shape, class Seq = std::make_index_sequence<Shape.size()>>
struct tensor_of_shape;
template <auto Shape, std::size_t... I>
struct tensor_of_shape<Shape, std::index_sequence<I...>> {
  using type = Tensor<Shape[I]...>;
};

}  // namespace detail

/// Rows in one tile of an evaluation-mode forward: 512, so that every weight
/// read from memory feeds 512 rows, unless the tile's workspace would pass
/// 16 MiB. Tiles sized to keep their workspace in L1/L2 (64 Ki floats) were
/// slower wherever that made them shorter, the weights being re-read per tile:
/// on bench/'s workloads, W5's 16-row tiles took 26.6 ms per 512 rows against
/// 17.6 ms, W4's 34-row 422 µs per 256 rows against 328, W3's 85-row 626
/// against 573. From 256 to 512 rows, W5's batch of 512 runs as one tile: its
/// GEMMs pack each 1024 x 256 block of weights 3 times instead of 4 (once per
/// 192 rows of a tile, kernels/detail/body/gemm.hpp's gemm_mc), 19.9 ->
/// 17.9 ms per batch (processes interleaved, 7 each).
template <class L>
inline constexpr std::size_t eval_tile_rows =
    L::workspace_floats == 0 ? 512 : std::clamp<std::size_t>((4u << 20) / L::workspace_floats, 1, 512);

template <LayerSpec Net>
class Model : public detail::GraphOwner {
  static_assert(Net::in_features != any_width,
                "ctnn: Model<Net> needs a network whose input width is known: start it with a layer of fixed "
                "width such as Linear<In, Out>");

 public:
  using network = Net;
  using layer = bind_t<Net, Net::in_features>;
  static_assert(Layer<layer>);

  static constexpr std::size_t in_features = layer::in_features;
  static constexpr std::size_t out_features = layer::out_features;
  static constexpr std::size_t num_params = layer::num_params;
  static constexpr std::size_t num_buffers = layer::num_buffers;
  static constexpr std::size_t num_counters = layer::num_counters;
  static constexpr std::size_t num_param_tensors = layer::params.size();
  static constexpr bool multi_output = layer::multi_output;
  static constexpr auto input_shape = detail::input_shape_of<Net>();
  static constexpr bool inline_storage = 2 * num_params * sizeof(float) <= detail::inline_storage_bytes;

  using input_type = typename detail::tensor_of_shape<input_shape>::type;
  using heads_layer = typename decltype([] {
    if constexpr (multi_output) return detail::heads_of<layer>(); else return std::type_identity<void>{};
  }())::type;
  using output_type = std::conditional_t<multi_output, NamedOutputs<heads_layer>, Batch<out_features>>;

  static constexpr std::size_t tile_rows = eval_tile_rows<layer>;

  /// PyTorch's default initialisation, drawn from `seed` (0 unless given).
  explicit Model(Seed s = {}) : generator_(s) {
    connect_graph();
    requires_grad_.fill(true);
    reset_parameters();
  }

  Model(const Model& other)
      : detail::GraphOwner(),
        params_(other.params_),
        grads_(other.grads_),
        buffers_(other.buffers_),
        counters_(other.counters_),
        requires_grad_(other.requires_grad_),
        ranges_(other.ranges_),
        generator_(other.generator_),
        training_(other.training_) {
    connect_graph();
  }
  Model& operator=(const Model& other) {
    if (this != &other) {
      params_ = other.params_;
      grads_ = other.grads_;
      buffers_ = other.buffers_;
      counters_ = other.counters_;
      requires_grad_ = other.requires_grad_;
      ranges_ = other.ranges_;
      generator_ = other.generator_;
      training_ = other.training_;
      end_graph();
    }
    return *this;
  }

  // ---- parameters and buffers --------------------------------------------

  /// The flat parameter buffer: every parameter, in named_parameters() order.
  std::span<float, num_params> parameters() { return std::span<float, num_params>(params_.data(), num_params); }
  std::span<const float, num_params> parameters() const {
    return std::span<const float, num_params>(params_.data(), num_params);
  }
  /// The gradients, same layout as parameters().
  std::span<float, num_params> gradients() { return std::span<float, num_params>(grads_.data(), num_params); }
  std::span<const float, num_params> gradients() const {
    return std::span<const float, num_params>(grads_.data(), num_params);
  }
  std::span<float> buffer_values() { return {buffers_.data(), num_buffers}; }
  std::span<const float> buffer_values() const { return {buffers_.data(), num_buffers}; }
  std::span<std::int64_t> counter_values() { return {counters_.data(), num_counters}; }
  std::span<const std::int64_t> counter_values() const { return {counters_.data(), num_counters}; }

  auto named_parameters() {
    auto make = [this](std::size_t i) {
      const TensorSpec& s = layer::params[i];
      return ParamRef{s.name.view(), &s, params_.data() + s.offset, grads_.data() + s.offset, &requires_grad_[i],
                      &ranges_[i].requires_grad, &generator_};
    };
    return SpecRange<ParamRef, decltype(make), num_param_tensors>(layer::params, make);
  }
  auto named_buffers() {
    auto make = [this](std::size_t i) {
      const TensorSpec& s = layer::buffers[i];
      if (s.storage == Storage::counter) return BufferRef{s.name.view(), &s, nullptr, counters_.data() + s.offset};
      return BufferRef{s.name.view(), &s, buffers_.data() + s.offset, nullptr};
    };
    return SpecRange<BufferRef, decltype(make), layer::buffers.size()>(layer::buffers, make);
  }

  /// The parameter called `name` ("fc1.weight"); throws if there is none.
  ParamRef parameter(std::string_view name) {
    const auto i = index_of_parameter(name);
    return named_parameters()[i];
  }

  /// For optimizers: the flat buffers and each tensor's range and trainability.
  ParameterView parameter_view() {
    return ParameterView{params_.data(), grads_.data(), num_params, std::span<const ParamRange>(ranges_)};
  }

  struct ModuleInfo {
    std::string name;
    std::string_view kind;
  };
  /// Every module with its dotted name, the root first ("" as in PyTorch).
  std::vector<ModuleInfo> named_modules() {
    std::vector<ModuleInfo> out;
    auto f = [&](auto m) { out.push_back({std::string(m.name), m.kind}); };
    detail::visit_modules<layer, false>(f, "", context());
    return out;
  }
  /// The direct children of the root with their names.
  std::vector<ModuleInfo> children() {
    std::vector<ModuleInfo> out;
    for (auto& m : named_modules())
      if (!m.name.empty() && m.name.find('.') == std::string::npos) out.push_back(m);
    return out;
  }
  /// Calls f(ModuleRef<L>) for every module, children before parents, as
  /// PyTorch's Module.apply.
  template <class F>
  Model& apply(F&& f) {
    detail::visit_modules<layer, true>(f, "", context());
    return *this;
  }

  /// PyTorch's default initialisation of every layer, from the model's generator.
  void reset_parameters() {
    auto init = [this](auto m) {
      using L = typename decltype(m)::layer;
      if constexpr (requires { L::reset_parameters(m.context, generator_); }) L::reset_parameters(m.context, generator_);
    };
    detail::visit_modules<layer, false>(init, "", context());
  }

  // ---- gradients, freezing, mode -------------------------------------------

  void zero_grad() { std::fill_n(grads_.data(), num_params, 0.0f); }

  /// Sets requires_grad of every parameter whose name starts with `prefix`
  /// (a whole dotted component: "encoder" matches "encoder.0.weight", not
  /// "encoder2.weight"); returns how many tensors changed. Throws if none matches.
  std::size_t set_requires_grad(std::string_view prefix, bool on) {
    std::size_t matched = 0;
    for (std::size_t i = 0; i < num_param_tensors; ++i) {
      const std::string_view n = layer::params[i].name.view();
      if (prefix.empty() || n == prefix || (n.starts_with(prefix) && n[prefix.size()] == '.')) {
        requires_grad_[i] = ranges_[i].requires_grad = on;
        ++matched;
      }
    }
    if (matched == 0) throw ValueError("ctnn: no parameter name starts with '" + std::string(prefix) + "'");
    return matched;
  }
  std::size_t freeze(std::string_view prefix = "") { return set_requires_grad(prefix, false); }
  std::size_t unfreeze(std::string_view prefix = "") { return set_requires_grad(prefix, true); }

  Model& train(bool on = true) {
    training_ = on;
    end_graph();
    return *this;
  }
  Model& eval() { return train(false); }
  bool is_training() const { return training_; }

  Generator& generator() { return generator_; }

  // ---- forward and backward ------------------------------------------------

  /// Runs a batch of any number of rows. In training mode the output is linked
  /// to this model, so a loss on it can call backward(). `hooks` (optional)
  /// sees every module's input and output (core/hooks.hpp).
  template <RowsOf<in_features> X, class Hooks = NoHooks>
  output_type operator()(const X& x, Hooks&& hooks = {}) {
    const std::size_t n = x.rows();
    output_type y(n);
    const detail::GradLink link = forward_into(x.data(), y.data(), n, hooks);
    y.set_grad_link(link);
    return y;
  }

  /// One sample, on the stack.
  Vec<out_features> operator()(const Vec<in_features>& x)
    requires(!multi_output)
  {
    Vec<out_features> y;
    forward_into(x.data(), y.data(), 1);
    return y;
  }

  /// y[n, out] = net(x[n, in]) into caller memory; returns the training link
  /// (empty in evaluation mode). Evaluation mode allocates nothing; training
  /// mode allocates only when n exceeds every batch seen before.
  template <class Hooks = NoHooks>
  detail::GradLink forward_into(const float* x, float* y, std::size_t n, Hooks&& hooks = {}) {
    if (n == 0) return {};
    if (!training_ && !detail::has_hooks<std::remove_cvref_t<Hooks>>) {
      forward_eval(x, y, n);
      return {};
    }
    // Training, or hooks that must see whole batches: one pass over all rows.
    ensure_training_workspace(n);
    const Areas a = areas(n);
    std::copy_n(x, n * in_features, a.input);
    detail::forward_module<layer>(context(), a.input, a.output, n, a.layer, hooks, "");
    std::copy_n(a.output, n * out_features, y);
    if (!training_) {
      end_graph();  // the workspace no longer holds the last training forward
      return {};
    }
    std::fill_n(a.output_grad, n * out_features, 0.0f);
    return begin_graph(a.output_grad, n);
  }

  /// The lower-level backward: dLoss/dOutput in (the shape of the last
  /// training-mode forward's output), dLoss/dInput out. Parameter gradients
  /// accumulate into gradients().
  template <class DY, class Hooks = NoHooks>
    requires(RowsOf<DY, out_features> || std::is_same_v<DY, output_type>)
  input_type backward(const DY& dy, Hooks&& hooks = {}) {
    check_current(GradLink_for_current(), "call backward()");
    if (dy.rows() != rows_)
      throw ShapeError("ctnn: backward() got a gradient of " + std::to_string(dy.rows()) +
                       " rows, but the last forward had " + std::to_string(rows_));
    const Areas a = areas(rows_);
    std::copy_n(dy.data(), rows_ * out_features, a.output_grad);
    input_type dx(rows_);
    detail::backward_module<layer>(context(), a.input, a.output, a.output_grad, a.input_grad, rows_, a.layer,
                                   a.scratch, hooks, "");
    std::copy_n(a.input_grad, rows_ * in_features, dx.data());
    end_graph();
    return dx;
  }

  /// A child of the root by name, runnable on its own: submodule<"encoder">()(x).
  template <fixed_string Name>
  auto submodule() {
    return SubmoduleView<layer>(context(), eval_workspace_.get(), tile_rows).template submodule<Name>();
  }

  /// Runs another traced method of a custom module (the tutorial's
  /// AutoEncoder::encode): `model.run([](const auto& m, auto x) { return m.encode(x); }, x)`.
  /// Forward only, in the model's mode; its workspace is allocated per call.
  template <class Method, RowsOf<in_features> X>
    requires detail::CustomModule<Net>
  auto run(Method, const X& x) {
    using L = ModuleLayer<Net, in_features, Method>;
    using Out = std::conditional_t<L::multi_output, NamedOutputs<L>, Batch<L::out_features>>;
    const std::size_t n = x.rows();
    Out y(n);
    if (n == 0) return y;
    FloatBlock ws(L::workspace_floats ? detail::aligned_floats(n * L::workspace_floats) : nullptr);
    end_graph();
    L::forward(context(), x.data(), y.data(), n, ws.get());
    return y;
  }

  /// A custom module's `template <fixed_string Task> constexpr auto forward(auto x) const`:
  /// the multi-task tutorial's forward(x, task) with the task chosen at compile time.
  template <fixed_string Task, RowsOf<in_features> X>
    requires detail::CustomModule<Net>
  auto forward(const X& x) {
    return run(detail::CallTask<Task>{}, x);
  }

  /// What loss.backward() runs: dLoss/dOutput in, parameter gradients
  /// accumulated, no input gradient, so layers that only feed frozen
  /// parameters are skipped.
  template <class DY, class Hooks = NoHooks>
    requires(RowsOf<DY, out_features> || std::is_same_v<DY, output_type>)
  void backward_parameters(const DY& dy, Hooks&& hooks = {}) {
    check_current(GradLink_for_current(), "call backward_parameters()");
    if (dy.rows() != rows_)
      throw ShapeError("ctnn: backward_parameters() got a gradient of " + std::to_string(dy.rows()) +
                       " rows, but the last forward had " + std::to_string(rows_));
    const Areas a = areas(rows_);
    std::copy_n(dy.data(), rows_ * out_features, a.output_grad);
    detail::backward_module<layer>(context(), a.input, a.output, a.output_grad, nullptr, rows_, a.layer, a.scratch,
                                   hooks, "");
    end_graph();
  }

  /// The instruction set this model's kernels run on (kernels/arch.hpp):
  /// chosen when the model is made, from CTNN_ARCH or what the CPU has.
  kernels::Arch arch() const { return arch_; }
  /// Runs this model's kernels on another instruction set from now on (tests,
  /// benchmarks). Throws ValueError if the CPU cannot run it or it is not
  /// compiled in; `automatic` means the best available.
  void set_arch(kernels::Arch a) { arch_ = kernels::require_available(a, "set_arch"); }

  /// Splits this model's large matrix products (forward and backward, those of
  /// at least 2^21 multiply-adds) over `pool`'s threads from now on; nullptr:
  /// one thread again, the default. Each thread computes whole rows or whole
  /// columns of a product, so the results are the same bits with or without a
  /// pool. The pool is the caller's, and must outlive its use here; models
  /// may share one (a pool busy with one model's product runs another's on
  /// its caller's thread). A copy of the model starts without.
  void set_thread_pool(ThreadPool* pool) { pool_ = pool; }
  ThreadPool* thread_pool() const { return pool_; }

  /// The Context of the whole model (for kernels, hooks and tools).
  Context context() {
    return Context{params_.data(), grads_.data(), buffers_.data(), counters_.data(), requires_grad_.data(),
                   &generator_, training_, arch_, pool_};
  }

 private:
  std::size_t index_of_parameter(std::string_view name) const {
    for (std::size_t i = 0; i < num_param_tensors; ++i)
      if (layer::params[i].name.view() == name) return i;
    throw ValueError("ctnn: the model has no parameter '" + std::string(name) + "'");
  }

  detail::GradLink GradLink_for_current() const { return detail::GradLink{nullptr, 0, generation_}; }

  void connect_graph() {
    run_backward_ = [](detail::GraphOwner* self) { static_cast<Model*>(self)->backward_from_output_gradient(); };
    if constexpr (multi_output) {
      head_offsets_ = heads_layer::head_offsets.data();
      head_widths_ = heads_layer::head_widths.data();
      num_heads_ = heads_layer::K;
      static_assert(heads_layer::K <= max_heads, "ctnn: at most 16 heads");
    } else {
      head_offsets_ = single_head_offset_.data();
      head_widths_ = single_head_width_.data();
      num_heads_ = 1;
    }
  }
  static constexpr std::array<std::size_t, 1> single_head_offset_{0};
  static constexpr std::array<std::size_t, 1> single_head_width_{out_features};

  /// loss.backward(): the output gradient is already in place; no input gradient
  /// is needed, so layers that feed only frozen parameters are skipped.
  void backward_from_output_gradient() {
    const Areas a = areas(rows_);
    layer::backward(context(), a.input, a.output, a.output_grad, nullptr, rows_, a.layer, a.scratch);
  }

  void forward_eval(const float* x, float* y, std::size_t n) {
    const Context c = context();
    if constexpr (!multi_output) {
      detail::forward_for_evaluation<layer, tile_rows>(c, x, y, n, eval_workspace_.get());
    } else {
      // Heads write one block per head; a tile's blocks go to their place in y.
      float* tile_out = eval_workspace_.get() + tile_rows * layer::workspace_floats;
      for (std::size_t r = 0; r < n; r += tile_rows) {
        const std::size_t t = std::min(tile_rows, n - r);
        layer::forward(c, x + r * in_features, tile_out, t, eval_workspace_.get());
        for (std::size_t h = 0; h < heads_layer::K; ++h) {
          const std::size_t w = heads_layer::head_widths[h];
          std::copy_n(tile_out + t * heads_layer::head_offsets[h], t * w,
                      y + n * heads_layer::head_offsets[h] + r * w);
        }
      }
    }
  }

  struct Areas {
    float* input;
    float* output;
    float* layer;
    float* output_grad;
    float* scratch;
    float* input_grad;
  };
  static constexpr std::size_t training_floats_per_row =
      2 * in_features + 2 * out_features + layer::workspace_floats + layer::grad_floats;
  Areas areas(std::size_t n) {
    float* p = training_workspace_.get();
    Areas a{};
    a.input = p;
    a.output = a.input + n * in_features;
    a.layer = a.output + n * out_features;
    a.output_grad = a.layer + n * layer::workspace_floats;
    a.scratch = a.output_grad + n * out_features;
    a.input_grad = a.scratch + n * layer::grad_floats;
    return a;
  }
  void ensure_training_workspace(std::size_t n) {
    if (n <= training_rows_) return;
    training_workspace_.reset(detail::aligned_floats(n * training_floats_per_row));
    training_rows_ = n;
  }

  struct FreeFloats {
    void operator()(float* p) const { detail::free_aligned_floats(p); }
  };
  using FloatBlock = std::unique_ptr<float[], FreeFloats>;
  static FloatBlock make_eval_workspace() {
    const std::size_t floats = tile_rows * (layer::workspace_floats + (multi_output ? out_features : 0));
    return FloatBlock(floats == 0 ? nullptr : detail::aligned_floats(floats));
  }

  detail::FloatStorage<num_params, inline_storage> params_;
  detail::FloatStorage<num_params, inline_storage> grads_;
  detail::FloatStorage<num_buffers, inline_storage> buffers_;
  std::array<std::int64_t, num_counters> counters_{};
  std::array<bool, num_param_tensors> requires_grad_{};
  std::array<ParamRange, num_param_tensors> ranges_ = [] {
    std::array<ParamRange, num_param_tensors> r{};
    for (std::size_t i = 0; i < num_param_tensors; ++i) r[i] = {layer::params[i].offset, layer::params[i].numel(), true};
    return r;
  }();
  Generator generator_;
  bool training_ = true;  // as PyTorch: a new module is in training mode
  kernels::Arch arch_ = kernels::default_arch();  // chosen once per model (kernels/arch.hpp)
  ThreadPool* pool_ = nullptr;                    // set_thread_pool(); none by default
  FloatBlock eval_workspace_ = make_eval_workspace();
  FloatBlock training_workspace_;
  std::size_t training_rows_ = 0;
};

}  // namespace ctnn

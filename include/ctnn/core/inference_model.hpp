// InferenceModel<Net>: a snapshot of a Model's parameters and buffers, packed
// for the fastest evaluation of one sample at a time (a control loop, an audio
// callback): every Linear's weights are laid out, once, in the order the
// single-row kernel reads them (kernels/row_layout.hpp), and a row runs
// through the whole network in one call with its intermediate rows on the
// stack (compose/row_program.hpp). Larger batches run the model's own
// evaluation kernels on the snapshot's copy of the parameters.
//
//   Model<Net> model{seed(0)};
//   ... train, or load_safetensors(model, "net.safetensors") ...
//   InferenceModel<Net> fast(model);   // copies and packs; allocates here only
//   Vec<Net::out_features> y = fast(x);
//
// A snapshot, as PyTorch's torch.jit.optimize_for_inference (which prepacks
// weights too): later changes to the model (an optimizer step, a load) reach
// it only through refresh(model), which copies and packs again without
// allocating. Always evaluation mode (dropout off, BatchNorm's running
// statistics); the architecture is the model's, changeable with set_arch().
//
// Numbers: the row kernels add each output's products in another order than
// the batch kernels do, so a row's result may differ from Model's in the last
// bits (tests/test_inference.cpp bounds it, and checks the conformance data).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "ctnn/compose/row_program.hpp"
#include "ctnn/core/batch.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/kernels/arch.hpp"

namespace ctnn {

template <LayerSpec Net>
class InferenceModel {
 public:
  using network = Net;
  using model_type = Model<Net>;
  using layer = typename model_type::layer;
  static_assert(!model_type::multi_output,
                "ctnn: InferenceModel<Net> runs networks with one output; a network whose last layer has named "
                "heads (Heads) runs in Model<Net>");
  using program = detail::RowProgram<layer>;

  static constexpr std::size_t in_features = model_type::in_features;
  static constexpr std::size_t out_features = model_type::out_features;
  static constexpr std::size_t num_params = model_type::num_params;
  static constexpr std::size_t num_buffers = model_type::num_buffers;
  static constexpr std::size_t num_counters = model_type::num_counters;
  static constexpr std::size_t packed_floats = program::packed_floats;
  static constexpr std::size_t tile_rows = model_type::tile_rows;
  /// Batches up to this many rows run row by row on the packed weights;
  /// larger ones through the batch kernels (model.hpp's evaluation tiles).
  static constexpr std::size_t row_path_max_rows = 4;
  static constexpr bool inline_storage =
      (num_params + packed_floats) * sizeof(float) <= detail::inline_storage_bytes;

  using input_type = typename model_type::input_type;
  using output_type = Batch<out_features>;

  /// Copies `model`'s parameters, buffers, architecture and thread pool, and packs.
  explicit InferenceModel(const model_type& model) : arch_(model.arch()), pool_(model.thread_pool()) {
    refresh(model);
  }

  /// Copies `model`'s parameters and buffers again and re-packs (after a
  /// training step or a load). Allocates nothing.
  InferenceModel& refresh(const model_type& model) {
    std::copy_n(model.parameters().data(), num_params, params_.data());
    std::copy_n(model.buffer_values().data(), num_buffers, buffers_.data());
    std::copy_n(model.counter_values().data(), num_counters, counters_.data());
    program::pack(params_.data(), packed_.data());
    return *this;
  }

  /// One sample, on the stack: the packed row path.
  Vec<out_features> operator()(const Vec<in_features>& x) {
    Vec<out_features> y;
    run_row(x.data(), y.data());
    return y;
  }

  /// A batch of any number of rows.
  template <RowsOf<in_features> X>
  output_type operator()(const X& x) {
    output_type y(x.rows());
    forward_into(x.data(), y.data(), x.rows());
    return y;
  }

  /// y[n, out] = net(x[n, in]) into caller memory; allocates nothing.
  void forward_into(const float* x, float* y, std::size_t n) {
    if (n <= row_path_max_rows) {
      for (std::size_t r = 0; r < n; ++r) run_row(x + r * in_features, y + r * out_features);
      return;
    }
    detail::forward_for_evaluation<layer, tile_rows>(context(), x, y, n, workspace_.data());
  }

  /// The instruction set the kernels run on (the model's when copied).
  kernels::Arch arch() const { return arch_; }
  /// Runs on another instruction set from now on; throws ValueError if the
  /// CPU cannot run it or it is not compiled in. The packing stays: it does
  /// not depend on the architecture.
  void set_arch(kernels::Arch a) { arch_ = kernels::require_available(a, "set_arch"); }

  /// The pool over which batches split their large products (Model::set_thread_pool);
  /// single rows never use it.
  void set_thread_pool(ThreadPool* pool) { pool_ = pool; }
  ThreadPool* thread_pool() const { return pool_; }

  /// The snapshot's parameters, in Model's layout (what refresh() copied).
  std::span<const float, num_params> parameters() const {
    return std::span<const float, num_params>(params_.data(), num_params);
  }

 private:
  Context context() {
    // Evaluation never writes gradients; `grads` points at the parameters only
    // so that moving the Context to a child stays pointer arithmetic on a buffer.
    return Context{params_.data(), params_.data(), buffers_.data(), counters_.data(), requires_grad_.data(),
                   &generator_, false, arch_, pool_};
  }

  void run_row(const float* x, float* y) {
    alignas(64) float out[kernels::row_padded(out_features)];
    const Context c = context();
    kernels::dispatch(arch_, [&](auto tag) { program::run(tag, c, packed_.data(), x, out, workspace_.data()); });
    std::copy_n(out, out_features, y);
  }

  detail::FloatStorage<num_params, inline_storage> params_;
  detail::FloatStorage<packed_floats, inline_storage> packed_;
  detail::FloatStorage<num_buffers, inline_storage> buffers_;
  std::array<std::int64_t, num_counters> counters_{};
  std::array<bool, model_type::num_param_tensors> requires_grad_{};  // all false: nothing trains here
  Generator generator_;  // never drawn from in evaluation (dropout is off)
  kernels::Arch arch_;
  ThreadPool* pool_ = nullptr;
  // One tile's evaluation workspace; its first workspace_floats serve a row.
  detail::FloatStorage<tile_rows * layer::workspace_floats, false> workspace_;
};

}  // namespace ctnn

// The link from a training-mode output back to the model that produced it, so
// that `loss_fn(model(x), y).backward()` reaches the model, as PyTorch's
// grad_fn does. There is no tape: the model keeps, in its preallocated
// workspace, what its statically generated backward needs, and a loss writes
// dLoss/dOutput into the model's output-gradient slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ctnn/core/errors.hpp"

namespace ctnn::detail {

class GraphOwner;

/// Carried by an output batch of a training-mode forward.
struct GradLink {
  GraphOwner* owner = nullptr;
  std::uint32_t head = 0;         // which named output (0 for single-output nets)
  std::uint64_t generation = 0;   // which forward produced it
  explicit operator bool() const { return owner != nullptr; }
};

/// One loss's share of a backward: which output slot it wrote, and its weight.
struct LossTerm {
  GradLink link;
  std::uint64_t writer = 0;  // id of the loss evaluation that filled the slot
  float scale = 1.0f;
};

/// The non-template part of every Model: output-gradient slots and the entry
/// point of the backward. Calls go through one function pointer set at
/// construction, not a virtual table.
class GraphOwner {
 public:
  /// Where a loss writes dLoss/dOutput for `link`; checks that the output is the
  /// latest forward's and has the expected shape. Returns the slot and stores the
  /// evaluation's id in `writer`.
  float* claim_output_gradient(const GradLink& link, std::size_t rows, std::size_t width,
                               std::uint64_t& writer) {
    check_current(link, "compute a loss");
    if (rows != rows_ || width != head_widths_[link.head])
      throw ShapeError("ctnn: loss on an output of " + std::to_string(rows) + " x " + std::to_string(width) +
                       ", but the model's last forward produced " + std::to_string(rows_) + " x " +
                       std::to_string(head_widths_[link.head]));
    writer = ++writers_;
    slot_writer_[link.head] = writer;
    return dy_ + rows_ * head_offsets_[link.head];
  }

  /// Runs the backward of the terms' common forward: every output slot not named
  /// by a term is zero; a slot named by several terms of the same evaluation is
  /// scaled by the sum of their weights.
  void backward_from(std::span<const LossTerm> terms) {
    for (const LossTerm& t : terms) check_current(t.link, "call backward()");
    for (std::size_t h = 0; h < num_heads_; ++h) {
      float scale = 0.0f;
      bool used = false;
      for (const LossTerm& t : terms) {
        if (t.link.head != h) continue;
        if (t.writer != slot_writer_[h])
          throw Error(
              "ctnn: backward() of a loss whose gradient was replaced by a later loss on the same output; "
              "call backward() before computing another loss on that output, or add the losses first "
              "((a + b).backward())");
        scale += t.scale;
        used = true;
      }
      float* slot = dy_ + rows_ * head_offsets_[h];
      const std::size_t count = rows_ * head_widths_[h];
      if (!used)
        for (std::size_t i = 0; i < count; ++i) slot[i] = 0.0f;
      else if (scale != 1.0f)
        for (std::size_t i = 0; i < count; ++i) slot[i] *= scale;
    }
    graph_alive_ = false;  // as PyTorch frees the graph: a second backward needs a new forward
    run_backward_(this);
  }

 protected:
  void check_current(const GradLink& link, const char* action) const {
    if (link.generation != generation_)
      throw Error(std::string("ctnn: cannot ") + action +
                  ": the model has run another forward since this output was computed (a training-mode "
                  "model keeps only its latest forward for backward)");
    if (!graph_alive_)
      throw Error(std::string("ctnn: cannot ") + action +
                  ": backward() already ran for this forward (run the forward again, as PyTorch needs "
                  "retain_graph for a second backward)");
  }

  /// Called by a training-mode forward: a new graph whose output gradient lives at dy.
  GradLink begin_graph(float* dy, std::size_t rows) {
    dy_ = dy;
    rows_ = rows;
    ++generation_;
    graph_alive_ = true;
    for (std::size_t h = 0; h < num_heads_; ++h) slot_writer_[h] = 0;
    return GradLink{this, 0, generation_};
  }
  void end_graph() { graph_alive_ = false; }

  static constexpr std::size_t max_heads = 16;
  void (*run_backward_)(GraphOwner*) = nullptr;
  const std::size_t* head_offsets_ = nullptr;  // per-row offset of each named output
  const std::size_t* head_widths_ = nullptr;
  std::size_t num_heads_ = 1;
  float* dy_ = nullptr;
  std::size_t rows_ = 0;
  std::uint64_t generation_ = 0;
  std::uint64_t writers_ = 0;
  std::uint64_t slot_writer_[max_heads]{};
  bool graph_alive_ = false;
};

}  // namespace ctnn::detail

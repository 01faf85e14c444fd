// A custom module's evaluation forward with the samples in the lanes: the
// pass of compose/lane_program.hpp, extended to the graph a module's forward
// traces (module/symbolic.hpp), so that a narrow network written as a module
// runs the kernels it would run written as a pipeline. Every value is a block
// [width][block] (feature-major, kernels::block_lanes samples) on the stack:
//   a call                 its layer's lane program (node.lanes), or, for a
//                          Linear whose activation is fused with it and read
//                          by nothing else, one kernel for both
//                          (node.fused_lanes); the activation's node is then
//                          skipped
//   +, -, *, scaling       elementwise over the block: the layout does not
//                          matter to them, so the batch forward's node kernel
//                          runs with the block's samples as its rows
//   concat                 the inputs' blocks one after another (feature-major:
//                          a row of features is a row of the block)
//   slice                  the rows of the block it keeps
// A module is eligible when every call's layer is (compose/lane_program.hpp),
// no value is wider than lanes_widest_max (a concat's too), it returns one
// value, and its values fit lanes_module_floats_max floats per sample with the
// space of values nothing reads any more reused (the slots are planned at
// compile time). Otherwise Model runs its batch forward.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "ctnn/compose/lane_program.hpp"
#include "ctnn/kernels/detail/per_arch.hpp"
#include "ctnn/module/symbolic.hpp"

namespace ctnn::detail {

/// Floats per sample a module's values may take on the stack in lanes (64 KiB
/// for a block of 64 samples with AVX-512), past which it runs its batch forward.
inline constexpr std::size_t lanes_module_floats_max = 256;

template <class L>
struct LaneProgram<L, LaneKind::module> {
  using module = unwrapped_t<L>;
  static constexpr const Graph& graph = module::graph;
  static constexpr std::size_t N = module::N;
  static constexpr std::size_t result = module::result_nodes[0];
  static constexpr std::size_t In = module::in_features, Out = module::out_features;
  static constexpr std::size_t none = max_graph_nodes;

  /// A Linear call run with its fused activation: nothing else reads its output.
  static constexpr bool runs_fused(std::size_t i) {
    const Node& node = graph.nodes[i];
    return node.fused_activation != 0 && node.fused_lanes != nullptr && module::consumers[i] == 1;
  }
  /// An activation computed by the fused Linear call before it.
  static constexpr bool computed_by_producer(std::size_t i) {
    return graph.nodes[i].computed_by_input && runs_fused(graph.nodes[i].inputs[0]);
  }

  /// What the compile-time plan decides for each value.
  struct Plan {
    /// The step (node) whose kernel writes the value: its own, or the fused
    /// Linear's for the activation, or, for a sum absorbed by one of its
    /// operands (below), that operand's.
    std::array<std::size_t, max_graph_nodes> written_at{};
    /// For a call's value read only by an add whose other operand is ready
    /// by then: that add. The call's kernel writes the sum, adding the other
    /// operand in its epilogue (the skip of compose/lane_program.hpp), as a
    /// pipeline's Residual does; the add itself runs nothing.
    std::array<std::size_t, max_graph_nodes> sum_into{};
    std::array<std::size_t, max_graph_nodes> absorbs{};  // on the add: that operand, or none
    /// Where the value lives in the stack's arena, floats per sample: the
    /// lowest offset that overlaps no value read at or after the step that
    /// writes it. x and y (the result) take no room, nor does a value no
    /// kernel writes (a fused Linear's own output, an absorbed operand).
    std::array<bool, max_graph_nodes> stored{};
    std::array<std::size_t, max_graph_nodes> at{};
    std::size_t floats = 0;
  };
  static constexpr Plan plan = [] {
    Plan p;
    p.sum_into.fill(none);
    p.absorbs.fill(none);
    for (std::size_t i = 1; i < N; ++i) p.written_at[i] = computed_by_producer(i) ? graph.nodes[i].inputs[0] : i;
    for (std::size_t j = 1; j < N; ++j) {
      const Node& add = graph.nodes[j];
      if (add.kind != NodeKind::add) continue;
      for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t i = add.inputs[k], other = add.inputs[1 - k];
        // A call's value that some kernel writes (not a fused Linear's own).
        const bool absorbable = graph.nodes[i].kind == NodeKind::call && !runs_fused(i);
        if (i == 0 || i == other || !absorbable || module::consumers[i] != 1 ||
            p.written_at[other] >= p.written_at[i])
          continue;
        p.sum_into[i] = j;
        p.absorbs[j] = i;
        p.written_at[j] = p.written_at[i];
        break;
      }
    }
    // The last step whose kernel reads each value (a node's inputs are read
    // when the kernel that writes its value runs).
    std::array<std::size_t, max_graph_nodes> last_read{};
    for (std::size_t i = 1; i < N; ++i)
      for (std::size_t k = 0; k < graph.nodes[i].num_inputs; ++k) {
        std::size_t& last = last_read[graph.nodes[i].inputs[k]];
        last = std::max(last, p.written_at[i]);
      }
    for (std::size_t i = 1; i < N; ++i) p.stored[i] = i != result && !runs_fused(i) && p.sum_into[i] == none;
    // In the order of the steps that write them (one value per step).
    std::array<bool, max_graph_nodes> placed{};
    for (std::size_t step = 1; step < N; ++step)
      for (std::size_t i = 1; i < N; ++i) {
        if (p.written_at[i] != step || !p.stored[i]) continue;
        const std::size_t width = graph.nodes[i].width;
        std::size_t at = 0;
        for (bool moved = true; moved;) {
          moved = false;
          for (std::size_t j = 1; j < N; ++j) {
            if (!placed[j] || last_read[j] < step) continue;
            if (at < p.at[j] + graph.nodes[j].width && p.at[j] < at + width) {
              at = p.at[j] + graph.nodes[j].width;
              moved = true;
            }
          }
        }
        p.at[i] = at;
        placed[i] = true;
        p.floats = std::max(p.floats, at + width);
      }
    return p;
  }();

  static constexpr bool nodes_supported = [] {
    for (std::size_t i = 1; i < N; ++i) {
      const Node& node = graph.nodes[i];
      if (node.kind == NodeKind::input) return false;
      if (node.kind == NodeKind::call && !runs_fused(i) && !computed_by_producer(i) && node.lanes == nullptr)
        return false;
    }
    return true;
  }();
  static constexpr std::size_t widest = [] {
    std::size_t w = In;
    for (std::size_t i = 1; i < N; ++i) w = std::max(w, graph.nodes[i].width);
    return w;
  }();
  // The plan is made only for a module that can run in lanes otherwise.
  static constexpr bool supported = [] {
    if constexpr (module::multi_output || !nodes_supported || widest > lanes_widest_max) return false;
    else return plan.floats <= lanes_module_floats_max;
  }();

  template <class Tag>
  static void run(Tag tag, const Context& outer, const float* x, const float* skip, float* y) {
    constexpr std::size_t block = kernels::block_lanes(Tag{});
    // The calls dispatch on their context's architecture: Tag's, whose block
    // the arena is sized for.
    Context c = outer;
    c.arch = kernels::arch_of<Tag>;
    alignas(64) float arena[std::max<std::size_t>(plan.floats, 1) * block];
    const auto value = [&](std::size_t i) -> float* { return i == result ? y : arena + plan.at[i] * block; };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (run_node<I + 1>(c, x, value, block), ...);
    }(std::make_index_sequence<N - 1>{});
    if constexpr (result == 0) std::copy_n(x, In * block, y);
    if (skip) kernels::add(tag, y, skip, y, Out * block);
  }

 private:
  template <std::size_t I, class Value>
  static void run_node(const Context& c, const float* x, const Value& value, std::size_t block) {
    constexpr const Node& node = graph.nodes[I];
    const auto read = [&](std::size_t i) -> const float* { return i == 0 ? x : value(i); };
    const float* in[max_node_inputs];
    for (std::size_t k = 0; k < node.num_inputs; ++k) in[k] = read(node.inputs[k]);
    if constexpr (node.kind == NodeKind::call) {
      if constexpr (!computed_by_producer(I)) {
        // The value this kernel writes, and the sum it may write instead.
        constexpr std::size_t target = runs_fused(I) ? node.fused_activation : I;
        constexpr std::size_t sum = plan.sum_into[target];
        const Context nc = module::template node_context<I>(c);
        float* out = value(sum == none ? target : sum);
        const float* skip = nullptr;
        if constexpr (sum != none) {
          constexpr const Node& add = graph.nodes[sum];
          skip = read(add.inputs[add.inputs[0] == target ? 1 : 0]);
        }
        if constexpr (runs_fused(I)) node.fused_lanes(nc, in[0], skip, out);
        else node.lanes(nc, in[0], skip, out);
      }
    } else if constexpr (node.kind == NodeKind::add && plan.absorbs[I] != none) {
      // written by the kernel of its operand plan.absorbs[I]
    } else if constexpr (node.kind == NodeKind::concat) {
      float* out = value(I);
      for (std::size_t k = 0; k < node.num_inputs; ++k) {
        const std::size_t floats = graph.nodes[node.inputs[k]].width * block;
        std::copy_n(in[k], floats, out);
        out += floats;
      }
    } else if constexpr (node.kind == NodeKind::slice) {
      std::copy_n(in[0] + node.begin * block, node.width * block, value(I));
    } else {
      node.forward(node, c, in, value(I), block, nullptr);
    }
  }
};

}  // namespace ctnn::detail

// The narrow-network path of an evaluation forward (compose/lane_program.hpp,
// kernels/detail/body/lanes.hpp): which networks take it, and their outputs
// against double-precision references at odd widths (5, 13, 37, 7) and at row
// counts around the block size (one short of a block, a block, one past, a
// few blocks and a tail), under every architecture this CPU has: through
// Model's evaluation forward and through InferenceModel's batch path. Every
// kind of layer the pass knows: Linear (with and without bias, fused with an
// activation or not), a lone activation with and without a vector form,
// Dropout, Residual (its add in the last kernel's epilogue, nested Residuals,
// a Residual whose body ends in an activation or a Dropout), and custom
// modules (module/lanes.hpp): every kind of node of a traced forward, and the
// pipelines' bits for the same network written as a module. The path gives
// the batch kernels' bits. And zero allocations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "conformance.hpp"
#include "test_inputs.hpp"

#include "allocation_counter.hpp"

namespace ctnn::test {
namespace {

using detail::runs_in_lanes;

/// Samples per block of the lanes kernels on architecture a.
std::size_t block_of(kernels::Arch a) {
  return kernels::dispatch(a, [](auto tag) { return kernels::block_lanes(tag); });
}

// ---- a double-precision interpreter of the references ----------------------

/// Rows of features in double, walked through parameters in Model's order.
struct Ref {
  std::vector<double> h;
  std::size_t rows, width;
  const float* p;  // the next parameter

  Ref(std::span<const float> x, std::size_t rows_, std::size_t in, const float* params)
      : h(x.begin(), x.end()), rows(rows_), width(in), p(params) {}

  Ref& linear(std::size_t out, bool bias = true) {
    std::vector<double> y(rows * out);
    const float* w = p;
    const float* b = bias ? p + out * width : nullptr;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < out; ++j) {
        double s = b ? b[j] : 0.0;
        for (std::size_t k = 0; k < width; ++k) s += double(w[j * width + k]) * h[r * width + k];
        y[r * out + j] = s;
      }
    p += out * width + (bias ? out : 0);
    h = std::move(y);
    width = out;
    return *this;
  }
  Ref& apply(const std::function<double(double)>& f) {
    for (double& v : h) v = f(v);
    return *this;
  }
  Ref& relu() { return apply([](double v) { return std::max(v, 0.0); }); }
  Ref& tanh() { return apply([](double v) { return std::tanh(v); }); }
  Ref& sigmoid() { return apply([](double v) { return 1.0 / (1.0 + std::exp(-v)); }); }
  Ref& gelu() { return apply([](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }); }
  /// h += saved (a residual connection).
  Ref& add(const std::vector<double>& saved) {
    for (std::size_t i = 0; i < h.size(); ++i) h[i] += saved[i];
    return *this;
  }
  std::vector<float> result() const { return {h.begin(), h.end()}; }
};

/// Net's evaluation output through Model::forward_into and through
/// InferenceModel's batch path, against `reference(model, x, rows)`, at row
/// counts around each architecture's block.
template <class Net, class Reference>
void expect_lanes_match(Reference reference, std::uint64_t init_seed) {
  static_assert(runs_in_lanes<typename Model<Net>::layer>);
  constexpr std::size_t in = Model<Net>::in_features, out = Model<Net>::out_features;
  Model<Net> model{seed(init_seed)};
  model.eval();
  InferenceModel<Net> fast(model);
  for (kernels::Arch a : available_archs()) {
    model.set_arch(a);
    fast.set_arch(a);
    const std::size_t b = block_of(a);
    for (std::size_t rows : {b - 1, b, b + 1, 3 * b + 5, std::size_t{300}}) {
      const std::string what = std::string(kernels::arch_name(a)) + ", " + std::to_string(rows) + " rows";
      const std::vector<float> x = random_values(rows * in, unsigned(rows + init_seed), -2.0f, 2.0f);
      const std::vector<float> ref = reference(model, x, rows);
      std::vector<float> y(rows * out, -1.0f);
      model.forward_into(x.data(), y.data(), rows);
      EXPECT_TRUE(all_close("Model, " + what, y, ref, forward_tolerance));
      if (rows >= b) {
        // The same bits as the batch kernels, which run batches under one
        // block (here 5 to 9 rows at a time; up to 4 rows take the row kernels).
        std::vector<float> batched(rows * out);
        for (std::size_t r0 = 0; r0 < rows;) {
          const std::size_t n = rows - r0 < 10 ? rows - r0 : 5;
          model.forward_into(x.data() + r0 * in, batched.data() + r0 * out, n);
          r0 += n;
        }
        EXPECT_TRUE(std::equal(y.begin(), y.end(), batched.begin())) << what << ": not the batch kernels' bits";
      }
      std::fill(y.begin(), y.end(), -1.0f);
      fast.forward_into(x.data(), y.data(), rows);
      EXPECT_TRUE(all_close("InferenceModel, " + what, y, ref, forward_tolerance));
    }
  }
}

/// Net's evaluation output in lanes is Other's, bit for bit (the same kernels
/// in the same order), from the same parameters.
template <class Net, class Other>
void expect_same_bits_as(std::uint64_t init_seed) {
  static_assert(Model<Net>::num_params == Model<Other>::num_params);
  constexpr std::size_t in = Model<Net>::in_features, out = Model<Net>::out_features;
  Model<Net> net{seed(init_seed)};
  Model<Other> other{seed(init_seed)};
  std::copy(net.parameters().begin(), net.parameters().end(), other.parameters().begin());
  net.eval();
  other.eval();
  for (kernels::Arch a : available_archs()) {
    net.set_arch(a);
    other.set_arch(a);
    const std::size_t rows = 3 * block_of(a) + 5;
    const std::vector<float> x = random_values(rows * in, unsigned(rows), -2.0f, 2.0f);
    std::vector<float> y(rows * out), z(rows * out);
    net.forward_into(x.data(), y.data(), rows);
    other.forward_into(x.data(), z.data(), rows);
    EXPECT_TRUE(std::equal(y.begin(), y.end(), z.begin())) << kernels::arch_name(a);
  }
}

// ---- which networks take the path ------------------------------------------

template <class Net>
inline constexpr bool lanes_for = runs_in_lanes<typename Model<Net>::layer>;

TEST(Lanes, NarrowPipelinesTakeThePathAndOthersDoNot) {
  static_assert(lanes_for<Sequential<Linear<3, 16>, ReLU, Residual<Linear<16, 16>, ReLU>, Linear<16, 1>>>);
  static_assert(lanes_for<Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>>);
  static_assert(lanes_for<Sequential<Linear<5, 13>, GELU, Dropout<std::ratio<1, 2>>, Linear<13, 2>>>);
  static_assert(lanes_for<Linear<3, 1>>);
  // Wider than lanes_widest_max: the batch GEMM.
  static_assert(detail::lanes_widest_max == 64);
  static_assert(!lanes_for<Sequential<Linear<65, 8>, ReLU, Linear<8, 1>>>);
  static_assert(!lanes_for<Sequential<Linear<8, 8>, ReLU, Linear<8, 65>>>);
  // A layer the pass does not know: the whole network runs the batch kernels.
  static_assert(!lanes_for<Sequential<Linear<5, 13>, LayerNorm<13>, Linear<13, 2>>>);
  static_assert(!lanes_for<Sequential<Linear<5, 13>, Residual<Linear<13, 13>, Softmax>>>);
  static_assert(!lanes_for<Sequential<Linear<5, 13>, ProjectedResidual<Linear<13, 7>, Linear<13, 7>>>>);
}

// ---- outputs against double ------------------------------------------------

TEST(Lanes, ResidualMlpOfTheTutorial) {
  using Net = Sequential<Linear<3, 16>, ReLU, Residual<Linear<16, 16>, ReLU>, Linear<16, 1>>;
  expect_lanes_match<Net>(
      [](Model<Net>& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 3, m.parameters().data());
        r.linear(16).relu();
        const auto skip = r.h;
        return r.linear(16).relu().add(skip).linear(1).result();
      },
      1);
}

TEST(Lanes, OddWidthsWithTanhSigmoidAndAResidual) {
  using Net = Sequential<Linear<5, 13>, Tanh, Residual<Linear<13, 13>, Sigmoid>, Linear<13, 37>, ReLU,
                         Named<"out", Linear<37, 7>>>;
  expect_lanes_match<Net>(
      [](Model<Net>& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 5, m.parameters().data());
        r.linear(13).tanh();
        const auto skip = r.h;
        return r.linear(13).sigmoid().add(skip).linear(37).relu().linear(7).result();
      },
      2);
}

TEST(Lanes, NestedResidualsLoneActivationsDropoutAndNoBias) {
  // GELU has no vector form: it runs alone, lane by lane, and is not fused.
  // The inner Residual ends the outer one's body, so both skips are added; the
  // other Residuals end in a lone activation and in a Dropout.
  using Net = Sequential<Linear<5, 13>, Residual<Linear<13, 13, false>, GELU, Residual<Linear<13, 13>>>,
                         Dropout<std::ratio<1, 4>>, Residual<Linear<13, 13>, Tanh, Linear<13, 13>, GELU>,
                         Residual<Linear<13, 13>, Dropout<std::ratio<1, 2>>>, Linear<13, 37, false>, Sigmoid,
                         Linear<37, 5>>;
  expect_lanes_match<Net>(
      [](Model<Net>& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 5, m.parameters().data());
        r.linear(13);
        const auto outer = r.h;
        r.linear(13, false).gelu();
        const auto inner = r.h;
        r.linear(13).add(inner).add(outer);
        const auto third = r.h;
        r.linear(13).tanh().linear(13).gelu().add(third);
        const auto fourth = r.h;
        return r.linear(13).add(fourth).linear(37, false).sigmoid().linear(5).result();
      },
      3);
}

TEST(Lanes, SineNetAtTheWidestTheCostModelTakes) {
  using Net = Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>;
  expect_lanes_match<Net>(
      [](Model<Net>& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 1, m.parameters().data());
        return r.linear(64).tanh().linear(64).tanh().linear(1).result();
      },
      4);
}

TEST(Lanes, OneLinearAndTwoActivationsInARow) {
  using One = Linear<3, 1>;
  expect_lanes_match<One>(
      [](Model<One>& m, std::span<const float> x, std::size_t rows) {
        return Ref(x, rows, 3, m.parameters().data()).linear(1).result();
      },
      5);
  // Two activations in a row: ReLU fused into the Linear, Tanh alone.
  using TwoActivations = Sequential<Linear<7, 37>, ReLU, Tanh>;
  expect_lanes_match<TwoActivations>(
      [](Model<TwoActivations>& m, std::span<const float> x, std::size_t rows) {
        return Ref(x, rows, 7, m.parameters().data()).linear(37).relu().tanh().result();
      },
      6);
}

// ---- custom modules (module/lanes.hpp) ---------------------------------------

// The tutorial's residual MLP and SineNet written as modules: the pipelines'
// kernels, with `act(fc2(h)) + h`'s add in fc2's epilogue as Residual's is.
struct ResidualModule {
  CTNN_MODULE(ResidualModule, (Linear<3, 16>, fc1), (Linear<16, 16>, fc2), (Linear<16, 1>, head), (ReLU, act));
  constexpr auto forward(auto x) const {
    auto h = act(fc1(x));
    h = act(fc2(h)) + h;
    return head(h);
  }
};
struct SineModule {
  CTNN_MODULE(SineModule, (Linear<1, 64>, fc1), (Linear<64, 64>, fc2), (Linear<64, 1>, out));
  constexpr auto forward(auto x) const { return out(tanh(fc2(tanh(fc1(x))))); }
};

// Every kind of node, at odd widths: a Linear's output read twice (not fused),
// GELU alone (no vector form), concat, slice, a pipeline member, -, *, scaling,
// an add of two computed values (not absorbed), an add absorbed by the later of
// its two calls, Dropout, a Linear without bias, a fused pair as the result.
struct EveryNodeKind {
  CTNN_MODULE(EveryNodeKind, (Linear<5, 13>, fc1), (Linear<13, 13, false>, fc2), (Linear<26, 7>, fc3),
              (Sequential<Linear<7, 13>, Sigmoid>, block), (Linear<13, 13>, fc4), (Dropout<std::ratio<1, 2>>, drop),
              (Linear<13, 37>, wide), (Linear<37, 5>, out));
  constexpr auto forward(auto x) const {
    auto a = fc1(x);
    auto t = tanh(a);
    auto g = gelu(fc2(t));
    auto c = concat(a, g);
    auto h = relu(fc3(c));
    auto s = block(h) - slice<0, 13>(c);
    auto m = s * t + 0.5f * a;
    auto r = drop(m) + fc4(m);
    return tanh(out(relu(wide(r))));
  }
};

// Five 64-wide values alive at once: 320 floats per sample, more than the
// lanes path keeps on the stack.
struct ManyLiveValues {
  CTNN_MODULE(ManyLiveValues, (Linear<4, 64>, a), (Linear<4, 64>, b), (Linear<4, 64>, c), (Linear<4, 64>, d),
              (Linear<4, 64>, e));
  constexpr auto forward(auto x) const {
    auto va = a(x);
    auto vb = b(x);
    auto vc = c(x);
    auto vd = d(x);
    auto ve = e(x);
    return va * vb * vc * vd * ve;
  }
};
// `fc(x) + x`: the add written by fc's kernel with the module's input as skip.
struct SkipOverOne {
  CTNN_MODULE(SkipOverOne, (Linear<16, 16>, fc));
  constexpr auto forward(auto x) const { return fc(x) + x; }
};
// A module holding a module; its result is also read by a value nothing uses.
struct Nested {
  CTNN_MODULE(Nested, (Linear<3, 16>, in), (SkipOverOne, inner), (Linear<16, 1>, head));
  constexpr auto forward(auto x) const {
    auto y = head(inner(relu(in(x))));
    [[maybe_unused]] auto unused = y * y;
    return y;
  }
};

struct WithLayerNorm {
  CTNN_MODULE(WithLayerNorm, (Linear<5, 13>, fc), (LayerNorm<13>, norm));
  constexpr auto forward(auto x) const { return norm(fc(x)); }
};
struct TwoOutputs {
  CTNN_MODULE(TwoOutputs, (Linear<5, 13>, fc), (Linear<13, 2>, left), (Linear<13, 3>, right));
  constexpr auto forward(auto x) const {
    auto h = relu(fc(x));
    return outputs<"left", "right">(left(h), right(h));
  }
};

TEST(Lanes, NarrowModulesTakeThePathAndOthersDoNot) {
  static_assert(lanes_for<ResidualModule> && lanes_for<SineModule> && lanes_for<EveryNodeKind>);
  // A module as a member of a pipeline, and a pipeline in a module (above).
  static_assert(lanes_for<Sequential<ResidualModule, Tanh, Linear<1, 3>>>);
  static_assert(!lanes_for<WithLayerNorm> && !lanes_for<TwoOutputs> && !lanes_for<ManyLiveValues>);
  static_assert(!lanes_for<Sequential<Linear<5, 5>, WithLayerNorm>>);
  // ResidualModule keeps two 16-wide values per sample: h, and h + act(fc2(h))
  // written by fc2's kernel (the add runs nothing); fc1's and fc2's outputs,
  // fused with their activation, are never stored.
  using residual_lanes = detail::LaneProgram<Model<ResidualModule>::layer>;
  static_assert(residual_lanes::plan.floats == 32);
  static_assert(residual_lanes::plan.absorbs[5] == 4 && residual_lanes::plan.written_at[5] == 3);
  static_assert(!residual_lanes::plan.stored[1] && !residual_lanes::plan.stored[3]);
  // SineModule: two 64-wide values, as the pipeline's two arrays (fc2 reads
  // the first while it writes the second).
  static_assert(detail::LaneProgram<Model<SineModule>::layer>::plan.floats == 128);
  static_assert(detail::LaneProgram<Model<ManyLiveValues>::layer>::plan.floats > detail::lanes_module_floats_max);
}

TEST(Lanes, ModulesInPipelinesAndAModuleInAModule) {
  // A module followed by more layers (its result goes to a hidden block).
  using Then = Sequential<ResidualModule, Tanh, Linear<1, 3>>;
  expect_lanes_match<Then>(
      [](auto& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 3, m.parameters().data());
        r.linear(16).relu();
        const auto skip = r.h;
        return r.linear(16).relu().add(skip).linear(1).tanh().linear(3).result();
      },
      12);
  // A Residual around a module: the module is given the Residual's skip.
  using Around = Sequential<Linear<3, 16>, ReLU, Residual<SkipOverOne>, Linear<16, 1>>;
  const auto skip_twice = [](auto& m, std::span<const float> x, std::size_t rows) {
    Ref r(x, rows, 3, m.parameters().data());
    r.linear(16).relu();
    const auto h = r.h;
    return r.linear(16).add(h).add(h).linear(1).result();
  };
  expect_lanes_match<Around>(skip_twice, 13);
  // The same Linears with the inner skip only, as a module in a module.
  static_assert(lanes_for<Nested>);
  expect_lanes_match<Nested>(
      [](auto& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 3, m.parameters().data());
        r.linear(16).relu();
        const auto h = r.h;
        return r.linear(16).add(h).linear(1).result();
      },
      14);
}

// expect_same_bits_as below shows the kernels agree; that the module's add
// runs in fc2's kernel rather than as a pass of its own (the same bits either
// way) is what the plan's static_asserts above check.
TEST(Lanes, ResidualModuleGivesThePipelinesBits) {
  using Pipeline = Sequential<Linear<3, 16>, ReLU, Residual<Linear<16, 16>, ReLU>, Linear<16, 1>>;
  const auto reference = [](auto& m, std::span<const float> x, std::size_t rows) {
    Ref r(x, rows, 3, m.parameters().data());
    r.linear(16).relu();
    const auto skip = r.h;
    return r.linear(16).relu().add(skip).linear(1).result();
  };
  expect_lanes_match<ResidualModule>(reference, 9);
  expect_same_bits_as<ResidualModule, Pipeline>(9);
}

TEST(Lanes, SineModuleGivesThePipelinesBits) {
  using Pipeline = Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>;
  expect_lanes_match<SineModule>(
      [](auto& m, std::span<const float> x, std::size_t rows) {
        Ref r(x, rows, 1, m.parameters().data());
        return r.linear(64).tanh().linear(64).tanh().linear(1).result();
      },
      10);
  expect_same_bits_as<SineModule, Pipeline>(10);
}

TEST(Lanes, EveryKindOfNodeInAModule) {
  expect_lanes_match<EveryNodeKind>(
      [](auto& m, std::span<const float> x, std::size_t rows) {
        const float* p = m.parameters().data();
        Ref a(x, rows, 5, p);
        a.linear(13);
        Ref t = a;
        t.tanh();
        Ref g = t;
        g.linear(13, false).gelu();
        Ref c = a;  // concat(a, g)
        c.width = 26;
        c.h.resize(rows * 26);
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t i = 0; i < 26; ++i) c.h[r * 26 + i] = i < 13 ? a.h[r * 13 + i] : g.h[r * 13 + i - 13];
        c.p = g.p;
        Ref block = c;
        block.linear(7).relu().linear(13).sigmoid();
        Ref m_ = block;  // s * t + 0.5 * a, s = block(h) - a (slice<0, 13> of c is a)
        for (std::size_t i = 0; i < rows * 13; ++i) m_.h[i] = (block.h[i] - a.h[i]) * t.h[i] + 0.5 * a.h[i];
        Ref fc4 = m_;
        fc4.linear(13);
        Ref r = fc4;  // drop(m) + fc4(m)
        for (std::size_t i = 0; i < rows * 13; ++i) r.h[i] = m_.h[i] + fc4.h[i];
        return r.linear(37).relu().linear(5).tanh().result();
      },
      11);
}

// ---- the path is only taken in evaluation ----------------------------------

TEST(Lanes, TrainingModeStillRunsTheBatchKernels) {
  // Dropout is active in training, so the two modes give different outputs;
  // evaluation (the lanes path) gives what the batch kernels give.
  using Net = Sequential<Linear<5, 13>, ReLU, Dropout<std::ratio<1, 2>>, Linear<13, 2>>;
  Model<Net> model{seed(7)};
  const std::size_t rows = 300;
  const Batch<5> x(rows, random_values(rows * 5, 7, -2.0f, 2.0f));
  const Batch<2> trained = model(x);
  model.eval();
  const Batch<2> evaluated = model(x);
  Ref r({x.data(), rows * 5}, rows, 5, model.parameters().data());
  const std::vector<float> ref = r.linear(13).relu().linear(2).result();
  EXPECT_TRUE(all_close("evaluation", {evaluated.data(), rows * 2}, ref, forward_tolerance));
  EXPECT_FALSE(all_close("training (dropout on)", {trained.data(), rows * 2}, ref, forward_tolerance));
}

TEST(Lanes, EvaluationAllocatesNothing) {
  using Net = Sequential<Linear<3, 16>, ReLU, Residual<Linear<16, 16>, ReLU>, Linear<16, 1>>;
  Model<Net> model{seed(8)};
  model.eval();
  InferenceModel<Net> fast(model);
  Model<ResidualModule> custom{seed(8)};
  custom.eval();
  const std::vector<float> x = random_values(3 * 300, 8, -2.0f, 2.0f);
  std::vector<float> y(300);
  EXPECT_EQ(count_allocations([&] {
              for (int i = 0; i < 100; ++i) {
                model.forward_into(x.data(), y.data(), 300);
                fast.forward_into(x.data(), y.data(), 300);
                custom.forward_into(x.data(), y.data(), 300);
              }
            }),
            0);
}

}  // namespace
}  // namespace ctnn::test

// Custom modules (module/module.hpp): the conformance cases written as
// PyTorch's nn.Module subclasses are, with the same names and numbers, and the
// parity of a custom module with the same network written as a pipeline.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

struct ResidualMLP {  // CONFORMANCE.md 7.3, verbatim in spirit
  CTNN_MODULE(ResidualMLP,
              (Linear<3, 16>, fc1),
              (Linear<16, 16>, fc2),
              (Linear<16, 1>, head),
              (ReLU, act));
  constexpr auto forward(auto x) const {
    auto h = act(fc1(x));
    h = act(fc2(h)) + h;
    return head(h);
  }
};
static_assert(ResidualMLP::num_params == 353);
static_assert(ResidualMLP::in_features == 3 && ResidualMLP::out_width(3) == 1);
static_assert(Model<ResidualMLP>::layer::params[2].name == "fc2.weight");

struct Autoencoder {  // 7.8, with the extra method encode
  CTNN_MODULE(Autoencoder,
              (Sequential<Linear<20, 64>, ReLU, Linear<64, 4>>, encoder),
              (Sequential<Linear<4, 64>, ReLU, Linear<64, 20>>, decoder));
  constexpr auto encode(auto x) const { return encoder(x); }
  constexpr auto forward(auto x) const { return decoder(encode(x)); }
};

struct DynamicMLP {  // 7.9: the ModuleList loop, relu between layers
  CTNN_MODULE(DynamicMLP, (MLP<12, 32, 16, 8, 3>, layers));
  constexpr auto forward(auto x) const { return layers(x); }
};

struct MultiTask {  // 7.10: a trunk and a ModuleDict of heads
  CTNN_MODULE(MultiTask,
              (Linear<16, 32>, shared),
              (Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>, heads));
  constexpr auto forward(auto x) const {  // every head, as the tutorial's dict
    auto h = relu(shared(x));
    return outputs<"classify", "regress">(heads.get<"classify">(h), heads.get<"regress">(h));
  }
  template <fixed_string Task>  // the tutorial's forward(x, task_name), chosen at compile time
  constexpr auto forward(auto x) const {
    return heads.get<Task>(relu(shared(x)));
  }
};

template <class Net>
void expect_case(const std::string& name, const Case& c, Model<Net>& model) {
  load_safetensors(model, c.path(), conformance_options());
  const typename Model<Net>::input_type x(c.rows("input"), c.f32("input"));
  auto y = model(x);
  EXPECT_TRUE(all_close(name + " output", y.values(), c.f32("output"), forward_tolerance));
}

template <class Net, class Loss, class Target, class MakeOpt>
void expect_training(const std::string& name, Loss loss_fn, const Target& target, MakeOpt make_opt) {
  SCOPED_TRACE(name);
  const Case c(name);
  Model<Net> model;
  load_safetensors(model, c.path(), conformance_options());
  const typename Model<Net>::input_type x(c.rows("input"), c.f32("input"));
  auto y = model(x);
  EXPECT_TRUE(all_close("output", y.values(), c.f32("output"), forward_tolerance));
  Batch<Model<Net>::out_features> dy(y.rows());
  loss_fn.compute(y.data(), target.data(), y.rows(), Model<Net>::out_features, dy.data());
  model.zero_grad();
  const auto dx = model.backward(dy);
  EXPECT_TRUE(all_close("grad.input", dx.values(), c.f32("grad.input"), gradient_tolerance));
  for (auto&& p : model.named_parameters())
    EXPECT_TRUE(all_close("grad." + std::string(p.name), {p.grad(), p.size()}, c.f32("grad." + std::string(p.name)),
                          gradient_tolerance));
  Model<Net> fresh;
  load_safetensors(fresh, c.path(), conformance_options());
  auto opt = make_opt(fresh);
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto loss = loss_fn(fresh(x), target);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{loss.item()}, c.f32(step + "loss"), gradient_tolerance));
    loss.backward();
    opt.step();
    for (auto&& p : fresh.named_parameters())
      EXPECT_TRUE(all_close(step + std::string(p.name), {p.data(), p.size()}, c.f32(step + std::string(p.name)),
                            gradient_tolerance));
  }
}

TEST(CustomModule, SeedResidualMlpMatchesPyTorchWithItsOwnKeys) {
  const Case c("seed_residual_mlp");
  expect_training<ResidualMLP>("seed_residual_mlp", MSELoss{}, Batch<1>(c.rows("target"), c.f32("target")),
                               [](auto& m) { return optim::Adam(m, {.lr = 1e-2f}); });
}

TEST(CustomModule, AutoencoderAndItsEncodeMethod) {
  const Case c("autoencoder");
  expect_training<Autoencoder>("autoencoder", MSELoss{}, Batch<20>(c.rows("target"), c.f32("target")),
                               [](auto& m) { return optim::Adam(m, {.lr = 1e-3f}); });
  Model<Autoencoder> model;
  load_safetensors(model, c.path(), conformance_options());
  const Batch<20> x(c.rows("input"), c.f32("input"));
  const Batch<4> code = model.run([](const auto& m, auto in) { return m.encode(in); }, x);
  EXPECT_TRUE(all_close("encode.output", code.values(), c.f32("encode.output"), forward_tolerance));
  EXPECT_EQ(std::string(model.named_parameters()[0].name), "encoder.0.weight");
}

TEST(CustomModule, DynamicMlp) {
  const Case c("dynamic_mlp");
  Labels target(c.rows("target"));
  const auto t = c.i64("target");
  std::copy(t.begin(), t.end(), target.data());
  expect_training<DynamicMLP>("dynamic_mlp", CrossEntropyLoss{}, target, [](auto& m) {
    return optim::SGD(m, {.lr = 0.1f, .momentum = 0.5f, .dampening = 0.1f});
  });
}

TEST(CustomModule, MultiTaskBothHeadsSummedLossAndTaskSelection) {
  const Case c("multitask");
  const Batch<16> x(c.rows("input"), c.f32("input"));
  Labels classes(c.rows("target.classify"));
  const auto t = c.i64("target.classify");
  std::copy(t.begin(), t.end(), classes.data());
  const Batch<1> values(c.rows("target.regress"), c.f32("target.regress"));
  CrossEntropyLoss ce;
  MSELoss mse;
  Model<MultiTask> model;
  load_safetensors(model, c.path(), conformance_options());
  EXPECT_EQ(std::string(model.named_parameters()[2].name), "heads.classify.weight");
  auto out = model(x);
  auto cls = out.get<"classify">();
  auto reg = out.get<"regress">();
  EXPECT_TRUE(all_close("output.classify", {cls.data(), cls.size()}, c.f32("output.classify"), forward_tolerance));
  EXPECT_TRUE(all_close("output.regress", {reg.data(), reg.size()}, c.f32("output.regress"), forward_tolerance));
  const Batch<10> only_classify = model.forward<"classify">(x);
  EXPECT_TRUE(all_close("forward<classify>", only_classify.values(), c.f32("output.classify"), forward_tolerance));
  const Batch<1> only_regress = model.forward<"regress">(x);
  EXPECT_TRUE(all_close("forward<regress>", only_regress.values(), c.f32("output.regress"), forward_tolerance));

  Model<MultiTask> fresh;
  load_safetensors(fresh, c.path(), conformance_options());
  optim::SGD opt(fresh, {.lr = 0.1f});
  for (int k = 1; k <= 3; ++k) {
    const std::string step = "step" + std::to_string(k) + ".";
    opt.zero_grad();
    auto o = fresh(x);
    auto loss = ce(o.get<"classify">(), classes) + mse(o.get<"regress">(), values);
    EXPECT_TRUE(all_close(step + "loss", std::vector<float>{loss.item()}, c.f32(step + "loss"), gradient_tolerance));
    loss.backward();
    opt.step();
    for (auto&& p : fresh.named_parameters())
      EXPECT_TRUE(all_close(step + std::string(p.name), {p.data(), p.size()}, c.f32(step + std::string(p.name)),
                            gradient_tolerance));
  }
}

// ---- parity: the same network as a pipeline and as a custom module

using Pipeline = Sequential<Named<"fc1", Linear<5, 13>>, Named<"act", Tanh>, Named<"fc2", Linear<13, 37>>,
                            Named<"gate", Sigmoid>, Named<"out", Linear<37, 3>>>;
struct Custom {
  CTNN_MODULE(Custom, (Linear<5, 13>, fc1), (Tanh, act), (Linear<13, 37>, fc2), (Sigmoid, gate), (Linear<37, 3>, out));
  constexpr auto forward(auto x) const { return out(gate(fc2(act(fc1(x))))); }
};

/// The same network as a pipeline and as a custom module: the same numbers,
/// bit for bit, forward and backward, at 1, 7 and 300 rows.
template <class P, class M>
void expect_same_bits(unsigned s) {
  Model<P> pipe{seed(s)};
  Model<M> custom{seed(s)};
  ASSERT_EQ(Model<P>::num_params, Model<M>::num_params);
  std::copy(pipe.parameters().begin(), pipe.parameters().end(), custom.parameters().begin());
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  for (std::size_t rows : {1u, 7u, 300u}) {
    Batch<Model<P>::in_features> x(rows);
    for (float& v : x) v = d(rng);
    Batch<Model<P>::out_features> dy(rows);
    for (float& v : dy) v = d(rng);
    for (bool training : {false, true}) {
      pipe.train(training);
      custom.train(training);
      const auto a = pipe(x);
      const auto b = custom(x);
      ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << rows << (training ? " training" : " eval");
    }
    pipe.zero_grad();
    custom.zero_grad();
    const auto ga = pipe.backward(dy);
    const auto gb = custom.backward(dy);
    ASSERT_TRUE(std::equal(ga.begin(), ga.end(), gb.begin())) << rows;
    ASSERT_TRUE(std::equal(pipe.gradients().begin(), pipe.gradients().end(), custom.gradients().begin())) << rows;
  }
}

TEST(CustomModule, ParityWithThePipelineIsBitForBit) {
  expect_same_bits<Pipeline, Custom>(5);
  Model<Pipeline> pipe{seed(5)};
  Model<Custom> custom{seed(5)};
  for (std::size_t i = 0; i < Model<Custom>::num_param_tensors; ++i)
    EXPECT_EQ(std::string(pipe.named_parameters()[i].name), std::string(custom.named_parameters()[i].name));
  std::ostringstream p, q;
  p << pipe;
  q << custom;
  EXPECT_EQ(p.str().substr(p.str().find('\n')), q.str().substr(q.str().find('\n')));  // same tree under the root
  // The tutorial's residual MLP (fused pairs, a skip connection) both ways.
  using ResidualPipeline = Sequential<Linear<3, 16>, ReLU, Residual<Linear<16, 16>, ReLU>, Linear<16, 1>>;
  expect_same_bits<ResidualPipeline, ResidualMLP>(7);
}

// Fusion in custom modules (module/symbolic.hpp, Node): fc1 + act of
// ResidualMLP and fc + tanh below run as one kernel each; a Linear whose output
// is also read elsewhere keeps it in evaluation mode too.
static_assert(ModuleLayer<ResidualMLP, 3>::graph.nodes[1].fused_activation == 2);
static_assert(ModuleLayer<ResidualMLP, 3>::graph.nodes[2].computed_by_input);

struct FusedAndReused {
  CTNN_MODULE(FusedAndReused, (Linear<5, 13>, fc), (Linear<13, 37>, wide), (Linear<37, 3>, out));
  constexpr auto forward(auto x) const {
    auto z = fc(x);
    auto h = tanh(z) + z;  // fused, and z is read again
    auto w = relu(wide(h));  // fused
    auto m = wide(h);        // a handle that carries wide's type...
    m = w;                   // ...moved to a value wide did not compute: relu(m) is not fused
    return out(relu(m) + sigmoid(wide(h)));  // sigmoid: fused
  }
};
using FusedAndReusedLayer = ModuleLayer<FusedAndReused, 5>;
constexpr std::size_t fused_activations(const detail::Graph& g) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < g.count; ++i) count += g.nodes[i].computed_by_input;
  return count;
}
static_assert(fused_activations(FusedAndReusedLayer::graph) == 3);
static_assert(FusedAndReusedLayer::graph.nodes[1].fused_activation != 0 && FusedAndReusedLayer::consumers[1] == 2);

struct CountCalls {
  int calls = 0;
  void forward(const ModuleIO&) { ++calls; }
  void backward(const ModuleIO&) { ++calls; }
};

TEST(CustomModule, FusedForwardGivesTheBitsOfTheNodesRunOneByOne) {
  Model<FusedAndReused> model{seed(4)};
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  for (bool training : {false, true}) {
    model.train(training);
    for (std::size_t rows : {1u, 5u, 37u, 300u}) {
      Batch<5> x(rows);
      for (float& v : x) v = d(rng);
      const auto fused = model(x);
      CountCalls hooks;  // with hooks, every node runs on its own
      const auto plain = model(x, hooks);
      EXPECT_GT(hooks.calls, 0);
      ASSERT_TRUE(std::equal(fused.begin(), fused.end(), plain.begin())) << rows << (training ? " training" : " eval");
    }
  }
}

// The derivative of a fused pair's activation folds into the input gradient of
// the Linear call after it (module.hpp, BackwardPlan::takes_derivative), as in
// pipelines: fc1's pair into fc2's pair, fc2's (ELU: its derivative reads z)
// into fc3's (no bias), sig's into out (a Linear alone). fc3's pair is read
// twice (by fc4 and head), so its own dz pass stays.
struct Folds {
  CTNN_MODULE(Folds, (Linear<5, 13>, fc1), (Linear<13, 37>, fc2), (Linear<37, 37, false>, fc3), (Linear<37, 37>, fc4),
              (Linear<37, 3>, out), (Linear<37, 3>, head), (ELU<>, elu));
  constexpr auto forward(auto x) const {
    auto a = tanh(fc1(x));
    auto b = elu(fc2(a));
    auto c = relu(fc3(b));
    auto d = sigmoid(fc4(c));
    return out(d) + head(c);
  }
};
using FoldsLayer = ModuleLayer<Folds, 5>;
// Nodes: 1 fc1, 2 tanh, 3 fc2, 4 elu, 5 fc3, 6 relu, 7 fc4, 8 sigmoid, 9 out, 10 head, 11 +.
static_assert(FoldsLayer::plan.takes_derivative[3] && FoldsLayer::plan.takes_derivative[5] &&
              !FoldsLayer::plan.takes_derivative[7] && !FoldsLayer::plan.takes_derivative[10] &&
              FoldsLayer::plan.takes_derivative[9]);
static_assert(FoldsLayer::plan.derivative_taken[1] && FoldsLayer::plan.derivative_taken[3] &&
              !FoldsLayer::plan.derivative_taken[5] && FoldsLayer::plan.derivative_taken[7]);
static_assert(ModuleLayer<Custom, 5>::plan.takes_derivative[3] && ModuleLayer<Custom, 5>::plan.takes_derivative[5]);
// tanh(z) + z: the pair's output is not fused in the backward, so nothing is taken.
static_assert(!FusedAndReusedLayer::plan.takes_derivative[3]);

TEST(CustomModule, FoldedDerivativeGivesTheBitsOfTheNodesRunOneByOne) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d;
  // Whole model trained; a pair's bias frozen (the folded kernel sums no db);
  // a pair frozen whose input still needs a gradient; the Linear alone that
  // takes a derivative frozen; everything from fc2 on frozen (fc1 still trains).
  const std::vector<std::vector<std::string>> freezings{
      {}, {"fc1.bias"}, {"fc2"}, {"out"}, {"fc2", "fc3", "fc4", "out", "head"}};
  for (const std::vector<std::string>& frozen : freezings) {
    Model<Folds> fused{seed(6)}, plain{seed(6)}, mixed{seed(6)};
    for (Model<Folds>* m : {&fused, &plain, &mixed})
      for (const std::string& prefix : frozen) m->freeze(prefix);
    for (std::size_t rows : {1u, 5u, 37u, 300u}) {
      Batch<5> x(rows);
      for (float& v : x) v = d(rng);
      Batch<3> dy(rows);
      for (float& v : dy) v = d(rng);
      for (Model<Folds>* m : {&fused, &plain, &mixed}) m->zero_grad();
      CountCalls hooks, backward_hooks;
      const auto y_fused = fused(x);
      const auto y_plain = plain(x, hooks);  // with hooks, every node runs on its own
      (void)mixed(x);                         // fused forward (no z kept for tanh, relu, sigmoid)...
      const auto dx_fused = fused.backward(dy);
      const auto dx_plain = plain.backward(dy, hooks);
      const auto dx_mixed = mixed.backward(dy, backward_hooks);  // ...and a backward node by node
      EXPECT_GT(hooks.calls, 0);
      EXPECT_GT(backward_hooks.calls, 0);
      std::string where = "rows " + std::to_string(rows) + ", frozen:";
      for (const std::string& prefix : frozen) where += " " + prefix;
      ASSERT_TRUE(std::equal(y_fused.begin(), y_fused.end(), y_plain.begin())) << where;
      ASSERT_TRUE(std::equal(dx_fused.begin(), dx_fused.end(), dx_plain.begin())) << where;
      ASSERT_TRUE(std::equal(dx_mixed.begin(), dx_mixed.end(), dx_plain.begin())) << where;
      ASSERT_TRUE(std::equal(fused.gradients().begin(), fused.gradients().end(), plain.gradients().begin()))
          << where;
      ASSERT_TRUE(std::equal(mixed.gradients().begin(), mixed.gradients().end(), plain.gradients().begin()))
          << where;
      // Parameter gradients only (no dx): the first pair's dx is not asked for.
      for (Model<Folds>* m : {&fused, &plain}) m->zero_grad();
      (void)fused(x);
      (void)plain(x, hooks);
      fused.backward_parameters(dy);
      plain.backward_parameters(dy, hooks);
      ASSERT_TRUE(std::equal(fused.gradients().begin(), fused.gradients().end(), plain.gradients().begin()))
          << where << " (parameters only)";
    }
  }
}

// Backward hooks see each member call, in reverse order: grad_output is the
// summed gradient of the call's output, grad_input what this call alone passed
// back (null for the first call, whose input needs no gradient).
TEST(CustomModule, BackwardHooksSeeEveryMemberCall) {
  struct Seen {
    std::vector<std::string> names;
    std::vector<bool> has_input;
    std::vector<float> first_output_grad;
    void backward(const ModuleIO& io) {
      names.emplace_back(io.name);
      has_input.push_back(io.input.data != nullptr);
      first_output_grad.push_back(io.output.data[0]);
    }
  };
  Model<ResidualMLP> model{seed(1)};
  Batch<3> x(2);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1f * static_cast<float>(i + 1);
  (void)model(x);
  Batch<1> dy(2);
  dy.data()[0] = 1.0f;
  dy.data()[1] = -2.0f;
  Seen seen;
  model.backward_parameters(dy, seen);
  // Calls in forward order: fc1, act, fc2, act, head; then the module itself
  // (the root, named "", as PyTorch's hook on the model).
  EXPECT_EQ(seen.names, (std::vector<std::string>{"head", "act", "fc2", "act", "fc1", ""}));
  EXPECT_EQ(seen.has_input, (std::vector<bool>{true, true, true, true, false, false}));
  EXPECT_EQ(seen.first_output_grad[0], 1.0f);  // head's grad_output is dy
}

struct Residual2 {  // a skip connection and a value used three times, with concat and slice
  CTNN_MODULE(Residual2, (Linear<5, 8>, a), (Linear<8, 8>, b), (Linear<16, 4>, c));
  constexpr auto forward(auto x) const {
    auto h = a(x);
    auto g = relu(b(h)) * h + 0.5f * h;
    auto both = concat(g, h - g);
    return c(both) + slice<0, 4>(h);
  }
};

// The reverse pass writes each gradient buffer first and adds to it after
// (module.hpp, BackwardPlan), with no zero-fill: these graphs exercise every
// case of that plan. A value on both sides of *, twice in a concat, a result
// also read elsewhere, the same value returned twice, the input returned, a
// member call that reaches no result, and fused Linear + activation pairs.
struct PlanCases {
  CTNN_MODULE(PlanCases, (Linear<5, 6>, a), (Linear<6, 6>, b), (Linear<6, 3>, unused), (Linear<12, 5>, c));
  constexpr auto forward(auto x) const {
    auto h = a(x);
    auto dead = unused(h);
    (void)dead;
    auto sq = h * h + h;
    auto y = c(concat(sq, sq - relu(h)));
    return outputs<"y", "again", "input", "h", "g">(y, y, x, h, tanh(b(h)) + h);
  }
};
using PlanCasesLayer = ModuleLayer<PlanCases, 5>;
static_assert(!PlanCasesLayer::plan.live[2]);  // unused(h)
// g = tanh(b(h)) + h is a result read by nothing else: its gradient is dy's
// block, passed through the + to tanh, whose backward runs fused with b's.
static_assert(PlanCasesLayer::plan.dy_block[PlanCasesLayer::result_nodes[4]] == 4);
static_assert(PlanCasesLayer::plan.passes_through[PlanCasesLayer::result_nodes[4]] == 1);
// The tutorial's network: both Linear + ReLU pairs run fused backward too, and
// the skip's + hands its gradient to the second ReLU without a copy.
using ResidualMLPLayer = ModuleLayer<ResidualMLP, 3>;
static_assert(ResidualMLPLayer::plan.fused[1] && ResidualMLPLayer::plan.fused[3]);
static_assert(ResidualMLPLayer::graph.nodes[5].kind == detail::NodeKind::add &&
              ResidualMLPLayer::plan.passes_through[5] == 1);

template <class M, std::size_t In, std::size_t Out>
void expect_gradients_match_finite_differences(const char* parameter) {
  Model<M> model{seed(6)};
  std::mt19937 rng(4);
  std::normal_distribution<float> d;
  Batch<In> x(3);
  for (float& v : x) v = d(rng);
  Batch<Out> dy(3);
  for (float& v : dy) v = d(rng);
  auto loss_of = [&](const Batch<In>& in) {
    model.eval();
    const auto y = model(in);
    double s = 0;
    for (std::size_t i = 0; i < y.rows() * Out; ++i) s += double(y.data()[i]) * dy.data()[i];
    return s;
  };
  auto gradients = [&] {
    model.train();
    model.zero_grad();
    (void)model(x);
    const auto gx = model.backward(dy);
    return std::make_pair(std::vector<float>(gx.begin(), gx.end()),
                          std::vector<float>(model.gradients().begin(), model.gradients().end()));
  };
  const auto [gx, grads] = gradients();
  // Another input and gradient through the same workspace and scratch first:
  // nothing may depend on what they held before.
  {
    Batch<In> other(3);
    for (float& v : other) v = 10.0f * d(rng);
    Batch<Out> other_dy(3);
    for (float& v : other_dy) v = 10.0f * d(rng);
    model.train();
    (void)model(other);
    (void)model.backward(other_dy);
  }
  const auto [gx_again, grads_again] = gradients();
  EXPECT_EQ(gx, gx_again);
  EXPECT_EQ(grads, grads_again);
  // Node by node (hooks turn fusion off) gives the same bits.
  {
    model.train();
    model.zero_grad();
    CountCalls hooks;
    (void)model(x, hooks);
    const auto gx_hooked = model.backward(dy, hooks);
    EXPECT_EQ(gx, std::vector<float>(gx_hooked.begin(), gx_hooked.end()));
    EXPECT_EQ(grads, std::vector<float>(model.gradients().begin(), model.gradients().end()));
  }
  for (std::size_t i = 0; i < x.size(); ++i) {  // dLoss/dInput by central differences (in double)
    Batch<In> plus = x, minus = x;
    plus.data()[i] += 1e-2f;
    minus.data()[i] -= 1e-2f;
    EXPECT_NEAR(gx[i], (loss_of(plus) - loss_of(minus)) / 2e-2, 3e-2) << i;
  }
  auto w = model.parameter(parameter);
  const std::size_t at = static_cast<std::size_t>(w.grad() - model.gradients().data());
  for (std::size_t i = 0; i < w.size(); i += 5) {
    const float keep = w.data()[i];
    w.data()[i] = keep + 1e-2f;
    const double up = loss_of(x);
    w.data()[i] = keep - 1e-2f;
    const double down = loss_of(x);
    w.data()[i] = keep;
    EXPECT_NEAR(grads[at + i], (up - down) / 2e-2, 3e-2) << parameter << " " << i;
  }
}

TEST(CustomModule, EveryCaseOfTheGradientPlanMatchesFiniteDifferences) {
  expect_gradients_match_finite_differences<PlanCases, 5, 27>("a.weight");
  expect_gradients_match_finite_differences<PlanCases, 5, 27>("b.weight");
  expect_gradients_match_finite_differences<ResidualMLP, 3, 1>("fc1.weight");
  expect_gradients_match_finite_differences<FusedAndReused, 5, 3>("fc.weight");
  // A member that reaches no result gets no gradient.
  Model<PlanCases> model{seed(6)};
  model.zero_grad();
  Batch<5> x(2);
  (void)model(x);
  Batch<27> dy(2);
  for (float& v : dy) v = 1.0f;
  (void)model.backward(dy);
  auto unused = model.parameter("unused.weight");
  EXPECT_TRUE(std::all_of(unused.grad(), unused.grad() + unused.size(), [](float g) { return g == 0.0f; }));
}

TEST(CustomModule, SharedValuesConcatSliceMatchFiniteDifferences) {
  Model<Residual2> model{seed(3)};
  Batch<5> x(3);
  std::mt19937 rng(2);
  std::normal_distribution<float> d;
  for (float& v : x) v = d(rng);
  Batch<4> dy(3);
  for (float& v : dy) v = d(rng);
  model.eval();
  auto loss_of = [&](const Batch<5>& in) {
    const auto y = model(in);
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += double(y.data()[i]) * dy.data()[i];
    return s;
  };
  model.train();
  model.zero_grad();
  model(x);
  const auto gx = model.backward(dy);
  model.eval();
  for (std::size_t i = 0; i < x.size(); ++i) {  // dLoss/dInput by central differences (in double)
    Batch<5> plus = x, minus = x;
    plus.data()[i] += 1e-2f;
    minus.data()[i] -= 1e-2f;
    EXPECT_NEAR(gx.data()[i], (loss_of(plus) - loss_of(minus)) / 2e-2, 2e-2) << i;
  }
  auto w = model.parameter("b.weight");
  const std::vector<float> analytic(w.grad(), w.grad() + w.size());
  for (std::size_t i = 0; i < w.size(); i += 7) {
    const float keep = w.data()[i];
    w.data()[i] = keep + 1e-2f;
    const double up = loss_of(x);
    w.data()[i] = keep - 1e-2f;
    const double down = loss_of(x);
    w.data()[i] = keep;
    EXPECT_NEAR(analytic[i], (up - down) / 2e-2, 2e-2) << i;
  }
}

}  // namespace
}  // namespace ctnn::test

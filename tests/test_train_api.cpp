// The training API around the numbers: init, freezing, hooks, checkpoints,
// loss errors and arithmetic, and the promise that a training step allocates
// nothing once the largest batch has been seen.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

#include "allocation_counter.hpp"

namespace ctnn::test {
namespace {

using Net = Sequential<Named<"encoder", Sequential<Linear<5, 13>, ReLU, Linear<13, 37>>>, Tanh,
                       Named<"head", Sequential<Dropout<std::ratio<1, 10>>, Linear<37, 3>>>>;

Batch<5> random_batch(std::size_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  Batch<5> x(rows);
  for (float& v : x) v = d(rng);
  return x;
}

TEST(Allocations, TrainingStepAllocatesNothingAfterTheLargestBatch) {
  Model<Net> model{seed(3)};
  optim::Adam opt(model, {.lr = 1e-3f});
  MSELoss mse;
  const Batch<5> x = random_batch(37, 1);
  const Batch<3> y(37);
  const Batch<5> small = random_batch(5, 2);
  const Batch<3> small_y(5);
  auto step = [&](const Batch<5>& in, const Batch<3>& target) {
    opt.zero_grad();
    auto y_hat = model(in);
    auto loss = mse(y_hat, target);
    loss.backward();
    opt.step();
  };
  step(x, y);  // the largest batch: the workspace grows once
  step(small, small_y);
  EXPECT_EQ(count_allocations([&] {
              for (int i = 0; i < 1000; ++i) step(i % 2 ? x : small, i % 2 ? y : small_y);
            }),
            0);
}

TEST(Allocations, EvalForwardOfVecAllocatesNothing) {
  Model<Net> model;
  model.eval();
  Vec<5> v;
  v[0] = 1.0f;
  EXPECT_EQ(count_allocations([&] {
              for (int i = 0; i < 100; ++i) v[1] = model(v)[0];
            }),
            0);
}

TEST(Init, ApplyVisitsEveryModuleWithItsNameAndType) {
  Model<Net> model;
  std::vector<std::string> linears;
  model.apply([&](auto m) {
    if constexpr (is_linear<typename decltype(m)::layer>) {
      linears.emplace_back(m.name);
      init::xavier_uniform_(m.weight());
      init::zeros_(m.bias());
    }
  });
  EXPECT_EQ(linears, (std::vector<std::string>{"encoder.0", "encoder.2", "head.1"}));
  const float bound = std::sqrt(6.0f / (5 + 13));
  for (float w : model.parameter("encoder.0.weight").span()) EXPECT_LE(std::fabs(w), bound);
  for (float b : model.parameter("head.1.bias").span()) EXPECT_EQ(b, 0.0f);
}

TEST(Init, SeededAndReproducible) {
  auto init_all = [](std::uint64_t s) {
    Model<Net> m{seed(s)};
    m.apply([](auto mod) {
      if constexpr (is_linear<typename decltype(mod)::layer>) init::kaiming_normal_(mod.weight(), 0.0, init::FanMode::fan_out, init::Nonlinearity::relu);
    });
    return std::vector<float>(m.parameters().begin(), m.parameters().end());
  };
  EXPECT_EQ(init_all(5), init_all(5));
  EXPECT_NE(init_all(5), init_all(6));
}

TEST(Init, DistributionsHaveTheirMoments) {
  Model<Sequential<Linear<400, 300>>> m{seed(1)};
  auto w = m.parameter("0.weight");
  auto moments = [&] {
    double s = 0, s2 = 0;
    for (float v : w.span()) s += v, s2 += double(v) * v;
    const double n = double(w.size());
    return std::pair{s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
  };
  init::normal_(w, 2.0f, 0.5f);
  auto [mean, sd] = moments();
  EXPECT_NEAR(mean, 2.0, 0.01);
  EXPECT_NEAR(sd, 0.5, 0.01);
  init::kaiming_normal_(w, 0.0, init::FanMode::fan_in, init::Nonlinearity::relu);
  std::tie(mean, sd) = moments();
  EXPECT_NEAR(sd, std::sqrt(2.0 / 400), 0.002);
  init::xavier_normal_(w);
  std::tie(mean, sd) = moments();
  EXPECT_NEAR(sd, std::sqrt(2.0 / 700), 0.002);
  init::kaiming_uniform_(w, std::sqrt(5.0));  // PyTorch's default Linear init
  for (float v : w.span()) EXPECT_LE(std::fabs(v), 1.0f / 20.0f + 1e-7f);
  init::constant_(w, 0.25f);
  for (float v : w.span()) EXPECT_EQ(v, 0.25f);
  EXPECT_THROW(init::xavier_uniform_(m.parameter("0.bias")), ValueError);  // fans of a vector
  EXPECT_NEAR(init::calculate_gain(init::Nonlinearity::tanh), 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(init::calculate_gain(init::Nonlinearity::leaky_relu, 0.2), std::sqrt(2.0 / 1.04), 1e-12);
}

TEST(Freezing, FrozenParametersGetNoGradientAndNoUpdate) {
  Model<Net> model{seed(2)};
  model.freeze("encoder");
  EXPECT_FALSE(model.parameter("encoder.0.weight").requires_grad());
  EXPECT_TRUE(model.parameter("head.1.weight").requires_grad());
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  optim::SGD opt(model, {.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.1f});
  const Batch<5> x = random_batch(8, 3);
  opt.zero_grad();
  MSELoss{}(model(x), Batch<3>(8)).backward();
  for (auto&& p : model.named_parameters()) {
    const bool frozen = std::string(p.name).starts_with("encoder");
    bool any_grad = false;
    for (float g : p.grad_span()) any_grad = any_grad || g != 0.0f;
    EXPECT_EQ(any_grad, !frozen) << p.name;
  }
  opt.step();
  for (auto&& p : model.named_parameters()) {
    const bool same = std::equal(p.data(), p.data() + p.size(), before.begin() + std::ptrdiff_t(p.offset()));
    EXPECT_EQ(same, std::string(p.name).starts_with("encoder")) << p.name;
  }
  model.unfreeze("encoder");
  EXPECT_TRUE(model.parameter("encoder.0.weight").requires_grad());
}

TEST(Freezing, FrozenInputSideSkipsTheWorkThatOnlyFeedsIt) {
  // With the encoder frozen, the backward that loss.backward() runs skips the
  // encoder and the Tanh that only feeds it, and computes no input gradients.
  struct Recorder {
    std::vector<std::pair<std::string, bool>> seen;
    void backward(const ModuleIO& io) { seen.emplace_back(std::string(io.name), io.input.data != nullptr); }
  } recorder;
  Model<Net> model;
  model.freeze("encoder");
  const Batch<5> x = random_batch(4, 5);
  auto y = model(x);
  model.backward_parameters(Batch<3>(4), recorder);
  EXPECT_EQ(recorder.seen, (std::vector<std::pair<std::string, bool>>{{"head.1", false}, {"head", false}, {"", false}}));
}

TEST(Hooks, ForwardHooksSeeEveryModuleWithShapes) {
  struct PrintShapes {
    std::vector<std::string> lines;
    void forward(const ModuleIO& io) {
      lines.push_back(std::string(io.name) + " " + std::string(io.kind) + " " + std::to_string(io.input.rows) + "x" +
                      std::to_string(io.input.features) + "->" + std::to_string(io.output.features));
    }
  } hooks;
  Model<Net> model;
  model.eval();
  static_assert(Model<Net>::tile_rows < 600);
  const auto y = model(random_batch(600, 1), hooks);  // more rows than one tile: hooks see the whole batch
  EXPECT_EQ(hooks.lines, (std::vector<std::string>{
                             "encoder.0 Linear 600x5->13", "encoder.1 ReLU 600x13->13", "encoder.2 Linear 600x13->37",
                             "encoder Sequential 600x5->37", "1 Tanh 600x37->37", "head.0 Dropout 600x37->37",
                             "head.1 Linear 600x37->3", "head Sequential 600x37->3", " Sequential 600x5->3"}));
  const auto plain = model(random_batch(600, 1));
  EXPECT_TRUE(std::equal(y.begin(), y.end(), plain.begin()));
}

TEST(Hooks, BackwardHooksSeeGradientsChildrenAfterParentsOrder) {
  struct Grads {
    std::vector<std::string> names;
    void backward(const ModuleIO& io) { names.emplace_back(io.name); }
  } hooks;
  Model<Sequential<Linear<3, 4>, ReLU, Linear<4, 2>>> model;
  auto y = model(Batch<3>(2, {1, 2, 3, 4, 5, 6}));
  model.backward(Batch<2>(2, {1, 0, 0, 1}), hooks);
  EXPECT_EQ(hooks.names, (std::vector<std::string>{"2", "1", "0", ""}));
}

TEST(Loss, ErrorsNameWhatWasExpected) {
  Model<Net> model;
  auto y = model(random_batch(4, 1));
  try {
    MSELoss{}(y, Batch<3>(5));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("4"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("5"), std::string::npos);
  }
  Labels labels(4);
  labels[2] = 3;
  EXPECT_THROW(CrossEntropyLoss{}(y, labels), ValueError);
  model.eval();
  auto no_graph = MSELoss{}(model(random_batch(4, 1)), Batch<3>(4));
  EXPECT_THROW(no_graph.backward(), Error);
}

TEST(Loss, BackwardNeedsTheLatestForwardAndRunsOnce) {
  Model<Net> model;
  const Batch<5> x = random_batch(4, 1);
  auto first = MSELoss{}(model(x), Batch<3>(4));
  auto second = MSELoss{}(model(x), Batch<3>(4));
  EXPECT_THROW(first.backward(), Error);  // stale: another forward ran
  second.backward();
  EXPECT_THROW(second.backward(), Error);  // the graph is consumed, as in PyTorch
}

TEST(Loss, ScaledAndSummedLossesScaleTheGradient) {
  Model<Net> a{seed(4)}, b{seed(4)};
  const Batch<5> x = random_batch(6, 2);
  const Batch<3> t(6);
  a.zero_grad();
  b.zero_grad();
  MSELoss{}(a(x), t).backward();
  auto yb = b(x);
  auto l = 0.5f * MSELoss{}(yb, t);
  (l + l).backward();  // twice a half: the same gradient
  for (std::size_t i = 0; i < Model<Net>::num_params; ++i) EXPECT_FLOAT_EQ(a.gradients()[i], b.gradients()[i]);
}

TEST(Gradients, AccumulateUntilZeroGrad) {
  Model<Net> model;
  model.eval();
  model.train();
  const Batch<5> x = random_batch(3, 9);
  model.zero_grad();
  MSELoss{}(model(x), Batch<3>(3)).backward();
  const std::vector<float> once(model.gradients().begin(), model.gradients().end());
  MSELoss{}(model(x), Batch<3>(3)).backward();  // dropout draws a new mask, so compare a dropout-free net
  Model<Sequential<Linear<5, 4>, Tanh, Linear<4, 3>>> plain;
  plain.zero_grad();
  MSELoss{}(plain(x), Batch<3>(3)).backward();
  const std::vector<float> g1(plain.gradients().begin(), plain.gradients().end());
  MSELoss{}(plain(x), Batch<3>(3)).backward();
  for (std::size_t i = 0; i < g1.size(); ++i) EXPECT_FLOAT_EQ(plain.gradients()[i], 2 * g1[i]);
  plain.zero_grad();
  for (float g : plain.gradients()) EXPECT_EQ(g, 0.0f);
}

std::filesystem::path temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "ctnn_train_api";
  std::filesystem::create_directories(dir);
  return dir / name;
}

TEST(Checkpoint, ResumedTrainingContinuesBitForBit) {
  const Batch<5> x = random_batch(16, 7);
  Batch<3> y(16);
  for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = std::sin(float(i));
  MSELoss mse;
  auto train_steps = [&](Model<Net>& m, optim::Adam& opt, int steps) {
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      mse(m(x), y).backward();
      opt.step();
    }
  };
  Model<Net> straight{seed(11)};
  optim::Adam straight_opt(straight, {.lr = 1e-2f});
  train_steps(straight, straight_opt, 10);

  Model<Net> first{seed(11)};
  optim::Adam first_opt(first, {.lr = 1e-2f});
  train_steps(first, first_opt, 4);
  const auto path = temp_path("resume.safetensors");
  save_checkpoint(path, first, first_opt, 4);

  Model<Net> resumed{seed(99)};
  optim::Adam resumed_opt(resumed, {.lr = 1e-2f});
  EXPECT_EQ(load_checkpoint(path, resumed, resumed_opt), 4);
  train_steps(resumed, resumed_opt, 6);
  for (std::size_t i = 0; i < Model<Net>::num_params; ++i)
    ASSERT_EQ(resumed.parameters()[i], straight.parameters()[i]) << "parameter " << i;
}

TEST(Checkpoint, WrongOptimizerOrModelLeavesEverythingUnchanged) {
  Model<Net> model{seed(1)};
  optim::Adam adam(model);
  const auto path = temp_path("adam.safetensors");
  save_checkpoint(path, model, adam, 1);
  Model<Net> other{seed(2)};
  const std::vector<float> before(other.parameters().begin(), other.parameters().end());
  optim::SGD sgd(other, {.lr = 0.1f, .momentum = 0.9f});
  try {
    load_checkpoint(path, other, sgd);
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("Adam"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("SGD"), std::string::npos);
  }
  EXPECT_TRUE(std::equal(before.begin(), before.end(), other.parameters().begin()));
  Model<Sequential<Linear<5, 3>>> small;
  optim::Adam small_opt(small);
  EXPECT_THROW(load_checkpoint(path, small, small_opt), LoadError);
}

}  // namespace
}  // namespace ctnn::test

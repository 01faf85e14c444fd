// ThreadPool (core/thread_pool.hpp) and the models that split their large
// products over one: every part runs once, on its own thread; a model gives
// the same bits with and without a pool, in evaluation and in training, on
// every architecture; batch-1 and narrow networks never hand work over; and a
// training step with a pool allocates nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "allocation_counter.hpp"
#include "test_inputs.hpp"

namespace ctnn::test {
namespace {

TEST(ThreadPool, RunsEveryPartOnceOnItsOwnThreadAndWaitsForAll) {
  for (std::size_t threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int job = 0; job < 2000; ++job) {
      const std::size_t parts = 1 + static_cast<std::size_t>(job) % threads;
      std::vector<std::atomic<int>> runs(threads);
      std::vector<std::thread::id> ran_on(threads);
      pool.run(parts, [&](std::size_t part) {
        runs[part].fetch_add(1);
        ran_on[part] = std::this_thread::get_id();
      });
      // run() has returned: every part has finished, and no other ran.
      for (std::size_t p = 0; p < threads; ++p) ASSERT_EQ(runs[p].load(), p < parts ? 1 : 0) << threads << " " << job;
      ASSERT_EQ(ran_on[0], std::this_thread::get_id());
      for (std::size_t p = 1; p < parts; ++p)
        for (std::size_t q = 0; q < p; ++q) ASSERT_NE(ran_on[p], ran_on[q]);
    }
  }
}

TEST(ThreadPool, PoolsStartAndStopWhetherTheirWorkersSpinOrSleep) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(3);
    std::atomic<int> sum{0};
    pool.run(3, [&](std::size_t part) { sum += static_cast<int>(part) + 1; });
    EXPECT_EQ(sum.load(), 6);
    if (i % 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // past the spin: workers asleep
  }
  ThreadPool idle(2);  // destroyed without a job
  EXPECT_EQ(idle.jobs(), 0u);
  EXPECT_EQ(ThreadPool::for_hardware().size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(ThreadPool, BadSizesSayWhatWasExpected) {
  try {
    ThreadPool pool(0);
    FAIL() << "ThreadPool(0) did not throw";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 1 thread"), std::string::npos) << e.what();
  }
  ThreadPool pool(2);
  try {
    pool.run(3, [](std::size_t) {});
    FAIL() << "run(3) on 2 threads did not throw";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("got 3 parts, but the pool has 2 threads"), std::string::npos) << e.what();
  }
}

TEST(ThreadPool, AnExceptionFromTheCallersPartLeavesOnceTheWorkersAreDone) {
  ThreadPool pool(3);
  std::atomic<int> finished{0};
  EXPECT_THROW(pool.run(3,
                        [&](std::size_t part) {
                          if (part == 0) throw std::runtime_error("part 0");
                          std::this_thread::sleep_for(std::chrono::milliseconds(5));
                          ++finished;
                        }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);  // both workers had finished when run() threw
  pool.run(3, [&](std::size_t) { ++finished; });  // and the pool still works
  EXPECT_EQ(finished.load(), 5);
}

TEST(ThreadPool, ACallerFindingThePoolBusyRunsItsPartsItself) {
  ThreadPool pool(2);
  // From inside a job: the inner run finds the pool busy.
  std::atomic<int> inner{0};
  pool.run(2, [&](std::size_t part) {
    if (part == 0) pool.run(2, [&](std::size_t) { ++inner; });
  });
  EXPECT_EQ(inner.load(), 2);
  // Two threads sharing the pool: every part of every job runs once.
  std::atomic<int> total{0};
  auto many_jobs = [&] {
    for (int i = 0; i < 2000; ++i) pool.run(2, [&](std::size_t part) { total += static_cast<int>(part) + 1; });
  };
  std::thread other(many_jobs);
  many_jobs();
  other.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 3);
}

// Layers wide enough that their products reach gemm_parallel_min_fmas at a few
// dozen rows (300 x 257 x 37 rows = 2.85 M multiply-adds), odd widths.
using Wide = Sequential<Linear<300, 257>, ReLU, Linear<257, 129>, Tanh, Linear<129, 37>>;

template <class Net>
std::vector<float> forward_eval(Model<Net>& model, const std::vector<float>& x, std::size_t rows) {
  std::vector<float> y(rows * Model<Net>::out_features);
  model.forward_into(x.data(), y.data(), rows);
  return y;
}

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST(Threads, EvaluationGivesTheSameBitsOnEveryArchitecture) {
  for (kernels::Arch arch : available_archs()) {
    for (std::size_t threads : {2, 3, 8}) {  // 8: more threads than some products have panels
      // Two models with the same parameters, so that neither's workspace holds
      // the other's results: a row or column the threads left unwritten would differ.
      Model<Wide> alone_model{seed(5)}, split_model{seed(5)};
      for (Model<Wide>* m : {&alone_model, &split_model}) {
        m->eval();
        m->set_arch(arch);
      }
      ThreadPool pool(threads);
      split_model.set_thread_pool(&pool);
      for (std::size_t rows : {1, 5, 37, 300}) {
        const std::vector<float> x = random_values(rows * 300, static_cast<std::uint32_t>(rows));
        const std::vector<float> alone = forward_eval(alone_model, x, rows);
        const std::size_t jobs_before = pool.jobs();
        const std::vector<float> split = forward_eval(split_model, x, rows);
        EXPECT_TRUE(same_bits(alone.data(), split.data(), alone.size()))
            << kernels::arch_name(arch) << ", " << threads << " threads, " << rows << " rows";
        // The first product reaches the threshold from 28 rows on; one row never does.
        EXPECT_EQ(pool.jobs() > jobs_before, rows >= 28) << kernels::arch_name(arch) << ", " << rows << " rows";
      }
    }
  }
}

TEST(Threads, InferenceModelBatchesSplitAndSingleRowsDoNot) {
  Model<Wide> model{seed(6)};
  model.eval();
  ThreadPool pool(2);
  model.set_thread_pool(&pool);
  InferenceModel<Wide> split(model);
  EXPECT_EQ(split.thread_pool(), &pool);
  InferenceModel<Wide> alone(model);
  alone.set_thread_pool(nullptr);
  const std::vector<float> x = random_values(300 * 300, 9);
  std::vector<float> y_alone(300 * 37), y_split(300 * 37);
  alone.forward_into(x.data(), y_alone.data(), 300);
  std::size_t jobs = pool.jobs();
  split.forward_into(x.data(), y_split.data(), 300);
  EXPECT_GT(pool.jobs(), jobs);
  EXPECT_TRUE(same_bits(y_alone.data(), y_split.data(), y_alone.size()));
  jobs = pool.jobs();
  Vec<300> one;
  std::copy_n(x.data(), 300, one.data());
  const Vec<37> y = split(one);
  for (std::size_t j = 0; j < 37; ++j) EXPECT_NEAR(y[j], y_alone[j], 1e-4f) << j;  // the row kernels' own order
  EXPECT_EQ(pool.jobs(), jobs) << "a single row handed work to the pool";
}

TEST(Threads, NarrowNetworksNeverHandWorkOver) {
  // Layers at most 4 wide are narrow on every architecture (body/linear.hpp);
  // 2^18 rows x 4 x 4 would pass the threshold, were they run as products.
  using Narrow = Sequential<Linear<3, 4>, ReLU, Residual<Sequential<Linear<4, 4>, ReLU>>, Linear<4, 1>>;
  constexpr std::size_t rows = std::size_t{1} << 18;
  for (kernels::Arch arch : available_archs()) {
    Model<Narrow> model{seed(1)};
    model.set_arch(arch);
    ThreadPool pool(2);
    model.set_thread_pool(&pool);
    const Batch<3> x(rows);
    MSELoss{}(model(x), Batch<1>(rows)).backward();
    model.eval();
    (void)model(x);
    EXPECT_EQ(pool.jobs(), 0u) << kernels::arch_name(arch);
  }
}

TEST(Threads, FewInputLayersSplitTheirRowsWithTheSameBits) {
  // Linear<2, 1024> runs forward without the GEMM (body/linear.hpp's
  // forward_few_inputs); 1100 rows x 1024 x 2 = 2.25 M multiply-adds pass the
  // threshold, 5 rows do not. Training mode: one pass over all rows (evaluation
  // runs tiles of at most 256).
  using FewInputs = Sequential<Linear<2, 1024>, Tanh, Linear<1024, 1>>;
  for (kernels::Arch arch : available_archs()) {
    Model<FewInputs> alone_model{seed(9)}, split_model{seed(9)};
    for (Model<FewInputs>* m : {&alone_model, &split_model}) m->set_arch(arch);
    ThreadPool pool(2);
    split_model.set_thread_pool(&pool);
    for (std::size_t rows : {5, 1100}) {
      const std::vector<float> x = random_values(rows * 2, static_cast<std::uint32_t>(rows));
      const std::vector<float> alone = forward_eval(alone_model, x, rows);
      const std::size_t jobs_before = pool.jobs();
      const std::vector<float> split = forward_eval(split_model, x, rows);
      EXPECT_TRUE(same_bits(alone.data(), split.data(), alone.size())) << kernels::arch_name(arch) << ", " << rows;
      EXPECT_EQ(pool.jobs() > jobs_before, rows == 1100) << kernels::arch_name(arch) << ", " << rows << " rows";
    }
  }
}

/// Three SGD steps on 37 and 300 rows; the parameters after them.
std::vector<float> train_three_steps(ThreadPool* pool, kernels::Arch arch, std::size_t* jobs) {
  Model<Wide> model{seed(7)};
  model.set_arch(arch);
  model.set_thread_pool(pool);
  optim::SGD opt(model, {.lr = 0.05f, .momentum = 0.9f});
  for (std::size_t rows : {37, 300, 300}) {
    Batch<300> x(rows);
    Batch<37> target(rows);
    const std::vector<float> xs = random_values(x.size(), static_cast<std::uint32_t>(rows) + 1);
    const std::vector<float> ts = random_values(target.size(), static_cast<std::uint32_t>(rows) + 2);
    std::copy(xs.begin(), xs.end(), x.data());
    std::copy(ts.begin(), ts.end(), target.data());
    opt.zero_grad();
    MSELoss{}(model(x), target).backward();
    opt.step();
  }
  if (jobs) *jobs = pool ? pool->jobs() : 0;
  return {model.parameters().begin(), model.parameters().end()};
}

TEST(Threads, TrainingStepsGiveTheSameBitsOnEveryArchitecture) {
  for (kernels::Arch arch : available_archs()) {
    const std::vector<float> alone = train_three_steps(nullptr, arch, nullptr);
    for (std::size_t threads : {2, 8}) {
      ThreadPool pool(threads);
      std::size_t jobs = 0;
      const std::vector<float> split = train_three_steps(&pool, arch, &jobs);
      EXPECT_TRUE(same_bits(alone.data(), split.data(), alone.size()))
          << kernels::arch_name(arch) << ", " << threads << " threads";
      // Forward, input and weight gradients of the wide layers all split.
      EXPECT_GE(jobs, 6u) << kernels::arch_name(arch);
    }
  }
}

TEST(Threads, ATrainingStepWithAPoolAllocatesNothing) {
  Model<Wide> model{seed(8)};
  ThreadPool pool(2);
  model.set_thread_pool(&pool);
  optim::Adam opt(model, {.lr = 1e-3f});
  MSELoss mse;
  Batch<300> x(64);
  const std::vector<float> xs = random_values(x.size(), 3);
  std::copy(xs.begin(), xs.end(), x.data());
  const Batch<37> target(64);
  auto step = [&] {
    opt.zero_grad();
    auto loss = mse(model(x), target);
    loss.backward();
    opt.step();
  };
  step();
  const std::size_t jobs = pool.jobs();
  EXPECT_EQ(count_allocations([&] {
              for (int i = 0; i < 200; ++i) step();
            }),
            0);
  EXPECT_GT(pool.jobs(), jobs);
}

}  // namespace
}  // namespace ctnn::test

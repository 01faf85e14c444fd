// The run-time design ctnn is compared with: a network as a list of layers
// whose sizes are known only at run time, every matrix an Eigen::MatrixXf
// (column-major, one column per sample), the same forward, backward (MSE or
// cross-entropy) and SGD step as ctnn and PyTorch. Buffers are members that are
// resized only when the batch size changes, so steady-state calls do not
// allocate. Benchmark names are "eigen/<workload>/<measure>", as in
// bench_ctnn.cpp.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <ctnn/io/safetensors.hpp>  // only to read the sine task's data file

#include "workloads.hpp"

namespace {

using Eigen::MatrixXf;
using Eigen::VectorXf;

enum class Act { none, relu, tanh };

struct LayerDesc {
  int in;
  int out;
  Act act;
  bool skip_source = false;  // this layer's input is saved as the residual
  bool skip_add = false;     // the saved residual is added to this layer's output
};

class RuntimeNet {
 public:
  explicit RuntimeNet(std::vector<LayerDesc> desc, unsigned seed = 1) : desc_(std::move(desc)) {
    std::mt19937 gen(seed);
    const std::size_t n = desc_.size();
    W.resize(n), b.resize(n), dW.resize(n), db.resize(n), H_.resize(n), D_.resize(n);
    A_.resize(n + 1);
    for (std::size_t l = 0; l < n; ++l) {
      const float bound = 1.0f / std::sqrt(static_cast<float>(desc_[l].in));  // PyTorch's default
      std::uniform_real_distribution<float> u(-bound, bound);
      W[l].resize(desc_[l].out, desc_[l].in);
      b[l].resize(desc_[l].out);
      for (Eigen::Index i = 0; i < W[l].size(); ++i) W[l].data()[i] = u(gen);
      for (Eigen::Index i = 0; i < b[l].size(); ++i) b[l][i] = u(gen);
      dW[l] = MatrixXf::Zero(desc_[l].out, desc_[l].in);
      db[l] = VectorXf::Zero(desc_[l].out);
    }
  }

  int in_features() const { return desc_.front().in; }
  int out_features() const { return desc_.back().out; }

  /// X: in x B. Returns the output, out x B (a reference to an internal buffer).
  const MatrixXf& forward(const MatrixXf& X) {
    A_[0] = X;
    int skip = -1;
    for (std::size_t l = 0; l < desc_.size(); ++l) {
      const LayerDesc& d = desc_[l];
      if (d.skip_source) skip = static_cast<int>(l);
      MatrixXf& h = d.skip_add ? H_[l] : A_[l + 1];
      h.noalias() = W[l] * A_[l];
      h.colwise() += b[l];
      if (d.act == Act::relu) h = h.cwiseMax(0.0f);
      else if (d.act == Act::tanh) h = h.array().tanh();
      if (d.skip_add) A_[l + 1] = h + A_[static_cast<std::size_t>(skip)];
    }
    return A_.back();
  }

  /// dY: dLoss/dOutput, out x B. Accumulates dW, db; no input gradient.
  void backward(const MatrixXf& dY) {
    G_ = dY;
    bool pending = false;
    for (std::size_t l = desc_.size(); l-- > 0;) {
      const LayerDesc& d = desc_[l];
      if (d.skip_add) {
        skip_grad_ = G_;
        pending = true;
      }
      const MatrixXf& h = d.skip_add ? H_[l] : A_[l + 1];
      MatrixXf& D = D_[l];
      if (d.act == Act::relu) D = (h.array() > 0.0f).select(G_, 0.0f);
      else if (d.act == Act::tanh) D = G_.array() * (1.0f - h.array().square());
      else D = G_;
      dW[l].noalias() += D * A_[l].transpose();
      db[l] += D.rowwise().sum();
      if (l == 0) break;
      Gin_.noalias() = W[l].transpose() * D;
      if (d.skip_source && pending) {
        Gin_ += skip_grad_;
        pending = false;
      }
      G_.swap(Gin_);
    }
  }

  void zero_grad() {
    for (std::size_t l = 0; l < desc_.size(); ++l) dW[l].setZero(), db[l].setZero();
  }
  void sgd_step(float lr) {
    for (std::size_t l = 0; l < desc_.size(); ++l) W[l] -= lr * dW[l], b[l] -= lr * db[l];
  }

  std::vector<MatrixXf> W, dW;
  std::vector<VectorXf> b, db;

 private:
  std::vector<LayerDesc> desc_;
  std::vector<MatrixXf> A_, H_, D_;
  MatrixXf G_, Gin_, skip_grad_;
};

/// MSE (mean over all elements): the loss, and dLoss/dY into grad.
float mse(const MatrixXf& y, const MatrixXf& t, MatrixXf& grad) {
  const float n = static_cast<float>(y.size());
  grad = y - t;
  const float loss = grad.squaredNorm() / n;
  grad *= 2.0f / n;
  return loss;
}

/// Cross-entropy over class indices (mean over the batch), columns are samples.
float cross_entropy(const MatrixXf& logits, const std::vector<int>& labels, MatrixXf& grad) {
  const Eigen::Index B = logits.cols();
  grad.resize(logits.rows(), B);
  double loss = 0.0;
  for (Eigen::Index j = 0; j < B; ++j) {
    const float m = logits.col(j).maxCoeff();
    grad.col(j) = (logits.col(j).array() - m).exp();
    const float s = grad.col(j).sum();
    loss += std::log(s) + m - logits(labels[static_cast<std::size_t>(j)], j);
    grad.col(j) /= s * static_cast<float>(B);
    grad(labels[static_cast<std::size_t>(j)], j) -= 1.0f / static_cast<float>(B);
  }
  return static_cast<float>(loss / static_cast<double>(B));
}

std::vector<LayerDesc> w6() { return {{3, 1, Act::none}}; }
std::vector<LayerDesc> w1() {
  return {{3, 16, Act::relu}, {16, 16, Act::relu, true, true}, {16, 1, Act::none}};
}
std::vector<LayerDesc> w2() { return {{1, 64, Act::tanh}, {64, 64, Act::tanh}, {64, 1, Act::none}}; }
std::vector<LayerDesc> w3() { return {{784, 256, Act::relu}, {256, 128, Act::relu}, {128, 10, Act::none}}; }
std::vector<LayerDesc> w4() {
  std::vector<LayerDesc> d;
  for (int i = 0; i < 4; ++i) {
    d.push_back({128, 128, Act::relu, true, false});
    d.push_back({128, 128, Act::none, false, true});
  }
  return d;
}
std::vector<LayerDesc> w5() { return {{1024, 1024, Act::relu}, {1024, 1024, Act::relu}, {1024, 1024, Act::none}}; }

MatrixXf random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed) {
  MatrixXf m(rows, cols);
  bench::fill_uniform(m.data(), static_cast<std::size_t>(m.size()), seed);
  return m;
}

void latency(benchmark::State& st, std::vector<LayerDesc> desc) {
  RuntimeNet net(desc);
  MatrixXf x = random_matrix(net.in_features(), 1, 7);
  for (auto _ : st) {
    benchmark::DoNotOptimize(x.data());
    const MatrixXf& y = net.forward(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}

void chained(benchmark::State& st, std::vector<LayerDesc> desc) {
  RuntimeNet net(desc);
  const MatrixXf x0 = random_matrix(net.in_features(), 1, 7);
  MatrixXf x = x0;
  for (auto _ : st) {
    const MatrixXf& y = net.forward(x);
    x(0, 0) = x0(0, 0) + bench::chain_gain * y(0, 0);
  }
  benchmark::DoNotOptimize(x.data());
}

void throughput(benchmark::State& st, std::vector<LayerDesc> desc, std::size_t rows, double flops) {
  RuntimeNet net(desc);
  const MatrixXf x = random_matrix(net.in_features(), static_cast<Eigen::Index>(rows), 11);
  for (auto _ : st) {
    const MatrixXf& y = net.forward(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * rows));
  st.counters["GFLOPs"] = benchmark::Counter(flops * static_cast<double>(rows) * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

void train_step(benchmark::State& st, std::vector<LayerDesc> desc, std::size_t rows, bool classify) {
  RuntimeNet net(desc);
  const auto B = static_cast<Eigen::Index>(rows);
  const MatrixXf x = random_matrix(net.in_features(), B, 13);
  const MatrixXf t = random_matrix(net.out_features(), B, 17);
  std::vector<int> labels(rows);
  for (std::size_t i = 0; i < rows; ++i) labels[i] = static_cast<int>(i % static_cast<std::size_t>(net.out_features()));
  MatrixXf grad;
  for (auto _ : st) {
    net.zero_grad();
    const MatrixXf& y = net.forward(x);
    float loss = classify ? cross_entropy(y, labels, grad) : mse(y, t, grad);
    benchmark::DoNotOptimize(loss);
    net.backward(grad);
    net.sgd_step(1e-3f);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * rows));
}

std::string sine_data_file() {
  if (const char* p = std::getenv("CTNN_BENCH_SINE_DATA")) return p;
  return CTNN_BENCH_SINE_DATA;
}

// The sine task as in bench_ctnn.cpp: same data, same starting weights.
void sine_task(benchmark::State& st) {
  const auto file = ctnn::SafetensorsFile::read(sine_data_file());
  RuntimeNet net(w2());
  const char* names[] = {"param.net.0", "param.net.2", "param.net.4"};
  for (std::size_t l = 0; l < 3; ++l) {
    const std::vector<float> w = file.to_f32(std::string(names[l]) + ".weight");  // [out, in], row-major
    const std::vector<float> bias = file.to_f32(std::string(names[l]) + ".bias");
    for (Eigen::Index o = 0; o < net.W[l].rows(); ++o)
      for (Eigen::Index i = 0; i < net.W[l].cols(); ++i)
        net.W[l](o, i) = w[static_cast<std::size_t>(o * net.W[l].cols() + i)];
    for (Eigen::Index o = 0; o < net.b[l].size(); ++o) net.b[l][o] = bias[static_cast<std::size_t>(o)];
  }
  const std::vector<float> xs = file.to_f32("input"), ts = file.to_f32("target");
  const MatrixXf x = Eigen::Map<const MatrixXf>(xs.data(), 1, 200);
  const MatrixXf t = Eigen::Map<const MatrixXf>(ts.data(), 1, 200);
  const std::vector<MatrixXf> W0 = net.W;
  const std::vector<VectorXf> b0 = net.b;
  MatrixXf grad;
  int epochs = 0;
  float last = 0.0f;
  for (auto _ : st) {
    net.W = W0;
    net.b = b0;
    epochs = 0;
    while (epochs < bench::sine_max_epochs) {
      net.zero_grad();
      last = mse(net.forward(x), t, grad);
      net.backward(grad);
      net.sgd_step(bench::sine_lr);
      ++epochs;
      if (last < bench::sine_target_mse) break;
    }
  }
  st.counters["epochs"] = epochs;
  st.counters["final_loss"] = last;
}

void register_workload(const std::string& w, std::vector<LayerDesc> (*desc)(), std::size_t tp_rows, double flops,
                       std::size_t train_rows, bool classify = false) {
  const std::string p = "eigen/" + w + "/";
  benchmark::RegisterBenchmark((p + "latency").c_str(), latency, desc());
  benchmark::RegisterBenchmark((p + "chained").c_str(), chained, desc());
  benchmark::RegisterBenchmark((p + "throughput").c_str(), throughput, desc(), tp_rows, flops);
  benchmark::RegisterBenchmark((p + "train").c_str(), train_step, desc(), train_rows, classify);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bench;
  register_workload("W6", w6, throughput_batch, flops_w6, train_batch);
  register_workload("W1", w1, throughput_batch, flops_w1, train_batch);
  register_workload("W2", w2, throughput_batch, flops_w2, train_batch_w2);
  register_workload("W3", w3, throughput_batch, flops_w3, train_batch, true);
  register_workload("W4", w4, throughput_batch, flops_w4, train_batch);
  register_workload("W5", w5, throughput_batch_w5, flops_w5, train_batch);
  benchmark::RegisterBenchmark("eigen/sine/task", sine_task)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

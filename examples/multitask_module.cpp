// The multi-task tutorial as a custom module: a shared trunk, a ModuleDict of
// heads, a forward that returns every head, the tutorial's
// forward(x, task_name) with the task chosen at compile time, and training on
// the sum of a classification and a regression loss.
// (examples/multitask.cpp is the same network written as a pipeline.)
//
//   class MultiTask(nn.Module):                  # tests/data/CONFORMANCE.md 7.10
//       def __init__(self, in_dim=16, hidden=32, n_classes=10, n_reg=1):
//           super().__init__()
//           self.shared = nn.Linear(in_dim, hidden)
//           self.heads = nn.ModuleDict({"classify": nn.Linear(hidden, n_classes),
//                                       "regress": nn.Linear(hidden, n_reg)})
//       def forward(self, x, task_name=None):
//           h = torch.relu(self.shared(x))
//           if task_name is not None:
//               return self.heads[task_name](h)
//           return {name: head(h) for name, head in self.heads.items()}
//
//   out = model(x)
//   loss = nn.CrossEntropyLoss()(out["classify"], classes) + nn.MSELoss()(out["regress"], values)
//   model(x, "classify")                         # one head only
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

struct MultiTask {
  CTNN_MODULE(MultiTask,
              (Linear<16, 32>, shared),
              (Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>, heads));  // ModuleDict
  constexpr auto forward(auto x) const {  // every head, as the tutorial's dict
    auto h = relu(shared(x));
    return outputs<"classify", "regress">(heads.get<"classify">(h), heads.get<"regress">(h));
  }
  template <fixed_string Task>            // forward(x, task_name), the task chosen at compile time
  constexpr auto forward(auto x) const {
    return heads.get<Task>(relu(shared(x)));
  }
};
static_assert(MultiTask::num_params == (16 * 32 + 32) + (32 * 10 + 10) + (32 * 1 + 1));
static_assert(Model<MultiTask>::layer::params[2].name == "heads.classify.weight");

int main() {
  Model<MultiTask> model{seed(0)};
  std::cout << model << "\n\n";

  // PyTorch's weights: both heads, and each head alone, against PyTorch's outputs.
  const std::string file = example::reference_file("multitask");
  load_safetensors(model, file, {.prefix = "param."});
  const Batch<16> torch_x(4, SafetensorsFile::read(file).to_f32("input"));
  auto out = model(torch_x);
  BatchView<10> classify = out.get<"classify">();  // each head's width is part of its type
  BatchView<1> regress = out.get<"regress">();
  bool ok = example::matches_pytorch("multitask", "output.classify", {classify.data(), classify.size()});
  ok = example::matches_pytorch("multitask", "output.regress", {regress.data(), regress.size()}) && ok;
  const Batch<10> only_classify = model.forward<"classify">(torch_x);  // model(x, "classify")
  ok = example::matches_pytorch("multitask", "output.classify", only_classify.values()) && ok;

  // Toy data: the class is the largest of the first 10 features, the value
  // the mean of the sines of all 16.
  Generator data{seed(1)};
  Batch<16> x(512);
  Labels classes(512);
  Batch<1> values(512);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    float s = 0.0f;
    for (std::size_t j = 0; j < 16; ++j) {
      x(i, j) = data.uniform(-2.0f, 2.0f);
      s += std::sin(x(i, j));
    }
    std::size_t best = 0;
    for (std::size_t j = 1; j < 10; ++j)
      if (x(i, j) > x(i, best)) best = j;
    classes[i] = static_cast<std::int64_t>(best);
    values(i, 0) = s / 16.0f;
  }

  Model<MultiTask> net{seed(0)};
  optim::Adam opt(net, {.lr = 1e-2f});
  CrossEntropyLoss ce;
  MSELoss mse;
  float first = 0.0f, last = 0.0f;
  std::cout << "\ntraining on CE(classify) + MSE(regress):\n";
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    auto o = net(x);
    auto loss = ce(o.get<"classify">(), classes) + mse(o.get<"regress">(), values);  // one backward for both
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 50 == 0 || step == 299) std::printf("  step %3d  loss %.5f\n", step, loss.item());
  }

  net.eval();
  const Batch<10> logits = net.forward<"classify">(x);  // the classify head only
  std::size_t right = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    std::size_t best = 0;
    for (std::size_t j = 1; j < 10; ++j)
      if (logits(i, j) > logits(i, best)) best = j;
    right += static_cast<std::int64_t>(best) == classes[i];
  }
  std::printf("loss went from %.4f to %.4f; training accuracy %.1f%%\n", first, last,
              100.0 * double(right) / double(x.rows()));
  ok = ok && last < 0.5f * first;
  return ok ? 0 : 1;
}

// The examples of docs/train-eval.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <cstddef>
#include <iostream>
#include <ratio>

using namespace ctnn;

// [net]
using Net = Sequential<Linear<4, 16>, BatchNorm1d<16>, ReLU, Dropout<std::ratio<1, 5>>,
                       Linear<16, 8>, LayerNorm<8>, Linear<8, 1>>;
// nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(p=0.2),
//               nn.Linear(16, 8), nn.LayerNorm(8), nn.Linear(8, 1))
// [/net]

int main() {
  bool ok = true;
  Generator data{seed(5)};
  Batch<4> x(64);
  for (float& v : x) v = data.normal() * 2.0f + 1.0f;

  // [modes]
  Model<Net> model{seed(0)};
  std::cout << std::boolalpha << model.is_training() << '\n';   // model.training: True, as in PyTorch
  model.eval();                                        // model.eval()
  std::cout << model << '\n';                          // print(model), plus a last line "mode: eval"
  model.train();                                       // model.train()
  // [/modes]

  // [dropout]
  using Drop = Sequential<Linear<8, 8>, Dropout<std::ratio<1, 4>>>;   // nn.Dropout(p=0.25)
  Model<Drop> drop{seed(1)};
  Batch<8> in(1000);
  for (float& v : in) v = data.uniform(0.5f, 1.5f);
  drop.eval();
  const Batch<8> kept = drop(in);                      // eval: Dropout is the identity
  drop.train();
  const Batch<8> dropped = drop(in);                   // train: zeros with probability 0.25, the rest * 1/0.75
  std::size_t zeros = 0;
  double ratio = 0.0;
  for (std::size_t i = 0; i < dropped.size(); ++i) {
    if (dropped.data()[i] == 0.0f) ++zeros;
    else ratio += dropped.data()[i] / kept.data()[i];
  }
  std::cout << "zeroed " << double(zeros) / double(dropped.size()) << ", survivors scaled by "
            << ratio / double(dropped.size() - zeros) << '\n';   // about 0.25 and 1.3333
  // [/dropout]
  const double zero_fraction = double(zeros) / double(dropped.size());
  ok = ok && std::fabs(zero_fraction - 0.25) < 0.03 && std::fabs(ratio / double(dropped.size() - zeros) - 4.0 / 3.0) < 1e-4;

  // [batchnorm]
  auto buffers = [&] {
    for (auto&& b : model.named_buffers()) {           // model.named_buffers()
      std::cout << b.name << ": ";
      if (b.is_integer()) std::cout << *b.integer_data();
      else std::cout << b.data()[0] << ", ...";
      std::cout << '\n';
    }
  };
  buffers();                                           // running_mean 0, running_var 1, num_batches_tracked 0
  model.train();
  auto y_train = model(x);                             // batch statistics; running statistics updated
  buffers();                                           // num_batches_tracked 1
  model.eval();
  auto y_eval = model(x);                              // running statistics; nothing updated
  buffers();                                           // unchanged
  // [/batchnorm]
  (void)y_train;
  (void)y_eval;
  ok = ok && *model.named_buffers()[2].integer_data() == 1;

  // [batchnorm_one_row]
  model.train();
  try {
    model(Batch<4>(1));
  } catch (const ValueError& e) {
    std::cout << e.what() << '\n';
  }
  // [/batchnorm_one_row]

  // [layernorm]
  using Norm = LayerNorm<8>;                           // nn.LayerNorm(8): weight 1, bias 0 at first
  Model<Norm> norm;
  Batch<8> row(1, {1, 2, 3, 4, 5, 6, 7, 8});
  const Batch<8> a = norm(row);                        // the same in training and evaluation mode
  norm.eval();
  const Batch<8> b = norm(row);
  std::cout << "LayerNorm: " << a(0, 0) << " ... " << a(0, 7) << (a(0, 0) == b(0, 0) ? " in both modes\n" : "\n");
  // [/layernorm]
  ok = ok && a(0, 0) == b(0, 0);

  return ok ? 0 : 1;
}

// TinyModel from PyTorch's "Building Models with PyTorch" tutorial.
//
//   class TinyModel(torch.nn.Module):
//       def __init__(self):
//           super(TinyModel, self).__init__()
//           self.linear1 = torch.nn.Linear(100, 200)
//           self.activation = torch.nn.ReLU()
//           self.linear2 = torch.nn.Linear(200, 10)
//           self.softmax = torch.nn.Softmax()
//       def forward(self, x):
//           x = self.linear1(x)
//           x = self.activation(x)
//           x = self.linear2(x)
//           x = self.softmax(x)
//           return x
//
//   tinymodel = TinyModel()
//   print(tinymodel)
//   print(tinymodel.linear2)
//   for param in tinymodel.linear2.parameters(): print(param)
//   print(tinymodel(torch.rand(2, 100)))
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <iostream>

using namespace ctnn;

// Named<"...", L> gives each child its attribute name, so the state_dict keys
// are PyTorch's: linear1.weight, linear1.bias, linear2.weight, linear2.bias.
using TinyModel = Sequential<Named<"linear1", Linear<100, 200>>, Named<"activation", ReLU>,
                             Named<"linear2", Linear<200, 10>>, Named<"softmax", Softmax>>;
static_assert(TinyModel::num_params == 100 * 200 + 200 + 200 * 10 + 10);
static_assert(TinyModel::params[2].name == "linear2.weight");

int main() {
  Model<TinyModel> tinymodel;
  std::cout << "The model:\n" << tinymodel << "\n\n";

  auto linear2 = tinymodel.submodule<"linear2">();  // tinymodel.linear2, runnable on its own
  std::cout << "Just one layer:\n" << repr<decltype(linear2)::layer>() << "\n\n";

  std::cout << "Layer params:\n";
  for (auto&& p : tinymodel.named_parameters())     // tinymodel.linear2.parameters()
    if (p.name.starts_with("linear2."))
      std::cout << p.name << ": " << p.size() << " values, first " << p.data()[0] << '\n';

  Generator rand{seed(1)};                         // torch.rand(2, 100)
  Batch<100> x(2);
  for (float& v : x) v = rand.uniform();
  const Batch<10> probabilities = tinymodel(x);
  std::cout << "\ntinymodel(x) = " << probabilities << '\n';

  // Softmax over the features (PyTorch's implicit dim=1 for 2-D input): rows sum to 1.
  for (std::size_t r = 0; r < probabilities.rows(); ++r) {
    float sum = 0.0f;
    for (float p : probabilities.row(r)) sum += p;
    std::cout << "row " << r << " sums to " << sum << '\n';
    if (std::abs(sum - 1.0f) > 1e-5f) return 1;
  }
  return 0;
}

// An MLP built from a list of widths: PyTorch's ModuleList pattern
// (CONFORMANCE.md 7.9, DynamicMLP).
//
//   class DynamicMLP(nn.Module):
//       def __init__(self, sizes):
//           super().__init__()
//           self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
//       def forward(self, x):
//           for i, layer in enumerate(self.layers):
//               x = layer(x)
//               if i < len(self.layers) - 1:
//                   x = torch.relu(x)              # no activation after the last layer
//           return x
//
//   model = DynamicMLP([784, 512, 256, 128, 10])
//   print(model)
//   for name, p in model.named_parameters(): print(name, p.shape)
#include <ctnn/ctnn.hpp>

#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

// MLP<...> numbers only its Linear layers; the ReLUs are functional, as
// torch.relu in the loop above. MLPOf<Tanh, ...> picks another activation.
using DynamicMlp = Sequential<Named<"layers", MLP<784, 512, 256, 128, 10>>>;
static_assert(DynamicMlp::in_features == 784 && DynamicMlp::out_features == 10);
static_assert(DynamicMlp::num_params == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
static_assert(DynamicMlp::params[6].name == "layers.3.weight");

// The conformance case uses the widths [12, 32, 16, 8, 3].
using SmallDynamicMlp = Sequential<Named<"layers", MLP<12, 32, 16, 8, 3>>>;

int main() {
  Model<DynamicMlp> model;
  std::cout << model << "\n\n";
  for (auto&& p : model.named_parameters()) std::cout << p.name << ' ' << example::shape_text(p.shape()) << '\n';

  Batch<784> x(2);                                  // two rows of zeros
  std::cout << "\nmodel(x) = " << model(x) << "\n\n";

  Model<SmallDynamicMlp> small;
  const std::string file = example::reference_file("dynamic_mlp");
  load_safetensors(small, file, {.prefix = "param."});
  const Batch<12> input(5, SafetensorsFile::read(file).to_f32("input"));
  return example::matches_pytorch("dynamic_mlp", "output", small(input).values()) ? 0 : 1;
}

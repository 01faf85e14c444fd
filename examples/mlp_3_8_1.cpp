// The smallest pipeline of the tutorials: nn.Sequential of Linear, ReLU, Linear
// (tests/data/CONFORMANCE.md 7.2).
//
//   model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
//   print(model)
//   print(list(model.state_dict().keys()))    # ['0.weight', '0.bias', '2.weight', '2.bias']
//   model.load_state_dict(weights)
//   print(model(input))
#include <ctnn/ctnn.hpp>

#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

using Mlp381 = Sequential<Linear<3, 8>, ReLU, Linear<8, 1>>;
static_assert(Mlp381::num_params == 3 * 8 + 8 + 8 * 1 + 1);
static_assert(Mlp381::params[2].name == "2.weight");  // ReLU uses up index 1, as in nn.Sequential

int main() {
  Model<Mlp381> model;
  std::cout << model << "\n\n";
  for (auto&& p : model.named_parameters()) std::cout << p.name << ' ' << example::shape_text(p.shape()) << '\n';

  const std::string file = example::reference_file("mlp_3_8_1");
  load_safetensors(model, file, {.prefix = "param."});   // PyTorch's state_dict, keys "param.0.weight", ...
  const Batch<3> input(4, SafetensorsFile::read(file).to_f32("input"));
  const Batch<1> output = model(input);
  std::cout << "\nmodel(input) = " << output << '\n';
  return example::matches_pytorch("mlp_3_8_1", "output", output.values()) ? 0 : 1;
}

// SimpleNet: a two-layer classifier with attribute names (CONFORMANCE.md 7.4).
//
//   class SimpleNet(nn.Module):
//       def __init__(self, in_dim=10, hidden=32, n_classes=2):
//           super().__init__()
//           self.fc1 = nn.Linear(in_dim, hidden)
//           self.relu = nn.ReLU()
//           self.fc2 = nn.Linear(hidden, n_classes)
//       def forward(self, x):
//           return self.fc2(self.relu(self.fc1(x)))      # logits
//
//   model = SimpleNet(10, 32, 2)
//   model.load_state_dict(weights)
//   logits = model(input)
//   print(logits.argmax(1))
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

using SimpleNet = Sequential<Named<"fc1", Linear<10, 32>>, Named<"relu", ReLU>, Named<"fc2", Linear<32, 2>>>;
static_assert(SimpleNet::in_features == 10 && SimpleNet::out_features == 2);
static_assert(SimpleNet::num_params == 10 * 32 + 32 + 32 * 2 + 2);

int main() {
  Model<SimpleNet> model;
  std::cout << model << "\n\n";

  const std::string file = example::reference_file("simplenet");
  load_safetensors(model, file, {.prefix = "param."});
  const Batch<10> input(4, SafetensorsFile::read(file).to_f32("input"));
  const Batch<2> logits = model(input);

  std::cout << "logits = " << logits << "\npredicted classes:";
  for (std::size_t r = 0; r < logits.rows(); ++r)
    std::cout << ' ' << std::max_element(logits.row(r).begin(), logits.row(r).end()) - logits.row(r).begin();
  std::cout << '\n';
  return example::matches_pytorch("simplenet", "output", logits.values()) ? 0 : 1;
}

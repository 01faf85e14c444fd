// The first steps of PyTorch's tutorial, in C++: declare a network, print it,
// list its parameters, run a batch, load PyTorch's weights, save them again.
//
//   class MLP(nn.Module):                        # tests/data/CONFORMANCE.md 7.3
//       def __init__(self):
//           super().__init__()
//           self.fc1 = nn.Linear(3, 16)
//           self.fc2 = nn.Linear(16, 16)
//           self.head = nn.Linear(16, 1)
//           self.act = nn.ReLU()
//       def forward(self, x):
//           h = self.act(self.fc1(x))
//           h = self.act(self.fc2(h)) + h        # residual connection
//           return self.head(h)
//
//   model = MLP()
//   print(model)
//   for name, param in model.named_parameters():
//       print(name, param.shape)
//   print(sum(p.numel() for p in model.parameters()))    # 353
//   X = torch.rand(5, 3)
//   print(model(X))
//   model.load_state_dict(torch.load("mlp.pt"))
//   torch.save(model.state_dict(), "out.pt")
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

using Net = Sequential<
    Named<"fc1", Linear<3, 16>>, ReLU,
    Residual<Named<"fc2", Linear<16, 16>>, ReLU>,   // h = relu(fc2(h)) + h
    Named<"head", Linear<16, 1>>>;
static_assert(Net::in_features == 3 && Net::out_features == 1);
static_assert(Net::num_params == 353);              // counted by the compiler

int main() {
  Model<Net> model;                                 // PyTorch's default Linear init, seeded
  std::cout << model << "\n\n";                     // PyTorch-style repr

  for (auto&& p : model.named_parameters())        // p.name == "fc1.weight", p.shape(), p.size(), p.data()
    std::cout << p.name << ' ' << example::shape_text(p.shape()) << ", " << p.size() << " floats\n";
  std::cout << "parameters: " << model.parameters().size() << "\n\n";

  Batch<3> x(5);                                    // 5 rows x 3 features, row-major, x.data(), x.rows()
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1f * float(i) - 0.5f;
  Batch<1> y = model(x);                            // any number of rows, including 1
  std::cout << "model(x) = " << y << "\n\n" << summary(model) << '\n';

  // Weights trained in PyTorch, whose MLP keeps fc2 at its top level; in the
  // pipeline above the residual is a level of its own, so the key is "2.fc2.weight".
  const std::string torch_file = example::reference_file("seed_residual_mlp");   // in tests/data
  try {
    load_safetensors(model, torch_file, {.prefix = "param."});   // strict, all-or-nothing
  } catch (const LoadError& e) {                                 // lists every missing and unexpected key
    std::cout << e.what() << "\n\n";
  }
  load_safetensors(model, torch_file, {.prefix = "param.", .rename = {{"fc2.", "2.fc2."}}});  // file key prefix -> model key prefix

  const Batch<3> torch_x(5, SafetensorsFile::read(torch_file).to_f32("input"));
  const bool ok = example::matches_pytorch("seed_residual_mlp", "output", model(torch_x).values());

  const auto out = std::filesystem::temp_directory_path() / "out.safetensors";
  save_safetensors(model, out);                     // atomic: write, then rename
  Model<Net> copy{seed(7)};
  load_safetensors(copy, out);
  const bool same = std::ranges::equal(copy.parameters(), model.parameters());
  std::cout << "saved to " << out << " and loaded into another model: " << (same ? "same" : "different")
            << " parameters\n";
  std::filesystem::remove(out);
  return ok && same ? 0 : 1;
}

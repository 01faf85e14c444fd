// A shared trunk with named heads: PyTorch's ModuleDict pattern (CONFORMANCE.md 7.10).
//
//   class MultiTask(nn.Module):
//       def __init__(self, in_dim=16, hidden=32, n_classes=10, n_reg=1):
//           super().__init__()
//           self.shared = nn.Linear(in_dim, hidden)
//           self.heads = nn.ModuleDict({"classify": nn.Linear(hidden, n_classes),
//                                       "regress": nn.Linear(hidden, n_reg)})
//       def forward(self, x):
//           h = torch.relu(self.shared(x))
//           return {name: head(h) for name, head in self.heads.items()}
//
//   model = MultiTask()
//   out = model(input)
//   out["classify"], out["regress"]
//   model.heads["classify"](torch.relu(model.shared(input)))   # the same as out["classify"]
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

using MultiTask = Sequential<Named<"shared", Linear<16, 32>>, Functional<ReLU>,
                             Named<"heads", Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>>>;
static_assert(MultiTask::num_params == 16 * 32 + 32 + 32 * 10 + 10 + 32 * 1 + 1);
static_assert(MultiTask::params[2].name == "heads.classify.weight");

int main() {
  Model<MultiTask> model;
  std::cout << model << "\n\nmodules:";
  for (const auto& m : model.named_modules()) std::cout << " '" << m.name << "' (" << m.kind << ')';
  std::cout << "\n\n";

  const std::string file = example::reference_file("multitask");
  load_safetensors(model, file, {.prefix = "param."});
  const Batch<16> input(4, SafetensorsFile::read(file).to_f32("input"));

  auto out = model(input);
  BatchView<10> classify = out.get<"classify">();  // each head's width is part of its type
  BatchView<1> regress = get<"regress">(out);
  std::cout << "regress = [";
  for (float v : regress) std::cout << ' ' << v;
  std::cout << " ]\n";
  bool ok = example::matches_pytorch("multitask", "output.classify", {classify.data(), classify.size()});
  ok = example::matches_pytorch("multitask", "output.regress", {regress.data(), regress.size()}) && ok;

  // Sub-modules run on their own with the model's parameters.
  Batch<32> h = model.submodule<"shared">()(input);
  for (float& v : h) v = v > 0.0f ? v : 0.0f;       // torch.relu
  const Batch<10> again = model.submodule<"heads">().submodule<"classify">()(h);
  const bool same = std::equal(again.begin(), again.end(), classify.begin());
  std::cout << "heads.classify(relu(shared(input))) == out[\"classify\"]: " << std::boolalpha << same << '\n';
  return ok && same ? 0 : 1;
}

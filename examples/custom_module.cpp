// PyTorch's "subclass nn.Module" pattern in C++: the tutorial's residual MLP
// as a custom module, a struct whose members are layers and whose forward is
// ordinary code. The compiler runs forward once while compiling, on symbolic
// values, and generates the forward and backward passes from what it did.
//
//   class ResidualMLP(nn.Module):                # tests/data/CONFORMANCE.md 7.3
//       def __init__(self):
//           super().__init__()
//           self.fc1 = nn.Linear(3, 16)
//           self.fc2 = nn.Linear(16, 16)
//           self.head = nn.Linear(16, 1)
//           self.act = nn.ReLU()
//       def forward(self, x):
//           h = self.act(self.fc1(x))
//           h = self.act(self.fc2(h)) + h        # skip connection
//           return self.head(h)
//
//   model = ResidualMLP()
//   print(model)
//   for name, p in model.named_parameters(): print(name, p.shape)
//   opt = torch.optim.Adam(model.parameters(), lr=1e-2)
//   for step in range(200):
//       opt.zero_grad(); loss = nn.MSELoss()(model(X), Y); loss.backward(); opt.step()
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

struct ResidualMLP {
  CTNN_MODULE(ResidualMLP,        // the members, in order; their names are the state_dict keys
              (Linear<3, 16>, fc1),
              (Linear<16, 16>, fc2),
              (Linear<16, 1>, head),
              (ReLU, act));
  constexpr auto forward(auto x) const {  // constexpr: the compiler traces it
    auto h = act(fc1(x));
    h = act(fc2(h)) + h;                  // skip connection: h is one value used twice
    return head(h);
  }
};
static_assert(ResidualMLP::num_params == 353);  // 16*3+16 + 16*16+16 + 1*16+1
static_assert(ResidualMLP::in_features == 3 && ResidualMLP::out_width(3) == 1);
static_assert(Model<ResidualMLP>::layer::params[0].name == "fc1.weight");

/// A forward hook: sees every member call (and the root) after it ran.
struct PrintShapes {
  void forward(const ModuleIO& io) {
    std::cout << "  hook: '" << io.name << "' (" << io.kind << ") " << io.input.features << " -> "
              << io.output.features << " features, " << io.output.rows << " rows\n";
  }
};

int main() {
  Model<ResidualMLP> model{seed(0)};  // PyTorch's default Linear init, seeded
  std::cout << model << "\n\n";       // ResidualMLP( (fc1): Linear(...) ... )

  for (auto&& p : model.named_parameters())
    std::cout << p.name << ' ' << example::shape_text(p.shape()) << '\n';
  std::cout << "parameters: " << Model<ResidualMLP>::num_params << "\n\n";

  // PyTorch's weights for the same module load under the same keys.
  load_safetensors(model, example::reference_file("seed_residual_mlp"), {.prefix = "param."});
  const auto file = SafetensorsFile::read(example::reference_file("seed_residual_mlp"));
  const Batch<3> torch_x(5, file.to_f32("input"));
  bool ok = example::matches_pytorch("seed_residual_mlp", "output", model(torch_x).values());

  // Hooks are an argument of the call: model(x, hooks).
  std::cout << "\na forward with hooks:\n";
  model(Batch<3>(2), PrintShapes{});

  // A toy regression: y = sin(x0) + 0.5 * x1 * x2 on 256 random points.
  Generator data{seed(1)};
  Batch<3> x(256);
  Batch<1> y(256);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t j = 0; j < 3; ++j) x(i, j) = data.uniform(-2.0f, 2.0f);
    y(i, 0) = std::sin(x(i, 0)) + 0.5f * x(i, 1) * x(i, 2);
  }

  Model<ResidualMLP> net{seed(0)};
  optim::Adam opt(net, {.lr = 1e-2f});
  MSELoss loss_fn;
  float first = 0.0f, last = 0.0f;
  std::cout << "\ntraining:\n";
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    auto loss = loss_fn(net(x), y);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 40 == 0 || step == 199) std::printf("  step %3d  loss %.5f\n", step, loss.item());
  }
  net.eval();
  std::printf("loss went from %.4f to %.4f\n", first, last);
  ok = ok && last < 0.5f * first;
  return ok ? 0 : 1;
}

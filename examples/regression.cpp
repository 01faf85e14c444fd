// Linear regression: recover y = 3x + 2 from noisy samples with one Linear<1, 1>.
//
//   model = nn.Linear(1, 1)
//   X = torch.rand(100, 1) * 2 - 1
//   y = 3 * X + 2 + 0.05 * torch.randn(100, 1)
//   opt = torch.optim.SGD(model.parameters(), lr=0.1)
//   loss_fn = nn.MSELoss()
//   for epoch in range(300):
//       opt.zero_grad()
//       loss = loss_fn(model(X), y)
//       loss.backward()
//       opt.step()
//   print(f"y = {model.weight.item():.2f}x + {model.bias.item():.2f}")
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <cstdio>

using namespace ctnn;

int main() {
  Generator data{seed(1)};
  Batch<1> x(100), y(100);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    x(i, 0) = data.uniform(-1.0f, 1.0f);
    y(i, 0) = 3.0f * x(i, 0) + 2.0f + 0.05f * static_cast<float>(data.normal());
  }

  Model<Linear<1, 1>> model{seed(0)};              // PyTorch's default init: U(-1, 1) for in_features = 1
  optim::SGD opt(model, {.lr = 0.1f});
  MSELoss loss_fn;
  for (int epoch = 0; epoch < 300; ++epoch) {
    opt.zero_grad();
    auto loss = loss_fn(model(x), y);
    loss.backward();
    opt.step();
    if (epoch % 50 == 0) std::printf("epoch %3d  loss %.6f\n", epoch, loss.item());
  }

  const float w = model.parameter("weight").data()[0];
  const float b = model.parameter("bias").data()[0];
  std::printf("learned: y = %.2fx + %.2f   (true: y = 3.00x + 2.00)\n", w, b);
  const bool ok = std::fabs(w - 3.0f) <= 0.05f && std::fabs(b - 2.0f) <= 0.05f;
  if (!ok) std::printf("off by more than 0.05\n");
  return ok ? 0 : 1;
}

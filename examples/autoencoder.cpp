// The tutorial's autoencoder as a custom module: nn.Sequential members and an
// extra method, encode, besides forward; trained to reconstruct its input
// with Adam.
//
//   class Autoencoder(nn.Module):                # tests/data/CONFORMANCE.md 7.8
//       def __init__(self, in_dim=20, hidden=64, latent=4):
//           super().__init__()
//           self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, latent))
//           self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, in_dim))
//       def encode(self, x):
//           return self.encoder(x)
//       def forward(self, x):
//           return self.decoder(self.encode(x))
//
//   model = Autoencoder()
//   opt = torch.optim.Adam(model.parameters(), lr=1e-3)
//   for step in range(300):
//       opt.zero_grad(); loss = nn.MSELoss()(model(X), X); loss.backward(); opt.step()
//   code = model.encode(X)                       # shape [256, 4]
#include <ctnn/ctnn.hpp>

#include <cstdio>
#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

struct Autoencoder {
  CTNN_MODULE(Autoencoder,
              (Sequential<Linear<20, 64>, ReLU, Linear<64, 4>>, encoder),   // nn.Sequential as a member
              (Sequential<Linear<4, 64>, ReLU, Linear<64, 20>>, decoder));
  constexpr auto encode(auto x) const { return encoder(x); }              // an extra method
  constexpr auto forward(auto x) const { return decoder(encode(x)); }
};
static_assert(Autoencoder::num_params == (20 * 64 + 64) + (64 * 4 + 4) + (4 * 64 + 64) + (64 * 20 + 20));
static_assert(Model<Autoencoder>::layer::params[0].name == "encoder.0.weight");

int main() {
  Model<Autoencoder> model{seed(0)};
  std::cout << model << "\n\n";

  // PyTorch's weights, forward and encode, compared with PyTorch's results.
  const std::string file = example::reference_file("autoencoder");
  load_safetensors(model, file, {.prefix = "param."});
  const Batch<20> torch_x(6, SafetensorsFile::read(file).to_f32("input"));
  bool ok = example::matches_pytorch("autoencoder", "output", model(torch_x).values());
  const Batch<4> torch_code = model.run([](const auto& m, auto x) { return m.encode(x); }, torch_x);
  ok = example::matches_pytorch("autoencoder", "encode.output", torch_code.values()) && ok;

  // Data with 4 degrees of freedom in 20 features: x = A z, z ~ N(0, 1).
  Generator data{seed(1)};
  float a[20][4];
  for (auto& row : a)
    for (float& v : row) v = static_cast<float>(data.normal()) * 0.5f;
  Batch<20> x(256);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    float z[4];
    for (float& v : z) v = static_cast<float>(data.normal());
    for (std::size_t j = 0; j < 20; ++j) x(i, j) = a[j][0] * z[0] + a[j][1] * z[1] + a[j][2] * z[2] + a[j][3] * z[3];
  }

  Model<Autoencoder> ae{seed(0)};
  optim::Adam opt(ae, {.lr = 1e-3f});
  MSELoss loss_fn;
  float first = 0.0f, last = 0.0f;
  std::cout << "\ntraining to reconstruct x:\n";
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    auto loss = loss_fn(ae(x), x);  // reconstruction: the target is the input
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 50 == 0 || step == 299) std::printf("  step %3d  loss %.5f\n", step, loss.item());
  }

  ae.eval();
  const Batch<4> code = ae.run([](const auto& m, auto in) { return m.encode(in); }, x);  // model.encode(x)
  std::cout << "encode(x): " << code.rows() << " x " << code.row_size << '\n';  // 256 x 4
  std::printf("loss went from %.4f to %.4f\n", first, last);
  ok = ok && code.rows() == 256 && last < 0.5f * first;
  return ok ? 0 : 1;
}

// The 784-256-128-10 MNIST classifier; images come in as 1×28×28 and are
// flattened (CONFORMANCE.md 7.6).
//
//   class MnistMLP(nn.Module):
//       def __init__(self, in_dim=784, h1=256, h2=128, n_classes=10):
//           super().__init__()
//           self.net = nn.Sequential(nn.Linear(in_dim, h1), nn.ReLU(),
//                                    nn.Linear(h1, h2), nn.ReLU(),
//                                    nn.Linear(h2, n_classes))
//       def forward(self, x):
//           return self.net(x.flatten(1))          # [B,1,28,28] -> [B,784]
//
//   model = MnistMLP()
//   model.load_state_dict(weights)
//   print(model(images).argmax(1))
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <iostream>
#include <type_traits>

#include "pytorch_reference.hpp"

using namespace ctnn;

// x.flatten(1) is a function call in forward, not a registered module, so it is
// Functional<...> here: it takes no index and does not print.
using MnistMlp = Sequential<Functional<Flatten<1, 28, 28>>,
                            Named<"net", Sequential<Linear<784, 256>, ReLU, Linear<256, 128>, ReLU, Linear<128, 10>>>>;
static_assert(MnistMlp::in_features == 784 && MnistMlp::out_features == 10);
static_assert(MnistMlp::num_params == 235'146);
static_assert(std::is_same_v<Model<MnistMlp>::input_type, Tensor<1, 28, 28>>);

int main() {
  Model<MnistMlp> model;
  std::cout << model << "\n\n" << summary(model) << '\n';

  const std::string file = example::reference_file("mnist_mlp");
  load_safetensors(model, file, {.prefix = "param."});
  const Tensor<1, 28, 28> images(8, SafetensorsFile::read(file).to_f32("input"));  // 8 images of 1×28×28
  const Batch<10> logits = model(images);

  std::cout << "predicted digits:";
  for (std::size_t r = 0; r < logits.rows(); ++r)
    std::cout << ' ' << std::max_element(logits.row(r).begin(), logits.row(r).end()) - logits.row(r).begin();
  std::cout << '\n';
  return example::matches_pytorch("mnist_mlp", "output", logits.values()) ? 0 : 1;
}

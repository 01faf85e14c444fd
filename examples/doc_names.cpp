// The examples of docs/names-and-state-dict.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

// [rule]
// Positions count every child, as nn.Sequential does: ReLU takes index 1.
using Plain = Sequential<Linear<3, 8>, ReLU, Residual<Linear<8, 8>, ReLU>, Linear<8, 1>>;
static_assert(Plain::params[0].name == "0.weight");
static_assert(Plain::params[2].name == "2.0.weight");   // Residual is a level
static_assert(Plain::params[4].name == "3.weight");

// Named<"...", L> replaces the position with a name.
using Autoencoder = Sequential<Named<"encoder", Sequential<Linear<20, 64>, ReLU, Linear<64, 4>>>,
                               Named<"decoder", Sequential<Linear<4, 64>, ReLU, Linear<64, 20>>>>;
static_assert(Autoencoder::params[2].name == "encoder.2.weight");
static_assert(Autoencoder::params[7].name == "decoder.2.bias");

// PyTorch's ResidualBlock keeps its layers in self.block.
using ResBlocks = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
static_assert(ResBlocks::params[0].name == "0.block.0.weight");
static_assert(ResBlocks::params[15].name == "3.block.2.bias");

// MLP<...> numbers only its Linear layers (its ReLUs are functional); so does
// any Functional<...> child.
using DynamicMlp = Sequential<Named<"layers", MLP<784, 512, 256, 128, 10>>>;
static_assert(DynamicMlp::params[2].name == "layers.1.weight");
static_assert(DynamicMlp::params[7].name == "layers.3.bias");
using MultiTask = Sequential<Named<"shared", Linear<16, 32>>, Functional<ReLU>,
                             Named<"heads", Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>>>;
static_assert(MultiTask::params[2].name == "heads.classify.weight");
// [/rule]

// [rename]
// PyTorch's tutorial MLP keeps fc1, fc2 and head side by side; the residual
// is code in forward(). As a pipeline the residual is a level of its own:
using Net = Sequential<
    Named<"fc1", Linear<3, 16>>, ReLU,
    Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
    Named<"head", Linear<16, 1>>>;
static_assert(Net::params[2].name == "2.fc2.weight");  // PyTorch's file says "fc2.weight"
// [/rename]

int main() {
  // [load_renamed]
  Model<Net> model;
  load_safetensors(model, example::reference_file("seed_residual_mlp"),
                   {.prefix = "param.",                    // the file's keys are "param.fc1.weight", ...
                    .rename = {{"fc2.", "2.fc2."}}});       // file-key prefix -> model-key prefix
  // [/load_renamed]

  // [walk]
  for (auto&& p : model.named_parameters())               // as model.named_parameters()
    std::cout << p.name << ' ' << example::shape_text(p.shape()) << '\n';

  ParamRef w = model.parameter("2.fc2.weight");           // as model.get_parameter("...")
  std::cout << "2.fc2.weight[0][0] = " << w.data()[0] << '\n';

  for (const auto& m : model.named_modules())             // the root first, named ""
    std::cout << "module '" << m.name << "': " << m.kind << '\n';
  for (const auto& c : model.children()) std::cout << "child " << c.name << '\n';

  std::size_t buffers = 0;
  for (auto&& b : model.named_buffers()) buffers += b.size();   // none: no layer here has buffers
  std::cout << buffers << " buffer values\n";

  auto fc2 = model.submodule<"2">().submodule<"fc2">();    // runs with the model's parameters
  Batch<16> h = fc2(Batch<16>(1));                         // a zero row: fc2's bias
  std::cout << "fc2(0)[0] = " << h(0, 0) << " == bias[0] = " << model.parameter("2.fc2.bias").data()[0] << '\n';

  std::size_t linears = 0;
  model.apply([&](auto m) {                                // children before parents, as Module.apply
    if constexpr (is_linear<typename decltype(m)::layer>) ++linears;
  });
  std::cout << linears << " Linear modules\n";
  // [/walk]

  Model<Autoencoder> autoencoder;
  for (auto&& p : autoencoder.named_parameters()) std::cout << p.name << ' ';
  std::cout << '\n';
  return h(0, 0) == model.parameter("2.fc2.bias").data()[0] && linears == 3 ? 0 : 1;
}

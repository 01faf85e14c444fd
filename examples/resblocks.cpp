// Four residual blocks of width 128 (CONFORMANCE.md 7.7).
//
//   class ResidualBlock(nn.Module):
//       def __init__(self, dim):
//           super().__init__()
//           self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
//       def forward(self, x):
//           return x + self.block(x)
//
//   model = nn.Sequential(*[ResidualBlock(128) for _ in range(4)])
//   print(list(model.state_dict().keys()))   # '0.block.0.weight', ..., '3.block.2.bias'
//   model.load_state_dict(weights)
//   print(model(input))
#include <ctnn/ctnn.hpp>

#include <iostream>

#include "pytorch_reference.hpp"

using namespace ctnn;

// Repeat<4, Block> is Sequential<Block, Block, Block, Block>: the copies are 0..3.
using ResBlocks = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
static_assert(ResBlocks::in_features == 128 && ResBlocks::out_features == 128);
static_assert(ResBlocks::num_params == 4 * 2 * (128 * 128 + 128));
static_assert(ResBlocks::params.front().name == "0.block.0.weight");
static_assert(ResBlocks::params.back().name == "3.block.2.bias");

int main() {
  Model<ResBlocks> model;
  std::cout << model << "\n\n";
  for (auto&& p : model.named_parameters()) std::cout << p.name << ' ' << example::shape_text(p.shape()) << '\n';

  const std::string file = example::reference_file("resblocks");
  load_safetensors(model, file, {.prefix = "param."});
  const Batch<128> input(3, SafetensorsFile::read(file).to_f32("input"));
  const Batch<128> output = model(input);
  std::cout << "\nmodel(input): " << output.rows() << " rows of " << output.row_size << ", first values "
            << output(0, 0) << ' ' << output(0, 1) << ' ' << output(0, 2) << '\n';
  return example::matches_pytorch("resblocks", "output", output.values()) ? 0 : 1;
}

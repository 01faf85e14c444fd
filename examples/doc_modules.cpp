// The code of docs/from-nn-module.md and docs/pitfalls.md that is not in
// custom_module.cpp, autoencoder.cpp or multitask_module.cpp: ModuleList
// patterns, modules inside modules, functional operations (torch.relu,
// torch.cat, slicing, scaling), dropout and eval(), hooks.
#include <ctnn/ctnn.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

using namespace ctnn;

// ---- ModuleList: self.layers = nn.ModuleList([...]); a loop in forward ----
//
//   class DynamicMLP(nn.Module):                 # tests/data/CONFORMANCE.md 7.9
//       def __init__(self, sizes):
//           super().__init__()
//           self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
//       def forward(self, x):
//           for i, layer in enumerate(self.layers):
//               x = layer(x)
//               if i < len(self.layers) - 1:
//                   x = torch.relu(x)
//           return x
struct DynamicMLP {
  CTNN_MODULE(DynamicMLP, (MLP<12, 32, 16, 8, 3>, layers));  // Linear layers, ReLU between them
  constexpr auto forward(auto x) const { return layers(x); }
};
static_assert(Model<DynamicMLP>::layer::params[0].name == "layers.0.weight");

// One element of the list: self.layers[0](x).
struct FirstLayerOnly {
  CTNN_MODULE(FirstLayerOnly, (MLP<12, 32, 16, 8, 3>, layers));
  constexpr auto forward(auto x) const { return layers.get<"0">(x); }
};
static_assert(Model<FirstLayerOnly>::out_features == 32);

// ---- modules inside modules, and a list of blocks ----
//
//   class Block(nn.Module):
//       def __init__(self):
//           super().__init__()
//           self.norm = nn.LayerNorm(16)
//           self.fc = nn.Linear(16, 16)
//       def forward(self, x):
//           return x + torch.relu(self.fc(self.norm(x)))
//
//   class Tower(nn.Module):
//       def __init__(self):
//           super().__init__()
//           self.stem = nn.Linear(3, 16)
//           self.blocks = nn.Sequential(*[Block() for _ in range(2)])
//           self.head = nn.Linear(16, 1)
//       def forward(self, x):
//           return self.head(self.blocks(self.stem(x)))
struct Block {
  CTNN_MODULE(Block, (LayerNorm<16>, norm), (Linear<16, 16>, fc));
  constexpr auto forward(auto x) const { return x + relu(fc(norm(x))); }
};
struct Tower {
  CTNN_MODULE(Tower, (Linear<3, 16>, stem), (Repeat<2, Block>, blocks), (Linear<16, 1>, head));
  constexpr auto forward(auto x) const { return head(blocks(stem(x))); }
};
static_assert(Model<Tower>::layer::params[2].name == "blocks.0.norm.weight");
static_assert(Model<Tower>::layer::params[4].name == "blocks.0.fc.weight");

// ---- functional operations: torch.relu, torch.cat, x[:, a:b], scaling ----
//
//   def forward(self, x):
//       h = self.a(x)
//       g = torch.sigmoid(self.b(h)) * h + 0.5 * h
//       both = torch.cat([g, h - g], dim=1)
//       return self.c(both) + h[:, 0:4]
struct Gated {
  CTNN_MODULE(Gated, (Linear<5, 8>, a), (Linear<8, 8>, b), (Linear<16, 4>, c));
  constexpr auto forward(auto x) const {
    auto h = a(x);
    auto g = sigmoid(b(h)) * h + 0.5f * h;  // elementwise product, scaling, sum: all 8 wide
    auto both = concat(g, h - g);           // 16 features: g's, then h - g's
    return c(both) + slice<0, 4>(h);        // features 0..3 of h
  }
};
static_assert(Model<Gated>::in_features == 5 && Model<Gated>::out_features == 4);

// ---- dropout and the mode ----
struct WithDropout {
  CTNN_MODULE(WithDropout, (Linear<8, 8>, fc), (Dropout<>, drop), (Linear<8, 2>, out));
  constexpr auto forward(auto x) const { return out(drop(relu(fc(x)))); }
};

// ---- hooks: an argument of the call ----
struct Record {
  std::string seen;
  void forward(const ModuleIO& io) {
    seen += '[';
    seen += io.name;
    seen += ']';
  }
};

int main() {
  bool ok = true;

  Model<DynamicMLP> mlp;
  std::cout << mlp << "\n\n";

  Model<Tower> tower;
  std::cout << tower << "\n\n";
  for (auto&& p : tower.named_parameters()) std::cout << p.name << ' ';
  std::cout << "\n\n";

  Model<Gated> gated;
  Batch<5> x5(3);
  const Batch<4> y4 = gated(x5);
  ok = ok && y4.rows() == 3;

  // A new model is in training mode, as in PyTorch: dropout is active.
  Model<WithDropout> model;
  Batch<8> x(4);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1f * float(i);
  model.eval();                      // what model.eval() does in PyTorch
  std::cout << model << "\n\n";      // the repr ends with "mode: eval"
  const Batch<2> first = model(x), second = model(x);  // no dropout: the same twice
  ok = ok && std::equal(first.begin(), first.end(), second.begin());
  model.train();

  Record hooks;
  Model<Gated> traced;
  traced(x5, hooks);
  std::cout << "hooks saw " << hooks.seen << '\n';  // [a][b][c][]: the members, then the root
  ok = ok && hooks.seen == "[a][b][c][]";

  return ok ? 0 : 1;
}

// The examples of docs/freezing.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

using namespace ctnn;

using Net = Sequential<Named<"encoder", Sequential<Linear<8, 32>, ReLU, Linear<32, 16>>>, ReLU,
                       Named<"head", Linear<16, 2>>>;

int main() {
  bool ok = true;
  Generator data{seed(2)};
  Batch<8> x(16);
  Batch<2> y(16);
  for (float& v : x) v = data.uniform(-1.0f, 1.0f);
  for (float& v : y) v = data.uniform(-1.0f, 1.0f);
  MSELoss loss_fn;

  // [freeze]
  Model<Net> model{seed(0)};
  model.freeze("encoder");                 // for p in model.encoder.parameters(): p.requires_grad = False
  for (auto&& p : model.named_parameters())
    std::cout << p.name << " requires_grad=" << std::boolalpha << p.requires_grad() << '\n';
  // [/freeze]

  // [train_frozen]
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  optim::SGD opt(model, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f});   // all parameters
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    loss_fn(model(x), y).backward();
    opt.step();
  }
  for (auto&& p : model.named_parameters()) {
    const bool moved = !std::equal(p.data(), p.data() + p.size(), before.begin() + std::ptrdiff_t(p.offset()));
    std::cout << p.name << (moved ? " trained\n" : " unchanged\n");   // encoder.* unchanged, head.* trained
  }
  // [/train_frozen]
  for (auto&& p : model.named_parameters()) {
    const bool moved = !std::equal(p.data(), p.data() + p.size(), before.begin() + std::ptrdiff_t(p.offset()));
    const bool frozen = std::string(p.name).starts_with("encoder");
    ok = ok && moved != frozen && (!frozen || std::ranges::all_of(p.grad_span(), [](float g) { return g == 0.0f; }));
  }

  // [skipped]
  struct Visited {                         // a backward hook that lists the modules the backward runs
    std::vector<std::string> names;
    void backward(const ModuleIO& io) { names.emplace_back(io.name); }
  } visited;
  auto out = model(x);
  Batch<2> dy(out.rows());
  loss_fn.compute(out.data(), y.data(), out.rows(), 2, dy.data());
  model.backward_parameters(dy, visited);  // what loss.backward() runs, with a hook
  for (const auto& n : visited.names) std::cout << "'" << n << "' ";
  std::cout << '\n';                       // 'head' '' : the encoder and the ReLU before head are skipped
  // [/skipped]
  ok = ok && visited.names == std::vector<std::string>{"head", ""};

  // [one_tensor]
  model.unfreeze();                                    // every parameter trainable again
  model.parameter("head.bias").requires_grad(false);   // model.head.bias.requires_grad_(False)
  std::cout << model.freeze("encoder.0") << " tensors frozen\n";   // encoder.0.weight, encoder.0.bias
  // [/one_tensor]

  // [no_match]
  try {
    model.freeze("decoder");
  } catch (const ValueError& e) {
    std::cout << e.what() << '\n';
  }
  // [/no_match]

  return ok ? 0 : 1;
}

// The examples of docs/optimizers.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <iostream>
#include <vector>

using namespace ctnn;

using Net = Sequential<Named<"fc1", Linear<4, 8>>, ReLU, Named<"fc2", Linear<8, 2>>>;

int main() {
  bool ok = true;
  Model<Net> model{seed(0)};
  Generator data{seed(1)};
  Batch<4> x(32);
  Batch<2> y(32);
  for (float& v : x) v = data.uniform(-1.0f, 1.0f);
  for (float& v : y) v = data.uniform(-1.0f, 1.0f);
  MSELoss loss_fn;

  // [construct]
  optim::SGD sgd(model, {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
  // torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
  optim::Adam adam(model, {.lr = 1e-3f, .betas = {0.9f, 0.99f}, .amsgrad = true});
  // torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99), amsgrad=True)
  optim::AdamW adamw(model, {.weight_decay = 0.05f});
  // torch.optim.AdamW(model.parameters(), weight_decay=0.05)
  optim::RMSprop rmsprop(model, {.lr = 1e-2f, .momentum = 0.9f, .centered = true});
  // torch.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9, centered=True)
  std::cout << sgd.repr() << '\n' << adam.repr() << '\n' << adamw.repr() << '\n' << rmsprop.repr() << '\n';
  // [/construct]

  // [options_type]
  optim::Adam::Options options;                        // an aggregate with PyTorch's defaults
  options.lr = 3e-4f;
  optim::Adam adam2(model, options);
  // [/options_type]
  (void)adam2;

  // [step]
  for (int epoch = 0; epoch < 30; ++epoch) {
    if (epoch == 20) adam.options().lr *= 0.1f;       // for g in opt.param_groups: g["lr"] *= 0.1
    adam.zero_grad();                                  // adam.zero_grad()
    loss_fn(model(x), y).backward();
    adam.step();                                       // adam.step()
  }
  std::cout << "steps taken: " << adam.steps() << ", lr now " << adam.options().lr << '\n';
  // [/step]
  ok = ok && adam.steps() == 30;

  // [state_dict]
  std::vector<optim::NamedState> state = adam.state_dict();   // adam.state_dict()
  for (const optim::NamedState& s : state)
    std::cout << s.name << ": " << s.values.size() << " values\n";

  Model<Net> copy = model;
  optim::Adam resumed(copy, adam.options());           // the options are not part of the state
  resumed.load_state_dict(state);                      // resumed.load_state_dict(adam.state_dict())
  // [/state_dict]

  // Both continue identically.
  for (int k = 0; k < 3; ++k) {
    adam.zero_grad();
    loss_fn(model(x), y).backward();
    adam.step();
    resumed.zero_grad();
    loss_fn(copy(x), y).backward();
    resumed.step();
  }
  const bool same = std::ranges::equal(model.parameters(), copy.parameters());
  std::cout << "after loading the state, both continue identically: " << std::boolalpha << same << '\n';
  ok = ok && same;

  // [strict]
  optim::Adam plain(copy);                             // amsgrad=False: no "max_exp_avg_sq"
  try {
    plain.load_state_dict(state);
  } catch (const LoadError& e) {
    std::cout << e.what() << '\n';                     // and plain's state is unchanged
  }
  // [/strict]
  ok = ok && plain.steps() == 0;

  // [invalid]
  try {
    optim::SGD bad(model, {.lr = -0.1f});
  } catch (const ValueError& e) {
    std::cout << e.what() << '\n';
  }
  // [/invalid]

  return ok ? 0 : 1;
}

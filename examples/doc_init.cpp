// The examples of docs/init.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <vector>

using namespace ctnn;

using Net = Sequential<Named<"encoder", Sequential<Linear<8, 32>, ReLU, Linear<32, 16>>>, Tanh,
                       Named<"head", Linear<16, 1>>>;

int main() {
  bool ok = true;

  // [default]
  Model<Net> model{seed(42)};            // torch.manual_seed(42); model = Net(): PyTorch's default init
  Model<Net> same{seed(42)};             // the same seed gives the same numbers, on every platform
  // [/default]
  ok = ok && std::ranges::equal(model.parameters(), same.parameters());

  // [apply]
  model.apply([](auto m) {                                    // def init_weights(m):
    if constexpr (is_linear<typename decltype(m)::layer>) {   //     if isinstance(m, nn.Linear):
      init::xavier_uniform_(m.weight());                      //         nn.init.xavier_uniform_(m.weight)
      init::zeros_(m.bias());                                 //         nn.init.zeros_(m.bias)
    }
  });                                                         // model.apply(init_weights)
  // [/apply]

  // [visit]
  model.apply([](auto m) {                                    // children first, the root ("") last
    std::cout << "'" << m.name << "' " << m.kind << '\n';
  });
  // [/visit]

  // [by_name]
  model.apply([](auto m) {
    if (m.name == "head") init::normal_(m.weight(), 0.0f, 0.01f);   // nn.init.normal_(model.head.weight, 0, 0.01)
  });
  init::kaiming_normal_(model.parameter("encoder.0.weight"), 0.0, init::FanMode::fan_out,
                        init::Nonlinearity::relu);
  // nn.init.kaiming_normal_(model.encoder[0].weight, mode="fan_out", nonlinearity="relu")
  init::constant_(model.parameter("head.bias"), 0.1f);          // nn.init.constant_(model.head.bias, 0.1)
  // [/by_name]
  ok = ok && model.parameter("head.bias").data()[0] == 0.1f;

  // [generator]
  Generator g{seed(7)};                                       // g = torch.Generator().manual_seed(7)
  init::uniform_(model.parameter("head.weight"), -0.1f, 0.1f, &g);   // nn.init.uniform_(w, -0.1, 0.1, generator=g)
  init::xavier_normal_(model.parameter("encoder.2.weight"), init::calculate_gain(init::Nonlinearity::tanh), &g);
  // nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh"), generator=g)
  // [/generator]

  // [reset]
  model.reset_parameters();              // PyTorch's default init again, drawn on from the model's generator
  model.generator().reseed(seed(42));
  model.reset_parameters();              // the numbers of Model<Net>{seed(42)} again
  // [/reset]
  ok = ok && std::ranges::equal(model.parameters(), same.parameters());

  // The xavier bound holds after apply().
  Model<Net> check{seed(1)};
  check.apply([](auto m) {
    if constexpr (is_linear<typename decltype(m)::layer>) init::xavier_uniform_(m.weight());
  });
  const float bound = std::sqrt(6.0f / (8 + 32));
  for (float w : check.parameter("encoder.0.weight").span()) ok = ok && std::fabs(w) <= bound;

  // [errors]
  try {
    init::xavier_uniform_(model.parameter("head.bias"));    // a vector has no fan in and fan out
  } catch (const ValueError& e) {
    std::cout << e.what() << '\n';
  }
  // [/errors]

  return ok ? 0 : 1;
}

// The examples of docs/declaring-networks.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <array>
#include <iostream>
#include <ratio>
#include <type_traits>

using namespace ctnn;

// [sequential]
using Net = Sequential<
    Flatten<1, 8, 8>,                              // a row of shape 1×8×8 becomes 64 features
    Residual<Linear<64, 64>, GELU, Linear<64, 64>>,   // y = x + body(x)
    ProjectedResidual<Linear<64, 32, false>,       // y = projection(x) + body(x)
                      Sequential<Linear<64, 32>, Tanh>>,
    LeakyReLU<std::ratio<1, 5>>,                   // negative_slope=0.2
    Named<"head", Linear<32, 10>>,
    LogSoftmax>;

static_assert(Net::input_shape == std::array<std::size_t, 3>{1, 8, 8});
static_assert(Net::in_features == 64 && Net::out_features == 10);
static_assert(Net::num_params == 2 * (64 * 64 + 64) + 64 * 32 + (64 * 32 + 32) + (32 * 10 + 10));
static_assert(Net::params.size() == 9);           // weights and biases, 9 tensors
static_assert(Net::params[0].name == "1.0.weight");
static_assert(Net::params[4].name == "2.0.weight" && Net::params[4].dims[0] == 32);
static_assert(Net::params[8].name == "head.bias" && Net::params[8].numel() == 10);
// [/sequential]

// [widths]
// An activation takes the width of whatever feeds it, so one spec serves every width.
using Tower = Sequential<Linear<5, 13>, SiLU, Linear<13, 7>, SiLU>;
static_assert(Tower::out_features == 7);
static_assert(std::is_same_v<bind_t<ReLU, 13>, Elementwise<ReLU, 13>>);
// [/widths]

// [combinators]
using Encoder = Sequential<Linear<20, 64>, ReLU, Linear<64, 4>>;
using Autoencoder = Sequential<Named<"encoder", Encoder>,
                               Named<"decoder", Sequential<Linear<4, 64>, ReLU, Linear<64, 20>>>>;
using Tanh3 = MLPOf<Tanh, 1, 64, 64, 1>;          // Linear layers between the widths, Tanh between them
using Deep = Repeat<6, Residual<Linear<32, 32>, ReLU>>;   // six copies, numbered 0..5
using TwoHeads = Sequential<Linear<16, 32>, Functional<ReLU>,
                            Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>>;

static_assert(Autoencoder::num_params == (20 * 64 + 64) + (64 * 4 + 4) + (4 * 64 + 64) + (64 * 20 + 20));
static_assert(Tanh3::num_params == (1 * 64 + 64) + (64 * 64 + 64) + (64 * 1 + 1));
static_assert(Deep::params[10].name == "5.0.weight");
static_assert(TwoHeads::out_features == 11);      // both heads, side by side
// [/combinators]

int main() {
  // [model]
  Model<Net> model{seed(42)};                     // PyTorch's default init, from seed 42
  static_assert(std::is_same_v<Model<Net>::input_type, Tensor<1, 8, 8>>);

  Tensor<1, 8, 8> images(3);                      // 3 rows of 1×8×8, zeros
  images(0, 5) = 1.0f;                            // element 5 of row 0, in C order
  Batch<10> log_probabilities = model(images);    // any number of rows

  Model<Tower> tower;
  Vec<5> one{{0.1f, 0.2f, 0.3f, 0.4f, 0.5f}};     // one sample, on the stack
  Vec<7> out = tower(one);

  model.eval();                                   // as module.eval(); the repr says so
  // [/model]

  std::cout << model << "\n\n" << log_probabilities << "\n\n";
  std::cout << "tower(one)[0] = " << out[0] << '\n';
  std::cout << "activation floats per row kept for training: " << Net::activation_floats << '\n';

  Model<TwoHeads> heads;
  Batch<16> x(2);
  auto y = heads(x);
  std::cout << "classify: " << y.get<"classify">().rows() << " rows of " << decltype(y.get<"classify">())::row_size
            << ", regress: " << y.get<"regress">().rows() << " rows of " << decltype(y.get<"regress">())::row_size
            << '\n';

  Model<Autoencoder> autoencoder;
  Batch<4> code = autoencoder.submodule<"encoder">()(Batch<20>(5));
  std::cout << "encoder alone: " << code.rows() << " codes of " << code.row_size << '\n';
  std::cout << Model<Deep>::num_params << " parameters in Deep, " << Model<Tanh3>::num_params << " in Tanh3\n";
  return 0;
}

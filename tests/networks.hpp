// The conformance cases' networks as ctnn types (tests/data/CONFORMANCE.md,
// section 7), with the load options that map their PyTorch keys.
#pragma once

#include <ctnn/ctnn.hpp>

namespace ctnn::test {

using TinyLinear = Linear<3, 1>;
using Mlp381 = Sequential<Linear<3, 8>, ReLU, Linear<8, 1>>;

// PyTorch's MLP class stores fc1, fc2, head and act at the top level; as a
// pipeline the residual is a level of its own, so fc2 is "2.fc2".
using SeedResidualMlp = Sequential<Named<"fc1", Linear<3, 16>>, ReLU, Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                                   Named<"head", Linear<16, 1>>>;
inline LoadOptions seed_residual_options() { return {.prefix = "param.", .rename = {{"fc2.", "2.fc2."}}}; }

using SimpleNet = Sequential<Named<"fc1", Linear<10, 32>>, Named<"relu", ReLU>, Named<"fc2", Linear<32, 2>>>;
using SineNet = Sequential<Named<"net", Sequential<Linear<1, 64>, Tanh, Linear<64, 64>, Tanh, Linear<64, 1>>>>;
using MnistMlp = Sequential<Functional<Flatten<1, 28, 28>>,
                            Named<"net", Sequential<Linear<784, 256>, ReLU, Linear<256, 128>, ReLU, Linear<128, 10>>>>;
using ResBlocks = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
using Autoencoder = Sequential<Named<"encoder", Sequential<Linear<20, 64>, ReLU, Linear<64, 4>>>,
                               Named<"decoder", Sequential<Linear<4, 64>, ReLU, Linear<64, 20>>>>;
using DynamicMlp = Sequential<Named<"layers", MLP<12, 32, 16, 8, 3>>>;
using MultiTask = Sequential<Named<"shared", Linear<16, 32>>, Functional<ReLU>,
                             Named<"heads", Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>>>;

inline LoadOptions conformance_options() { return {.prefix = "param."}; }

}  // namespace ctnn::test

// expect: shape mismatch in Sequential | <2, 8, 16, ctnn::Linear<8, 1
// Neighbours in a Sequential disagree: layer 2 (Linear<8, 1>) expects 8
// features, layer 1 (ReLU) passes on the 16 of Linear<3, 16>.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 16>, ReLU, Linear<8, 1>>;
Model<Bad> m;

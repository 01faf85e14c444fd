// expect: shape mismatch in Sequential | <2, 4, 8, ctnn::Linear<4, 2
// The mismatch is inside a nested Sequential: its layer 2 (Linear<4, 2>)
// expects 4 features, its layer 1 produces 8.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Block = Sequential<Linear<16, 8>, ReLU, Linear<4, 2>>;
using Bad = Sequential<Linear<3, 16>, ReLU, Named<"block", Block>>;
Model<Bad> m;

// expect: shape mismatch in Sequential | <2, 8, 16, ctnn::Linear<8, 16
// The mismatch is inside a Residual's body: body layer 2 (Linear<8, 16>)
// expects 8 features, body layer 1 (ReLU) passes on 16.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 16>, Residual<Linear<16, 16>, ReLU, Linear<8, 16>>>;
Model<Bad> m;

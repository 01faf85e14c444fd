// expect: must keep the width | residual_width_check<16, 8> | ProjectedResidual
// A Residual adds its input (16 features) to its body's output (8): the body
// must keep the width, or the block needs a projection (ProjectedResidual).
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 16>, Residual<Linear<16, 8>>, Linear<16, 1>>;
Model<Bad> m;

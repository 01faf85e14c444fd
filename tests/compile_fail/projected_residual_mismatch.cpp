// expect: both must produce the same number of features | projected_residual_width_check<8, 4>
// expect-gcc: (8 == 4)
// The projection produces 8 features, the body 4: they cannot be added.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 16>, ProjectedResidual<Linear<16, 8, false>, Linear<16, 4>>>;
Model<Bad> m;

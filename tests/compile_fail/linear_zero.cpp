// expect: needs In > 0 and Out > 0 | Linear<0, 3
// A Linear layer with no inputs.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

Model<Sequential<Linear<0, 3>>> m;

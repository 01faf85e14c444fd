// expect: must be the last of its Sequential | multi_output_not_last_check<1
// Heads ends a pipeline: nothing can follow a layer with several outputs.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 8>, Heads<Named<"a", Linear<8, 1>>, Named<"b", Linear<8, 2>>>, ReLU>;
Model<Bad> m;

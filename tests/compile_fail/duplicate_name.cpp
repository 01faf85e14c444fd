// expect: have the same name | duplicate_sibling_name_check<0, 1
// expect-gcc: {"fc"}
// Two siblings called "fc": their parameters would both be "fc.weight".
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Named<"fc", Linear<3, 4>>, Named<"fc", Linear<4, 2>>>;
Model<Bad> m;

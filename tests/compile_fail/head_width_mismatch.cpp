// expect: expects a different number of input features than the trunk | head_input_check<1, 4, 8
// expect-gcc: {"b"}
// Head 1 ("b", Linear<4, 2>) expects 4 features; the trunk produces 8.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 8>, Heads<Named<"a", Linear<8, 1>>, Named<"b", Linear<4, 2>>>>;
Model<Bad> m;

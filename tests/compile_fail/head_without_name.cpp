// expect: every head of Heads<...> needs a name | head_must_be_named_check<1, ctnn::Linear<8, 2
// Head 1 has no name, so out.get<"...">() could never reach it.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<3, 8>, Heads<Named<"a", Linear<8, 1>>, Linear<8, 2>>>;
Model<Bad> m;

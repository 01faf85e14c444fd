// expect: needs every dimension > 0 | Flatten<1, 0, 3>
// A dimension of 0 in Flatten's shape.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Flatten<1, 0, 3>, Linear<3, 1>>;
Model<Bad> m;

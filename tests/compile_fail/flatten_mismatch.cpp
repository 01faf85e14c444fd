// expect: shape mismatch in Sequential | <1, 784, 700, ctnn::Flatten<1, 28, 28>
// Flatten<1, 28, 28> takes rows of 784 floats; Linear<10, 700> gives it 700.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Bad = Sequential<Linear<10, 700>, Flatten<1, 28, 28>>;
Model<Bad> m;

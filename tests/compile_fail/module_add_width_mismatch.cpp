// expect: needs operands of the same width | elementwise_width_check<'+', 16, 8>
// A custom module's forward adds a 16-wide value to an 8-wide one (a skip
// connection around a layer that changes the width). The check's arguments
// are the operator and both widths.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, fc1), (Linear<16, 8>, fc2));
  constexpr auto forward(auto x) const {
    auto h = fc1(x);   // 16 features
    return h + fc2(h);  // 16 + 8
  }
};
Model<Net> model;

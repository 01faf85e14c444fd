// expect: must be declared constexpr | constexpr auto forward(auto x) const
// forward is not constexpr, so the compiler cannot run it while compiling to
// trace the graph. The error says how to declare it.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, fc1), (Linear<16, 1>, head));
  auto forward(auto x) const { return head(relu(fc1(x))); }
};
Model<Net> model;

// expect: needs Begin < End <= the width of h | slice_range_check<12, 20, 16>
// slice<12, 20> of a 16-wide value: features 16 to 19 do not exist. The
// check's arguments are Begin, End and the width of the value.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, fc1), (Linear<8, 1>, head));
  constexpr auto forward(auto x) const { return head(slice<12, 20>(fc1(x))); }
};
Model<Net> model;

// expect: gets a different number of features than it expects | member_input_width_check< | , 8, 16>
// expect-gcc: member_input_width_check<ctnn::fixed_string<4>{"fc2"}, 8, 16>
// expect-clang: Linear<8, 2, true>>::operator()<16UL,
// A member called on the wrong width: fc2 is Linear<8, 2> but gets the 16
// features of fc1. The check's arguments are the member's name, the width it
// expects and the width it gets (clang 14 spells the name as character codes,
// {{102, 99, 50, 0}}, and points at the call).
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, fc1), (Linear<8, 2>, fc2));
  constexpr auto forward(auto x) const { return fc2(relu(fc1(x))); }
};
Model<Net> model;

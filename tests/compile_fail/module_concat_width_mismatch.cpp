// expect: gets a different number of features than it expects | member_input_width_check< | , 20, 24>
// expect-gcc: member_input_width_check<ctnn::fixed_string<5>{"head"}, 20, 24>
// expect-clang: Linear<20, 1, true>>::operator()<24UL,
// concat of 16 and 8 features is 24 wide, but the member it feeds, head, is
// Linear<20, 1>. The error names the member (head), 20 and 24.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, left), (Linear<4, 8>, right), (Linear<20, 1>, head));
  constexpr auto forward(auto x) const { return head(concat(left(x), right(x))); }
};
Model<Net> model;

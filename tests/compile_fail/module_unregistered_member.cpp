// expect: Linear<16, 16
// expect-gcc: no match for call to | (ctnn::Sym<16
// expect-clang: does not provide a call operator
// Layers kept in a plain member (PyTorch: layers in a plain Python list,
// invisible to parameters()) are not registered, and a forward cannot call
// them: only the members declared in CTNN_MODULE can be called on the traced
// values.
#include <ctnn/ctnn.hpp>

#include <array>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, fc1));
  std::array<Linear<16, 16>, 2> blocks;  // not in CTNN_MODULE
  constexpr auto forward(auto x) const { return blocks[0](fc1(x)); }
};
Model<Net> model;

// expect: a member with several named outputs (Heads) is called one head at a time | heads.get<
// A Heads member (PyTorch's ModuleDict) is called like a layer. In a custom
// module's forward each head is called by name: heads.get<"classify">(h),
// as self.heads["classify"](h); all of them are returned with
// outputs<"classify", "regress">(...).
#include <ctnn/ctnn.hpp>
using namespace ctnn;

struct Net {
  CTNN_MODULE(Net, (Linear<4, 16>, shared),
              (Heads<Named<"classify", Linear<16, 10>>, Named<"regress", Linear<16, 1>>>, heads));
  constexpr auto forward(auto x) const { return heads(relu(shared(x))); }
};
Model<Net> model;

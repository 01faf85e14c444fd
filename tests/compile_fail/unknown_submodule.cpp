// expect: no child with that name | "nope"
// The model's children are "encoder" and "decoder"; there is no "nope".
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Net = Sequential<Named<"encoder", Linear<8, 2>>, Named<"decoder", Linear<2, 8>>>;

void f() {
  Model<Net> model;
  auto sub = model.submodule<"nope">();
  (void)sub;
}

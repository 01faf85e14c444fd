// expect: no head with that name | "nope"
// The network's heads are "classify" and "regress"; there is no "nope".
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Net = Sequential<Linear<3, 8>, Heads<Named<"classify", Linear<8, 4>>, Named<"regress", Linear<8, 1>>>>;

void f() {
  Model<Net> model;
  Batch<3> x(2);
  auto out = model(x);
  auto y = out.get<"nope">();
  (void)y;
}

// expect: InferenceModel<Net> runs networks with one output | runs in Model<Net>
// InferenceModel returns one Vec per sample; a network ending in named heads
// has several outputs, so it is refused with a message that says where it runs.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

using Net = Sequential<Linear<4, 8>, ReLU, Heads<Named<"a", Linear<8, 2>>, Named<"b", Linear<8, 3>>>>;

int main() {
  Model<Net> model;
  InferenceModel<Net> fast(model);
  (void)fast;
}

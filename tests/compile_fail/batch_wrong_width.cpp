// expect: RowsOf | Tensor<4>
// expect-gcc: Vec<3>
// expect-clang: (4 == 3)
// The model takes rows of 3 features; the batch has rows of 4.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

void f() {
  Model<Sequential<Linear<3, 8>, ReLU, Linear<8, 1>>> model;
  Batch<4> x(2);
  auto y = model(x);
  (void)y;
}

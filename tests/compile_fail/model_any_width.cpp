// expect: input width is known | Sequential<ctnn::ReLU>
// ReLU takes any width, so nothing says how wide the model's input is.
#include <ctnn/ctnn.hpp>
using namespace ctnn;

Model<Sequential<ReLU>> m;

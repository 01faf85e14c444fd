// expect: this batch holds the outputs of several heads, one block per head | compute each head's loss on the host
// A device model of a network ending in Heads returns its heads' outputs as
// blocks (NamedOutputs' layout), not rows: a device loss on them would read
// one head's block as rows of every head. (The host emulation backend, so that
// this compiles without nvcc; the device backend has the same types.)
#include <ctnn/ctnn.hpp>
#include <ctnn/cuda/emulated.hpp>
using namespace ctnn;
namespace gpu = ctnn::cuda::emulated;

using Net = Sequential<Linear<3, 8>, ReLU, Heads<Named<"a", Linear<8, 2>>, Named<"b", Linear<8, 1>>>>;

void train(gpu::Model<Net>& m, const gpu::Batch<3>& x, const gpu::Batch<3>& target) {
  auto loss = cuda::MSELoss{}(m(x), target);
  loss.backward();
}

// One architecture's kernels, in dependency order. Included by
// kernels/detail/per_arch.hpp once per architecture, inside its target region.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

#include "ctnn/kernels/detail/body/simd.hpp"
#include "ctnn/kernels/detail/body/activation.hpp"
#include "ctnn/kernels/detail/body/gemm.hpp"
#include "ctnn/kernels/detail/body/linear.hpp"
#include "ctnn/kernels/detail/body/row.hpp"
#include "ctnn/kernels/detail/body/lanes.hpp"
#include "ctnn/kernels/detail/body/elementwise.hpp"
#include "ctnn/kernels/detail/body/optimizer.hpp"

#endif  // CTNN_KERNELS_NS

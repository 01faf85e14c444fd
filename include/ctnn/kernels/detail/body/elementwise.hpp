// Elementwise kernels of one architecture: activations (forward, and
// backward with the bias gradient of a fused Linear summed in the same pass)
// and the residual add. Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// dy ⊙ f'(x) for `count` floats at offset `at`.
template <class Fn>
CTNN_INLINE V activation_grad_at(const float* x, const float* y, const float* dy, std::size_t at, std::size_t count) {
  return activation_grad_at<Fn>(x, y, load_n(dy + at, count), at, count);
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

namespace ctnn::kernels {

/// y = f(x) elementwise over `count` floats.
template <class Fn>
void activation_forward(CTNN_KERNELS_TAG, const float* x, float* y, std::size_t count) {
  using namespace CTNN_KERNELS_NS;
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) store(y + i, activation_f<Fn>(load(x + i)));
  if (i < count) store_first(y + i, activation_f<Fn>(load_first(x + i, count - i)), count - i);
}

/// dx = dy ⊙ f'(x) over n rows of Width (x: the input, y: the output; either
/// may be null when the form does not read it). When db is not null, the
/// column sums of dx are added to it in the same pass (the bias gradient of a
/// Linear fused with this activation).
template <class Fn, std::size_t Width>
void activation_backward(CTNN_KERNELS_TAG, const float* x, const float* y, const float* dy, float* dx, std::size_t n,
                         float* db) {
  using namespace CTNN_KERNELS_NS;
  if (!db) {
    const std::size_t total = n * Width;
    std::size_t i = 0;
    for (; i + lanes <= total; i += lanes) store(dx + i, activation_grad_at<Fn>(x, y, dy, i, lanes));
    if (i < total) store_first(dx + i, activation_grad_at<Fn>(x, y, dy, i, total - i), total - i);
    return;
  }
  constexpr std::size_t blocks = (Width + lanes - 1) / lanes;
  V sums[blocks] = {};
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t at = r * Width;
#pragma GCC unroll 8
    for (std::size_t v = 0; v < blocks; ++v) {
      const std::size_t count = v + 1 < blocks ? lanes : Width - v * lanes;
      const V g = activation_grad_at<Fn>(x, y, dy, at + v * lanes, count);
      store_n(dx + at + v * lanes, g, count);
      sums[v] += g;
    }
  }
  for (std::size_t v = 0; v < blocks; ++v) {
    const std::size_t count = v + 1 < blocks ? lanes : Width - v * lanes;
    store_n(db + v * lanes, load_n(db + v * lanes, count) + sums[v], count);
  }
}

/// out = a + b over `count` floats (out may be a or b).
inline void add(CTNN_KERNELS_TAG, const float* a, const float* b, float* out, std::size_t count) {
  using namespace CTNN_KERNELS_NS;
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) store(out + i, load(a + i) + load(b + i));
  if (i < count) store_first(out + i, load_first(a + i, count - i) + load_first(b + i, count - i), count - i);
}

}  // namespace ctnn::kernels

#endif  // CTNN_KERNELS_NS

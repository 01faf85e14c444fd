// What the kernel-level test groups share: the architectures this CPU runs,
// and uniform random inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <ctnn/kernels/arch.hpp>

namespace ctnn::test {

/// The architectures this CPU runs (and this program has compiled in).
inline std::vector<kernels::Arch> available_archs() {
  std::vector<kernels::Arch> out;
  for (kernels::Arch a : {kernels::Arch::generic, kernels::Arch::sse4_2, kernels::Arch::avx2, kernels::Arch::avx512})
    if (kernels::available(a)) out.push_back(a);
  return out;
}

/// `count` values uniform in [lo, hi), from mt19937 seeded with `seed`.
inline std::vector<float> random_values(std::size_t count, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(count);
  for (auto& e : v) e = u(g);
  return v;
}

}  // namespace ctnn::test

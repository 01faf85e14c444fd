// The model's seeded random generator: initialisation and dropout draw from it,
// so the same seed gives the same weights and masks on every platform (the
// standard library's distributions are implementation-defined, so we do not use
// them).
#pragma once

#include <cmath>
#include <cstdint>

namespace ctnn {

/// A seed for a model's generator: `Model<Net> model{seed(42)};`.
struct Seed {
  std::uint64_t value = 0;
};
constexpr Seed seed(std::uint64_t value) { return Seed{value}; }

/// xoshiro256** seeded through splitmix64: fast, small, and of good quality.
class Generator {
 public:
  constexpr explicit Generator(Seed s = {}) { reseed(s); }

  constexpr void reseed(Seed s) {
    std::uint64_t x = s.value;
    for (auto& word : state_) {
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  constexpr std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 24 random bits, so every value is exact in float.
  constexpr float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }

  /// Uniform in [low, high).
  constexpr float uniform(float low, float high) { return low + (high - low) * uniform(); }

  /// Standard normal by Box-Muller in double (one value per call, for simplicity).
  double normal() {
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  std::uint64_t state_word(int i) const { return state_[i]; }
  void set_state_word(int i, std::uint64_t v) { state_[i] = v; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4]{};
};

}  // namespace ctnn

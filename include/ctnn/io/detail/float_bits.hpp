// Exact widening of the narrow floating-point formats that safetensors files
// carry (IEEE binary16, bfloat16, and the two OCP 8-bit formats) to float.
// Every value of these formats is representable in binary32, so these
// conversions never round.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace ctnn::detail {

inline float f16_bits_to_f32(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  const std::uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0x1F) {
    // Keep the NaN payload (and so quiet/signalling) instead of collapsing it.
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    // Subnormal (or zero): mantissa * 2^-24. Scaling by a power of two is
    // exact because the result is a normal float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  // Rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// bfloat16 is the upper half of a binary32, so widening is a shift.
inline float bf16_bits_to_f32(std::uint16_t brain) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(brain) << 16);
}

// F8_E5M2 is the upper half of a binary16.
inline float f8_e5m2_bits_to_f32(std::uint8_t bits) {
  return f16_bits_to_f32(static_cast<std::uint16_t>(bits << 8));
}

// F8_E4M3 is the "FN" variant (PyTorch's float8_e4m3fn): bias 7, no
// infinities, and only S.1111.111 is NaN, so the top exponent holds numbers.
inline float f8_e4m3_bits_to_f32(std::uint8_t bits) {
  const bool negative = (bits & 0x80u) != 0;
  const std::uint32_t exponent = (bits >> 3) & 0x0Fu;
  const std::uint32_t mantissa = bits & 0x07u;
  float magnitude = 0.0f;
  if (exponent == 0x0F && mantissa == 0x07) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = static_cast<float>(mantissa) * 0x1p-9f;
  } else {
    magnitude = std::bit_cast<float>(((exponent + 120u) << 23) | (mantissa << 20));
  }
  return negative ? -magnitude : magnitude;
}

}  // namespace ctnn::detail

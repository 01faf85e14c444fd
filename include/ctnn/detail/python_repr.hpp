// Python's repr of a float ("0.01", "1.0", "1e-05"), so that printed modules
// read exactly like PyTorch's.
#pragma once

#include <charconv>
#include <ostream>
#include <ratio>
#include <string>

namespace ctnn::detail {

inline std::string python_float(double value) {
  char text[64];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  std::string s(text, end);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // n: nan, inf has 'n' too
  return s;
}

template <class Ratio>
inline constexpr double ratio_value = static_cast<double>(Ratio::num) / static_cast<double>(Ratio::den);

}  // namespace ctnn::detail

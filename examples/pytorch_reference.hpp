// Shared by the examples: PyTorch's reference files in tests/data (see
// tests/data/CONFORMANCE.md) and a comparison with the tolerances of its
// section 5. The build passes CTNN_DATA_DIR; run from the repository root, the
// default works too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iostream>
#include <span>
#include <string>
#include <string_view>

#include <ctnn/ctnn.hpp>

#ifndef CTNN_DATA_DIR
#define CTNN_DATA_DIR "tests/data"
#endif

namespace example {

/// The path of a conformance case: "mlp_3_8_1" -> tests/data/mlp_3_8_1.safetensors.
inline std::string reference_file(std::string_view case_name) {
  return std::string(CTNN_DATA_DIR) + "/" + std::string(case_name) + ".safetensors";
}

/// Prints how far `ours` is from PyTorch's `tensor` in `case_name`'s file and
/// returns whether every value is within |ours - torch| <= 1e-5 + 1e-4·|torch|.
inline bool matches_pytorch(std::string_view case_name, std::string_view tensor, std::span<const float> ours) {
  const auto torch = ctnn::SafetensorsFile::read(reference_file(case_name)).to_f32(tensor);
  bool ok = torch.size() == ours.size();
  double worst = 0.0;
  for (std::size_t i = 0; ok && i < ours.size(); ++i) {
    const double diff = std::fabs(double(ours[i]) - double(torch[i]));
    worst = std::max(worst, diff);
    ok = diff <= 1e-5 + 1e-4 * std::fabs(double(torch[i]));
  }
  std::cout << tensor << " vs PyTorch (" << case_name << "): max |diff| = " << worst
            << (ok ? "  ok" : "  MISMATCH") << '\n';
  return ok;
}

/// "[16, 3]": a parameter's shape as PyTorch prints it (torch.Size([16, 3])).
inline std::string shape_text(std::span<const std::size_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace example

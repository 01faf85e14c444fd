// Shared by the test groups: reading the PyTorch reference files in
// tests/data (copied from shared/conformance) and comparing with their
// tolerances (tests/data/CONFORMANCE.md, section 5).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/io/safetensors.hpp>

namespace ctnn::test {

inline std::string data_file(const std::string& case_name) {
  return std::string(CTNN_TEST_DATA) + "/" + case_name + ".safetensors";
}

struct Tolerance {
  double atol, rtol;
};
inline constexpr Tolerance forward_tolerance{1e-5, 1e-4};   // outputs, losses, buffers
inline constexpr Tolerance gradient_tolerance{1e-4, 1e-3};  // gradients, updated parameters
inline constexpr Tolerance curve_tolerance{0.0, 2e-3};      // the 300-step training curve

/// |got - ref| <= atol + rtol·|ref| for every element; NaN and Inf fail. The
/// message names the tensor, how many elements failed and the worst ones.
inline ::testing::AssertionResult all_close(const std::string& what, std::span<const float> got,
                                            std::span<const float> ref, Tolerance tol) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, reference has " << ref.size();
  std::size_t failures = 0;
  std::ostringstream detail;
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i];
    const double allowed = tol.atol + tol.rtol * std::fabs(r);
    const double diff = std::fabs(g - r);
    if (!std::isfinite(g) || !(diff <= allowed)) {
      if (failures < 5) detail << "\n  [" << i << "] got " << g << ", reference " << r << ", allowed " << allowed;
      ++failures;
    }
    if (std::isfinite(g)) worst = std::max(worst, diff / allowed);
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << failures << " of " << got.size()
                                       << " values outside tolerance (worst uses " << worst * 100
                                       << "% of the allowance)" << detail.str();
}

/// A conformance file and its values.
class Case {
 public:
  explicit Case(const std::string& name) : file_(SafetensorsFile::read(data_file(name))), path_(data_file(name)) {}
  std::vector<float> f32(const std::string& name) const { return file_.to_f32(name); }
  std::vector<std::int64_t> i64(const std::string& name) const { return file_.to_i64(name); }
  bool has(const std::string& name) const { return file_.contains(name); }
  std::size_t rows(const std::string& name) const { return static_cast<std::size_t>(file_.entry(name).shape.at(0)); }
  const std::string& path() const { return path_; }
  const SafetensorsFile& file() const { return file_; }
  std::string meta(const std::string& key) const { return file_.metadata().at(key); }

 private:
  SafetensorsFile file_;
  std::string path_;
};

}  // namespace ctnn::test

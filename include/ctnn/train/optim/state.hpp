// Optimizer state as named flat vectors (for checkpoints), and the plumbing
// every optimizer shares: the validated parameter view, step counters, and an
// all-or-nothing state loader.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/train/optim/parameter_view.hpp"

namespace ctnn::optim {

/// One piece of optimizer state. Buffers ("exp_avg", "momentum_buffer", ...)
/// have one value per element of the flat parameter buffer, frozen tensors
/// included; "step" has one value, the number of step() calls; "tensor_steps"
/// has one value per parameter tensor (see each optimizer). Counters are stored
/// as floats, as PyTorch 1.13 stores its `step` state.
struct NamedState {
  std::string name;
  std::vector<float> values;
};

namespace detail {

/// Python's repr() of the float with the same shortest digits, so that
/// optimizer reprs read like the constructors in the conformance metadata:
/// 0.1, 0.0, 0.0001, 1e-08.
inline std::string python_float_repr(float v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[48];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
  std::string out;
  if (s.front() == '-') {
    out = "-";
    s.remove_prefix(1);
  }
  const std::size_t epos = s.find('e');
  std::string digits;
  for (char c : s.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  const int e = std::atoi(std::string(s.substr(epos + 1)).c_str());
  // Python switches to exponent notation outside 1e-4 <= |v| < 1e16. The
  // pieces are appended, not joined with `"." + s`: g++ 12 at -O3 reports a
  // false -Wrestrict for that form once this is inlined into a caller.
  if (e >= -4 && e < 16) {
    const int decpt = e + 1;
    const auto nd = static_cast<int>(digits.size());
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= nd) {
      out += digits;
      out.append(static_cast<std::size_t>(decpt - nd), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<std::size_t>(decpt));
      out += '.';
      out.append(digits, static_cast<std::size_t>(decpt));
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    const int ae = e < 0 ? -e : e;
    out += e < 0 ? "e-" : "e+";
    if (ae < 10) out += '0';
    out += std::to_string(ae);
  }
  return out;
}

inline const char* python_bool_repr(bool b) { return b ? "True" : "False"; }

/// Throws ValueError unless `value >= min` (NaN fails as well).
inline void require_at_least(std::string_view owner, std::string_view what, float value,
                             float min) {
  if (!(value >= min)) {
    throw ValueError(std::string(owner) + ": invalid " + std::string(what) + ": " +
                     python_float_repr(value) + " (must be >= " + python_float_repr(min) + ")");
  }
}

/// Calls f(std::true_type{}) or f(std::false_type{}), turning a runtime flag
/// into a compile-time one so that each update loop is branch-free.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) {
    std::forward<F>(f)(std::true_type{});
  } else {
    std::forward<F>(f)(std::false_type{});
  }
}

/// The validated view plus the step counters every optimizer keeps.
class ParamSet {
 public:
  ParamSet(ParameterView view, std::string_view owner) : view_(view), whole_{0, view.size, true} {
    if (view_.size != 0 && (view_.params == nullptr || view_.grads == nullptr)) {
      throw ValueError(std::string(owner) + ": parameter view of " + std::to_string(view_.size) +
                       " values has a null parameter or gradient buffer");
    }
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    spans.reserve(view_.tensors.size());
    for (std::size_t k = 0; k < view_.tensors.size(); ++k) {
      const ParamRange& r = view_.tensors[k];
      if (r.offset > view_.size || r.size > view_.size - r.offset) {
        throw ShapeError(std::string(owner) + ": parameter tensor " + std::to_string(k) +
                         " [offset " + std::to_string(r.offset) + ", size " +
                         std::to_string(r.size) + "] lies outside the buffer of " +
                         std::to_string(view_.size) + " values");
      }
      if (r.size != 0) spans.emplace_back(r.offset, r.size);
    }
    // Overlapping tensors would be updated twice per step.
    std::sort(spans.begin(), spans.end());
    for (std::size_t k = 1; k < spans.size(); ++k) {
      if (spans[k - 1].first + spans[k - 1].second > spans[k].first) {
        throw ShapeError(std::string(owner) + ": parameter tensors at offsets " +
                         std::to_string(spans[k - 1].first) + " and " +
                         std::to_string(spans[k].first) + " overlap");
      }
    }
    tensor_steps.assign(ranges().size(), 0);
  }

  /// The tensors, or one tensor covering the whole buffer when the view lists none.
  std::span<const ParamRange> ranges() const noexcept {
    return view_.tensors.empty() ? std::span<const ParamRange>(&whole_, 1) : view_.tensors;
  }
  const ParameterView& view() const noexcept { return view_; }

  void zero_grad() const noexcept {
    float* g = view_.grads;
    for (std::size_t i = 0; i < view_.size; ++i) g[i] = 0.0f;
  }

  std::int64_t steps = 0;
  /// Per-tensor counters: a tensor that was frozen for a while has taken fewer
  /// steps than the optimizer, and PyTorch bias-corrects (Adam) or initialises
  /// momentum (SGD) from the tensor's own history.
  std::vector<std::int64_t> tensor_steps;

 private:
  ParameterView view_;
  ParamRange whole_;
};

inline std::vector<float> counter_values(std::span<const std::int64_t> c) {
  std::vector<float> out(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) out[i] = static_cast<float>(c[i]);
  return out;
}

/// "step" and, when `with_tensor_steps`, "tensor_steps".
inline void save_counters(const ParamSet& ps, bool with_tensor_steps,
                          std::vector<NamedState>& out) {
  out.push_back({"step", {static_cast<float>(ps.steps)}});
  if (with_tensor_steps) out.push_back({"tensor_steps", counter_values(ps.tensor_steps)});
}

struct BufferSlot {
  std::string_view name;
  std::vector<float>* values;
};

inline bool is_counter(float v) {
  // Floats hold every integer up to 2^24 exactly; beyond that a counter would
  // already be inexact in PyTorch's float `step` as well.
  return v >= 0.0f && v <= 9.0e15f && std::floor(v) == v;
}

/// Loads "step", the optional "tensor_steps" (when `tensor_steps_allowed`;
/// absent means every tensor took every step) and every buffer in `slots`.
/// Checks everything first and throws one LoadError listing every problem, so
/// that a failed load changes nothing.
inline void load_state(std::string_view owner, ParamSet& ps, std::span<const NamedState> in,
                       bool tensor_steps_allowed, std::initializer_list<BufferSlot> slots) {
  std::vector<std::string> problems;
  const NamedState* step = nullptr;
  const NamedState* tsteps = nullptr;
  std::vector<const NamedState*> found(slots.size(), nullptr);
  const std::size_t n_tensors = ps.tensor_steps.size();
  const std::size_t size = ps.view().size;

  auto size_problem = [&](const NamedState& s, std::size_t expected) {
    problems.push_back("'" + s.name + "' has " + std::to_string(s.values.size()) +
                       " values, expected " + std::to_string(expected));
  };
  auto claim = [&](const NamedState*& slot, const NamedState& s) {
    if (slot != nullptr) {
      problems.push_back("duplicate entry '" + s.name + "'");
      return false;
    }
    slot = &s;
    return true;
  };

  for (const NamedState& s : in) {
    if (s.name == "step") {
      if (!claim(step, s)) continue;
      if (s.values.size() != 1) {
        size_problem(s, 1);
      } else if (!is_counter(s.values[0])) {
        problems.push_back("'step' is " + python_float_repr(s.values[0]) +
                           ", expected a non-negative integer");
      }
      continue;
    }
    if (s.name == "tensor_steps" && tensor_steps_allowed) {
      if (!claim(tsteps, s)) continue;
      if (s.values.size() != n_tensors) {
        size_problem(s, n_tensors);
      } else if (!std::all_of(s.values.begin(), s.values.end(), is_counter)) {
        problems.push_back("'tensor_steps' holds a value that is not a non-negative integer");
      }
      continue;
    }
    std::size_t k = 0;
    for (const BufferSlot& slot : slots) {
      if (slot.name == s.name) break;
      ++k;
    }
    if (k == slots.size()) {
      problems.push_back("unexpected entry '" + s.name + "'");
      continue;
    }
    if (!claim(found[k], s)) continue;
    if (s.values.size() != size) size_problem(s, size);
  }
  if (step == nullptr) problems.push_back("missing entry 'step'");
  std::size_t k = 0;
  for (const BufferSlot& slot : slots) {
    if (found[k++] == nullptr) problems.push_back("missing entry '" + std::string(slot.name) + "'");
  }

  if (!problems.empty()) {
    std::string msg = std::string(owner) + ".load_state_dict: ";
    for (std::size_t i = 0; i < problems.size(); ++i) {
      if (i != 0) msg += "; ";
      msg += problems[i];
    }
    throw LoadError(msg);
  }

  ps.steps = static_cast<std::int64_t>(step->values[0]);
  for (std::size_t t = 0; t < n_tensors; ++t) {
    ps.tensor_steps[t] =
        tsteps != nullptr ? static_cast<std::int64_t>(tsteps->values[t]) : ps.steps;
  }
  k = 0;
  for (const BufferSlot& slot : slots) {
    const std::vector<float>& src = found[k++]->values;
    std::copy(src.begin(), src.end(), slot.values->begin());
  }
}

}  // namespace detail
}  // namespace ctnn::optim

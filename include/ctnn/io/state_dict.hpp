// A model's state_dict to and from safetensors files, with PyTorch's key names
// ("fc1.weight", "1.running_mean", ...), so weights trained in PyTorch load
// into the C++ type and back.
//
// Loads are strict by default (every missing, unexpected and mis-shaped key is
// listed in one error) and all-or-nothing: everything is read and converted
// into a staging copy first, and the model changes only when all of it fits.
// Saves are atomic (a temporary file renamed over the destination).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/io/safetensors.hpp"

namespace ctnn {

struct LoadOptions {
  /// Only file keys that start with this are read, with it removed ("param."
  /// for the conformance files). Keys without it are ignored.
  std::string prefix{};
  /// File-key prefix -> model-key prefix, applied after `prefix`; the first pair
  /// that matches wins. {{"fc2.", "2.fc2."}} maps "fc2.weight" to "2.fc2.weight".
  std::vector<std::pair<std::string, std::string>> rename{};
  /// Throw on any missing, unexpected or mis-shaped key. When false, the keys
  /// that fit are loaded and the others are reported in the result.
  bool strict = true;
};

struct LoadResult {
  std::vector<std::string> missing;     // model keys with no tensor in the file
  std::vector<std::string> unexpected;  // file keys (after prefix/rename) the model does not have
  std::vector<std::string> mismatched;  // keys present in both with another shape or dtype, with details
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
};

namespace detail {

inline std::string shape_text(std::span<const std::size_t> dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

inline std::string list_keys(const char* what, const std::vector<std::string>& keys) {
  std::string s;
  if (keys.empty()) return s;
  s += "\n  ";
  s += what;
  s += " (" + std::to_string(keys.size()) + "):";
  for (const auto& k : keys) s += "\n    " + k;
  return s;
}

/// The model key a file key maps to, or nothing when the prefix excludes it.
inline std::optional<std::string> model_key(const std::string& file_key, const LoadOptions& o) {
  if (!file_key.starts_with(o.prefix)) return std::nullopt;
  std::string key = file_key.substr(o.prefix.size());
  for (const auto& [from, to] : o.rename)
    if (key.starts_with(from)) return to + key.substr(from.size());
  return key;
}

inline bool same_shape(const std::vector<std::int64_t>& file, std::span<const std::size_t> model) {
  if (file.size() != model.size()) return false;
  for (std::size_t i = 0; i < file.size(); ++i)
    if (file[i] < 0 || static_cast<std::size_t>(file[i]) != model[i]) return false;
  return true;
}

inline bool is_float_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F64; }
inline bool is_integer_dtype(DType d) { return d == DType::I64 || d == DType::I32; }

}  // namespace detail

/// Loads a state_dict from a safetensors file into `model`. Throws LoadError
/// (the model unchanged) on a bad file, or, when strict, on any key problem.
template <class Net>
LoadResult load_safetensors(Model<Net>& model, const std::filesystem::path& path, const LoadOptions& options = {}) {
  using M = Model<Net>;
  const SafetensorsFile file = SafetensorsFile::read(path);

  // file key (as given) for each model key it maps to
  std::map<std::string, std::string> by_model_key;
  LoadResult result;
  for (const TensorEntry& e : file.entries()) {
    auto key = detail::model_key(e.name, options);
    if (!key) continue;
    if (by_model_key.contains(*key)) {
      result.mismatched.push_back(*key + ": two file tensors map to it ('" + by_model_key[*key] + "' and '" + e.name +
                                  "'); check the rename option");
      continue;
    }
    by_model_key.emplace(*key, e.name);
  }

  // Stage every value first; the model is touched only after all checks pass.
  std::vector<float> params(model.parameters().begin(), model.parameters().end());
  std::vector<float> buffers(model.buffer_values().begin(), model.buffer_values().end());
  std::vector<std::int64_t> counters(model.counter_values().begin(), model.counter_values().end());
  std::vector<bool> seen_file_key(file.entries().size(), false);
  std::map<std::string, bool> used;

  auto stage = [&](const TensorSpec& spec) {
    const std::string key(spec.name.view());
    auto it = by_model_key.find(key);
    if (it == by_model_key.end()) {
      result.missing.push_back(key);
      return;
    }
    used[it->second] = true;
    const TensorEntry& e = file.entry(it->second);
    const std::span<const std::size_t> dims(spec.dims.data(), spec.rank);
    const bool integer = spec.storage == Storage::counter;
    const std::string file_name = it->second == key ? key : key + " (file key '" + it->second + "')";
    if (!detail::same_shape(e.shape, dims)) {
      std::vector<std::size_t> file_dims;
      for (auto d : e.shape) file_dims.push_back(static_cast<std::size_t>(d));
      result.mismatched.push_back(file_name + ": expected shape " + detail::shape_text(dims) + ", found " +
                                  detail::shape_text(file_dims));
      return;
    }
    if (integer ? !detail::is_integer_dtype(e.dtype) : !detail::is_float_dtype(e.dtype)) {
      result.mismatched.push_back(file_name + ": expected dtype " + (integer ? "I64" : "F32 (or F16, BF16, F64)") +
                                  ", found " + std::string(dtype_name(e.dtype)));
      return;
    }
    if (integer) {
      const auto values = file.to_i64(it->second);
      std::copy(values.begin(), values.end(), counters.begin() + static_cast<std::ptrdiff_t>(spec.offset));
    } else {
      float* target = (spec.storage == Storage::parameter ? params.data() : buffers.data()) + spec.offset;
      file.copy_f32(it->second, std::span<float>(target, spec.numel()));
    }
  };
  for (const TensorSpec& s : M::layer::params) stage(s);
  for (const TensorSpec& s : M::layer::buffers) stage(s);
  for (const auto& [key, file_key] : by_model_key)
    if (!used.contains(file_key)) result.unexpected.push_back(file_key == key ? key : key + " (file key '" + file_key + "')");

  if (options.strict && !result.ok()) {
    throw LoadError("ctnn: cannot load '" + file.source() + "' into the model (strict); nothing was loaded:" +
                    detail::list_keys("missing keys", result.missing) +
                    detail::list_keys("unexpected keys", result.unexpected) +
                    detail::list_keys("mismatched keys", result.mismatched));
  }
  std::copy(params.begin(), params.end(), model.parameters().begin());
  if constexpr (M::num_buffers > 0) std::copy(buffers.begin(), buffers.end(), model.buffer_values().begin());
  if constexpr (M::num_counters > 0) std::copy(counters.begin(), counters.end(), model.counter_values().begin());
  return result;
}

/// Every parameter and buffer of the model, as F32 (counters as I64), for
/// write_safetensors. The spans point into the model.
template <class Net>
std::vector<TensorToWrite> state_dict_tensors(Model<Net>& model) {
  std::vector<TensorToWrite> out;
  auto shape_of = [](const TensorSpec& s) {
    std::vector<std::int64_t> shape;
    for (std::size_t i = 0; i < s.rank; ++i) shape.push_back(static_cast<std::int64_t>(s.dims[i]));
    return shape;
  };
  for (const ParamRef& p : model.named_parameters())
    out.push_back({std::string(p.name), DType::F32, shape_of(*p.spec), std::as_bytes(p.span())});
  for (const BufferRef& b : model.named_buffers()) {
    if (b.is_integer())
      out.push_back({std::string(b.name), DType::I64, shape_of(*b.spec),
                     std::as_bytes(std::span<const std::int64_t>(b.integer_data(), b.size()))});
    else
      out.push_back({std::string(b.name), DType::F32, shape_of(*b.spec),
                     std::as_bytes(std::span<const float>(b.data(), b.size()))});
  }
  return out;
}

/// Writes the model's state_dict to `path` atomically: the destination is
/// either replaced as a whole or left as it was.
template <class Net>
void save_safetensors(Model<Net>& model, const std::filesystem::path& path,
                      const std::map<std::string, std::string>& metadata = {}) {
  const auto tensors = state_dict_tensors(model);
  write_safetensors(path, tensors, metadata);
}

}  // namespace ctnn

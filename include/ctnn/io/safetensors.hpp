// The safetensors file format (https://github.com/huggingface/safetensors):
//
//   uint64 little-endian N | N bytes of JSON header | data section
//
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin,
// end]} (offsets relative to the data section) and may hold "__metadata__", a
// map of strings to strings.
//
// Reading loads the whole file and validates all of it up front, so that a
// SafetensorsFile that exists is consistent: every later access is in bounds
// and the only remaining errors are "no such tensor" and "wrong dtype".
// Writing is atomic (see detail/atomic_file.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/io/detail/atomic_file.hpp"
#include "ctnn/io/detail/float_bits.hpp"
#include "ctnn/io/detail/read_file.hpp"

namespace ctnn {

/// Element types of the safetensors format, spelled as in the file.
enum class DType {
  F32,
  F16,
  BF16,
  F64,
  I64,
  I32,
  U8,
  BOOL,
  I8,
  I16,
  U16,
  U32,
  U64,
  F8_E4M3,
  F8_E5M2
};

namespace detail {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

// Indexed by the enumerator's value; dtype_table_is_in_enum_order() keeps the two in step.
inline constexpr std::array<DTypeInfo, 15> dtype_table{{
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
    {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::U32, "U32", 4},
    {DType::U64, "U64", 8},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
}};

constexpr bool dtype_table_is_in_enum_order() {
  for (std::size_t i = 0; i < dtype_table.size(); ++i) {
    if (static_cast<std::size_t>(dtype_table[i].dtype) != i) return false;
  }
  return true;
}
static_assert(dtype_table_is_in_enum_order());

inline std::string all_dtype_names() {
  std::string names;
  for (const DTypeInfo& info : dtype_table) {
    if (!names.empty()) names += ", ";
    names += info.name;
  }
  return names;
}

}  // namespace detail

inline std::string_view dtype_name(DType dtype) {
  return detail::dtype_table.at(static_cast<std::size_t>(dtype)).name;
}

/// Bytes per element.
inline std::size_t dtype_size(DType dtype) {
  return detail::dtype_table.at(static_cast<std::size_t>(dtype)).size;
}

/// The dtype spelled `name` in a safetensors header ("F32", "I64", ...), if any.
inline std::optional<DType> dtype_from_name(std::string_view name) {
  for (const detail::DTypeInfo& info : detail::dtype_table) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

/// One tensor of a safetensors header.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  // [] is a scalar (one element)
  std::size_t begin = 0, end = 0;   // byte offsets relative to the data section

  std::size_t numel() const {
    std::size_t count = 1;
    for (const std::int64_t dim : shape) count *= static_cast<std::size_t>(dim);
    return count;
  }
};

namespace detail {

// Real headers are kilobytes; this is the limit of the reference (Rust)
// implementation, and it bounds what a hostile length prefix can make us parse.
inline constexpr std::uint64_t max_safetensors_header_bytes = 100'000'000;

// A valid header nests three deep (object, tensor object, shape array). The
// slack keeps specific messages for slightly wrong headers, while the limit
// stops "[[[[..." from making the parser allocate per nesting level.
inline constexpr std::size_t max_safetensors_header_nesting = 8;

template <class Unsigned>
Unsigned load_little_endian(const std::byte* source) {
  Unsigned value = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&value, source, sizeof(Unsigned));
  } else {
    for (std::size_t i = 0; i < sizeof(Unsigned); ++i) {
      value = static_cast<Unsigned>(
          value | (static_cast<Unsigned>(std::to_integer<unsigned>(source[i])) << (8 * i)));
    }
  }
  return value;
}

inline std::string shape_to_string(std::span<const std::int64_t> shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

inline std::string offsets_to_string(std::uint64_t begin, std::uint64_t end) {
  // Appending instead of "[" + std::to_string(...) avoids a GCC 12 -Wrestrict false positive.
  std::string text = "[";
  text += std::to_string(begin);
  text += ", ";
  text += std::to_string(end);
  text += "]";
  return text;
}

// A string from the header, JSON-quoted and cut short: it goes into a message.
inline std::string quoted_excerpt(std::string text) {
  constexpr std::size_t shown = 60;
  const bool truncated = text.size() > shown;
  if (truncated) text.resize(shown);
  // Truncation may split a UTF-8 sequence; replace rather than throw.
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         (truncated ? "..." : "");
}

// Describes a JSON value for "found ..." in messages without dumping
// containers: dumping is recursive, and a hostile header may be large.
inline std::string describe_json(const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null:
      return "null";
    case Type::boolean:
      return std::string("the boolean ") + (value.get<bool>() ? "true" : "false");
    case Type::number_integer:
    case Type::number_unsigned:
    case Type::number_float:
      return "the number " + value.dump();
    case Type::string:
      return "the string " + quoted_excerpt(value.get_ref<const std::string&>());
    case Type::array:
      return "an array of " + std::to_string(value.size()) +
             (value.size() == 1 ? " value" : " values");
    case Type::object:
      return "an object with " + std::to_string(value.size()) +
             (value.size() == 1 ? " key" : " keys");
    case Type::binary:
    case Type::discarded:
      break;
  }
  return std::string("a JSON ") + value.type_name();
}

[[noreturn]] inline void throw_load_error(std::string_view source, std::string_view problem) {
  throw LoadError("safetensors file '" + std::string(source) + "': " + std::string(problem));
}

struct ParsedHeader {
  nlohmann::json root;
  std::vector<std::string> keys_in_order;  // top-level keys as they appear in the file
};

// nlohmann keeps only the last of duplicate keys and sorts object keys; the
// parse callback sees every key in file order, so it records the order and
// rejects duplicates (which would make the file mean two things).
inline ParsedHeader parse_header_json(std::string_view text, std::string_view source) {
  struct Container {
    // The last key of the enclosing object: for a tensor entry, the tensor's
    // name. Empty under an array and at the root.
    std::string key_in_parent;
    std::string last_key;
    std::unordered_set<std::string> keys;
  };
  std::vector<Container> open_containers;
  ParsedHeader parsed;

  const auto on_event = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                            nlohmann::json& value) -> bool {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (open_containers.size() >= max_safetensors_header_nesting) {
          throw_load_error(source, "the header nests JSON objects and arrays more than " +
                                       std::to_string(max_safetensors_header_nesting) +
                                       " levels deep; a safetensors header has 3 levels "
                                       "(header object, tensor object, shape array)");
        }
        open_containers.push_back(
            {open_containers.empty() ? std::string() : open_containers.back().last_key, {}, {}});
        break;
      case Event::object_end:
      case Event::array_end:
        open_containers.pop_back();
        break;
      case Event::key: {
        Container& object = open_containers.back();
        const std::string& key = value.get_ref<const std::string&>();
        if (!object.keys.insert(key).second) {
          const std::string quoted = quoted_excerpt(key);
          if (open_containers.size() == 1) {
            throw_load_error(source, "the header has the key " + quoted +
                                         " twice (duplicate tensor name); expected unique keys");
          }
          if (open_containers.size() == 2 && object.key_in_parent == "__metadata__") {
            throw_load_error(source,
                             "__metadata__ has the key " + quoted + " twice; expected unique keys");
          }
          if (open_containers.size() == 2) {
            throw_load_error(source, "tensor '" + object.key_in_parent +
                                         "': its entry has the key " + quoted +
                                         " twice; expected unique keys");
          }
          throw_load_error(source, "a nested header object has the key " + quoted +
                                       " twice; expected unique keys");
        }
        object.last_key = key;
        if (open_containers.size() == 1) parsed.keys_in_order.push_back(key);
        break;
      }
      case Event::value:
        break;
    }
    return true;
  };

  try {
    parsed.root = nlohmann::json::parse(text.data(), text.data() + text.size(), on_event);
  } catch (const nlohmann::json::parse_error& error) {
    // nlohmann counts bytes read, so the offending byte is at error.byte - 1
    // (or at the end, when the input ran out).
    const std::size_t offset =
        std::min<std::size_t>(error.byte > 0 ? error.byte - 1 : 0, text.size());
    throw_load_error(source, "the " + std::to_string(text.size()) +
                                 "-byte header is not valid JSON (at header offset " +
                                 std::to_string(offset) + ", file offset " +
                                 std::to_string(offset + 8) + "): " + error.what());
  } catch (const nlohmann::json::exception& error) {
    throw_load_error(source, "the " + std::to_string(text.size()) +
                                 "-byte header is not valid JSON: " + error.what());
  }
  return parsed;
}

inline std::map<std::string, std::string> validate_metadata(const nlohmann::json& value,
                                                            std::string_view source) {
  std::map<std::string, std::string> metadata;
  // The reference writer omits metadata it does not have; accept an explicit
  // null as the same thing.
  if (value.is_null()) return metadata;
  if (!value.is_object()) {
    throw_load_error(source, "__metadata__ must be an object mapping strings to strings, found " +
                                 describe_json(value));
  }
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      throw_load_error(source, "__metadata__ value of key '" + key + "' must be a string, found " +
                                   describe_json(text));
    }
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

// A non-negative JSON integer, or a message saying what was found instead.
inline std::uint64_t require_unsigned(const nlohmann::json& value, std::string_view source,
                                      const std::string& what) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  if (value.is_number_integer()) {
    throw_load_error(source, what + " is " + value.dump() + ", expected a non-negative integer");
  }
  throw_load_error(source, what + " must be a non-negative integer, found " + describe_json(value));
}

inline const nlohmann::json& require_field(const nlohmann::json& entry, const char* field,
                                           std::string_view source, const std::string& tensor) {
  const auto found = entry.find(field);
  if (found == entry.end()) {
    throw_load_error(source, "tensor '" + tensor + "': its entry has no \"" + field +
                                 "\"; expected \"dtype\", \"shape\" and \"data_offsets\"");
  }
  return *found;
}

inline TensorEntry validate_tensor_entry(const std::string& name, const nlohmann::json& entry,
                                         std::size_t data_size, std::string_view source) {
  const std::string in_tensor = "tensor '" + name + "': ";
  if (!entry.is_object()) {
    throw_load_error(source, in_tensor +
                                 "its entry must be an object with \"dtype\", \"shape\" and "
                                 "\"data_offsets\", found " +
                                 describe_json(entry));
  }
  TensorEntry result;
  result.name = name;

  const nlohmann::json& dtype_value = require_field(entry, "dtype", source, name);
  if (!dtype_value.is_string()) {
    throw_load_error(source,
                     in_tensor + "\"dtype\" must be a string, found " + describe_json(dtype_value));
  }
  const std::optional<DType> dtype = dtype_from_name(dtype_value.get_ref<const std::string&>());
  if (!dtype) {
    throw_load_error(source, in_tensor + "unknown dtype " +
                                 quoted_excerpt(dtype_value.get_ref<const std::string&>()) +
                                 ", expected one of " + all_dtype_names());
  }
  result.dtype = *dtype;

  const nlohmann::json& shape_value = require_field(entry, "shape", source, name);
  if (!shape_value.is_array()) {
    throw_load_error(source, in_tensor +
                                 "\"shape\" must be an array of non-negative integers, found " +
                                 describe_json(shape_value));
  }
  std::uint64_t element_count = 1;
  bool element_count_overflows = false;
  for (std::size_t i = 0; i < shape_value.size(); ++i) {
    const std::string what = in_tensor + "shape[" + std::to_string(i) + "]";
    const std::uint64_t dim = require_unsigned(shape_value[i], source, what);
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw_load_error(source, what + " is " + std::to_string(dim) +
                                   ", larger than the largest dimension " +
                                   std::to_string(std::numeric_limits<std::int64_t>::max()));
    }
    result.shape.push_back(static_cast<std::int64_t>(dim));
    if (dim != 0 && element_count > std::numeric_limits<std::uint64_t>::max() / dim) {
      element_count_overflows = true;  // unless a later dimension is 0
    }
    element_count *= dim;
  }
  const bool has_zero_dim =
      std::find(result.shape.begin(), result.shape.end(), 0) != result.shape.end();
  const std::uint64_t element_size = dtype_size(result.dtype);
  if (!has_zero_dim && (element_count_overflows ||
                        element_count > std::numeric_limits<std::uint64_t>::max() / element_size)) {
    throw_load_error(source, in_tensor + "shape " + shape_to_string(result.shape) +
                                 " has more elements than a 64-bit byte count can hold "
                                 "(element count overflow)");
  }
  if (has_zero_dim) element_count = 0;
  const std::uint64_t expected_bytes = element_count * element_size;

  const nlohmann::json& offsets_value = require_field(entry, "data_offsets", source, name);
  if (!offsets_value.is_array() || offsets_value.size() != 2) {
    throw_load_error(source, in_tensor +
                                 "\"data_offsets\" must be an array of two integers "
                                 "[begin, end], found " +
                                 describe_json(offsets_value));
  }
  const std::uint64_t begin =
      require_unsigned(offsets_value[0], source, in_tensor + "data_offsets[0]");
  const std::uint64_t end =
      require_unsigned(offsets_value[1], source, in_tensor + "data_offsets[1]");
  if (begin > end) {
    throw_load_error(source, in_tensor + "data_offsets " + offsets_to_string(begin, end) +
                                 " are not increasing: expected begin <= end");
  }
  if (end > data_size) {
    throw_load_error(source, in_tensor + "data_offsets " + offsets_to_string(begin, end) +
                                 " are out of range: the data section holds only " +
                                 std::to_string(data_size) + " bytes");
  }
  if (end - begin != expected_bytes) {
    throw_load_error(
        source,
        in_tensor + "wrong element count: shape " + shape_to_string(result.shape) + " of " +
            std::string(dtype_name(result.dtype)) + " needs " + std::to_string(element_count) +
            " elements = " + std::to_string(expected_bytes) + " bytes, but data_offsets " +
            offsets_to_string(begin, end) + " span " + std::to_string(end - begin) + " bytes");
  }
  result.begin = static_cast<std::size_t>(begin);
  result.end = static_cast<std::size_t>(end);
  return result;
}

// Stored is the element type in the file, Unsigned its same-width bit pattern.
template <class Stored, class Unsigned>
void widen_integers(const std::byte* stored, std::span<std::int64_t> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::int64_t>(
        static_cast<Stored>(load_little_endian<Unsigned>(stored + sizeof(Unsigned) * i)));
  }
}

// Gaps are allowed (the format does not forbid them), overlaps are not: two
// tensors sharing bytes would alias once loaded.
inline void reject_overlaps(const std::vector<TensorEntry>& entries, std::string_view source) {
  std::vector<const TensorEntry*> by_offset;
  for (const TensorEntry& entry : entries) {
    if (entry.begin != entry.end) by_offset.push_back(&entry);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  // In begin order, any overlap shows up between neighbours.
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const TensorEntry& previous = *by_offset[i - 1];
    const TensorEntry& current = *by_offset[i];
    if (current.begin < previous.end) {
      throw_load_error(source, "tensors '" + previous.name + "' (data_offsets " +
                                   offsets_to_string(previous.begin, previous.end) + ") and '" +
                                   current.name + "' (data_offsets " +
                                   offsets_to_string(current.begin, current.end) +
                                   ") overlap; expected disjoint byte ranges");
    }
  }
}

}  // namespace detail

/// A whole safetensors file, read into memory and fully validated on
/// construction. Cheap to query; conversions copy out of the stored bytes.
class SafetensorsFile {
 public:
  /// Reads and validates `path`. Throws LoadError.
  static SafetensorsFile read(const std::filesystem::path& path) {
    return parse(detail::read_whole_file(path), path.string());
  }

  /// Validates the bytes of a whole file. `source_name` names it in messages.
  /// Throws LoadError.
  static SafetensorsFile parse(std::vector<std::byte> bytes, std::string source_name) {
    SafetensorsFile file;
    file.source_ = std::move(source_name);
    const std::string_view source = file.source_;
    if (bytes.size() < 8) {
      detail::throw_load_error(source, "the file is " + std::to_string(bytes.size()) +
                                           " bytes long, shorter than the 8-byte header length "
                                           "that starts every safetensors file");
    }
    const std::uint64_t header_length = detail::load_little_endian<std::uint64_t>(bytes.data());
    const std::size_t after_prefix = bytes.size() - 8;
    if (header_length > after_prefix) {
      detail::throw_load_error(source, "the header length " + std::to_string(header_length) +
                                           " (first 8 bytes) runs past the end of the file: only " +
                                           std::to_string(after_prefix) +
                                           " bytes follow the length (file size " +
                                           std::to_string(bytes.size()) + ")");
    }
    if (header_length > detail::max_safetensors_header_bytes) {
      detail::throw_load_error(
          source, "the header length " + std::to_string(header_length) + " exceeds the limit of " +
                      std::to_string(detail::max_safetensors_header_bytes) + " bytes");
    }
    const std::size_t header_size = static_cast<std::size_t>(header_length);
    const std::string_view header_text(reinterpret_cast<const char*>(bytes.data()) + 8,
                                       header_size);
    const detail::ParsedHeader header = detail::parse_header_json(header_text, source);
    if (!header.root.is_object()) {
      detail::throw_load_error(
          source, "the header must be a JSON object, found " + detail::describe_json(header.root));
    }

    file.data_start_ = 8 + header_size;
    const std::size_t data_size = bytes.size() - file.data_start_;
    for (const std::string& key : header.keys_in_order) {
      const nlohmann::json& value = header.root.at(key);
      if (key == "__metadata__") {
        file.metadata_ = detail::validate_metadata(value, source);
        continue;
      }
      file.index_.emplace(key, file.entries_.size());
      file.entries_.push_back(detail::validate_tensor_entry(key, value, data_size, source));
    }
    detail::reject_overlaps(file.entries_, source);
    file.bytes_ = std::move(bytes);
    return file;
  }

  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// All tensors, in header order.
  const std::vector<TensorEntry>& entries() const { return entries_; }

  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }

  /// Throws LoadError naming the tensor and the file if there is no such tensor.
  const TensorEntry& entry(std::string_view name) const {
    const auto found = index_.find(name);
    if (found == index_.end()) {
      detail::throw_load_error(source_, "no tensor named '" + std::string(name) +
                                            "' (the file has " + std::to_string(entries_.size()) +
                                            " tensors)");
    }
    return entries_[found->second];
  }

  /// The tensor's stored bytes (little-endian, possibly unaligned).
  std::span<const std::byte> raw_bytes(std::string_view name) const {
    const TensorEntry& found = entry(name);
    return std::span<const std::byte>(bytes_).subspan(data_start_ + found.begin,
                                                      found.end - found.begin);
  }

  /// Floating-point tensors as float: F32 as is, the narrower formats
  /// exactly, F64 rounded to nearest. Integer dtypes throw LoadError.
  std::vector<float> to_f32(std::string_view name) const {
    std::vector<float> values(entry(name).numel());
    copy_f32(name, values);
    return values;
  }

  /// Like to_f32, into caller memory whose size must equal the element count.
  void copy_f32(std::string_view name, std::span<float> out) const {
    const TensorEntry& found = entry(name);
    const std::size_t count = found.numel();
    if (out.size() != count) {
      detail::throw_load_error(
          source_, "tensor '" + found.name + "' has " + std::to_string(count) +
                       " elements (shape " + detail::shape_to_string(found.shape) +
                       "), but the destination holds " + std::to_string(out.size()) + " floats");
    }
    const std::byte* stored = bytes_.data() + data_start_ + found.begin;
    switch (found.dtype) {
      case DType::F32:
        if constexpr (std::endian::native == std::endian::little) {
          if (count > 0) std::memcpy(out.data(), stored, count * sizeof(float));
        } else {
          for (std::size_t i = 0; i < count; ++i) {
            out[i] =
                std::bit_cast<float>(detail::load_little_endian<std::uint32_t>(stored + 4 * i));
          }
        }
        return;
      case DType::F64:
        for (std::size_t i = 0; i < count; ++i) {
          out[i] = static_cast<float>(
              std::bit_cast<double>(detail::load_little_endian<std::uint64_t>(stored + 8 * i)));
        }
        return;
      case DType::F16:
        for (std::size_t i = 0; i < count; ++i) {
          out[i] =
              detail::f16_bits_to_f32(detail::load_little_endian<std::uint16_t>(stored + 2 * i));
        }
        return;
      case DType::BF16:
        for (std::size_t i = 0; i < count; ++i) {
          out[i] =
              detail::bf16_bits_to_f32(detail::load_little_endian<std::uint16_t>(stored + 2 * i));
        }
        return;
      case DType::F8_E4M3:
        for (std::size_t i = 0; i < count; ++i) {
          out[i] = detail::f8_e4m3_bits_to_f32(std::to_integer<std::uint8_t>(stored[i]));
        }
        return;
      case DType::F8_E5M2:
        for (std::size_t i = 0; i < count; ++i) {
          out[i] = detail::f8_e5m2_bits_to_f32(std::to_integer<std::uint8_t>(stored[i]));
        }
        return;
      case DType::I64:
      case DType::I32:
      case DType::I16:
      case DType::I8:
      case DType::U64:
      case DType::U32:
      case DType::U16:
      case DType::U8:
      case DType::BOOL:
        break;
    }
    detail::throw_load_error(source_, "tensor '" + found.name + "' has dtype " +
                                          std::string(dtype_name(found.dtype)) +
                                          ", expected a floating-point dtype (F32, F64, F16, BF16, "
                                          "F8_E4M3, F8_E5M2) to read as float; use to_i64 for "
                                          "integers");
  }

  /// Integer tensors as int64: I64 as is, narrower integers and BOOL widened.
  /// U64 values above the int64 range and floating-point dtypes throw LoadError.
  std::vector<std::int64_t> to_i64(std::string_view name) const {
    const TensorEntry& found = entry(name);
    const std::size_t count = found.numel();
    const std::byte* stored = bytes_.data() + data_start_ + found.begin;
    std::vector<std::int64_t> values(count);
    switch (found.dtype) {
      case DType::I64:
        detail::widen_integers<std::int64_t, std::uint64_t>(stored, values);
        return values;
      case DType::I32:
        detail::widen_integers<std::int32_t, std::uint32_t>(stored, values);
        return values;
      case DType::I16:
        detail::widen_integers<std::int16_t, std::uint16_t>(stored, values);
        return values;
      case DType::I8:
        detail::widen_integers<std::int8_t, std::uint8_t>(stored, values);
        return values;
      case DType::U32:
        detail::widen_integers<std::uint32_t, std::uint32_t>(stored, values);
        return values;
      case DType::U16:
        detail::widen_integers<std::uint16_t, std::uint16_t>(stored, values);
        return values;
      case DType::U8:
        detail::widen_integers<std::uint8_t, std::uint8_t>(stored, values);
        return values;
      case DType::BOOL:
        for (std::size_t i = 0; i < count; ++i) values[i] = stored[i] != std::byte{0} ? 1 : 0;
        return values;
      case DType::U64:
        for (std::size_t i = 0; i < count; ++i) {
          const std::uint64_t value = detail::load_little_endian<std::uint64_t>(stored + 8 * i);
          if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            detail::throw_load_error(
                source_, "tensor '" + found.name + "' (U64): element " + std::to_string(i) +
                             " is " + std::to_string(value) + ", larger than the int64 maximum");
          }
          values[i] = static_cast<std::int64_t>(value);
        }
        return values;
      case DType::F32:
      case DType::F16:
      case DType::BF16:
      case DType::F64:
      case DType::F8_E4M3:
      case DType::F8_E5M2:
        break;
    }
    detail::throw_load_error(source_, "tensor '" + found.name + "' has dtype " +
                                          std::string(dtype_name(found.dtype)) +
                                          ", expected an integer dtype (I64, I32, I16, I8, U64, "
                                          "U32, U16, U8, BOOL) to read as int64; use to_f32 for "
                                          "floating point");
  }

  /// The name given to parse(), or the path given to read().
  const std::string& source() const { return source_; }

 private:
  SafetensorsFile() = default;

  std::string source_;
  std::vector<std::byte> bytes_;  // the whole file, prefix and header included
  std::size_t data_start_ = 0;    // offset of the data section in bytes_
  std::map<std::string, std::string> metadata_;
  std::vector<TensorEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in entries_
};

/// One tensor for write_safetensors. `bytes` holds numel * dtype_size bytes,
/// little-endian, row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;
};

/// Writes a safetensors file atomically: a temporary file in the destination's
/// directory, flushed and fsync'ed, then renamed over the destination. Tensors
/// are stored back to back in the given order, and the header is padded with
/// spaces so that the data section starts 8-byte aligned. If anything fails,
/// the destination is untouched and the temporary file removed; throws
/// SaveError saying what failed.
inline void write_safetensors(const std::filesystem::path& path,
                              std::span<const TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const auto fail = [&](const std::string& problem) {
    throw SaveError("cannot write '" + path.string() + "': " + problem);
  };
  // Built piece by piece rather than as one ordered_json object: that keeps
  // the caller's order while staying linear in the number of tensors.
  std::string header = "{";
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  try {
    if (!metadata.empty()) header += "\"__metadata__\":" + nlohmann::json(metadata).dump();
    for (const TensorToWrite& tensor : tensors) {
      const std::string in_tensor = "tensor '" + tensor.name + "': ";
      if (tensor.name == "__metadata__") {
        fail("the tensor name \"__metadata__\" is reserved for the metadata");
      }
      if (!names.insert(tensor.name).second) fail(in_tensor + "the name is given twice");
      std::uint64_t byte_count = dtype_size(tensor.dtype);
      for (const std::int64_t dim : tensor.shape) {
        if (dim < 0) {
          fail(in_tensor + "shape " + detail::shape_to_string(tensor.shape) +
               " has a negative dimension");
        }
        const auto unsigned_dim = static_cast<std::uint64_t>(dim);
        if (unsigned_dim != 0 &&
            byte_count > std::numeric_limits<std::uint64_t>::max() / unsigned_dim) {
          fail(in_tensor + "shape " + detail::shape_to_string(tensor.shape) +
               " has more bytes than a 64-bit count can hold");
        }
        byte_count *= unsigned_dim;
      }
      if (byte_count != tensor.bytes.size()) {
        fail(in_tensor + "shape " + detail::shape_to_string(tensor.shape) + " of " +
             std::string(dtype_name(tensor.dtype)) + " needs " + std::to_string(byte_count) +
             " bytes, but " + std::to_string(tensor.bytes.size()) + " bytes were given");
      }
      nlohmann::ordered_json entry = nlohmann::ordered_json::object();
      entry["dtype"] = dtype_name(tensor.dtype);
      entry["shape"] = tensor.shape;
      entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + byte_count});
      if (header.size() > 1) header += ",";
      header += nlohmann::json(tensor.name).dump() + ":" + entry.dump();
      offset += byte_count;
    }
  } catch (const nlohmann::json::exception& error) {
    // dump() rejects names and metadata that are not valid UTF-8.
    fail(std::string("a tensor name or metadata string is not valid UTF-8: ") + error.what());
  }
  header += "}";
  const std::size_t padding = (8 - (8 + header.size()) % 8) % 8;
  header.append(padding, ' ');

  std::array<std::byte, 8> length_prefix{};
  for (std::size_t i = 0; i < 8; ++i) {
    length_prefix[i] =
        static_cast<std::byte>((static_cast<std::uint64_t>(header.size()) >> (8 * i)) & 0xFFu);
  }
  std::vector<std::span<const std::byte>> pieces;
  pieces.reserve(tensors.size() + 2);
  pieces.emplace_back(length_prefix);
  pieces.push_back(std::as_bytes(std::span<const char>(header)));
  for (const TensorToWrite& tensor : tensors) pieces.push_back(tensor.bytes);
  detail::write_file_atomically(path, pieces);
}

}  // namespace ctnn

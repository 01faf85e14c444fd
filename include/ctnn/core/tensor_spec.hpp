// Compile-time description of one parameter or buffer: its dotted name, its
// shape and where it lives in the model's flat storage. Every architecture type
// exposes `params` and `buffers` as constexpr arrays of these, so a test can
// static_assert a name or a shape.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace ctnn {

/// Longest dotted name a parameter may have. Generous: PyTorch's keys for deep
/// nets ("0.block.0.weight") are a few dozen characters.
inline constexpr std::size_t max_name_length = 127;

/// A fixed-capacity string that can be built and joined in constant expressions.
struct static_name {
  char chars[max_name_length + 1]{};
  std::size_t length = 0;

  constexpr static_name() = default;
  constexpr static_name(std::string_view text) { append(text); }

  constexpr static_name& append(std::string_view text) {
    if (length + text.size() > max_name_length)
      throw "ctnn: a dotted parameter name is longer than ctnn::max_name_length";
    for (char c : text) chars[length++] = c;
    chars[length] = '\0';
    return *this;
  }
  constexpr std::string_view view() const { return {chars, length}; }
  constexpr bool operator==(std::string_view other) const { return view() == other; }
};

/// Decimal text of a position in a parent, e.g. the "2" of "2.fc2.weight".
constexpr static_name index_name(std::size_t index) {
  char digits[24]{};
  std::size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  static_name out;
  for (std::size_t i = 0; i < count; ++i) {
    char c[1] = {digits[count - 1 - i]};
    out.append(std::string_view(c, 1));
  }
  return out;
}

enum class Storage : std::uint8_t {
  parameter,  // trainable float, in the parameter (and gradient) buffer
  buffer,     // float state that is not trained (BatchNorm's running statistics)
  counter,    // int64 state (BatchNorm's num_batches_tracked)
};

inline constexpr std::size_t max_rank = 4;

struct TensorSpec {
  static_name name;
  std::array<std::size_t, max_rank> dims{};
  std::size_t rank = 0;
  std::size_t offset = 0;  // in elements, within the flat storage named by `storage`
  Storage storage = Storage::parameter;

  constexpr TensorSpec() = default;
  constexpr TensorSpec(std::string_view n, std::initializer_list<std::size_t> shape, std::size_t off,
                       Storage where = Storage::parameter)
      : name(n), offset(off), storage(where) {
    for (std::size_t d : shape) dims[rank++] = d;
  }

  /// Number of elements; a scalar (rank 0) has one.
  constexpr std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  constexpr std::array<std::size_t, max_rank> shape_array() const { return dims; }
};

namespace detail {

/// The specs of a child, renamed "<label>.<name>" and moved by the child's offsets.
template <std::size_t N>
constexpr std::array<TensorSpec, N> prefixed(std::array<TensorSpec, N> specs, const static_name& label,
                                             std::size_t param_offset, std::size_t buffer_offset,
                                             std::size_t counter_offset) {
  for (auto& s : specs) {
    static_name full = label;
    full.append(".").append(s.name.view());
    s.name = full;
    s.offset += s.storage == Storage::parameter ? param_offset
                : s.storage == Storage::buffer  ? buffer_offset
                                                : counter_offset;
  }
  return specs;
}

template <std::size_t A, std::size_t B>
constexpr std::array<TensorSpec, A + B> concat(const std::array<TensorSpec, A>& a,
                                               const std::array<TensorSpec, B>& b) {
  std::array<TensorSpec, A + B> out{};
  for (std::size_t i = 0; i < A; ++i) out[i] = a[i];
  for (std::size_t i = 0; i < B; ++i) out[A + i] = b[i];
  return out;
}

}  // namespace detail

/// Looks a spec up by name in a constexpr table; -1 when absent.
template <std::size_t N>
constexpr std::ptrdiff_t find_spec(const std::array<TensorSpec, N>& specs, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (specs[i].name.view() == name) return static_cast<std::ptrdiff_t>(i);
  return -1;
}

}  // namespace ctnn

// A string usable as a template argument: `Named<"fc1", Linear<3, 16>>`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace ctnn {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};  // includes the terminating '\0'

  constexpr fixed_string(const char (&text)[N]) { std::copy_n(text, N, chars); }

  constexpr std::string_view view() const { return {chars, N - 1}; }
  constexpr std::size_t size() const { return N - 1; }

  template <std::size_t M>
  constexpr bool operator==(const fixed_string<M>& other) const {
    return view() == other.view();
  }
};

}  // namespace ctnn

// Run-time handles on the parts of a model: one parameter or buffer with its
// dotted name (what named_parameters() yields), and one module of the tree
// with its name and its type (what named_modules() and apply() visit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ctnn/compose/functional.hpp"
#include "ctnn/compose/named.hpp"
#include "ctnn/core/children.hpp"
#include "ctnn/core/context.hpp"
#include "ctnn/core/tensor_ref.hpp"
#include "ctnn/core/tensor_spec.hpp"

namespace ctnn {

/// One parameter: `p.name == "fc1.weight"`, `p.shape()`, `p.data()`, `p.grad()`.
struct ParamRef {
  std::string_view name;
  const TensorSpec* spec = nullptr;
  float* values = nullptr;
  float* gradient = nullptr;
  bool* trainable = nullptr;        // the flag backward reads
  bool* range_trainable = nullptr;  // the same flag in the optimizers' view
  Generator* generator = nullptr;   // the model's, for init functions

  std::span<const std::size_t> shape() const { return {spec->dims.data(), spec->rank}; }
  std::size_t size() const { return spec->numel(); }
  std::size_t offset() const { return spec->offset; }
  float* data() const { return values; }
  float* grad() const { return gradient; }
  std::span<float> span() const { return {values, size()}; }
  std::span<float> grad_span() const { return {gradient, size()}; }
  bool requires_grad() const { return *trainable; }
  /// What init functions take: `init::zeros_(model.parameter("fc1.bias"))`.
  operator TensorRef() const { return TensorRef{span(), spec->dims, spec->rank, generator}; }
  void requires_grad(bool on) const { *trainable = *range_trainable = on; }
};

/// One buffer (BatchNorm's running statistics and counter).
struct BufferRef {
  std::string_view name;
  const TensorSpec* spec = nullptr;
  float* float_values = nullptr;          // for float buffers
  std::int64_t* integer_values = nullptr;  // for counters (num_batches_tracked)

  std::span<const std::size_t> shape() const { return {spec->dims.data(), spec->rank}; }
  std::size_t size() const { return spec->numel(); }
  bool is_integer() const { return integer_values != nullptr; }
  float* data() const { return float_values; }
  std::int64_t* integer_data() const { return integer_values; }
};

/// A range over a compile-time table of specs that makes a Ref per element.
template <class Ref, class Make, std::size_t N>
class SpecRange {
 public:
  SpecRange(const std::array<TensorSpec, N>& specs, Make make) : specs_(&specs), make_(make) {}
  class iterator {
   public:
    using value_type = Ref;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const SpecRange* r, std::size_t i) : range_(r), index_(i) {}
    Ref operator*() const { return range_->make_(index_); }
    iterator& operator++() { ++index_; return *this; }
    iterator operator++(int) { auto t = *this; ++index_; return t; }
    bool operator==(const iterator& o) const { return index_ == o.index_; }
   private:
    const SpecRange* range_ = nullptr;
    std::size_t index_ = 0;
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, N}; }
  std::size_t size() const { return N; }
  Ref operator[](std::size_t i) const { return make_(i); }

 private:
  const std::array<TensorSpec, N>* specs_;
  Make make_;
};

namespace detail {
template <class L>
struct unwrap {
  using type = L;
};
template <fixed_string N, class L>
struct unwrap<NamedLayer<N, L>> : unwrap<L> {};
}  // namespace detail

/// The layer type under any Named wrapper: `is_linear<unwrap_t<L>>`.
template <class L>
using unwrap_t = typename detail::unwrap<L>::type;

/// One module of a model, handed to apply() and named_modules() visitors. `L` is
/// the bound layer type (Named wrappers removed), so a visitor can test it:
///   if constexpr (ctnn::is_linear<typename decltype(m)::layer>) ...
template <class L>
struct ModuleRef {
  using layer = L;
  std::string_view name;  // dotted, "" for the root
  Context context;

  static constexpr std::string_view kind = L::kind;

  /// The parameter called `local` ("weight", "bias") of this module itself;
  /// empty when it has none.
  TensorRef param(std::string_view local) const {
    for (const TensorSpec& s : L::params)
      if (s.name.view() == local)
        return TensorRef{{context.params + s.offset, s.numel()}, s.dims, s.rank, context.generator};
    return {};
  }
  TensorRef buffer(std::string_view local) const {
    for (const TensorSpec& s : L::buffers)
      if (s.name.view() == local && s.storage == Storage::buffer)
        return TensorRef{{context.buffers + s.offset, s.numel()}, s.dims, s.rank, context.generator};
    return {};
  }
  TensorRef weight() const { return param("weight"); }
  TensorRef bias() const { return param("bias"); }
  /// Fan-in and fan-out as PyTorch's init computes them for the weight.
  std::size_t fan_in() const {
    if constexpr (requires { L::in_features; }) return L::in_features; else return 0;
  }
  std::size_t fan_out() const {
    if constexpr (requires { L::out_features; }) return L::out_features; else return 0;
  }
};

namespace detail {

inline std::string join_name(std::string_view prefix, std::string_view label) {
  if (prefix.empty()) return std::string(label);
  std::string s(prefix);
  s += '.';
  s += label;
  return s;
}

/// Visits L and its registered descendants with their dotted names: pre-order
/// (PyTorch's named_modules) or post-order (PyTorch's apply).
template <class L, bool PostOrder, class F>
void visit_modules(F& f, const std::string& name, const Context& c) {
  using U = unwrap_t<L>;
  if constexpr (!PostOrder) f(ModuleRef<U>{name, c});
  [&]<class... Cs>(type_list<Cs...>) {
    [[maybe_unused]] std::size_t i = 0;
    (
        [&] {
          const ChildPlacement& p = L::placements[i++];
          if constexpr (!is_functional_layer<Cs>) {
            visit_modules<Cs, PostOrder>(f, join_name(name, p.label.view()),
                                         c.child(p.param_offset, p.buffer_offset, p.counter_offset, p.tensor_offset));
          }
        }(),
        ...);
  }(typename L::children{});
  if constexpr (PostOrder) f(ModuleRef<U>{name, c});
}

}  // namespace detail
}  // namespace ctnn

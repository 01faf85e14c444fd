// Forward and backward hooks, passed as an argument of the call:
//
//   struct PrintShapes {
//     void forward(const ctnn::ModuleIO& io) { std::cout << io.name << ": " << io.output.rows << " x "
//                                                       << io.output.features << '\n'; }
//   };
//   PrintShapes hooks;
//   auto y = model(x, hooks);          // forward hooks of every module
//   auto dx = model.backward(dy, hooks);  // backward hooks, if the type has backward()
//
// A hook object may define forward(const ModuleIO&), backward(const ModuleIO&)
// or both. They are template arguments, so a call without hooks compiles to
// exactly the code it had before: no flag, no branch, no indirect call.
// Hooks see each registered module after it ran, children before their
// parent, with its dotted name ("" for the root), like PyTorch's
// register_forward_hook / register_full_backward_hook, read-only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include "ctnn/core/children.hpp"
#include "ctnn/core/context.hpp"

namespace ctnn {

/// rows × features floats; data is null for a gradient that was not computed.
struct TensorData {
  const float* data = nullptr;
  std::size_t rows = 0, features = 0;
};

/// Forward: input and output of the module. Backward: input = dLoss/dInput,
/// output = dLoss/dOutput (PyTorch's grad_input and grad_output).
struct ModuleIO {
  std::string_view name;
  std::string_view kind;
  TensorData input, output;
};

/// The hooks of a call without hooks.
struct NoHooks {};

namespace detail {

template <class H>
inline constexpr bool has_hooks = !std::is_same_v<H, NoHooks>;

/// The dotted name of a child, built only when hooks will see it.
template <class H>
std::string child_name(std::string_view parent, std::string_view label) {
  if constexpr (!has_hooks<H>) {
    return {};
  } else {
    if (parent.empty()) return std::string(label);
    std::string s(parent);
    s += '.';
    s += label;
    return s;
  }
}

/// Runs L's forward, and its forward hook when there is one.
template <class L, class H>
void forward_module(const Context& c, const float* x, float* y, std::size_t n, float* ws, H& hooks,
                    std::string_view name) {
  if constexpr (!has_hooks<H>) {
    L::forward(c, x, y, n, ws);
  } else {
    if constexpr (requires { L::forward(c, x, y, n, ws, hooks, name); }) L::forward(c, x, y, n, ws, hooks, name);
    else L::forward(c, x, y, n, ws);
    if constexpr (!is_functional_layer<L> && requires { hooks.forward(ModuleIO{}); })
      hooks.forward(ModuleIO{name, L::kind, {x, n, L::in_features}, {y, n, L::out_features}});
  }
}

/// Runs L's backward, and its backward hook when there is one.
template <class L, class H>
void backward_module(const Context& c, const float* x, const float* y, const float* dy, float* dx, std::size_t n,
                     float* ws, float* scratch, H& hooks, std::string_view name) {
  if constexpr (!has_hooks<H>) {
    L::backward(c, x, y, dy, dx, n, ws, scratch);
  } else {
    if constexpr (requires { L::backward(c, x, y, dy, dx, n, ws, scratch, hooks, name); })
      L::backward(c, x, y, dy, dx, n, ws, scratch, hooks, name);
    else
      L::backward(c, x, y, dy, dx, n, ws, scratch);
    if constexpr (!is_functional_layer<L> && requires { hooks.backward(ModuleIO{}); })
      hooks.backward(ModuleIO{name, L::kind, {dx, n, L::in_features}, {dy, n, L::out_features}});
  }
}

}  // namespace detail
}  // namespace ctnn

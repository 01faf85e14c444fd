// Printing. `std::cout << model` prints the module tree exactly as PyTorch's
// print(model) does for the same structure; a model in evaluation mode adds a
// last line "mode: eval" (training is PyTorch's default and prints nothing
// extra). `summary(model)` is a table of every layer's output shape and
// parameters.
#pragma once

#include <cstddef>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/core/model.hpp"

namespace ctnn {

template <class Net>
std::ostream& operator<<(std::ostream& os, const Model<Net>& model) {
  Model<Net>::layer::print(os, 0);
  if (!model.is_training()) os << "\nmode: eval";
  return os;
}

/// The repr of an architecture type alone: `repr<Net>()`.
template <class Net>
std::string repr() {
  std::ostringstream os;
  bind_t<Net, Net::in_features>::print(os, 0);
  return os.str();
}

namespace detail {
inline std::string human_bytes(std::size_t bytes) {
  std::ostringstream os;
  if (bytes < 1024) os << bytes << " B";
  else if (bytes < 1024 * 1024) os << std::fixed << std::setprecision(1) << bytes / 1024.0 << " KiB";
  else os << std::fixed << std::setprecision(1) << bytes / (1024.0 * 1024.0) << " MiB";
  return os.str();
}
}  // namespace detail

/// One line per module that owns parameters or has no children, with its
/// output shape (per row, batch as -1), parameter count and bytes; then totals
/// and the activation memory per row.
template <class Net>
std::string summary(Model<Net>& model) {
  struct Row {
    std::string name, kind, shape;
    std::size_t params;
  };
  std::vector<Row> rows;
  model.apply([&](auto m) {
    using L = typename decltype(m)::layer;
    if constexpr (L::children::size == 0) {
      std::string shape = "[-1, " + std::to_string(L::out_features) + "]";
      rows.insert(rows.begin(), Row{std::string(m.name), std::string(L::kind), shape, L::num_params});
    }
  });
  // apply() is post-order with children last-to-first after the insert above;
  // restore declaration order.
  std::vector<Row> ordered;
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) ordered.push_back(*it);

  std::size_t name_w = 4, kind_w = 4, shape_w = 12;
  for (const auto& r : ordered) {
    name_w = std::max(name_w, r.name.size());
    kind_w = std::max(kind_w, r.kind.size());
    shape_w = std::max(shape_w, r.shape.size());
  }
  std::ostringstream os;
  os << std::left << std::setw(int(name_w) + 2) << "name" << std::setw(int(kind_w) + 2) << "type"
     << std::setw(int(shape_w) + 2) << "output shape" << std::right << std::setw(10) << "params" << std::setw(12)
     << "bytes" << '\n';
  for (const auto& r : ordered)
    os << std::left << std::setw(int(name_w) + 2) << r.name << std::setw(int(kind_w) + 2) << r.kind
       << std::setw(int(shape_w) + 2) << r.shape << std::right << std::setw(10) << r.params << std::setw(12)
       << detail::human_bytes(r.params * sizeof(float)) << '\n';
  using M = Model<Net>;
  os << "total parameters: " << M::num_params << " (" << detail::human_bytes(M::num_params * sizeof(float))
     << "), buffers: " << M::num_buffers + M::num_counters << '\n';
  os << "activation memory per row (training): "
     << detail::human_bytes(M::layer::workspace_floats * sizeof(float)) << '\n';
  return os.str();
}

}  // namespace ctnn

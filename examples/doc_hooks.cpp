// The examples of docs/hooks.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

using namespace ctnn;

using Net = Sequential<Named<"fc1", Linear<3, 16>>, ReLU,
                       Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                       Named<"head", Linear<16, 1>>>;

// [print_shapes]
// def print_shape(module, inputs, output):
//     print(f"{module.__class__.__name__}: {tuple(inputs[0].shape)} -> {tuple(output.shape)}")
// for m in model.children(): m.register_forward_hook(print_shape)
struct PrintShapes {
  void forward(const ModuleIO& io) {
    const bool child = !io.name.empty() && io.name.find('.') == std::string_view::npos;
    if (!child) return;                  // hooks see every module; keep model.children()
    std::cout << io.name << " " << io.kind << ": (" << io.input.rows << ", " << io.input.features << ") -> ("
              << io.output.rows << ", " << io.output.features << ")\n";
  }
};
// [/print_shapes]

// [capture]
// activations = {}
// def save(name): return lambda m, i, o: activations.__setitem__(name, o.detach().clone())
struct SaveActivations {
  std::map<std::string, std::vector<float>> saved;
  void forward(const ModuleIO& io) {     // io.output.data is valid only during the call: copy it
    if (io.kind == "Linear")
      saved[std::string(io.name)].assign(io.output.data, io.output.data + io.output.rows * io.output.features);
  }
};
// [/capture]

// [grad_norms]
// m.register_full_backward_hook(lambda m, grad_input, grad_output: print(grad_output[0].norm()))
struct GradNorms {
  void backward(const ModuleIO& io) {    // io.output: dLoss/dOutput, io.input: dLoss/dInput
    double sq = 0.0;
    for (std::size_t i = 0; i < io.output.rows * io.output.features; ++i) sq += double(io.output.data[i]) * io.output.data[i];
    std::cout << "'" << io.name << "' |grad_output| = " << std::sqrt(sq)
              << (io.input.data ? "" : "  (no grad_input computed)") << '\n';
  }
};
// [/grad_norms]

int main() {
  bool ok = true;
  Model<Net> model{seed(0)};
  Batch<3> x(5);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1f * float(i) - 0.5f;
  const Batch<1> y(5, {1, 0, -1, 0.5f, 2});

  // [forward_hooks]
  PrintShapes print_shapes;
  auto out = model(x, print_shapes);     // out = model(x), with the hooks above registered
  // [/forward_hooks]

  // [capture_use]
  SaveActivations acts;
  model(x, acts);
  std::cout << "saved: ";
  for (const auto& [name, values] : acts.saved) std::cout << name << " (" << values.size() << " floats) ";
  std::cout << '\n';
  // [/capture_use]
  ok = ok && acts.saved.size() == 3 && acts.saved["head"].size() == 5;

  // [backward_hooks]
  MSELoss loss_fn;
  auto y_hat = model(x);
  Batch<1> dy(y_hat.rows());             // dLoss/dy_hat
  loss_fn.compute(y_hat.data(), y.data(), y_hat.rows(), 1, dy.data());
  model.zero_grad();
  GradNorms grad_norms;
  model.backward_parameters(dy, grad_norms);   // = loss.backward(), with backward hooks
  // [/backward_hooks]

  // [both]
  struct Both {
    int forwards = 0, backwards = 0;
    void forward(const ModuleIO&) { ++forwards; }
    void backward(const ModuleIO&) { ++backwards; }
  } both;
  auto z = model(x, both);
  Batch<3> dx = model.backward(Batch<1>(5, {1, 1, 1, 1, 1}), both);   // dLoss/dInput as well
  std::cout << both.forwards << " forward and " << both.backwards << " backward hook calls\n";
  // [/both]
  (void)z;
  (void)dx;
  (void)out;
  ok = ok && both.forwards == both.backwards;

  // Hooks change nothing: the same output as without them.
  model.eval();
  const Batch<1> plain = model(x);
  SaveActivations quiet;
  const Batch<1> hooked = model(x, quiet);
  for (std::size_t i = 0; i < plain.size(); ++i) ok = ok && plain.data()[i] == hooked.data()[i];

  return ok ? 0 : 1;
}

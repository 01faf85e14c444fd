// The examples of docs/checkpoints.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <ratio>
#include <string>
#include <vector>

using namespace ctnn;

using Net = Sequential<Named<"fc1", Linear<4, 16>>, BatchNorm1d<16>, ReLU, Dropout<std::ratio<1, 10>>,
                       Named<"fc2", Linear<16, 1>>>;

struct Data {
  Batch<4> x{32};
  Batch<1> y{32};
};

/// One epoch: four minibatches of 8 in a fixed order.
void train_epoch(Model<Net>& model, optim::Adam& opt, Data& d) {
  MSELoss loss_fn;
  for (std::size_t start = 0; start < 32; start += 8) {
    opt.zero_grad();
    loss_fn(model(BatchView<4>(d.x.data() + start * 4, 8)), BatchView<1>(d.y.data() + start, 8)).backward();
    opt.step();
  }
}

int main() {
  bool ok = true;
  const auto dir =
      std::filesystem::temp_directory_path() / ("ctnn_doc_checkpoints_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  Data d;
  Generator data{seed(9)};
  for (float& v : d.x) v = data.uniform(-1.0f, 1.0f);
  for (std::size_t r = 0; r < 32; ++r) d.y(r, 0) = d.x(r, 0) * d.x(r, 1) - d.x(r, 2);

  // Ten epochs without stopping, for comparison.
  Model<Net> straight{seed(0)};
  optim::Adam straight_opt(straight, {.lr = 1e-2f});
  for (int epoch = 0; epoch < 10; ++epoch) train_epoch(straight, straight_opt, d);

  // [save]
  Model<Net> model{seed(0)};
  optim::Adam opt(model, {.lr = 1e-2f});
  for (int epoch = 0; epoch < 4; ++epoch) train_epoch(model, opt, d);
  save_checkpoint(dir / "ckpt.safetensors", model, opt, 4);
  // torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 4}, "ckpt.pt")
  // [/save]

  // [layout]
  const SafetensorsFile file = SafetensorsFile::read(dir / "ckpt.safetensors");
  for (const TensorEntry& e : file.entries()) {
    std::cout << e.name << ' ' << dtype_name(e.dtype) << " [";
    for (std::size_t i = 0; i < e.shape.size(); ++i) std::cout << (i ? ", " : "") << e.shape[i];
    std::cout << "]\n";
  }
  for (const auto& [key, value] : file.metadata()) std::cout << key << " = " << value << '\n';
  // [/layout]

  // [resume]
  Model<Net> resumed{seed(123)};                       // any seed: everything is overwritten
  optim::Adam resumed_opt(resumed, {.lr = 1e-2f});     // the same class and options as saved
  const std::int64_t start = load_checkpoint(dir / "ckpt.safetensors", resumed, resumed_opt);
  // ck = torch.load("ckpt.pt"); model.load_state_dict(ck["model"]);
  // opt.load_state_dict(ck["optimizer"]); start = ck["epoch"]
  for (std::int64_t epoch = start; epoch < 10; ++epoch) train_epoch(resumed, resumed_opt, d);
  const bool same = std::ranges::equal(resumed.parameters(), straight.parameters()) &&
                    std::ranges::equal(resumed.buffer_values(), straight.buffer_values());
  std::cout << "resumed after epoch " << start << ", bit for bit the same as ten epochs straight: "
            << std::boolalpha << same << '\n';
  // [/resume]
  ok = ok && same;

  // [strict]
  Model<Net> other{seed(5)};
  const std::vector<float> before(other.parameters().begin(), other.parameters().end());
  optim::SGD sgd(other, {.lr = 0.1f, .momentum = 0.9f});
  try {
    load_checkpoint(dir / "ckpt.safetensors", other, sgd);        // saved by Adam
  } catch (const LoadError& e) {
    std::cout << e.what() << '\n';
  }
  optim::Adam amsgrad(other, {.lr = 1e-2f, .amsgrad = true});
  try {
    load_checkpoint(dir / "ckpt.safetensors", other, amsgrad);    // no max_exp_avg_sq in the file
  } catch (const LoadError& e) {
    std::cout << e.what() << '\n';
  }
  Model<Sequential<Linear<4, 8>, ReLU, Linear<8, 1>>> smaller;
  optim::Adam smaller_opt(smaller, {.lr = 1e-2f});
  try {
    load_checkpoint(dir / "ckpt.safetensors", smaller, smaller_opt);   // another architecture
  } catch (const LoadError& e) {
    std::cout << e.what() << '\n';
  }
  const bool unchanged = std::ranges::equal(other.parameters(), before) && amsgrad.steps() == 0;
  std::cout << "unchanged after failed loads: " << unchanged << '\n';
  // [/strict]
  ok = ok && unchanged;

  // [metadata]
  save_checkpoint(dir / "ckpt.safetensors", model, opt, 4, {{"note", "before the lr drop"}});
  std::cout << SafetensorsFile::read(dir / "ckpt.safetensors").metadata().at("note") << '\n';
  // [/metadata]

  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}

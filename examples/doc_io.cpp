// The examples of docs/io.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "pytorch_reference.hpp"

using namespace ctnn;

using Mlp381 = Sequential<Linear<3, 8>, ReLU, Linear<8, 1>>;

int main() {
  const auto dir = std::filesystem::temp_directory_path() / ("ctnn_doc_io_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  bool ok = true;

  // [save_load]
  Model<Mlp381> model{seed(1)};
  save_safetensors(model, dir / "mlp.safetensors");        // keys "0.weight", "0.bias", "2.weight", "2.bias"
  save_safetensors(model, dir / "mlp.safetensors", {{"epoch", "3"}});   // optional __metadata__

  Model<Mlp381> copy{seed(2)};
  load_safetensors(copy, dir / "mlp.safetensors");        // strict: every key must match
  // [/save_load]
  ok = ok && std::ranges::equal(copy.parameters(), model.parameters());

  // [pytorch]
  // torch:  safetensors.torch.save_file({"param." + k: v for k, v in model.state_dict().items()}, path)
  load_safetensors(model, example::reference_file("mlp_3_8_1"), {.prefix = "param."});
  // [/pytorch]

  // [strict]
  using Wider = Sequential<Linear<3, 16>, ReLU, Linear<16, 1>>;
  Model<Wider> wider;
  const std::vector<float> before(wider.parameters().begin(), wider.parameters().end());
  try {
    load_safetensors(wider, dir / "mlp.safetensors");
  } catch (const LoadError& e) {                           // derives from ctnn::Error, std::runtime_error
    std::cout << e.what() << '\n';                        // every mis-shaped key, in one message
  }
  // all-or-nothing: nothing was loaded
  const bool unchanged = std::ranges::equal(wider.parameters(), before);
  // [/strict]
  std::cout << "unchanged after a failed load: " << std::boolalpha << unchanged << "\n\n";
  ok = ok && unchanged;

  // [non_strict]
  using Longer = Sequential<Linear<3, 8>, ReLU, Linear<8, 1>, Sigmoid, Named<"extra", Linear<1, 1>>>;
  Model<Longer> longer;
  LoadResult r = load_safetensors(longer, dir / "mlp.safetensors", {.strict = false});
  for (const auto& key : r.missing) std::cout << "missing: " << key << '\n';        // extra.weight, extra.bias
  for (const auto& key : r.unexpected) std::cout << "unexpected: " << key << '\n';
  for (const auto& key : r.mismatched) std::cout << "mismatched: " << key << '\n';
  // the keys that fit (0.*, 2.*) were loaded
  // [/non_strict]
  ok = ok && r.missing.size() == 2 && longer.parameter("2.bias").data()[0] == copy.parameter("2.bias").data()[0];

  // [dtypes]
  // A state_dict stored as BF16 (as torch.bfloat16) loads into the float model.
  std::vector<std::uint16_t> bf16;
  for (float v : model.parameters()) bf16.push_back(std::uint16_t(std::bit_cast<std::uint32_t>(v) >> 16));
  std::vector<TensorToWrite> tensors;
  for (auto&& p : model.named_parameters()) {
    std::vector<std::int64_t> shape(p.shape().begin(), p.shape().end());
    tensors.push_back({std::string(p.name), DType::BF16, shape,
                       std::as_bytes(std::span(bf16).subspan(p.offset(), p.size()))});
  }
  write_safetensors(dir / "mlp_bf16.safetensors", tensors);
  load_safetensors(copy, dir / "mlp_bf16.safetensors");   // widened to float exactly
  // [/dtypes]
  std::cout << "\nfrom BF16: " << copy.parameters()[0] << " (F32 " << model.parameters()[0] << ")\n";

  // [bad_file]
  std::filesystem::copy_file(dir / "mlp.safetensors", dir / "broken.safetensors");
  std::filesystem::resize_file(dir / "broken.safetensors", 100);   // truncated
  try {
    load_safetensors(model, dir / "broken.safetensors");
  } catch (const LoadError& e) {
    std::cout << e.what() << '\n';
  }
  // [/bad_file]

  // [print]
  std::cout << model << '\n';                              // as print(model)
  std::cout << repr<Mlp381>() << '\n';                     // the type alone, no model needed
  std::cout << summary(model);                             // per layer: output shape, parameters, bytes
  // [/print]

  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}

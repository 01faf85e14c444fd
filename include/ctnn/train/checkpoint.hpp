// Checkpoints: the model's state_dict, the optimizer's state and the epoch in
// one safetensors file, so a run stopped after epoch k resumes bit for bit.
//
// Layout (documented in docs/checkpoints.md):
//   model.<key>        every parameter and buffer, PyTorch's key names
//   optimizer.<name>   every optimizer state tensor (F32), e.g. optimizer.exp_avg
//   __metadata__       format = "ctnn-checkpoint/1", epoch, optimizer (its repr),
//                      generator (the model's random state, for dropout), mode
//
// Saving is atomic; loading is strict and all-or-nothing: if anything does not
// fit, the model and the optimizer are left exactly as they were.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/core/errors.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/io/state_dict.hpp"
#include "ctnn/train/optim/state.hpp"

namespace ctnn {

inline constexpr const char* checkpoint_format = "ctnn-checkpoint/1";

namespace detail {
inline std::string generator_text(const Generator& g) {
  std::ostringstream os;
  for (int i = 0; i < 4; ++i) os << (i ? " " : "") << g.state_word(i);
  return os.str();
}
inline Generator generator_from_text(const std::string& text, const std::string& source) {
  std::istringstream is(text);
  Generator g;
  for (int i = 0; i < 4; ++i) {
    std::uint64_t w = 0;
    if (!(is >> w))
      throw LoadError("ctnn: checkpoint '" + source + "': metadata 'generator' should be 4 integers, found '" + text +
                      "'");
    g.set_state_word(i, w);
  }
  return g;
}
/// The optimizer's class name, the part of its repr before '('.
inline std::string class_name(const std::string& repr) { return repr.substr(0, repr.find('(')); }
}  // namespace detail

template <class Net, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, Model<Net>& model, const Optimizer& optimizer,
                     std::int64_t epoch, std::map<std::string, std::string> metadata = {}) {
  std::vector<TensorToWrite> tensors = state_dict_tensors(model);
  for (auto& t : tensors) t.name = "model." + t.name;
  const std::vector<optim::NamedState> state = optimizer.state_dict();
  for (const auto& s : state)
    tensors.push_back({"optimizer." + s.name, DType::F32, {static_cast<std::int64_t>(s.values.size())},
                       std::as_bytes(std::span<const float>(s.values))});
  metadata["format"] = checkpoint_format;
  metadata["epoch"] = std::to_string(epoch);
  metadata["optimizer"] = optimizer.repr();
  metadata["generator"] = detail::generator_text(model.generator());
  metadata["mode"] = model.is_training() ? "train" : "eval";
  write_safetensors(path, tensors, metadata);
}

/// Restores model and optimizer from `path` and returns the saved epoch. The
/// optimizer must be of the class that was saved (its options are yours: a
/// resumed run may change the learning rate).
template <class Net, class Optimizer>
std::int64_t load_checkpoint(const std::filesystem::path& path, Model<Net>& model, Optimizer& optimizer) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  const auto& meta = file.metadata();
  auto field = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end())
      throw LoadError("ctnn: '" + file.source() + "' is not a ctnn checkpoint: its metadata has no '" + key + "'");
    return it->second;
  };
  if (field("format") != checkpoint_format)
    throw LoadError("ctnn: checkpoint '" + file.source() + "': expected format '" + checkpoint_format + "', found '" +
                    field("format") + "'");
  const std::string saved_class = detail::class_name(field("optimizer"));
  if (saved_class != detail::class_name(optimizer.repr()))
    throw LoadError("ctnn: checkpoint '" + file.source() + "' holds the state of " + saved_class +
                    ", but the optimizer given is " + detail::class_name(optimizer.repr()));
  std::int64_t epoch = 0;
  try {
    epoch = std::stoll(field("epoch"));
  } catch (const std::logic_error&) {
    throw LoadError("ctnn: checkpoint '" + file.source() + "': metadata 'epoch' is not an integer: '" +
                    field("epoch") + "'");
  }
  const Generator generator = detail::generator_from_text(field("generator"), file.source());
  const std::string& mode = field("mode");

  std::vector<optim::NamedState> state;
  for (const TensorEntry& e : file.entries())
    if (e.name.starts_with("optimizer.")) state.push_back({e.name.substr(10), file.to_f32(e.name)});

  // Model first (all-or-nothing by itself); if the optimizer then refuses its
  // state, the model is put back as it was.
  const Model<Net> before = model;
  load_safetensors(model, path, {.prefix = "model.", .rename = {}, .strict = true});
  try {
    optimizer.load_state_dict(state);
  } catch (...) {
    model = before;
    throw;
  }
  model.generator() = generator;
  model.train(mode == "train");
  return epoch;
}

}  // namespace ctnn

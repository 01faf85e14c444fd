// Model-level state_dict I/O (io/state_dict.hpp): loading the PyTorch
// conformance files into the ctnn types, the prefix and rename options,
// strict errors that list every missing, unexpected and mis-shaped key in one
// message, all-or-nothing loads (also for corrupt files), non-strict loads,
// dtype conversion, save/load round trips with PyTorch's key names, and
// atomic saves.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

// ---- helpers -------------------------------------------------------------------

/// A fresh directory per test, removed afterwards.
class StateDict : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ctnn_state_dict_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  fs::path path(const std::string& name) const { return dir_ / name; }

  /// Names in the test directory that look like a save's temporary file.
  Strings leftovers() const {
    Strings out;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.find(".tmp") != std::string::npos) out.push_back(name);
    }
    return out;
  }

  fs::path dir_;
};

/// Owns the bytes of tensors to write.
struct FileBuilder {
  struct Item {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::vector<Item> items;

  template <class T>
  static std::vector<std::byte> raw(const std::vector<T>& values) {
    std::vector<std::byte> out(values.size() * sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
  }
  FileBuilder& f32(const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& v) {
    items.push_back({name, DType::F32, std::move(shape), raw(v)});
    return *this;
  }
  FileBuilder& f64(const std::string& name, std::vector<std::int64_t> shape, const std::vector<double>& v) {
    items.push_back({name, DType::F64, std::move(shape), raw(v)});
    return *this;
  }
  FileBuilder& i64(const std::string& name, std::vector<std::int64_t> shape, const std::vector<std::int64_t>& v) {
    items.push_back({name, DType::I64, std::move(shape), raw(v)});
    return *this;
  }
  FileBuilder& i32(const std::string& name, std::vector<std::int64_t> shape, const std::vector<std::int32_t>& v) {
    items.push_back({name, DType::I32, std::move(shape), raw(v)});
    return *this;
  }
  FileBuilder& u16(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                   const std::vector<std::uint16_t>& v) {
    items.push_back({name, dtype, std::move(shape), raw(v)});
    return *this;
  }
  void write(const fs::path& p, const std::map<std::string, std::string>& metadata = {}) const {
    std::vector<TensorToWrite> tensors;
    for (const Item& i : items) tensors.push_back({i.name, i.dtype, i.shape, i.bytes});
    write_safetensors(p, tensors, metadata);
  }
};

std::vector<float> snapshot(auto& model) { return {model.parameters().begin(), model.parameters().end()}; }

/// Bit-identical, so that -0.0 / NaN differences would show.
::testing::AssertionResult same_bits(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

std::vector<std::int64_t> shape_of(const ParamRef& p) {
  std::vector<std::int64_t> s;
  for (std::size_t d : p.shape()) s.push_back(static_cast<std::int64_t>(d));
  return s;
}

std::vector<float> iota_values(std::size_t n, float scale, float shift = 0.0f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * float(i) + shift;
  return v;
}

// The net of most tests: odd widths, a bias-free layer.
//   0.weight [13,5] 0.bias [13] 2.weight [37,13] 2.bias [37] 3.weight [7,37]
using Odd = Sequential<Linear<5, 13>, ReLU, Linear<13, 37>, Linear<37, 7, false>>;

/// A file holding exactly Odd's state_dict with recognisable values.
FileBuilder odd_file() {
  FileBuilder b;
  b.f32("0.weight", {13, 5}, iota_values(65, 0.01f))
      .f32("0.bias", {13}, iota_values(13, -0.5f))
      .f32("2.weight", {37, 13}, iota_values(481, 0.001f, -0.2f))
      .f32("2.bias", {37}, iota_values(37, 0.25f))
      .f32("3.weight", {7, 37}, iota_values(259, -0.003f));
  return b;
}

// ---- the conformance files --------------------------------------------------------

/// Loads `case_name` strictly and checks every parameter against its param.* tensor.
/// `to_file` maps a model-key prefix back to the file's (the inverse of a rename).
template <class Net>
void expect_case_loads(const std::string& case_name, const LoadOptions& options,
                       const std::vector<std::pair<std::string, std::string>>& to_file = {}) {
  SCOPED_TRACE(case_name);
  const Case c(case_name);
  Model<Net> model{seed(1234)};
  LoadResult result;
  ASSERT_NO_THROW(result = load_safetensors(model, c.path(), options));
  EXPECT_TRUE(result.ok());
  EXPECT_TRUE(result.missing.empty() && result.unexpected.empty() && result.mismatched.empty());
  std::size_t checked = 0;
  for (auto&& p : model.named_parameters()) {
    std::string key(p.name);
    for (const auto& [model_prefix, file_prefix] : to_file)
      if (key.starts_with(model_prefix)) {
        key = file_prefix + key.substr(model_prefix.size());
        break;
      }
    const auto ref = c.f32("param." + key);
    EXPECT_TRUE(same_bits(p.span(), ref)) << p.name;
    // ... and at its place in the flat buffer.
    EXPECT_EQ(std::bit_cast<std::uint32_t>(model.parameters()[p.offset() + ref.size() - 1]),
              std::bit_cast<std::uint32_t>(ref.back()))
        << p.name;
    checked += p.size();
  }
  EXPECT_EQ(checked, Model<Net>::num_params);
}

TEST(StateDictConformance, EveryModelCaseLoadsStrictly) {
  expect_case_loads<TinyLinear>("tiny_linear", conformance_options());
  expect_case_loads<Mlp381>("mlp_3_8_1", conformance_options());
  expect_case_loads<SeedResidualMlp>("seed_residual_mlp", seed_residual_options(), {{"2.fc2.", "fc2."}});
  expect_case_loads<SimpleNet>("simplenet", conformance_options());
  expect_case_loads<SineNet>("sinenet", conformance_options());
  expect_case_loads<MnistMlp>("mnist_mlp", conformance_options());
  expect_case_loads<ResBlocks>("resblocks", conformance_options());
  expect_case_loads<Autoencoder>("autoencoder", conformance_options());
  expect_case_loads<DynamicMlp>("dynamic_mlp", conformance_options());
  expect_case_loads<MultiTask>("multitask", conformance_options());
}

TEST(StateDictConformance, SpotValuesLandWhereExpected) {
  {
    const Case c("mlp_3_8_1");
    Model<Mlp381> m;
    load_safetensors(m, c.path(), {.prefix = "param."});
    // 0.weight [8,3] at 0, 0.bias [8] at 24, 2.weight [1,8] at 32, 2.bias [1] at 40.
    EXPECT_EQ(m.parameters()[3 * 2 + 1], c.f32("param.0.weight")[7]);  // row 2, column 1
    EXPECT_EQ(m.parameters()[24 + 5], c.f32("param.0.bias")[5]);
    EXPECT_EQ(m.parameters()[32 + 7], c.f32("param.2.weight")[7]);
    EXPECT_EQ(m.parameters()[40], c.f32("param.2.bias")[0]);
  }
  {
    const Case c("multitask");
    Model<MultiTask> m;
    load_safetensors(m, c.path(), {.prefix = "param."});
    EXPECT_EQ(m.parameter("heads.regress.bias").data()[0], c.f32("param.heads.regress.bias")[0]);
    EXPECT_EQ(m.parameters()[906], c.f32("param.heads.regress.bias")[0]);
    EXPECT_EQ(m.parameters()[544 + 32 * 9 + 31], c.f32("param.heads.classify.weight")[32 * 9 + 31]);
  }
  {
    const Case c("resblocks");
    Model<ResBlocks> m;
    load_safetensors(m, c.path(), {.prefix = "param."});
    EXPECT_EQ(m.parameter("3.block.2.bias").data()[127], c.f32("param.3.block.2.bias")[127]);
    EXPECT_EQ(m.parameters().back(), c.f32("param.3.block.2.bias")[127]);
    EXPECT_EQ(m.parameter("1.block.0.weight").data()[129], c.f32("param.1.block.0.weight")[129]);
  }
}

TEST(StateDictConformance, SeedResidualWithoutRenameListsAllProblemsInOneError) {
  const Case c("seed_residual_mlp");
  Model<SeedResidualMlp> model{seed(5)};
  const auto before = snapshot(model);
  try {
    load_safetensors(model, c.path(), {.prefix = "param."});
    ADD_FAILURE() << "no exception";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    const auto missing = what.find("missing");
    const auto unexpected = what.find("unexpected");
    ASSERT_NE(missing, std::string::npos) << what;
    ASSERT_NE(unexpected, std::string::npos) << what;
    EXPECT_LT(missing, unexpected) << what;
    // missing: 2.fc2.weight, 2.fc2.bias (between "missing" and "unexpected")
    const std::string missing_part = what.substr(missing, unexpected - missing);
    const std::string unexpected_part = what.substr(unexpected);
    EXPECT_NE(missing_part.find("2.fc2.weight"), std::string::npos) << what;
    EXPECT_NE(missing_part.find("2.fc2.bias"), std::string::npos) << what;
    EXPECT_NE(unexpected_part.find("fc2.weight"), std::string::npos) << what;
    EXPECT_NE(unexpected_part.find("fc2.bias"), std::string::npos) << what;
    EXPECT_EQ(unexpected_part.find("2.fc2"), std::string::npos) << what;
    // The keys that did fit are not reported.
    EXPECT_EQ(what.find("fc1.weight"), std::string::npos) << what;
    EXPECT_EQ(what.find("head.bias"), std::string::npos) << what;
  }
  EXPECT_TRUE(same_bits(snapshot(model), before));
}

// The contract's two calls: a prefixed file, and a plain PyTorch state_dict
// with a rename.
TEST_F(StateDict, ContractSnippetCalls) {
  const Case c("seed_residual_mlp");
  Model<SeedResidualMlp> model;
  FileBuilder torch;
  for (const auto& e : c.file().entries())
    if (e.name.starts_with("param.")) torch.f32(e.name.substr(6), e.shape, c.f32(e.name));
  torch.write(path("torch.safetensors"));
  load_safetensors(model, path("torch.safetensors"), {.rename = {{"fc2.", "2.fc2."}}});
  EXPECT_TRUE(same_bits(model.parameter("2.fc2.weight").span(), c.f32("param.fc2.weight")));
  EXPECT_TRUE(same_bits(model.parameter("fc1.bias").span(), c.f32("param.fc1.bias")));

  Model<SeedResidualMlp> other{seed(3)};
  save_safetensors(other, path("w.safetensors"));
  load_safetensors(model, path("w.safetensors"));
  EXPECT_TRUE(same_bits(snapshot(model), snapshot(other)));
}

TEST_F(StateDict, RenameFirstMatchingPairWins) {
  FileBuilder b;
  b.f32("a.weight", {13, 5}, iota_values(65, 1))
      .f32("a.bias", {13}, iota_values(13, 2))
      .f32("b.weight", {37, 13}, iota_values(481, 3))
      .f32("b.bias", {37}, iota_values(37, 4))
      .f32("c.weight", {7, 37}, iota_values(259, 5));
  b.write(path("r.safetensors"));
  Model<Odd> m;
  load_safetensors(m, path("r.safetensors"),
                   {.rename = {{"a.", "0."}, {"b.", "2."}, {"c.", "3."}, {"a.", "nowhere."}}});
  EXPECT_EQ(m.parameter("0.bias").data()[1], 2.0f);
  EXPECT_EQ(m.parameter("2.bias").data()[1], 4.0f);
  EXPECT_EQ(m.parameter("3.weight").data()[1], 5.0f);
}

TEST_F(StateDict, TwoFileKeysForOneModelKeyAreReported) {
  FileBuilder b = odd_file();
  b.f32("layer0.bias", {13}, iota_values(13, 9.0f));  // renamed onto 0.bias as well
  b.write(path("dup.safetensors"));
  Model<Odd> model{seed(2)};
  const auto before = snapshot(model);
  try {
    load_safetensors(model, path("dup.safetensors"), {.rename = {{"layer0.", "0."}}});
    ADD_FAILURE() << "no exception";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("0.bias"), std::string::npos) << what;
    EXPECT_NE(what.find("layer0.bias"), std::string::npos) << what;
  }
  EXPECT_TRUE(same_bits(snapshot(model), before));
}

// ---- strict errors and all-or-nothing ----------------------------------------------

TEST_F(StateDict, StrictListsMissingUnexpectedAndMisShapedInOneMessage) {
  FileBuilder b;
  b.f32("0.weight", {5, 13}, iota_values(65, 0.01f))   // transposed shape
      .f32("0.bias", {13, 1}, iota_values(13, 0.1f))   // extra dimension
      .f32("2.weight", {37, 13}, iota_values(481, 0.1f))
      // 2.bias missing
      .f32("3.weight", {7, 37}, iota_values(259, 0.1f))
      .f32("3.bias", {7}, iota_values(7, 0.1f))  // unexpected: the layer has no bias
      .f32("extra.thing", {2}, {1.0f, 2.0f});
  b.write(path("bad.safetensors"));

  Model<Odd> model{seed(7)};
  const auto before = snapshot(model);
  try {
    load_safetensors(model, path("bad.safetensors"));
    ADD_FAILURE() << "no exception";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    SCOPED_TRACE(what);
    const auto missing = what.find("missing");
    const auto unexpected = what.find("unexpected");
    const auto mismatched = what.find("mismatched");
    ASSERT_NE(missing, std::string::npos);
    ASSERT_NE(unexpected, std::string::npos);
    ASSERT_NE(mismatched, std::string::npos);
    EXPECT_NE(what.find("2.bias"), std::string::npos);
    EXPECT_NE(what.find("3.bias"), std::string::npos);
    EXPECT_NE(what.find("extra.thing"), std::string::npos);
    // Each mis-shaped key with the expected and the found shape.
    EXPECT_NE(what.find("0.weight: expected shape [13, 5], found [5, 13]"), std::string::npos);
    EXPECT_NE(what.find("0.bias: expected shape [13], found [13, 1]"), std::string::npos);
    // The keys that fit are not listed.
    EXPECT_EQ(what.find("2.weight"), std::string::npos);
    EXPECT_EQ(what.find("3.weight"), std::string::npos);
    EXPECT_NE(what.find("bad.safetensors"), std::string::npos);  // which file
  }
  // All or nothing: even 2.weight and 3.weight, which fit, were not loaded.
  EXPECT_TRUE(same_bits(snapshot(model), before));
}

TEST_F(StateDict, OneBadKeyLoadsNothing) {
  FileBuilder b = odd_file();
  b.items[4].shape = {37, 7};  // 3.weight transposed, same element count
  b.write(path("almost.safetensors"));
  Model<Odd> model{seed(8)};
  const auto before = snapshot(model);
  EXPECT_THROW(load_safetensors(model, path("almost.safetensors")), LoadError);
  EXPECT_TRUE(same_bits(snapshot(model), before));
  // A load error is a std::exception, as the contract says.
  EXPECT_THROW(load_safetensors(model, path("almost.safetensors")), std::exception);
}

TEST_F(StateDict, CorruptFilesLeaveTheModelUnchanged) {
  odd_file().write(path("good.safetensors"));
  const auto good_size = fs::file_size(path("good.safetensors"));
  Model<Odd> model{seed(9)};
  const auto before = snapshot(model);

  // Truncated: the data section ends early.
  fs::copy_file(path("good.safetensors"), path("truncated.safetensors"));
  fs::resize_file(path("truncated.safetensors"), good_size - 10);
  EXPECT_THROW(load_safetensors(model, path("truncated.safetensors")), LoadError);
  EXPECT_TRUE(same_bits(snapshot(model), before));

  // Truncated inside the header.
  fs::copy_file(path("good.safetensors"), path("short.safetensors"));
  fs::resize_file(path("short.safetensors"), 40);
  EXPECT_THROW(load_safetensors(model, path("short.safetensors")), LoadError);
  EXPECT_TRUE(same_bits(snapshot(model), before));

  // Shorter than the length prefix.
  {
    std::ofstream(path("tiny.safetensors"), std::ios::binary) << "abc";
  }
  EXPECT_THROW(load_safetensors(model, path("tiny.safetensors")), LoadError);

  // Bad JSON with a correct length prefix.
  {
    const std::string header = "{\"0.weight\": {\"dtype\": \"F32\", \"shape\": [13, 5], oops";
    std::string bytes(8, '\0');
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    std::ofstream(path("json.safetensors"), std::ios::binary) << bytes << header;
  }
  try {
    load_safetensors(model, path("json.safetensors"));
    ADD_FAILURE() << "no exception";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("JSON"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(same_bits(snapshot(model), before));

  // No such file, a directory.
  EXPECT_THROW(load_safetensors(model, path("absent.safetensors")), LoadError);
  EXPECT_THROW(load_safetensors(model, dir_), LoadError);
  EXPECT_TRUE(same_bits(snapshot(model), before));

  // The good file still loads.
  EXPECT_NO_THROW(load_safetensors(model, path("good.safetensors")));
  EXPECT_EQ(model.parameter("2.bias").data()[3], 0.75f);
}

// ---- non-strict ---------------------------------------------------------------------

TEST_F(StateDict, NonStrictReturnsTheListsAndLoadsWhatFits) {
  FileBuilder b;
  b.f32("0.weight", {5, 13}, iota_values(65, 0.01f))  // mis-shaped
      .f32("0.bias", {13}, iota_values(13, 0.5f))
      .f32("2.weight", {37, 13}, iota_values(481, 0.25f))
      .f32("3.weight", {7, 37}, iota_values(259, -1.0f))
      .f32("3.bias", {7}, iota_values(7, 0.1f));
  b.write(path("partial.safetensors"));
  Model<Odd> model{seed(10)};
  const auto before = snapshot(model);
  LoadResult r;
  ASSERT_NO_THROW(r = load_safetensors(model, path("partial.safetensors"), {.strict = false}));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.missing, Strings{"2.bias"});
  EXPECT_EQ(r.unexpected, Strings{"3.bias"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_NE(r.mismatched[0].find("0.weight"), std::string::npos) << r.mismatched[0];
  EXPECT_NE(r.mismatched[0].find("[13, 5]"), std::string::npos) << r.mismatched[0];
  EXPECT_NE(r.mismatched[0].find("[5, 13]"), std::string::npos) << r.mismatched[0];

  // Loaded: the keys that fit.
  EXPECT_TRUE(same_bits(model.parameter("0.bias").span(), iota_values(13, 0.5f)));
  EXPECT_TRUE(same_bits(model.parameter("2.weight").span(), iota_values(481, 0.25f)));
  EXPECT_TRUE(same_bits(model.parameter("3.weight").span(), iota_values(259, -1.0f)));
  // Untouched: the mis-shaped and the missing ones.
  EXPECT_TRUE(same_bits(model.parameter("0.weight").span(), std::span<const float>(before).subspan(0, 65)));
  EXPECT_TRUE(same_bits(model.parameter("2.bias").span(), std::span<const float>(before).subspan(78 + 481, 37)));

  // A clean non-strict load reports nothing.
  odd_file().write(path("good.safetensors"));
  const LoadResult clean = load_safetensors(model, path("good.safetensors"), {.strict = false});
  EXPECT_TRUE(clean.ok());
}

TEST_F(StateDict, NonStrictStillRejectsCorruptFiles) {
  odd_file().write(path("good.safetensors"));
  fs::resize_file(path("good.safetensors"), fs::file_size(path("good.safetensors")) - 4);
  Model<Odd> model{seed(11)};
  const auto before = snapshot(model);
  EXPECT_THROW(load_safetensors(model, path("good.safetensors"), {.strict = false}), LoadError);
  EXPECT_TRUE(same_bits(snapshot(model), before));
}

// ---- dtypes -------------------------------------------------------------------------

// binary16 bits of a value that binary16 holds exactly (normal numbers only).
std::uint16_t f16_bits(float v) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(v);
  if ((b & 0x7FFFFFFFu) == 0) return static_cast<std::uint16_t>(b >> 16);
  const std::uint32_t sign = (b >> 16) & 0x8000u;
  const std::uint32_t exponent = ((b >> 23) & 0xFFu) - 127 + 15;
  const std::uint32_t mantissa = (b >> 13) & 0x3FFu;
  return static_cast<std::uint16_t>(sign | (exponent << 10) | mantissa);
}
std::uint16_t bf16_bits(float v) { return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(v) >> 16); }

using Small = Linear<3, 2>;  // weight [2,3], bias [2]

TEST_F(StateDict, HalfBFloatAndDoubleFilesConvertOnLoad) {
  const std::vector<float> w{0.5f, -1.25f, 2.0f, 0.0f, -0.375f, 1024.0f};
  const std::vector<float> bias{3.0f, -0.0625f};
  std::vector<std::uint16_t> wh, bh, wb, bb;
  for (float v : w) wh.push_back(f16_bits(v)), wb.push_back(bf16_bits(v));
  for (float v : bias) bh.push_back(f16_bits(v)), bb.push_back(bf16_bits(v));
  FileBuilder half, brain, dbl;
  half.u16("weight", DType::F16, {2, 3}, wh).u16("bias", DType::F16, {2}, bh);
  brain.u16("weight", DType::BF16, {2, 3}, wb).u16("bias", DType::BF16, {2}, bb);
  const std::vector<double> wd{0.1, -1.0 / 3.0, 2.5, 1e-3, -7.0, 1e10};
  dbl.f64("weight", {2, 3}, wd).f64("bias", {2}, {0.2, -0.7});
  half.write(path("f16.safetensors"));
  brain.write(path("bf16.safetensors"));
  dbl.write(path("f64.safetensors"));

  Model<Small> m;
  load_safetensors(m, path("f16.safetensors"));
  EXPECT_TRUE(same_bits(m.parameter("weight").span(), w));
  EXPECT_TRUE(same_bits(m.parameter("bias").span(), bias));

  Model<Small> n{seed(1)};
  load_safetensors(n, path("bf16.safetensors"));
  EXPECT_TRUE(same_bits(n.parameter("weight").span(), w));
  EXPECT_TRUE(same_bits(n.parameter("bias").span(), bias));

  Model<Small> o{seed(2)};
  load_safetensors(o, path("f64.safetensors"));
  std::vector<float> wf;
  for (double v : wd) wf.push_back(static_cast<float>(v));  // rounded to nearest
  EXPECT_TRUE(same_bits(o.parameter("weight").span(), wf));
  EXPECT_EQ(o.parameter("bias").data()[0], 0.2f);
  EXPECT_EQ(o.parameter("bias").data()[1], -0.7f);
}

TEST_F(StateDict, IntegerTensorForAFloatParameterIsAMismatch) {
  FileBuilder b;
  b.i64("weight", {2, 3}, {1, 2, 3, 4, 5, 6}).f32("bias", {2}, {0.5f, 0.25f});
  b.write(path("i64.safetensors"));
  Model<Small> m{seed(3)};
  const auto before = snapshot(m);
  try {
    load_safetensors(m, path("i64.safetensors"));
    ADD_FAILURE() << "no exception";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("weight"), std::string::npos) << what;
    EXPECT_NE(what.find("I64"), std::string::npos) << what;
    EXPECT_NE(what.find("F32"), std::string::npos) << what;  // what was expected
    EXPECT_EQ(what.find("bias"), std::string::npos) << what;
  }
  EXPECT_TRUE(same_bits(snapshot(m), before));

  const LoadResult r = load_safetensors(m, path("i64.safetensors"), {.strict = false});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_NE(r.mismatched[0].find("I64"), std::string::npos);
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty());
  EXPECT_EQ(m.parameter("bias").data()[0], 0.5f);
  EXPECT_TRUE(same_bits(m.parameter("weight").span(), std::span<const float>(before).subspan(0, 6)));

  FileBuilder c;
  c.i32("weight", {2, 3}, {1, 2, 3, 4, 5, 6}).f32("bias", {2}, {0.5f, 0.25f});
  c.write(path("i32.safetensors"));
  EXPECT_THROW(load_safetensors(m, path("i32.safetensors")), LoadError);
}

// ---- prefix -------------------------------------------------------------------------

TEST_F(StateDict, PrefixStripsAndIgnoresKeysWithoutIt) {
  FileBuilder b;
  b.f32("param.weight", {2, 3}, iota_values(6, 1.0f))
      .f32("param.bias", {2}, {7.0f, 8.0f})
      .f32("weight", {2, 3}, iota_values(6, -1.0f))  // not under the prefix: ignored
      .f32("grad.weight", {2, 3}, iota_values(6, 5.0f))
      .f32("output", {4, 2}, iota_values(8, 1.0f))
      .f32("param_bias", {9}, iota_values(9, 1.0f));
  b.write(path("prefixed.safetensors"));
  Model<Small> m;
  LoadResult r;
  ASSERT_NO_THROW(r = load_safetensors(m, path("prefixed.safetensors"), {.prefix = "param."}));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(same_bits(m.parameter("weight").span(), iota_values(6, 1.0f)));
  EXPECT_EQ(m.parameter("bias").data()[1], 8.0f);

  // Without the prefix the other keys are unexpected (strict).
  Model<Small> n;
  EXPECT_THROW(load_safetensors(n, path("prefixed.safetensors")), LoadError);
  const LoadResult loose = load_safetensors(n, path("prefixed.safetensors"), {.strict = false});
  EXPECT_EQ(loose.missing, Strings{"bias"});
  EXPECT_EQ(loose.unexpected.size(), 5u);
  EXPECT_TRUE(same_bits(n.parameter("weight").span(), iota_values(6, -1.0f)));
}

// ---- save -------------------------------------------------------------------------

TEST_F(StateDict, SaveThenLoadIsBitIdentical) {
  Model<SeedResidualMlp> a{seed(21)};
  a.parameters()[0] = -0.0f;
  a.parameters()[1] = 1e-40f;  // subnormal
  save_safetensors(a, path("a.safetensors"));
  Model<SeedResidualMlp> b{seed(22)};
  load_safetensors(b, path("a.safetensors"));
  EXPECT_TRUE(same_bits(snapshot(b), snapshot(a)));

  Model<MnistMlp> big{seed(1)};
  save_safetensors(big, path("big.safetensors"));
  Model<MnistMlp> big2{seed(2)};
  load_safetensors(big2, path("big.safetensors"));
  EXPECT_TRUE(same_bits(snapshot(big2), snapshot(big)));

  // Saving over an existing file replaces it.
  save_safetensors(big2, path("a.safetensors"));
  EXPECT_THROW(load_safetensors(b, path("a.safetensors")), LoadError);  // another net's keys
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(StateDict, SaveWritesPyTorchKeysShapesAndF32) {
  Model<SeedResidualMlp> m{seed(4)};
  save_safetensors(m, path("m.safetensors"), {{"format", "pt"}});
  const SafetensorsFile f = SafetensorsFile::read(path("m.safetensors"));
  Strings names;
  for (const auto& e : f.entries()) names.push_back(e.name);
  EXPECT_EQ(names, (Strings{"fc1.weight", "fc1.bias", "2.fc2.weight", "2.fc2.bias", "head.weight", "head.bias"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (auto&& p : m.named_parameters()) {
    const TensorEntry& e = f.entry(p.name);
    EXPECT_EQ(e.dtype, DType::F32) << p.name;
    EXPECT_EQ(e.shape, shape_of(p)) << p.name;
    EXPECT_TRUE(same_bits(f.to_f32(p.name), p.span())) << p.name;
  }
  // The conformance names for the nets whose structure matches PyTorch's.
  Model<ResBlocks> rb;
  save_safetensors(rb, path("rb.safetensors"));
  const Case c("resblocks");
  const SafetensorsFile g = SafetensorsFile::read(path("rb.safetensors"));
  Strings saved, reference;
  for (const auto& e : g.entries()) saved.push_back(e.name);
  for (const auto& e : c.file().entries())
    if (e.name.starts_with("param.")) reference.push_back(e.name.substr(6));
  EXPECT_EQ(saved, reference);

  Model<MultiTask> mt;
  save_safetensors(mt, path("mt.safetensors"));
  Strings mt_names;
  const SafetensorsFile h = SafetensorsFile::read(path("mt.safetensors"));
  for (const auto& e : h.entries()) mt_names.push_back(e.name);
  EXPECT_EQ(mt_names, (Strings{"shared.weight", "shared.bias", "heads.classify.weight", "heads.classify.bias",
                               "heads.regress.weight", "heads.regress.bias"}));
}

TEST_F(StateDict, SaveIntoAMissingDirectoryThrows) {
  Model<Odd> m;
  const fs::path target = path("no_such_dir") / "m.safetensors";
  try {
    save_safetensors(m, target);
    ADD_FAILURE() << "no exception";
  } catch (const SaveError& e) {
    EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("no_such_dir")));
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(StateDict, FailedSaveOverADirectoryLeavesItAlone) {
  fs::create_directories(path("dest.safetensors"));
  { std::ofstream(path("dest.safetensors") / "inside.txt") << "keep"; }
  Model<Odd> m;
  EXPECT_THROW(save_safetensors(m, path("dest.safetensors")), SaveError);
  EXPECT_TRUE(fs::is_directory(path("dest.safetensors")));
  EXPECT_TRUE(fs::exists(path("dest.safetensors") / "inside.txt"));
  EXPECT_TRUE(leftovers().empty()) << leftovers().front();
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A write that fails half way (the file-size limit is hit, as a full disk
// would be): the existing destination keeps its old contents and the temporary
// file is removed. Works for root too, unlike a read-only directory.
TEST_F(StateDict, FailedWriteLeavesTheExistingFileUntouched) {
  Model<Odd> small{seed(1)};
  save_safetensors(small, path("model.safetensors"));
  const std::string old_contents = read_all(path("model.safetensors"));
  ASSERT_LT(old_contents.size(), 16384u);

  Model<MnistMlp> big{seed(2)};  // ~940 KB
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 65536;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  bool threw_save_error = false;
  try {
    save_safetensors(big, path("model.safetensors"));
  } catch (const SaveError&) {
    threw_save_error = true;
  } catch (...) {
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &previous, nullptr);

  EXPECT_TRUE(threw_save_error);
  EXPECT_EQ(read_all(path("model.safetensors")), old_contents);
  EXPECT_TRUE(leftovers().empty()) << leftovers().front();
  Model<Odd> check{seed(5)};
  load_safetensors(check, path("model.safetensors"));
  EXPECT_TRUE(same_bits(snapshot(check), snapshot(small)));
}

TEST_F(StateDict, FailedSaveInAReadOnlyDirectoryLeavesTheFileUntouched) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  Model<Odd> small{seed(1)};
  fs::create_directories(path("ro"));
  save_safetensors(small, path("ro") / "m.safetensors");
  const std::string old_contents = read_all(path("ro") / "m.safetensors");
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  Model<Odd> other{seed(2)};
  EXPECT_THROW(save_safetensors(other, path("ro") / "m.safetensors"), SaveError);
  fs::permissions(path("ro"), fs::perms::owner_all);
  EXPECT_EQ(read_all(path("ro") / "m.safetensors"), old_contents);
  EXPECT_TRUE(leftovers().empty());
}

// A file name near the file system's limit (255 bytes) is a valid destination;
// the temporary sibling's name must not push past the limit. If the save does
// fail, the existing file must at least be untouched.
TEST_F(StateDict, SaveToALongFileName) {
  const std::string name = std::string(240, 'm') + ".safetensors";  // 252 bytes
  { std::ofstream(path(name), std::ios::binary) << "old"; }
  Model<Odd> m{seed(3)};
  try {
    save_safetensors(m, path(name));
  } catch (const SaveError& e) {
    ADD_FAILURE() << "saving to a valid 252-byte file name failed: " << e.what();
    EXPECT_EQ(read_all(path(name)), "old");
    EXPECT_TRUE(leftovers().empty());
    return;
  }
  Model<Odd> back{seed(4)};
  load_safetensors(back, path(name));
  EXPECT_TRUE(same_bits(snapshot(back), snapshot(m)));
}

}  // namespace
}  // namespace ctnn::test

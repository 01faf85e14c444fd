// The safetensors format: reading the conformance files, writing and reading
// back, dtype conversions, atomic writes, and one test per kind of bad file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ctnn/io/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using ctnn::DType;
using ctnn::LoadError;
using ctnn::SafetensorsFile;
using ctnn::SaveError;

const fs::path test_data_dir = CTNN_TEST_DATA;
constexpr const char* bad_file_name = "bad.safetensors";

// ---------------------------------------------------------------- helpers --

template <class Unsigned>
void append_little_endian(std::vector<std::byte>& bytes, Unsigned value) {
  for (std::size_t i = 0; i < sizeof(Unsigned); ++i) {
    bytes.push_back(static_cast<std::byte>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFFu));
  }
}

std::vector<std::byte> f32_bytes(std::initializer_list<float> values) {
  std::vector<std::byte> bytes;
  for (const float value : values) append_little_endian(bytes, std::bit_cast<std::uint32_t>(value));
  return bytes;
}

std::vector<std::byte> f64_bytes(std::initializer_list<double> values) {
  std::vector<std::byte> bytes;
  for (const double value : values)
    append_little_endian(bytes, std::bit_cast<std::uint64_t>(value));
  return bytes;
}

std::vector<std::byte> i64_bytes(std::initializer_list<std::int64_t> values) {
  std::vector<std::byte> bytes;
  for (const std::int64_t value : values)
    append_little_endian(bytes, static_cast<std::uint64_t>(value));
  return bytes;
}

std::vector<std::byte> u16_bytes(std::initializer_list<std::uint16_t> values) {
  std::vector<std::byte> bytes;
  for (const std::uint16_t value : values) append_little_endian(bytes, value);
  return bytes;
}

std::vector<std::byte> u8_bytes(std::initializer_list<unsigned> values) {
  std::vector<std::byte> bytes;
  for (const unsigned value : values) bytes.push_back(static_cast<std::byte>(value));
  return bytes;
}

// A file from a header string and a data section. The length prefix is the
// header's size unless `declared_length` overrides it (to build bad files).
std::vector<std::byte> make_file(std::string_view header, const std::vector<std::byte>& data = {},
                                 std::optional<std::uint64_t> declared_length = std::nullopt) {
  std::vector<std::byte> bytes;
  append_little_endian(bytes, declared_length.value_or(header.size()));
  for (const char c : header) bytes.push_back(static_cast<std::byte>(c));
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

SafetensorsFile parse_file(std::string_view header, const std::vector<std::byte>& data = {}) {
  return SafetensorsFile::parse(make_file(header, data), bad_file_name);
}

// Parsing must throw LoadError whose message names the file and contains every key word.
void expect_load_error(const std::vector<std::byte>& bytes,
                       std::initializer_list<std::string_view> key_words) {
  try {
    SafetensorsFile::parse(bytes, bad_file_name);
    ADD_FAILURE() << "expected LoadError, nothing was thrown";
  } catch (const LoadError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(bad_file_name), std::string::npos) << message;
    for (const std::string_view word : key_words) {
      EXPECT_NE(message.find(word), std::string::npos)
          << "missing \"" << word << "\" in: " << message;
    }
  }
}

void expect_load_error(std::string_view header, const std::vector<std::byte>& data,
                       std::initializer_list<std::string_view> key_words) {
  expect_load_error(make_file(header, data), key_words);
}

template <class Action>
void expect_error_containing(Action action, std::initializer_list<std::string_view> key_words) {
  try {
    action();
    ADD_FAILURE() << "expected an exception, nothing was thrown";
  } catch (const ctnn::Error& error) {
    const std::string message = error.what();
    for (const std::string_view word : key_words) {
      EXPECT_NE(message.find(word), std::string::npos)
          << "missing \"" << word << "\" in: " << message;
    }
  }
}

std::vector<std::byte> read_raw(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(stream)), {});
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::vector<std::string> directory_listing(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(directory))
    names.push_back(item.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh directory per test, removed afterwards.
class SafetensorsWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = fs::temp_directory_path() /
                 ("ctnn_test_safetensors_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  fs::path directory_;
};

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& values) {
  return std::as_bytes(std::span<const T>(values));
}

// ------------------------------------------------------ conformance files --

TEST(SafetensorsConformance, ReadsEveryFile) {
  std::size_t files = 0;
  for (const auto& item : fs::directory_iterator(test_data_dir)) {
    if (item.path().extension() != ".safetensors") continue;
    ++files;
    SCOPED_TRACE(item.path().string());
    const SafetensorsFile file = SafetensorsFile::read(item.path());
    EXPECT_EQ(file.source(), item.path().string());
    ASSERT_TRUE(file.metadata().contains("case"));
    EXPECT_EQ(file.metadata().at("case"), item.path().stem().string());
    ASSERT_FALSE(file.entries().empty());

    // CONFORMANCE.md: tensors are back to back and fill the data section.
    const std::vector<std::byte> raw = read_raw(item.path());
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i)
      header_length = (header_length << 8) | std::to_integer<unsigned>(raw[i]);
    std::size_t stored_bytes = 0;
    for (const ctnn::TensorEntry& entry : file.entries()) {
      stored_bytes += entry.end - entry.begin;
      EXPECT_EQ(entry.end - entry.begin, entry.numel() * ctnn::dtype_size(entry.dtype))
          << entry.name;
      EXPECT_EQ(file.raw_bytes(entry.name).size(), entry.end - entry.begin);
      if (entry.dtype == DType::F32) {
        const std::vector<float> values = file.to_f32(entry.name);
        ASSERT_EQ(values.size(), entry.numel()) << entry.name;
        for (const float value : values) ASSERT_TRUE(std::isfinite(value)) << entry.name;
      } else {
        ASSERT_EQ(entry.dtype, DType::I64) << entry.name;
        EXPECT_EQ(file.to_i64(entry.name).size(), entry.numel()) << entry.name;
      }
    }
    EXPECT_EQ(stored_bytes, raw.size() - 8 - header_length);
  }
  EXPECT_EQ(files, 15u);
}

TEST(SafetensorsConformance, TinyLinearValuesAndHeaderOrder) {
  const SafetensorsFile file = SafetensorsFile::read(test_data_dir / "tiny_linear.safetensors");
  EXPECT_EQ(file.metadata().at("case"), "tiny_linear");

  const ctnn::TensorEntry& weight = file.entry("param.weight");
  EXPECT_EQ(weight.dtype, DType::F32);
  EXPECT_EQ(weight.shape, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(weight.numel(), 3u);
  EXPECT_EQ(file.to_f32("param.weight"),
            (std::vector<float>{-0x1.ee8abcp-4f, -0x1.92c848p-2f, 0x1.a54334p-2f}));
  EXPECT_EQ(file.to_f32("param.bias"), (std::vector<float>{-0x1.8e59fep-2f}));
  EXPECT_TRUE(file.entry("loss").shape.empty());
  EXPECT_EQ(file.to_f32("loss").size(), 1u);

  // Header order, not the alphabetical order nlohmann::json would give.
  ASSERT_GE(file.entries().size(), 3u);
  EXPECT_EQ(file.entries()[0].name, "param.weight");
  EXPECT_EQ(file.entries()[1].name, "param.bias");
  EXPECT_EQ(file.entries()[2].name, "input");
}

TEST(SafetensorsConformance, MnistIntegerTarget) {
  const SafetensorsFile file = SafetensorsFile::read(test_data_dir / "mnist_mlp.safetensors");
  const ctnn::TensorEntry& target = file.entry("target");
  EXPECT_EQ(target.dtype, DType::I64);
  EXPECT_EQ(target.shape, (std::vector<std::int64_t>{8}));
  EXPECT_EQ(file.to_i64("target"), (std::vector<std::int64_t>{1, 0, 7, 7, 4, 9, 0, 8}));
  EXPECT_EQ(file.entry("param.net.0.weight").shape, (std::vector<std::int64_t>{256, 784}));
  EXPECT_EQ(file.to_f32("param.net.0.weight").size(), 256u * 784u);
}

// -------------------------------------------------------------- the API --

TEST(SafetensorsApi, DTypeNamesAndSizes) {
  EXPECT_EQ(ctnn::dtype_name(DType::F32), "F32");
  EXPECT_EQ(ctnn::dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(ctnn::dtype_name(DType::BOOL), "BOOL");
  EXPECT_EQ(ctnn::dtype_size(DType::F32), 4u);
  EXPECT_EQ(ctnn::dtype_size(DType::F16), 2u);
  EXPECT_EQ(ctnn::dtype_size(DType::BF16), 2u);
  EXPECT_EQ(ctnn::dtype_size(DType::F64), 8u);
  EXPECT_EQ(ctnn::dtype_size(DType::I64), 8u);
  EXPECT_EQ(ctnn::dtype_size(DType::I32), 4u);
  EXPECT_EQ(ctnn::dtype_size(DType::U8), 1u);
  EXPECT_EQ(ctnn::dtype_size(DType::BOOL), 1u);
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32,
                            DType::U8, DType::BOOL, DType::F8_E4M3, DType::F8_E5M2}) {
    EXPECT_EQ(ctnn::dtype_from_name(ctnn::dtype_name(dtype)), dtype);
  }
  EXPECT_FALSE(ctnn::dtype_from_name("f32").has_value());
}

TEST(SafetensorsApi, MissingTensorNamesTensorAndFile) {
  const SafetensorsFile file =
      parse_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({1.0f}));
  EXPECT_TRUE(file.contains("a"));
  EXPECT_FALSE(file.contains("b"));
  expect_error_containing([&] { (void)file.entry("b"); }, {"'b'", bad_file_name});
  EXPECT_THROW((void)file.to_f32("b"), LoadError);
  EXPECT_THROW((void)file.to_i64("b"), LoadError);
}

TEST(SafetensorsApi, WrongDTypeForConversion) {
  const SafetensorsFile file =
      parse_file(R"({"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("i":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}})",
                 [] {
                   auto bytes = f32_bytes({1.0f});
                   const auto more = i64_bytes({5});
                   bytes.insert(bytes.end(), more.begin(), more.end());
                   return bytes;
                 }());
  expect_error_containing([&] { (void)file.to_f32("i"); }, {"'i'", "I64", "floating-point"});
  expect_error_containing([&] { (void)file.to_i64("f"); }, {"'f'", "F32", "integer"});
}

TEST(SafetensorsApi, CopyF32IntoCallerMemory) {
  const SafetensorsFile file = parse_file(
      R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", f32_bytes({1, 2, 3, 4}));
  std::vector<float> exact(4);
  file.copy_f32("a", exact);
  EXPECT_EQ(exact, (std::vector<float>{1, 2, 3, 4}));

  std::vector<float> too_small(3);
  expect_error_containing([&] { file.copy_f32("a", too_small); },
                          {"'a'", "4 elements", "[2, 2]", "3 floats"});
  std::vector<float> too_large(5);
  EXPECT_THROW(file.copy_f32("a", too_large), LoadError);
}

// ------------------------------------------------------------ conversions --

TEST(SafetensorsConversion, F16Exact) {
  // 1, -2, smallest subnormal, largest subnormal, smallest normal, largest
  // finite, +inf, -inf, NaN, -0, 1/3 rounded to half.
  const SafetensorsFile file =
      parse_file(R"({"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}})",
                 u16_bytes({0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                            0x8000, 0x3555}));
  const std::vector<float> v = file.to_f32("h");
  ASSERT_EQ(v.size(), 11u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 0x1p-24f);
  EXPECT_EQ(v[3], 1023.0f * 0x1p-24f);
  EXPECT_EQ(v[4], 0x1p-14f);
  EXPECT_EQ(v[5], 65504.0f);
  EXPECT_EQ(v[6], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[7], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[8]));
  EXPECT_EQ(v[9], 0.0f);
  EXPECT_TRUE(std::signbit(v[9]));
  EXPECT_EQ(v[10], 0x1.554p-2f);
}

TEST(SafetensorsConversion, BF16Exact) {
  // 1, -max finite, smallest subnormal, +inf, NaN, 3.140625.
  const SafetensorsFile file =
      parse_file(R"({"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}})",
                 u16_bytes({0x3F80, 0xFF7F, 0x0001, 0x7F80, 0x7FC0, 0x4049}));
  const std::vector<float> v = file.to_f32("b");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -0x1.fep127f);
  EXPECT_EQ(v[2], 0x1p-133f);
  EXPECT_EQ(v[3], std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_EQ(v[5], 3.140625f);
}

TEST(SafetensorsConversion, F64Rounded) {
  const double just_above_one = 1.0 + 0x1p-30;                // rounds down to 1
  const double round_up = 1.0 + 0x1p-23 + 0x1p-24 + 0x1p-40;  // past the tie, rounds up
  const SafetensorsFile file =
      parse_file(R"({"d":{"dtype":"F64","shape":[6],"data_offsets":[0,48]}})",
                 f64_bytes({0.1, just_above_one, round_up, 1e300, -1e-320, -2.5}));
  const std::vector<float> v = file.to_f32("d");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 0.1f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_EQ(v[2], 1.0f + 0x1p-22f);
  EXPECT_EQ(v[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[4], 0.0f);
  EXPECT_TRUE(std::signbit(v[4]));
  EXPECT_EQ(v[5], -2.5f);
}

TEST(SafetensorsConversion, F8Formats) {
  // E4M3FN: 1, -448 (max), smallest subnormal, NaN. E5M2: 1, -inf, smallest subnormal, 57344.
  const SafetensorsFile file =
      parse_file(R"({"e4":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},)"
                 R"("e5":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[4,8]}})",
                 u8_bytes({0x38, 0xFE, 0x01, 0x7F, 0x3C, 0xFC, 0x01, 0x7B}));
  const std::vector<float> e4 = file.to_f32("e4");
  EXPECT_EQ(e4[0], 1.0f);
  EXPECT_EQ(e4[1], -448.0f);
  EXPECT_EQ(e4[2], 0x1p-9f);
  EXPECT_TRUE(std::isnan(e4[3]));
  const std::vector<float> e5 = file.to_f32("e5");
  EXPECT_EQ(e5[0], 1.0f);
  EXPECT_EQ(e5[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(e5[2], 0x1p-16f);
  EXPECT_EQ(e5[3], 57344.0f);
}

TEST(SafetensorsConversion, IntegersToI64) {
  std::vector<std::byte> data;
  for (const std::int32_t v : {-7, 2147483647})
    append_little_endian(data, static_cast<std::uint32_t>(v));
  for (const unsigned v : {0u, 255u, 1u, 0u, 2u})
    data.push_back(static_cast<std::byte>(v));  // U8 x2, BOOL x3
  const SafetensorsFile file =
      parse_file(R"({"i32":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},)"
                 R"("u8":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},)"
                 R"("flags":{"dtype":"BOOL","shape":[3],"data_offsets":[10,13]}})",
                 data);
  EXPECT_EQ(file.to_i64("i32"), (std::vector<std::int64_t>{-7, 2147483647}));
  EXPECT_EQ(file.to_i64("u8"), (std::vector<std::int64_t>{0, 255}));
  EXPECT_EQ(file.to_i64("flags"), (std::vector<std::int64_t>{1, 0, 1}));
}

// ------------------------------------------------------- writing, reading --

TEST_F(SafetensorsWrite, RoundTripWithScalarsAndMetadata) {
  const std::vector<float> matrix = {1.5f, -2.25f, 0.0f, 3.0e-41f, 1e30f, -0.0f};
  const std::vector<std::int64_t> labels = {-1, 0, std::numeric_limits<std::int64_t>::max(),
                                            std::numeric_limits<std::int64_t>::min()};
  const std::vector<float> scalar = {42.5f};
  const std::vector<std::int64_t> count = {7};
  const std::vector<float> empty;
  const std::vector<ctnn::TensorToWrite> tensors = {
      {"layer.weight", DType::F32, {2, 3}, bytes_of(matrix)},
      {"labels", DType::I64, {4}, bytes_of(labels)},
      {"loss", DType::F32, {}, bytes_of(scalar)},
      {"num_batches_tracked", DType::I64, {}, bytes_of(count)},
      {"nothing", DType::F32, {0, 5}, bytes_of(empty)},
  };
  const std::map<std::string, std::string> metadata = {
      {"case", "round_trip"}, {"note", "quotes \" and \\ and\nnewline, ünïcödé"}};
  const fs::path path = directory_ / "model.safetensors";
  ctnn::write_safetensors(path, tensors, metadata);

  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.entries()[i].name, tensors[i].name);
    EXPECT_EQ(file.entries()[i].dtype, tensors[i].dtype);
    EXPECT_EQ(file.entries()[i].shape, tensors[i].shape);
  }
  const std::vector<float> matrix_back = file.to_f32("layer.weight");
  ASSERT_EQ(matrix_back.size(), matrix.size());
  EXPECT_EQ(std::memcmp(matrix_back.data(), matrix.data(), matrix.size() * sizeof(float)), 0);
  EXPECT_EQ(file.to_i64("labels"), labels);
  EXPECT_EQ(file.to_f32("loss"), scalar);
  EXPECT_EQ(file.entry("loss").numel(), 1u);
  EXPECT_EQ(file.to_i64("num_batches_tracked"), count);
  EXPECT_TRUE(file.to_f32("nothing").empty());

  // Layout: data 8-byte aligned, header padded with spaces, tensors back to back.
  const std::vector<std::byte> raw = read_raw(path);
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i)
    header_length = (header_length << 8) | std::to_integer<unsigned>(raw[i]);
  EXPECT_EQ((8 + header_length) % 8, 0u);
  const std::string header(reinterpret_cast<const char*>(raw.data()) + 8, header_length);
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  std::size_t expected_begin = 0;
  for (const ctnn::TensorEntry& entry : file.entries()) {
    EXPECT_EQ(entry.begin, expected_begin) << entry.name;
    expected_begin = entry.end;
  }
  EXPECT_EQ(raw.size(), 8 + header_length + expected_begin);
  EXPECT_EQ(directory_listing(directory_), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsWrite, WithoutMetadataOrTensors) {
  const fs::path path = directory_ / "empty.safetensors";
  ctnn::write_safetensors(path, {});
  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_TRUE(file.entries().empty());
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(fs::file_size(path) % 8, 0u);
}

TEST_F(SafetensorsWrite, IntoMissingDirectoryThrowsAndLeavesNothing) {
  const fs::path missing = directory_ / "does_not_exist";
  const std::vector<float> values = {1.0f};
  const std::vector<ctnn::TensorToWrite> tensors = {{"x", DType::F32, {1}, bytes_of(values)}};
  expect_error_containing([&] { ctnn::write_safetensors(missing / "model.safetensors", tensors); },
                          {"model.safetensors", "No such file or directory"});
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_TRUE(directory_listing(directory_).empty());
}

TEST_F(SafetensorsWrite, OverwriteReplacesWholeFile) {
  const fs::path path = directory_ / "model.safetensors";
  const std::vector<float> big(10000, 3.0f);
  const std::vector<ctnn::TensorToWrite> first = {{"big", DType::F32, {100, 100}, bytes_of(big)}};
  ctnn::write_safetensors(path, first, {{"version", "1"}});
  const auto big_size = fs::file_size(path);

  const std::vector<float> small = {7.0f, 8.0f};
  const std::vector<ctnn::TensorToWrite> second = {{"small", DType::F32, {2}, bytes_of(small)}};
  ctnn::write_safetensors(path, second, {{"version", "2"}});
  EXPECT_LT(fs::file_size(path), big_size);

  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_FALSE(file.contains("big"));
  EXPECT_EQ(file.to_f32("small"), small);
  EXPECT_EQ(file.metadata().at("version"), "2");
  EXPECT_EQ(directory_listing(directory_), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsWrite, FailedRenameLeavesDestinationAndNoTemporary) {
  // A non-empty directory cannot be replaced by rename(), so the last step fails.
  const fs::path occupied = directory_ / "occupied";
  fs::create_directories(occupied / "inside");
  const std::vector<float> values = {1.0f};
  const std::vector<ctnn::TensorToWrite> tensors = {{"x", DType::F32, {1}, bytes_of(values)}};
  expect_error_containing([&] { ctnn::write_safetensors(occupied, tensors); },
                          {"occupied", "renam"});
  EXPECT_TRUE(fs::is_directory(occupied / "inside"));
  EXPECT_EQ(directory_listing(directory_), std::vector<std::string>{"occupied"});
}

TEST_F(SafetensorsWrite, InvalidTensorsThrowBeforeWriting) {
  const fs::path path = directory_ / "model.safetensors";
  const std::vector<float> three = {1, 2, 3};
  const auto expect_rejected = [&](const std::vector<ctnn::TensorToWrite>& tensors,
                                   std::initializer_list<std::string_view> key_words) {
    expect_error_containing([&] { ctnn::write_safetensors(path, tensors); }, key_words);
    EXPECT_THROW(ctnn::write_safetensors(path, tensors), SaveError);
  };
  expect_rejected({{"x", DType::F32, {2, 2}, bytes_of(three)}},
                  {"'x'", "[2, 2]", "16 bytes", "12 bytes"});
  expect_rejected(
      {{"x", DType::F32, {3}, bytes_of(three)}, {"x", DType::F32, {3}, bytes_of(three)}},
      {"'x'", "twice"});
  expect_rejected({{"x", DType::F32, {-3}, bytes_of(three)}}, {"'x'", "negative"});
  expect_rejected({{"__metadata__", DType::F32, {3}, bytes_of(three)}},
                  {"__metadata__", "reserved"});
  expect_rejected({{"bad\xff", DType::F32, {3}, bytes_of(three)}}, {"UTF-8"});
  EXPECT_TRUE(directory_listing(directory_).empty());
}

TEST_F(SafetensorsWrite, ReadErrorsNameThePath) {
  expect_error_containing([&] { (void)SafetensorsFile::read(directory_ / "absent.safetensors"); },
                          {"absent.safetensors", "No such file or directory"});
  EXPECT_THROW((void)SafetensorsFile::read(directory_ / "absent.safetensors"), LoadError);
  expect_error_containing([&] { (void)SafetensorsFile::read(directory_); }, {"directory"});
  EXPECT_THROW((void)SafetensorsFile::read(directory_), LoadError);

  const fs::path truncated = directory_ / "truncated.safetensors";
  std::ofstream(truncated, std::ios::binary) << "abc";
  expect_error_containing([&] { (void)SafetensorsFile::read(truncated); },
                          {"truncated.safetensors", "3 bytes"});
}

// --------------------------------------------------------------- bad files --

const std::string f32_entry_a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

TEST(SafetensorsBadFile, ShorterThanLengthPrefix) {
  expect_load_error(u8_bytes({1, 2, 3, 4, 5}), {"5 bytes", "8-byte"});
  expect_load_error(std::vector<std::byte>{}, {"0 bytes"});
}

TEST(SafetensorsBadFile, HeaderLengthPastEnd) {
  expect_load_error(make_file("{}", u8_bytes({0, 0, 0, 0}), 1000),
                    {"1000", "past the end", "6 bytes"});
}

TEST(SafetensorsBadFile, AbsurdHeaderLength) {
  expect_load_error(make_file("{}", {}, std::numeric_limits<std::uint64_t>::max()),
                    {"18446744073709551615", "past the end"});
}

TEST(SafetensorsBadFile, MalformedJson) {
  expect_load_error(R"({"a": {"dtype": "F32",)", {},
                    {"not valid JSON", "parse error", "header offset"});
  expect_load_error(R"({"a" 1})", {}, {"not valid JSON", "header offset 5", "file offset 13"});
  expect_load_error("", {}, {"not valid JSON"});
  expect_load_error("{} trailing", {}, {"not valid JSON"});
  expect_load_error("{\"bad\xff\": 1}", {}, {"not valid JSON", "UTF-8"});
}

TEST(SafetensorsBadFile, HeaderNotAnObject) {
  expect_load_error("[1, 2]", {}, {"must be a JSON object", "an array of 2 values"});
  expect_load_error("\"text\"", {}, {"must be a JSON object", "string"});
}

TEST(SafetensorsBadFile, TensorEntryNotAnObject) {
  expect_load_error(R"({"w": 5})", {}, {"tensor 'w'", "must be an object", "the number 5"});
  expect_load_error(R"({"w": [0, 4]})", {}, {"tensor 'w'", "must be an object", "array"});
}

TEST(SafetensorsBadFile, MissingFields) {
  expect_load_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "no \"dtype\""});
  expect_load_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "no \"shape\""});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1]}})", f32_bytes({1}),
                    {"tensor 'w'", "no \"data_offsets\""});
}

TEST(SafetensorsBadFile, WrongTypedFields) {
  expect_load_error(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "\"dtype\" must be a string", "the number 4"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "\"shape\" must be an array", "the string \"1\""});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "shape[0]", "the number 2.5"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "shape[0]", "boolean true"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"begin":0}}})",
                    f32_bytes({1}),
                    {"tensor 'w'", "data_offsets", "two integers", "an object with 1 key"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", f32_bytes({1}),
                    {"tensor 'w'", "data_offsets[1]", "integer", "the string \"4\""});
}

TEST(SafetensorsBadFile, UnknownDType) {
  expect_load_error(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "unknown dtype", "\"F12\"", "F32", "BF16"});
}

TEST(SafetensorsBadFile, NegativeDimension) {
  expect_load_error(R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,4]}})", f32_bytes({1}),
                    {"tensor 'w'", "shape[1]", "-3", "non-negative"});
}

TEST(SafetensorsBadFile, ElementCountOverflow) {
  expect_load_error(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                    f32_bytes({1}), {"tensor 'w'", "[4294967296, 4294967296]", "overflow"});
  // The element count fits but its byte count does not.
  expect_load_error(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})",
                    f32_bytes({1}), {"tensor 'w'", "overflow"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})",
                    f32_bytes({1}), {"tensor 'w'", "18446744073709551615", "largest dimension"});
}

TEST(SafetensorsBadFile, DataOffsetsNotTwoIncreasingIntegers) {
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", f32_bytes({1}),
                    {"tensor 'w'", "two integers", "an array of 1 value"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
                    f32_bytes({1, 2}), {"tensor 'w'", "two integers", "an array of 3 values"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                    f32_bytes({1, 2, 3}), {"tensor 'w'", "[8, 4]", "begin <= end"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", f32_bytes({1}),
                    {"tensor 'w'", "data_offsets[0]", "-4", "non-negative"});
}

TEST(SafetensorsBadFile, DataOffsetsOutOfRange) {
  expect_load_error(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32_bytes({1, 2}),
                    {"tensor 'w'", "[0, 16]", "out of range", "8 bytes"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[1],)"
                    R"("data_offsets":[18446744073709551612,18446744073709551615]}})",
                    f32_bytes({1}), {"tensor 'w'", "out of range", "4 bytes"});
}

TEST(SafetensorsBadFile, WrongElementCount) {
  expect_load_error(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32_bytes({1, 2}),
                    {"tensor 'w'", "wrong element count", "[3]", "3 elements", "12 bytes", "[0, 8]",
                     "span 8 bytes"});
  expect_load_error(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,0]}})", f32_bytes({1}),
                    {"tensor 'w'", "wrong element count", "1 elements", "span 0 bytes"});
}

TEST(SafetensorsBadFile, OverlappingTensors) {
  expect_load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    f32_bytes({1, 2, 3}), {"'a'", "'b'", "[0, 8]", "[4, 12]", "overlap"});
  // The same range twice, and one range inside a larger one.
  expect_load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                    f32_bytes({1, 2}), {"overlap"});
  expect_load_error(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                    R"("c":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})",
                    f32_bytes({1, 2, 3, 4, 5}), {"'a'", "'b'", "overlap"});
}

TEST(SafetensorsBadFile, MetadataNotStrings) {
  expect_load_error(R"({"__metadata__":{"case":"x","epochs":3},)" + f32_entry_a + "}",
                    f32_bytes({1, 2}),
                    {"__metadata__", "'epochs'", "must be a string", "the number 3"});
  expect_load_error(R"({"__metadata__":["case"]})", {},
                    {"__metadata__", "must be an object", "an array of 1 value"});
}

TEST(SafetensorsBadFile, DuplicateKeys) {
  expect_load_error("{" + f32_entry_a + "," + f32_entry_a + "}", f32_bytes({1, 2}),
                    {"\"a\"", "twice", "duplicate tensor name"});
  expect_load_error(R"({"__metadata__":{"k":"1","k":"2"}})", {},
                    {"__metadata__", "\"k\"", "twice"});
  expect_load_error(R"({"a":{"dtype":"F32","dtype":"I64","shape":[2],"data_offsets":[0,8]}})",
                    f32_bytes({1, 2}), {"tensor 'a'", "\"dtype\"", "twice"});
}

TEST(SafetensorsBadFile, DeepNestingIsRejectedEarly) {
  const std::string deep = R"({"w":)" + std::string(1'000'000, '[');
  expect_load_error(deep, {}, {"nests", "levels"});
}

// ------------------------------------------------------ accepted oddities --

TEST(SafetensorsAccepted, GapsPaddingEmptyTensorsAndNullMetadata) {
  const SafetensorsFile file =
      parse_file(R"({"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("empty":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                 R"("extra_free":{"dtype":"I64","shape":[0,3],"data_offsets":[0,0]}}     )",
                 f32_bytes({1, 99, 2, 77}));
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.to_f32("a"), std::vector<float>{1});
  EXPECT_EQ(file.to_f32("b"), std::vector<float>{2});
  EXPECT_TRUE(file.to_f32("empty").empty());
  EXPECT_TRUE(file.to_i64("extra_free").empty());
  EXPECT_EQ(file.entries().size(), 4u);
  EXPECT_EQ(file.source(), bad_file_name);
}

TEST(SafetensorsAccepted, EmptyHeaderObject) {
  const SafetensorsFile file = parse_file("{}");
  EXPECT_TRUE(file.entries().empty());
  EXPECT_TRUE(file.metadata().empty());
}

}  // namespace

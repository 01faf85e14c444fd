// Compile-time facts of architecture types (widths, parameter tables with
// PyTorch's names, shapes and offsets, activation memory per row) and the
// run-time views of Model<Net> over its flat storage: parameters(),
// named_parameters(), named_modules(), children(), submodule<"name">, default
// initialisation, copies, freezing, Batch/Tensor/Vec/Labels, and a forward
// that does not allocate.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

// ---- allocation counting ----------------------------------------------------
// Every global operator new of this program goes through these replacements;
// while `counting` is set, each call is counted.

namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};

void* counted_alloc(std::size_t bytes, std::size_t alignment) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (bytes == 0) bytes = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(bytes);
  } else if (::posix_memalign(&p, alignment, bytes) != 0) {
    p = nullptr;
  }
  return p;
}

// Out of line, so that the compiler does not see free() meet operator new.
[[gnu::noinline]] void counted_free(void* p) noexcept { std::free(p); }

/// Counts the global allocations made while it lives.
class AllocationCounter {
 public:
  AllocationCounter() {
    allocations.store(0);
    counting.store(true);
  }
  ~AllocationCounter() { counting.store(false); }
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  std::size_t count() const { return allocations.load(); }
};
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counted_alloc(n, static_cast<std::size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  if (void* p = counted_alloc(n, static_cast<std::size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }

namespace ctnn::test {
namespace {

// ---- compile-time helpers ---------------------------------------------------

/// True if `s` has this name, shape and offset.
constexpr bool spec_is(const TensorSpec& s, std::string_view name, std::initializer_list<std::size_t> shape,
                       std::size_t offset) {
  if (s.name.view() != name || s.rank != shape.size() || s.offset != offset) return false;
  std::size_t i = 0;
  for (std::size_t d : shape)
    if (s.dims[i++] != d) return false;
  return s.storage == Storage::parameter;
}

/// Offsets follow each other with no gap, in table order, and add up to `total`.
template <std::size_t N>
constexpr bool packed(const std::array<TensorSpec, N>& specs, std::size_t total) {
  std::size_t next = 0;
  for (const TensorSpec& s : specs) {
    if (s.offset != next) return false;
    next += s.numel();
  }
  return next == total;
}

template <std::size_t N>
std::vector<std::string> names_of(const std::array<TensorSpec, N>& specs) {
  std::vector<std::string> out;
  for (const TensorSpec& s : specs) out.emplace_back(s.name.view());
  return out;
}

using Strings = std::vector<std::string>;

// ---- the contract network ---------------------------------------------------

using Contract = Sequential<Named<"fc1", Linear<3, 16>>, ReLU, Residual<Named<"fc2", Linear<16, 16>>, ReLU>,
                            Named<"head", Linear<16, 1>>>;

static_assert(Contract::in_features == 3 && Contract::out_features == 1);
static_assert(Contract::num_params == 353);
static_assert(Contract::out_width(3) == 1);
static_assert(Contract::num_buffers == 0 && Contract::buffers.size() == 0);
static_assert(Contract::params.size() == 6);
static_assert(spec_is(Contract::params[0], "fc1.weight", {16, 3}, 0));
static_assert(spec_is(Contract::params[1], "fc1.bias", {16}, 48));
static_assert(spec_is(Contract::params[2], "2.fc2.weight", {16, 16}, 64));
static_assert(spec_is(Contract::params[3], "2.fc2.bias", {16}, 320));
static_assert(spec_is(Contract::params[4], "head.weight", {1, 16}, 336));
static_assert(spec_is(Contract::params[5], "head.bias", {1}, 352));
static_assert(packed(Contract::params, 353));
static_assert(find_spec(Contract::params, "2.fc2.bias") == 3 && find_spec(Contract::params, "fc2.bias") == -1);

// Activation memory per row, from the layout of compose/chain.hpp (a pipeline
// keeps the outputs of all its children but the last, then each child's own
// workspace) and compose/residual.hpp (the body's workspace, then the body's
// output, W floats):
//   residual body  [fc2 -> 16, ReLU]     : hidden 16 + children 0       = 16
//   residual       body 16 + W 16                                       = 32
//   top level      outputs of fc1, ReLU, Residual = 16 + 16 + 16 = 48,
//                  then workspaces 0 + 0 + 32 + 0                        = 80
static_assert(Contract::workspace_floats == 80);
static_assert(Contract::activation_floats == 80);
static_assert(bind_t<Residual<Named<"fc2", Linear<16, 16>>, ReLU>, 16>::workspace_floats == 32);

using ContractModel = Model<Contract>;
static_assert(ContractModel::in_features == 3 && ContractModel::out_features == 1);
static_assert(ContractModel::num_params == 353 && ContractModel::num_buffers == 0);
static_assert(ContractModel::num_param_tensors == 6);
static_assert(!ContractModel::multi_output);
static_assert(std::is_same_v<ContractModel::input_type, Batch<3>>);
static_assert(std::is_same_v<ContractModel::output_type, Batch<1>>);
static_assert(ContractModel::input_shape.size() == 1 && ContractModel::input_shape[0] == 3);

// ---- leaves, odd widths -------------------------------------------------------

static_assert(Linear<5, 13>::in_features == 5 && Linear<5, 13>::out_features == 13);
static_assert(Linear<5, 13>::num_params == 78 && Linear<5, 13>::params.size() == 2);
static_assert(spec_is(Linear<5, 13>::params[0], "weight", {13, 5}, 0));
static_assert(spec_is(Linear<5, 13>::params[1], "bias", {13}, 65));
static_assert(Linear<5, 13, false>::num_params == 65 && Linear<5, 13, false>::params.size() == 1);
static_assert(spec_is(Linear<5, 13, false>::params[0], "weight", {13, 5}, 0));
static_assert(Linear<5, 13>::workspace_floats == 0);
static_assert(ReLU::in_features == any_width && ReLU::out_width(37) == 37);
static_assert(bind_t<GELU, 37>::num_params == 0 && bind_t<GELU, 37>::in_features == 37);
static_assert(bind_t<Softmax, 13>::out_features == 13 && bind_t<LogSoftmax, 5>::in_features == 5);

using OddNet = Sequential<Linear<5, 13>, GELU, Residual<Linear<13, 13>, Tanh>, Linear<13, 37>, LeakyReLU<>,
                          Linear<37, 7, false>, Softmax>;
static_assert(OddNet::in_features == 5 && OddNet::out_features == 7);
static_assert(OddNet::num_params == 78 + 182 + 518 + 259);
static_assert(OddNet::params.size() == 7);
static_assert(spec_is(OddNet::params[0], "0.weight", {13, 5}, 0));
static_assert(spec_is(OddNet::params[1], "0.bias", {13}, 65));
static_assert(spec_is(OddNet::params[2], "2.0.weight", {13, 13}, 78));
static_assert(spec_is(OddNet::params[3], "2.0.bias", {13}, 247));
static_assert(spec_is(OddNet::params[4], "3.weight", {37, 13}, 260));
static_assert(spec_is(OddNet::params[5], "3.bias", {37}, 741));
static_assert(spec_is(OddNet::params[6], "5.weight", {7, 37}, 778));
static_assert(packed(OddNet::params, OddNet::num_params));
// outputs of children 0..5: 13 + 13 + 13 + 37 + 37 + 7 = 120; the residual's
// workspace: body (hidden 13) + W 13 = 26; 120 + 26 = 146.
static_assert(OddNet::workspace_floats == 146);

// ---- the naming rule (issue part 8) -------------------------------------------

// Sequential<Linear, ReLU, Residual<Linear, ReLU>, Linear>: every child takes a
// position, the residual is a level of its own.
using RuleNet = Sequential<Linear<5, 13>, ReLU, Residual<Linear<13, 13>, ReLU>, Linear<13, 37>>;
static_assert(RuleNet::params.size() == 6);
static_assert(spec_is(RuleNet::params[0], "0.weight", {13, 5}, 0));
static_assert(spec_is(RuleNet::params[1], "0.bias", {13}, 65));
static_assert(spec_is(RuleNet::params[2], "2.0.weight", {13, 13}, 78));
static_assert(spec_is(RuleNet::params[3], "2.0.bias", {13}, 247));
static_assert(spec_is(RuleNet::params[4], "3.weight", {37, 13}, 260));
static_assert(spec_is(RuleNet::params[5], "3.bias", {37}, 741));
// outputs 13 + 13 + 13, residual body hidden 13 (+0) + W 13.
static_assert(RuleNet::workspace_floats == 39 + 26);

// Four residual blocks (PyTorch's ResidualBlock with a `block` Sequential).
using Blocks128 = Repeat<4, Residual<Named<"block", Sequential<Linear<128, 128>, ReLU, Linear<128, 128>>>>>;
static_assert(std::is_same_v<ResBlocks, Blocks128>);
static_assert(Blocks128::params.size() == 16);
static_assert(Blocks128::num_params == 4 * 2 * (128 * 128 + 128));
static_assert(spec_is(Blocks128::params[0], "0.block.0.weight", {128, 128}, 0));
static_assert(spec_is(Blocks128::params[3], "0.block.2.bias", {128}, 2 * 16384 + 128));
static_assert(spec_is(Blocks128::params[15], "3.block.2.bias", {128}, Blocks128::num_params - 128));
static_assert(packed(Blocks128::params, Blocks128::num_params));

// The MLP-from-widths helper numbers only its Linear layers.
using Layers784 = Sequential<Named<"layers", MLP<784, 512, 256, 128, 10>>>;
static_assert(Layers784::in_features == 784 && Layers784::out_features == 10);
static_assert(Layers784::params.size() == 8);
static_assert(spec_is(Layers784::params[0], "layers.0.weight", {512, 784}, 0));
static_assert(spec_is(Layers784::params[1], "layers.0.bias", {512}, 401408));
static_assert(spec_is(Layers784::params[2], "layers.1.weight", {256, 512}, 401920));
static_assert(spec_is(Layers784::params[4], "layers.2.weight", {128, 256}, 401920 + 131072 + 256));
static_assert(spec_is(Layers784::params[6], "layers.3.weight", {10, 128}, 567434 - 1290));
static_assert(spec_is(Layers784::params[7], "layers.3.bias", {10}, 567434 - 10));
static_assert(Layers784::num_params == 567434);
static_assert(packed(Layers784::params, Layers784::num_params));

// Heads (ModuleDict): heads.<key>.weight.
static_assert(MultiTask::params.size() == 6);
static_assert(spec_is(MultiTask::params[0], "shared.weight", {32, 16}, 0));
static_assert(spec_is(MultiTask::params[2], "heads.classify.weight", {10, 32}, 544));
static_assert(spec_is(MultiTask::params[3], "heads.classify.bias", {10}, 864));
static_assert(spec_is(MultiTask::params[4], "heads.regress.weight", {1, 32}, 874));
static_assert(spec_is(MultiTask::params[5], "heads.regress.bias", {1}, 906));
static_assert(Model<MultiTask>::multi_output && Model<MultiTask>::out_features == 11);

// ProjectedResidual: projection and body are its two children, 0 and 1 unless named.
using ProjBody = Sequential<Linear<5, 13>, ReLU, Linear<13, 13>>;
using ProjNet = Sequential<ProjectedResidual<Linear<5, 13, false>, ProjBody>, Linear<13, 37>>;
static_assert(ProjNet::in_features == 5 && ProjNet::out_features == 37);
static_assert(ProjNet::params.size() == 7);
static_assert(spec_is(ProjNet::params[0], "0.0.weight", {13, 5}, 0));
static_assert(spec_is(ProjNet::params[1], "0.1.0.weight", {13, 5}, 65));
static_assert(spec_is(ProjNet::params[2], "0.1.0.bias", {13}, 130));
static_assert(spec_is(ProjNet::params[3], "0.1.2.weight", {13, 13}, 143));
static_assert(spec_is(ProjNet::params[4], "0.1.2.bias", {13}, 312));
static_assert(spec_is(ProjNet::params[5], "1.weight", {37, 13}, 325));
static_assert(spec_is(ProjNet::params[6], "1.bias", {37}, 806));
// projection out 13 + body out 13 + projection ws 0 + body ws (13 + 13); the top
// level keeps the residual's output (13) first.
static_assert(ProjNet::workspace_floats == 13 + 13 + 13 + 26);

using NamedProjNet =
    Sequential<ProjectedResidual<Named<"proj", Linear<5, 13, false>>, Named<"body", ProjBody>>, Linear<13, 37>>;
static_assert(spec_is(NamedProjNet::params[0], "0.proj.weight", {13, 5}, 0));
static_assert(spec_is(NamedProjNet::params[1], "0.body.0.weight", {13, 5}, 65));
static_assert(spec_is(NamedProjNet::params[4], "0.body.2.bias", {13}, 312));

// Functional<A> takes no position.
using FunctionalNet = Sequential<Linear<5, 13>, Functional<ReLU>, Linear<13, 37>, Functional<Tanh>, Linear<37, 5>>;
static_assert(FunctionalNet::params.size() == 6);
static_assert(spec_is(FunctionalNet::params[0], "0.weight", {13, 5}, 0));
static_assert(spec_is(FunctionalNet::params[2], "1.weight", {37, 13}, 78));
static_assert(spec_is(FunctionalNet::params[4], "2.weight", {5, 37}, 596));
static_assert(spec_is(FunctionalNet::params[5], "2.bias", {5}, 781));

// Flatten: a static row shape becomes its product of features.
static_assert(Flatten<1, 28, 28>::in_features == 784 && Flatten<1, 28, 28>::out_features == 784);
static_assert(Flatten<1, 28, 28>::input_shape == std::array<std::size_t, 3>{1, 28, 28});
static_assert(Flatten<3, 5, 7>::in_features == 105);
using FlattenNet = Sequential<Flatten<1, 28, 28>, Linear<784, 10>>;
static_assert(FlattenNet::in_features == 784 && FlattenNet::input_shape == std::array<std::size_t, 3>{1, 28, 28});
static_assert(spec_is(FlattenNet::params[0], "1.weight", {10, 784}, 0));  // Flatten is child 0
static_assert(std::is_same_v<Model<FlattenNet>::input_type, Tensor<1, 28, 28>>);
static_assert(Model<FlattenNet>::input_shape == std::array<std::size_t, 3>{1, 28, 28});
static_assert(std::is_same_v<Model<MnistMlp>::input_type, Tensor<1, 28, 28>>);
static_assert(spec_is(MnistMlp::params[0], "net.0.weight", {256, 784}, 0));  // Functional<Flatten> takes no index
static_assert(std::is_same_v<Model<Sequential<Flatten<3, 5, 7>, Linear<105, 13>>>::input_type, Tensor<3, 5, 7>>);

using NamedFlatten = Sequential<Named<"flat", Flatten<1, 28, 28>>, Linear<784, 10>>;
static_assert(NamedFlatten::input_shape == std::array<std::size_t, 3>{1, 28, 28});
static_assert(std::is_same_v<Model<NamedFlatten>::input_type, Tensor<1, 28, 28>>);
static_assert(spec_is(NamedFlatten::params[0], "1.weight", {10, 784}, 0));

// A long Sequential compiles under each compiler's default limits: 256
// children (128 Linear<8, 8>, 128 ReLU), whose sibling-name check compared
// every pair of labels and ran out of clang's constexpr steps (2^20) before it
// sorted them (core/children.hpp).
template <std::size_t... I>
auto alternating_chain(std::index_sequence<I...>) -> Sequential<std::conditional_t<I % 2 == 0, Linear<8, 8>, ReLU>...>;
using Long256 = decltype(alternating_chain(std::make_index_sequence<256>{}));
static_assert(sizeof(Model<Long256>) > 0 && Model<Long256>::num_params == 128 * (8 * 8 + 8));
static_assert(spec_is(Long256::params[254], "254.weight", {8, 8}, 127 * 72));

// ---- storage ------------------------------------------------------------------

static_assert(Model<Contract>::inline_storage);
static_assert(Model<OddNet>::inline_storage);
static_assert(!Model<MnistMlp>::inline_storage);
static_assert(!Model<Layers784>::inline_storage);
// Inline storage is in the object (parameters and gradients); heap storage is not.
static_assert(sizeof(Model<Contract>) >= 2 * 353 * sizeof(float));
static_assert(sizeof(Model<MnistMlp>) < 4096);

// The contract's aggregate of load options: prefix, rename, strict, in that order.
static_assert(std::is_aggregate_v<LoadOptions>);

TEST(Core, LoadOptionsMembersInContractOrder) {
  const LoadOptions o{"param.", {{"fc2.", "2.fc2."}}, false};
  EXPECT_EQ(o.prefix, "param.");
  ASSERT_EQ(o.rename.size(), 1u);
  EXPECT_EQ(o.rename[0].first, "fc2.");
  EXPECT_EQ(o.rename[0].second, "2.fc2.");
  EXPECT_FALSE(o.strict);
  EXPECT_TRUE(LoadOptions{}.strict);
}

TEST(Core, RuntimeNameTables) {
  EXPECT_EQ(names_of(RuleNet::params), (Strings{"0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight", "3.bias"}));
  Strings blocks;
  for (int b = 0; b < 4; ++b)
    for (const char* leaf : {"0.weight", "0.bias", "2.weight", "2.bias"})
      blocks.push_back(std::to_string(b) + ".block." + leaf);
  EXPECT_EQ(names_of(Blocks128::params), blocks);
  EXPECT_EQ(names_of(Layers784::params),
            (Strings{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight",
                     "layers.2.bias", "layers.3.weight", "layers.3.bias"}));
  EXPECT_EQ(names_of(DynamicMlp::params),
            (Strings{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight",
                     "layers.2.bias", "layers.3.weight", "layers.3.bias"}));
  EXPECT_EQ(names_of(MultiTask::params), (Strings{"shared.weight", "shared.bias", "heads.classify.weight",
                                                  "heads.classify.bias", "heads.regress.weight", "heads.regress.bias"}));
  EXPECT_EQ(names_of(Autoencoder::params),
            (Strings{"encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "decoder.0.weight",
                     "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"}));
  EXPECT_EQ(names_of(SimpleNet::params), (Strings{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(names_of(Mlp381::params), (Strings{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(names_of(Linear<3, 1>::params), (Strings{"weight", "bias"}));
}

// ---- Model views ----------------------------------------------------------------

TEST(Model, NamedParametersAreViewsIntoTheFlatBuffer) {
  Model<Contract> model{seed(0)};
  const std::span<float, 353> flat = model.parameters();
  static_assert(decltype(flat)::extent == 353);
  EXPECT_EQ(flat.size(), Contract::num_params);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(flat.data()) % 64, 0u);
  EXPECT_EQ(model.gradients().size(), Contract::num_params);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(model.gradients().data()) % 64, 0u);

  const Strings names{"fc1.weight", "fc1.bias", "2.fc2.weight", "2.fc2.bias", "head.weight", "head.bias"};
  const std::vector<std::vector<std::size_t>> shapes{{16, 3}, {16}, {16, 16}, {16}, {1, 16}, {1}};
  auto params = model.named_parameters();
  ASSERT_EQ(params.size(), 6u);
  std::size_t i = 0, next = 0;
  for (auto&& p : params) {
    ASSERT_LT(i, names.size());
    EXPECT_EQ(p.name, names[i]);
    EXPECT_EQ(std::vector<std::size_t>(p.shape().begin(), p.shape().end()), shapes[i]) << p.name;
    std::size_t numel = 1;
    for (std::size_t d : shapes[i]) numel *= d;
    EXPECT_EQ(p.size(), numel) << p.name;
    EXPECT_EQ(p.offset(), next) << p.name;
    EXPECT_EQ(p.data(), flat.data() + next) << p.name;
    EXPECT_EQ(p.span().data(), p.data());
    EXPECT_EQ(p.span().size(), numel);
    EXPECT_EQ(p.grad(), model.gradients().data() + next) << p.name;
    EXPECT_TRUE(p.requires_grad());
    next += numel;
    ++i;
  }
  EXPECT_EQ(i, 6u);
  EXPECT_EQ(next, 353u);

  // Writing through a view is seen in the flat buffer and the other way round.
  model.parameter("2.fc2.bias").data()[5] = 42.5f;
  EXPECT_EQ(flat[320 + 5], 42.5f);
  flat[352] = -3.0f;
  EXPECT_EQ(model.parameter("head.bias").data()[0], -3.0f);
  EXPECT_EQ(params[4].name, "head.weight");
  EXPECT_THROW(model.parameter("fc2.weight"), ValueError);
}

TEST(Model, HeapModelViewsAndAlignment) {
  Model<MnistMlp> model;
  EXPECT_EQ(model.parameters().size(), 235146u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(model.parameters().data()) % 64, 0u);
  std::size_t next = 0;
  for (auto&& p : model.named_parameters()) {
    EXPECT_EQ(p.data(), model.parameters().data() + next) << p.name;
    EXPECT_EQ(p.grad(), model.gradients().data() + next) << p.name;
    next += p.size();
  }
  EXPECT_EQ(next, model.parameters().size());
}

TEST(Model, NoBuffersForTheseNets) {
  Model<Contract> a;
  EXPECT_EQ(a.named_buffers().size(), 0u);
  EXPECT_TRUE(a.named_buffers().begin() == a.named_buffers().end());
  Model<MultiTask> b;
  EXPECT_EQ(b.named_buffers().size(), 0u);
  Model<ResBlocks> c;
  EXPECT_EQ(c.named_buffers().size(), 0u);
  EXPECT_EQ(c.buffer_values().size(), 0u);
}

Strings module_names(const auto& modules) {
  Strings out;
  for (const auto& m : modules) out.push_back(m.name);
  return out;
}
Strings module_kinds(const auto& modules) {
  Strings out;
  for (const auto& m : modules) out.emplace_back(m.kind);
  return out;
}

TEST(Model, NamedModulesInPyTorchOrder) {
  Model<Contract> model;
  const auto modules = model.named_modules();
  EXPECT_EQ(module_names(modules), (Strings{"", "fc1", "1", "2", "2.fc2", "2.1", "head"}));
  EXPECT_EQ(module_kinds(modules), (Strings{"Sequential", "Linear", "ReLU", "Residual", "Linear", "ReLU", "Linear"}));
  EXPECT_EQ(module_names(model.children()), (Strings{"fc1", "1", "2", "head"}));
  EXPECT_EQ(module_kinds(model.children()), (Strings{"Linear", "ReLU", "Residual", "Linear"}));
}

TEST(Model, NamedModulesOfHelpers) {
  Model<DynamicMlp> dyn;  // functional activations are not modules
  EXPECT_EQ(module_names(dyn.named_modules()),
            (Strings{"", "layers", "layers.0", "layers.1", "layers.2", "layers.3"}));
  EXPECT_EQ(module_kinds(dyn.named_modules())[1], "ModuleList");

  Model<MultiTask> mt;  // Functional<ReLU> is not a module either
  EXPECT_EQ(module_names(mt.named_modules()), (Strings{"", "shared", "heads", "heads.classify", "heads.regress"}));
  EXPECT_EQ(module_kinds(mt.named_modules())[2], "ModuleDict");
  EXPECT_EQ(module_names(mt.children()), (Strings{"shared", "heads"}));

  Model<MnistMlp> mnist;
  EXPECT_EQ(module_names(mnist.named_modules()),
            (Strings{"", "net", "net.0", "net.1", "net.2", "net.3", "net.4"}));

  Model<FunctionalNet> fn;
  EXPECT_EQ(module_names(fn.named_modules()), (Strings{"", "0", "1", "2"}));

  Model<ResBlocks> rb;
  const Strings rb_names = module_names(rb.named_modules());
  ASSERT_EQ(rb_names.size(), 1u + 4u * 5u);
  EXPECT_EQ(rb_names[1], "0");
  EXPECT_EQ(rb_names[2], "0.block");
  EXPECT_EQ(rb_names[3], "0.block.0");
  EXPECT_EQ(rb_names[5], "0.block.2");
  EXPECT_EQ(rb_names.back(), "3.block.2");

  Model<NamedProjNet> pr;
  EXPECT_EQ(module_names(pr.named_modules()),
            (Strings{"", "0", "0.proj", "0.body", "0.body.0", "0.body.1", "0.body.2", "1"}));
}

TEST(Model, ApplyVisitsChildrenBeforeParents) {
  Model<Contract> model;
  Strings seen;
  model.apply([&](auto m) { seen.emplace_back(m.name); });
  EXPECT_EQ(seen, (Strings{"fc1", "1", "2.fc2", "2.1", "2", "head", ""}));
}

// ---- reference forward in double ---------------------------------------------------

std::vector<double> linear_ref(const std::vector<double>& x, std::size_t rows, std::size_t in, std::size_t out,
                               std::span<const float> w, std::span<const float> b) {
  std::vector<double> y(rows * out);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double acc = b.empty() ? 0.0 : double(b[o]);
      for (std::size_t i = 0; i < in; ++i) acc += x[r * in + i] * double(w[o * in + i]);
      y[r * out + o] = acc;
    }
  return y;
}
void relu_ref(std::vector<double>& v) {
  for (auto& e : v) e = e > 0 ? e : 0;
}
std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

std::vector<float> random_values(std::size_t n, unsigned seed_value, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed_value);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

std::vector<double> contract_ref(Model<Contract>& m, const std::vector<float>& x, std::size_t rows) {
  auto p = [&](const char* name) { return std::span<const float>(m.parameter(name).span()); };
  std::vector<double> h = linear_ref({x.begin(), x.end()}, rows, 3, 16, p("fc1.weight"), p("fc1.bias"));
  relu_ref(h);
  std::vector<double> body = linear_ref(h, rows, 16, 16, p("2.fc2.weight"), p("2.fc2.bias"));
  relu_ref(body);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] += body[i];
  return linear_ref(h, rows, 16, 1, p("head.weight"), p("head.bias"));
}

TEST(Model, ContractSnippetRuns) {
  Model<Contract> model;
  std::size_t count = 0;
  for (auto&& p : model.named_parameters()) {
    if (count == 0) {
      EXPECT_EQ(p.name, "fc1.weight");
    }
    float* d = p.data();
    (void)d;
    count += p.size();
  }
  EXPECT_EQ(count, 353u);
  Batch<3> x(5);
  EXPECT_EQ(x.rows(), 5u);
  for (std::size_t i = 0; i < 15; ++i) x.data()[i] = 0.1f * float(i) - 0.6f;
  Batch<1> y = model(x);
  EXPECT_EQ(y.rows(), 5u);
  const auto ref = contract_ref(model, {x.begin(), x.end()}, 5);
  EXPECT_TRUE(all_close("contract", y.values(), to_float(ref), forward_tolerance));
}

TEST(Model, EvalForwardBatchOneAndThousand) {
  Model<Contract> model{seed(11)};
  model.eval();
  for (std::size_t rows : {1u, 1000u}) {
    const auto x = random_values(rows * 3, unsigned(rows));
    const Batch<1> y = model(Batch<3>(rows, x));
    ASSERT_EQ(y.rows(), rows);
    EXPECT_TRUE(all_close("rows=" + std::to_string(rows), y.values(), to_float(contract_ref(model, x, rows)),
                          forward_tolerance));
  }
  // Odd widths, batch 1 and 1000, against the same net in training mode.
  Model<OddNet> odd{seed(5)};
  for (std::size_t rows : {1u, 1000u}) {
    const auto x = random_values(rows * 5, 7 + unsigned(rows));
    odd.train();
    const Batch<7> train_out = odd(Batch<5>(rows, x));
    odd.eval();
    const Batch<7> eval_out = odd(Batch<5>(rows, x));
    EXPECT_TRUE(all_close("odd rows=" + std::to_string(rows), eval_out.values(), train_out.values(),
                          Tolerance{1e-6, 1e-6}));
  }
}

TEST(Model, ProjectedResidualForward) {
  Model<ProjNet> model{seed(9)};
  const std::size_t rows = 7;
  const auto x = random_values(rows * 5, 21);
  const std::vector<double> xd(x.begin(), x.end());
  auto p = [&](const char* name) { return std::span<const float>(model.parameter(name).span()); };
  const auto proj = linear_ref(xd, rows, 5, 13, p("0.0.weight"), {});
  auto body = linear_ref(xd, rows, 5, 13, p("0.1.0.weight"), p("0.1.0.bias"));
  relu_ref(body);
  body = linear_ref(body, rows, 13, 13, p("0.1.2.weight"), p("0.1.2.bias"));
  std::vector<double> h(rows * 13);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = proj[i] + body[i];
  const auto ref = to_float(linear_ref(h, rows, 13, 37, p("1.weight"), p("1.bias")));
  for (bool training : {true, false}) {
    model.train(training);
    const Batch<37> y = model(Batch<5>(rows, x));
    EXPECT_TRUE(all_close(training ? "train" : "eval", y.values(), ref, forward_tolerance));
  }
}

TEST(Model, SubmoduleRunsTheEncoderAlone) {
  Model<Autoencoder> model{seed(4)};
  const std::size_t rows = 6;
  const auto x = random_values(rows * 20, 33);
  auto p = [&](const char* name) { return std::span<const float>(model.parameter(name).span()); };
  auto h = linear_ref({x.begin(), x.end()}, rows, 20, 64, p("encoder.0.weight"), p("encoder.0.bias"));
  relu_ref(h);
  const auto code_ref = to_float(linear_ref(h, rows, 64, 4, p("encoder.2.weight"), p("encoder.2.bias")));
  const auto first_ref = to_float(linear_ref({x.begin(), x.end()}, rows, 20, 64, p("encoder.0.weight"),
                                             p("encoder.0.bias")));
  for (bool training : {true, false}) {
    model.train(training);
    auto encoder = model.submodule<"encoder">();
    static_assert(decltype(encoder)::in_features == 20 && decltype(encoder)::out_features == 4);
    const Batch<4> code = encoder(Batch<20>(rows, x));
    EXPECT_TRUE(all_close("encoder", code.values(), code_ref, forward_tolerance));
    // A child of the child, by its position.
    const Batch<64> first = encoder.submodule<"0">()(Batch<20>(rows, x));
    EXPECT_TRUE(all_close("encoder.0", first.values(), first_ref, forward_tolerance));
  }
  // The decoder alone, fed the code, gives the model's output.
  model.eval();
  const Batch<20> whole = model(Batch<20>(rows, x));
  const Batch<20> decoded = model.submodule<"decoder">()(model.submodule<"encoder">()(Batch<20>(rows, x)));
  EXPECT_TRUE(all_close("decoder(encoder(x))", decoded.values(), whole.values(), Tolerance{1e-6, 1e-6}));
}

TEST(Model, ApplyCanReinitialiseEveryLinear) {
  Model<FunctionalNet> model{seed(1)};
  std::size_t linears = 0;
  model.apply([&](auto m) {
    using L = typename decltype(m)::layer;
    if constexpr (is_linear<L>) {
      ++linears;
      for (float& b : m.bias().values) b = 0.0f;
      for (float& w : m.weight().values) w = 1.0f / float(m.fan_in());
      EXPECT_EQ(m.weight().size(), m.fan_in() * m.fan_out());
    }
  });
  EXPECT_EQ(linears, 3u);
  for (float v : model.parameter("1.bias").span()) EXPECT_EQ(v, 0.0f);
  for (float v : model.parameter("1.weight").span()) EXPECT_EQ(v, 1.0f / 13.0f);
  for (float v : model.parameter("2.weight").span()) EXPECT_EQ(v, 1.0f / 37.0f);
}

TEST(Model, BareLayerAtTheRoot) {
  Model<TinyLinear> model;
  EXPECT_EQ(module_names(model.named_modules()), Strings{""});
  EXPECT_EQ(module_kinds(model.named_modules()), Strings{"Linear"});
  EXPECT_TRUE(model.children().empty());
  EXPECT_EQ(model.named_parameters()[0].name, "weight");
  EXPECT_EQ(model.named_parameters()[1].name, "bias");
}

// A pipeline may start with a layer that adopts its input's width.
using ActivationFirst = Sequential<Tanh, Linear<5, 13>, Functional<ReLU>, Linear<13, 37>>;
static_assert(ActivationFirst::in_features == 5 && ActivationFirst::out_features == 37);
static_assert(spec_is(ActivationFirst::params[0], "1.weight", {13, 5}, 0));
static_assert(spec_is(ActivationFirst::params[2], "2.weight", {37, 13}, 78));

TEST(Model, LivesOnTheStackAndInAStatic) {
  static Model<Contract> in_static{seed(3)};
  Model<Contract> on_stack{seed(3)};
  EXPECT_TRUE(std::equal(in_static.parameters().begin(), in_static.parameters().end(),
                         on_stack.parameters().begin()));
  // Inline storage: the parameters are inside the object.
  const auto* begin = reinterpret_cast<const char*>(&on_stack);
  const auto* p = reinterpret_cast<const char*>(on_stack.parameters().data());
  EXPECT_TRUE(p >= begin && p + 353 * sizeof(float) <= begin + sizeof(on_stack));
  Model<MnistMlp> heap;
  const auto* hb = reinterpret_cast<const char*>(&heap);
  const auto* hp = reinterpret_cast<const char*>(heap.parameters().data());
  EXPECT_FALSE(hp >= hb && hp < hb + sizeof(heap));
}

TEST(Model, HeadsInEvalModeOverManyTiles) {
  Model<MultiTask> model{seed(12)};
  const std::size_t rows = 1000;
  const Batch<16> x(rows, random_values(rows * 16, 77));
  model.train();
  auto train_out = model(x);
  const Batch<10> classify_train = train_out.get<"classify">().clone();
  const Batch<1> regress_train = train_out.get<"regress">().clone();
  model.eval();
  auto eval_out = model(x);
  const auto classify = eval_out.get<"classify">();
  const auto regress = eval_out.get<"regress">();
  EXPECT_TRUE(all_close("classify", {classify.data(), classify.size()}, classify_train.values(),
                        Tolerance{1e-6, 1e-6}));
  EXPECT_TRUE(all_close("regress", {regress.data(), regress.size()}, regress_train.values(), Tolerance{1e-6, 1e-6}));
  // And against a reference for the last row.
  auto p = [&](const char* name) { return std::span<const float>(model.parameter(name).span()); };
  const std::vector<float> last(x.data() + (rows - 1) * 16, x.data() + rows * 16);
  auto h = linear_ref({last.begin(), last.end()}, 1, 16, 32, p("shared.weight"), p("shared.bias"));
  relu_ref(h);
  const auto r = linear_ref(h, 1, 32, 1, p("heads.regress.weight"), p("heads.regress.bias"));
  EXPECT_NEAR(regress(rows - 1, 0), r[0], 1e-5);
}

// ---- initialisation -------------------------------------------------------------

using InitNet = Sequential<Linear<5, 13>, ReLU, Linear<13, 37>, Tanh, Linear<37, 784, false>, Named<"big", Linear<784, 37>>>;

TEST(Model, DefaultInitIsPyTorchsUniformBound) {
  Model<InitNet> model{seed(2)};
  for (auto&& p : model.named_parameters()) {
    const std::size_t fan_in = p.spec->rank == 2 ? p.shape()[1] : 0;
    const std::size_t in = fan_in != 0 ? fan_in
                           : std::string(p.name) == "0.bias" ? 5
                           : std::string(p.name) == "2.bias" ? 13
                                                             : 784;  // big.bias
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    float max_abs = 0.0f;
    double sum = 0.0;
    for (float v : p.span()) {
      EXPECT_LE(std::fabs(v), bound) << p.name;
      max_abs = std::max(max_abs, std::fabs(v));
      sum += v;
    }
    // Spread over the interval (not all zero or constant).
    if (p.size() >= 37) {
      EXPECT_GT(max_abs, 0.8f * bound) << p.name;
    }
    if (p.size() >= 200) {
      EXPECT_LT(std::fabs(sum / double(p.size())), 0.2 * bound) << p.name;
    }
    std::vector<float> sorted(p.span().begin(), p.span().end());
    std::sort(sorted.begin(), sorted.end());
    EXPECT_GT(std::unique(sorted.begin(), sorted.end()) - sorted.begin(), std::ptrdiff_t(p.size() * 9 / 10)) << p.name;
  }
}

TEST(Model, SameSeedSameParametersOtherSeedOther) {
  auto bits = [](auto& m) {
    std::vector<float> v(m.parameters().begin(), m.parameters().end());
    return v;
  };
  Model<InitNet> a{seed(42)}, b{seed(42)}, c{seed(43)};
  const auto va = bits(a), vb = bits(b), vc = bits(c);
  EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0);
  EXPECT_NE(va, vc);
  std::size_t same = 0;
  for (std::size_t i = 0; i < va.size(); ++i) same += va[i] == vc[i];
  EXPECT_LT(same, va.size() / 100);
  // The default seed is 0.
  Model<InitNet> d, e{seed(0)};
  EXPECT_EQ(bits(d), bits(e));
  // Heap-stored models too.
  Model<MnistMlp> m1{seed(8)}, m2{seed(8)}, m3{seed(9)};
  EXPECT_TRUE(std::equal(m1.parameters().begin(), m1.parameters().end(), m2.parameters().begin()));
  EXPECT_FALSE(std::equal(m1.parameters().begin(), m1.parameters().end(), m3.parameters().begin()));
}

TEST(Model, NewModelIsInTrainingModeWithZeroGradients) {
  Model<Contract> m;
  EXPECT_TRUE(m.is_training());
  for (float g : m.gradients()) EXPECT_EQ(g, 0.0f);
  m.eval();
  EXPECT_FALSE(m.is_training());
  m.train();
  EXPECT_TRUE(m.is_training());
  m.train(false);
  EXPECT_FALSE(m.is_training());
}

// ---- copies -------------------------------------------------------------------

template <class Net>
void expect_deep_copies() {
  Model<Net> a{seed(3)};
  a.freeze(std::string(Net::params[0].name.view()));
  a.eval();
  Model<Net> b = a;
  EXPECT_NE(b.parameters().data(), a.parameters().data());
  EXPECT_NE(b.gradients().data(), a.gradients().data());
  EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  EXPECT_FALSE(b.is_training());
  EXPECT_FALSE(b.named_parameters()[0].requires_grad());
  EXPECT_TRUE(b.named_parameters()[1].requires_grad());
  EXPECT_EQ(b.named_parameters()[0].data(), b.parameters().data());

  const float before = b.parameters()[0];
  a.parameters()[0] += 1.0f;
  a.gradients()[1] = 5.0f;
  EXPECT_EQ(b.parameters()[0], before);
  EXPECT_EQ(b.gradients()[1], 0.0f);
  b.parameters()[2] = 7.0f;
  EXPECT_NE(a.parameters()[2], 7.0f);

  Model<Net> c{seed(99)};
  c = a;
  EXPECT_NE(c.parameters().data(), a.parameters().data());
  EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
  a.parameters()[3] = 11.0f;
  EXPECT_NE(c.parameters()[3], 11.0f);
}

TEST(Model, CopiesAreDeep) {
  expect_deep_copies<Contract>();
  expect_deep_copies<MnistMlp>();
}

TEST(Model, CopiesRunTheirOwnForward) {
  Model<Contract> a{seed(6)};
  a.eval();
  Model<Contract> b = a;
  const auto x = random_values(4 * 3, 1);
  const Batch<1> ya = a(Batch<3>(4, x));
  const Batch<1> yb = b(Batch<3>(4, x));
  EXPECT_TRUE(std::equal(ya.begin(), ya.end(), yb.begin()));
  b.parameter("head.bias").data()[0] += 1.0f;
  const Batch<1> yb2 = b(Batch<3>(4, x));
  const Batch<1> ya2 = a(Batch<3>(4, x));
  for (std::size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(ya2(r, 0), ya(r, 0));
    EXPECT_NEAR(yb2(r, 0), ya(r, 0) + 1.0f, 1e-5f);
  }
}

// ---- freezing -------------------------------------------------------------------

using FreezeNet = Sequential<Named<"fc1", Linear<5, 13>>, ReLU, Named<"fc10", Linear<13, 13>>,
                             Named<"enc", Sequential<Linear<13, 37>, Tanh, Linear<37, 5>>>>;

std::vector<bool> flags(Model<FreezeNet>& m) {
  std::vector<bool> out;
  for (auto&& p : m.named_parameters()) out.push_back(p.requires_grad());
  return out;
}

TEST(Model, FreezeMatchesWholeDottedComponents) {
  Model<FreezeNet> m;
  // fc1.weight fc1.bias fc10.weight fc10.bias enc.0.weight enc.0.bias enc.2.weight enc.2.bias
  EXPECT_EQ(m.freeze("fc1"), 2u);
  EXPECT_EQ(flags(m), (std::vector<bool>{false, false, true, true, true, true, true, true}));
  EXPECT_FALSE(m.parameter("fc1.weight").requires_grad());
  EXPECT_TRUE(m.parameter("fc10.weight").requires_grad());
  // The optimizers' view sees the same flags.
  const ParameterView view = m.parameter_view();
  ASSERT_EQ(view.tensors.size(), 8u);
  EXPECT_FALSE(view.tensors[0].requires_grad);
  EXPECT_FALSE(view.tensors[1].requires_grad);
  EXPECT_TRUE(view.tensors[2].requires_grad);
  EXPECT_EQ(view.tensors[2].offset, 78u);
  EXPECT_EQ(view.size, FreezeNet::num_params);

  EXPECT_EQ(m.unfreeze("fc1"), 2u);
  EXPECT_EQ(m.freeze("enc.2"), 2u);
  EXPECT_EQ(flags(m), (std::vector<bool>{true, true, true, true, true, true, false, false}));
  EXPECT_EQ(m.unfreeze(), 8u);
  EXPECT_EQ(m.freeze("fc10.bias"), 1u);
  EXPECT_EQ(flags(m), (std::vector<bool>{true, true, true, false, true, true, true, true}));
  m.unfreeze();
  EXPECT_EQ(m.freeze("enc"), 4u);
  m.unfreeze();
}

TEST(Model, FreezeUnknownPrefixThrowsAndChangesNothing) {
  Model<FreezeNet> m;
  m.freeze("fc10");
  const auto before = flags(m);
  EXPECT_THROW(m.freeze("nope"), ValueError);
  EXPECT_THROW(m.freeze("fc"), ValueError);    // not a whole component of any name
  EXPECT_THROW(m.freeze("fc1."), ValueError);  // nor is this
  EXPECT_THROW(m.freeze("en"), ValueError);
  try {
    m.freeze("decoder");
    ADD_FAILURE() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("decoder"), std::string::npos) << e.what();
  }
  EXPECT_EQ(flags(m), before);
}

TEST(Model, FreezeThroughParamRef) {
  Model<Contract> m;
  m.parameter("2.fc2.weight").requires_grad(false);
  EXPECT_FALSE(m.named_parameters()[2].requires_grad());
  EXPECT_FALSE(m.parameter_view().tensors[2].requires_grad);
  EXPECT_TRUE(m.named_parameters()[3].requires_grad());
  EXPECT_EQ(m.freeze("2"), 2u);  // the residual's two tensors
  EXPECT_FALSE(m.named_parameters()[3].requires_grad());
  EXPECT_TRUE(m.named_parameters()[0].requires_grad());
}

// ---- Batch, Tensor, Vec, Labels ------------------------------------------------------

TEST(Batch, ZeroInitialisedAndAligned) {
  Batch<5> b(3);
  EXPECT_EQ(b.rows(), 3u);
  EXPECT_EQ(b.size(), 15u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u);
  for (float v : b) EXPECT_EQ(v, 0.0f);
  // Also when the memory is recycled from an earlier batch.
  {
    Batch<5> dirty(3);
    for (float& v : dirty) v = 9.0f;
  }
  Batch<5> again(3);
  for (float v : again) EXPECT_EQ(v, 0.0f);

  Tensor<1, 28, 28> t(2);
  static_assert(Tensor<1, 28, 28>::row_size == 784);
  EXPECT_EQ(t.size(), 1568u);
  EXPECT_EQ(t.rows(), 2u);
  for (float v : t) EXPECT_EQ(v, 0.0f);

  Batch<13> empty(0);
  EXPECT_EQ(empty.rows(), 0u);
  EXPECT_EQ(empty.size(), 0u);
  Batch<13> default_constructed;
  EXPECT_EQ(default_constructed.rows(), 0u);
}

TEST(Batch, ValuesConstructor) {
  const Batch<3> b(2, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(b(0, 0), 1.0f);
  EXPECT_EQ(b(1, 2), 6.0f);
  EXPECT_EQ(b.row(1)[0], 4.0f);
  try {
    const Batch<3> bad(2, {1, 2, 3, 4, 5});
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find('6'), std::string::npos) << what;  // expected count
    EXPECT_NE(what.find('5'), std::string::npos) << what;  // found count
    EXPECT_NE(what.find("got 5"), std::string::npos) << what;
  }
  const std::vector<float> seven(7, 1.0f);
  try {
    const Batch<13> bad(1, seven);
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("13"), std::string::npos) << what;
    EXPECT_NE(what.find('7'), std::string::npos) << what;
  }
  EXPECT_THROW((Tensor<1, 28, 28>(1, std::vector<float>(783))), ShapeError);
  EXPECT_NO_THROW((Tensor<1, 28, 28>(1, std::vector<float>(784))));
  static_assert(std::is_base_of_v<Error, ShapeError> && std::is_base_of_v<std::exception, Error>);
}

TEST(Batch, CopyAndMove) {
  Batch<5> a(2, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  Batch<5> b = a;  // deep
  EXPECT_NE(b.data(), a.data());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  a(0, 0) = 100.0f;
  EXPECT_EQ(b(0, 0), 1.0f);

  const float* storage = b.data();
  Batch<5> c = std::move(b);
  EXPECT_EQ(c.data(), storage);
  EXPECT_EQ(c.rows(), 2u);
  EXPECT_EQ(b.rows(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.data(), nullptr);

  Batch<5> d(7);
  d = c;  // copy assignment resizes
  EXPECT_EQ(d.rows(), 2u);
  EXPECT_TRUE(std::equal(c.begin(), c.end(), d.begin()));
  EXPECT_NE(d.data(), c.data());

  Batch<5> e(1);
  e = std::move(d);
  EXPECT_EQ(e.rows(), 2u);
  EXPECT_EQ(e(1, 4), 10.0f);
  EXPECT_EQ(d.rows(), 0u);  // NOLINT(bugprone-use-after-move)

  Batch<5>& self = e;
  e = self;
  EXPECT_EQ(e(1, 4), 10.0f);
}

TEST(Batch, VecAndLabels) {
  static_assert(Vec<5>::size() == 5 && Vec<5>::rows() == 1 && Vec<5>::row_size == 5);
  static_assert(alignof(Vec<13>) == 64);
  static_assert(sizeof(Vec<37>) >= 37 * sizeof(float));
  static_assert(RowsOf<Vec<5>, 5> && RowsOf<Batch<5>, 5> && RowsOf<BatchView<5>, 5> && !RowsOf<Batch<5>, 13>);
  Vec<13> v;
  for (std::size_t i = 0; i < 13; ++i) EXPECT_EQ(v[i], 0.0f);
  v[12] = 2.5f;
  EXPECT_EQ(v.data()[12], 2.5f);

  Labels l{3, 0, 4};
  EXPECT_EQ(l.rows(), 3u);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l[2], 4);
  l[0] = 1;
  EXPECT_EQ(l.data()[0], 1);
  Labels z(5);
  EXPECT_EQ(z.rows(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(z[i], 0);
  EXPECT_EQ(Labels{}.rows(), 0u);
}

// ---- allocations in the forward --------------------------------------------------

TEST(Allocation, CounterWorks) {
  std::size_t n = 0;
  {
    AllocationCounter c;
    auto* p = new std::vector<int>(100);
    n = c.count();
    delete p;
  }
  EXPECT_GE(n, 2u);
}

TEST(Allocation, VecForwardInEvalModeNeverAllocates) {
  Model<Contract> model{seed(1)};
  model.eval();
  Vec<3> x;
  x[0] = 0.5f;
  x[1] = -1.0f;
  x[2] = 2.0f;
  Vec<1> y;
  std::size_t first = 0, later = 0;
  {
    AllocationCounter c;
    y = model(x);  // the first call too: the eval workspace exists with the model
    first = c.count();
  }
  {
    AllocationCounter c;
    for (int i = 0; i < 10; ++i) y = model(x);
    later = c.count();
  }
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(later, 0u);
  const auto ref = contract_ref(model, {0.5f, -1.0f, 2.0f}, 1);
  EXPECT_NEAR(y[0], ref[0], 1e-5);

  Model<OddNet> odd{seed(2)};
  odd.eval();
  Vec<5> xo;
  for (std::size_t i = 0; i < 5; ++i) xo[i] = 0.25f * float(i) - 0.5f;
  std::size_t odd_count = 0;
  float total = 0.0f;
  {
    AllocationCounter c;
    const Vec<7> yo = odd(xo);
    odd_count = c.count();
    for (std::size_t i = 0; i < 7; ++i) total += yo[i];
  }
  EXPECT_EQ(odd_count, 0u);
  EXPECT_NEAR(total, 1.0f, 1e-5f);  // a softmax row
}

TEST(Allocation, ForwardIntoPreallocatedOutputAllocatesNothingAfterTheFirstCall) {
  Model<OddNet> model{seed(3)};
  model.eval();
  for (std::size_t rows : {1u, 5u, 37u, 1000u}) {
    const Batch<5> x(rows, random_values(rows * 5, 40 + unsigned(rows)));
    Batch<7> y(rows);
    model.forward_into(x.data(), y.data(), rows);  // first call
    Batch<7> y2(rows);
    std::size_t n = 0;
    {
      AllocationCounter c;
      model.forward_into(x.data(), y2.data(), rows);
      model.forward_into(x.data(), y2.data(), rows);
      n = c.count();
    }
    EXPECT_EQ(n, 0u) << "rows=" << rows;
    EXPECT_TRUE(std::equal(y.begin(), y.end(), y2.begin())) << "rows=" << rows;
  }
  // Heap-stored parameters, a batch larger than one tile.
  Model<MnistMlp> mnist{seed(4)};
  mnist.eval();
  const std::size_t rows = Model<MnistMlp>::tile_rows + 44;
  const Tensor<1, 28, 28> x(rows, random_values(rows * 784, 5, 0.0f, 1.0f));
  Batch<10> y(rows);
  mnist.forward_into(x.data(), y.data(), rows);
  std::size_t n = 0;
  {
    AllocationCounter c;
    mnist.forward_into(x.data(), y.data(), rows);
    n = c.count();
  }
  EXPECT_EQ(n, 0u);
}

TEST(Allocation, VecForwardInEvalModeOfAHeapModel) {
  Model<MnistMlp> mnist{seed(4)};
  mnist.eval();
  Vec<784> x;
  x[100] = 1.0f;
  std::size_t n = 0;
  {
    AllocationCounter c;
    const Vec<10> y = mnist(x);
    n = c.count();
    (void)y;
  }
  EXPECT_EQ(n, 0u);
}

// DESIGN.md: "a steady-state loop does not touch the heap" — returned batches
// are recycled through the per-thread cache (core/buffer_cache.hpp), and a
// training-mode forward allocates only when the batch is larger than any seen
// before. Each scenario runs on a new thread, so that it starts from an empty
// per-thread cache whatever the tests before it did.

/// Allocations of 5 steady-state forwards of a 64-row batch, in eval and in
/// training mode, after `before` has run on the same (new) thread.
template <class Before>
std::array<std::size_t, 2> steady_state_allocations(Before before) {
  std::array<std::size_t, 2> counts{};
  std::thread worker([&] {
    before();
    Model<Contract> model{seed(1)};
    const Batch<3> x(64, random_values(64 * 3, 2));
    for (bool training : {false, true}) {
      model.train(training);
      { const Batch<1> warm = model(x); }
      AllocationCounter c;
      for (int i = 0; i < 5; ++i) {
        const Batch<1> y = model(x);
        (void)y;
      }
      counts[training ? 1 : 0] = c.count();
    }
  });
  worker.join();
  return counts;
}

TEST(Allocation, SteadyStateBatchForwardDoesNotAllocate) {
  const auto counts = steady_state_allocations([] {});
  EXPECT_EQ(counts[0], 0u) << "eval";
  EXPECT_EQ(counts[1], 0u) << "train";
}

// The same loop after the program has held 8 larger batches at once (a
// validation set, a dataset in memory) and released them: the cache is then
// full of buffers too large for a 64-row output, and a full cache frees the
// buffer given back instead of keeping it, so every later step allocates.
TEST(Allocation, SteadyStateAfterLargerBatchesDoesNotAllocate) {
  const auto counts = steady_state_allocations([] {
    std::vector<Batch<784>> held;
    for (int i = 0; i < 8; ++i) held.emplace_back(256);
  });
  EXPECT_EQ(counts[0], 0u) << "eval: allocations in 5 steady-state forwards";
  EXPECT_EQ(counts[1], 0u) << "train: allocations in 5 steady-state forwards";
}

TEST(Allocation, TrainingVecForwardAllocatesOnlyTheFirstTime) {
  Model<Contract> model{seed(1)};
  model.train();
  Vec<3> v;
  (void)model(v);
  std::size_t n = 0;
  {
    AllocationCounter c;
    for (int i = 0; i < 5; ++i) (void)model(v);
    n = c.count();
  }
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace ctnn::test

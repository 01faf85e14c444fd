// Printing (io/print.hpp): `std::cout << model` against PyTorch 1.13's
// print(model). The `architecture` metadata of every conformance file is
// PyTorch's repr of the PyTorch structure; where a ctnn pipeline has the same
// structure the strings are compared exactly. Also every activation's repr,
// ModuleList/ModuleDict nesting and indentation, the "mode: eval" marker and
// summary(model).
#include <gtest/gtest.h>

#include <algorithm>
#include <ratio>
#include <sstream>
#include <string>
#include <vector>

#include "conformance.hpp"
#include "networks.hpp"

namespace ctnn::test {
namespace {

template <class Net>
std::string printed(const Model<Net>& model) {
  std::ostringstream os;
  os << model;
  return os.str();
}

std::string architecture(const std::string& case_name) { return Case(case_name).meta("architecture"); }

/// PyTorch's repr with the root's class name (a user class such as SimpleNet)
/// replaced: a ctnn pipeline's root prints as "Sequential".
std::string with_root_class(std::string repr, const std::string& from, const std::string& to) {
  EXPECT_EQ(repr.rfind(from + "(", 0), 0u) << repr;
  return to + repr.substr(from.size());
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// ---- the conformance architectures ---------------------------------------------------

TEST(Print, SameStructureAsPyTorchPrintsTheSame) {
  // nn.Linear(3, 1) and nn.Sequential(Linear, ReLU, Linear): identical structure and names.
  EXPECT_EQ(printed(Model<TinyLinear>{}), architecture("tiny_linear"));
  EXPECT_EQ(printed(Model<Mlp381>{}), architecture("mlp_3_8_1"));
  EXPECT_EQ(repr<Mlp381>(), architecture("mlp_3_8_1"));
}

// The tutorial models are user classes (SimpleNet, SineNet, MnistMLP,
// Autoencoder, DynamicMLP, MultiTask) whose children are exactly the ctnn
// pipeline's named children; only the root's class name differs, as a ctnn
// root is a Sequential. MnistMLP flattens in forward() and MultiTask applies
// relu functionally, which ctnn's Functional<> mirrors (not printed).
TEST(Print, UserClassesDifferOnlyInTheRootClassName) {
  EXPECT_EQ(printed(Model<SimpleNet>{}), with_root_class(architecture("simplenet"), "SimpleNet", "Sequential"));
  EXPECT_EQ(printed(Model<SineNet>{}), with_root_class(architecture("sinenet"), "SineNet", "Sequential"));
  EXPECT_EQ(printed(Model<MnistMlp>{}), with_root_class(architecture("mnist_mlp"), "MnistMLP", "Sequential"));
  EXPECT_EQ(printed(Model<Autoencoder>{}), with_root_class(architecture("autoencoder"), "Autoencoder", "Sequential"));
  EXPECT_EQ(printed(Model<DynamicMlp>{}), with_root_class(architecture("dynamic_mlp"), "DynamicMLP", "Sequential"));
  EXPECT_EQ(printed(Model<MultiTask>{}), with_root_class(architecture("multitask"), "MultiTask", "Sequential"));
}

// resblocks is `Sequential((0): ResidualBlock((block): Sequential(...)) ...)`:
// the same tree, with PyTorch's user class ResidualBlock where ctnn prints its
// combinator, Residual.
TEST(Print, ResBlocksDifferOnlyInTheBlockClassName) {
  const std::string reference = architecture("resblocks");
  ASSERT_NE(reference.find("(0): ResidualBlock("), std::string::npos);
  EXPECT_EQ(printed(Model<ResBlocks>{}), replace_all(reference, "ResidualBlock(", "Residual("));
}

// seed_residual_mlp's PyTorch class registers fc1, fc2, head and one `act`
// (used twice in forward) at the top level:
//   MLP((fc1): Linear  (fc2): Linear  (head): Linear  (act): ReLU())
// The ctnn pipeline is another tree (fc1, 1: ReLU, 2: Residual(fc2, 1: ReLU),
// head), so the strings cannot match; its Linear lines must.
TEST(Print, SeedResidualMlpHasTheSameLinearLines) {
  const std::string reference = architecture("seed_residual_mlp");
  const std::string ours = printed(Model<SeedResidualMlp>{});
  for (const char* line : {"(fc1): Linear(in_features=3, out_features=16, bias=True)",
                           "(fc2): Linear(in_features=16, out_features=16, bias=True)",
                           "(head): Linear(in_features=16, out_features=1, bias=True)"}) {
    EXPECT_NE(reference.find(line), std::string::npos) << line;
    EXPECT_NE(ours.find(line), std::string::npos) << line << "\n" << ours;
  }
  EXPECT_EQ(ours,
            "Sequential(\n"
            "  (fc1): Linear(in_features=3, out_features=16, bias=True)\n"
            "  (1): ReLU()\n"
            "  (2): Residual(\n"
            "    (fc2): Linear(in_features=16, out_features=16, bias=True)\n"
            "    (1): ReLU()\n"
            "  )\n"
            "  (head): Linear(in_features=16, out_features=1, bias=True)\n"
            ")");
}

// ---- activations: PyTorch 1.13's repr of each module --------------------------------

/// The repr of `Sequential<Linear<5, 13>, A>`, whose line (1) is A's repr.
template <class A>
std::string activation_repr() {
  const std::string all = repr<Sequential<Linear<5, 13>, A>>();
  const std::string head = "Sequential(\n  (0): Linear(in_features=5, out_features=13, bias=True)\n  (1): ";
  const std::string tail = "\n)";
  EXPECT_EQ(all.rfind(head, 0), 0u) << all;
  EXPECT_GE(all.size(), head.size() + tail.size()) << all;
  EXPECT_EQ(all.substr(all.size() - tail.size()), tail) << all;
  return all.substr(head.size(), all.size() - head.size() - tail.size());
}

TEST(Print, EveryActivationAsPyTorch) {
  EXPECT_EQ(activation_repr<Identity>(), "Identity()");
  EXPECT_EQ(activation_repr<ReLU>(), "ReLU()");
  EXPECT_EQ(activation_repr<LeakyReLU<>>(), "LeakyReLU(negative_slope=0.01)");
  EXPECT_EQ((activation_repr<LeakyReLU<std::ratio<1, 5>>>()), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ((activation_repr<LeakyReLU<std::ratio<1, 10>>>()), "LeakyReLU(negative_slope=0.1)");
  // Python's repr of 1/3 is the shortest round-trip form.
  EXPECT_EQ((activation_repr<LeakyReLU<std::ratio<1, 3>>>()), "LeakyReLU(negative_slope=0.3333333333333333)");
  EXPECT_EQ(activation_repr<GELU>(), "GELU(approximate='none')");
  EXPECT_EQ(activation_repr<GELUTanh>(), "GELU(approximate='tanh')");
  EXPECT_EQ(activation_repr<Sigmoid>(), "Sigmoid()");
  EXPECT_EQ(activation_repr<Tanh>(), "Tanh()");
  EXPECT_EQ(activation_repr<SiLU>(), "SiLU()");
  EXPECT_EQ(activation_repr<ELU<>>(), "ELU(alpha=1.0)");
  EXPECT_EQ((activation_repr<ELU<std::ratio<1, 2>>>()), "ELU(alpha=0.5)");  // nn.ELU(alpha=0.5)
  EXPECT_EQ(activation_repr<Softplus<>>(), "Softplus(beta=1, threshold=20)");
  EXPECT_EQ((activation_repr<Softplus<std::ratio<1, 2>>>()), "Softplus(beta=0.5, threshold=20)");
  EXPECT_EQ(activation_repr<Hardtanh<>>(), "Hardtanh(min_val=-1.0, max_val=1.0)");
  EXPECT_EQ((activation_repr<Hardtanh<std::ratio<-1, 2>, std::ratio<1, 2>>>()), "Hardtanh(min_val=-0.5, max_val=0.5)");
  EXPECT_EQ(activation_repr<Softmax>(), "Softmax(dim=-1)");
  EXPECT_EQ(activation_repr<LogSoftmax>(), "LogSoftmax(dim=-1)");
}

TEST(Print, Flatten) {
  EXPECT_EQ(printed(Model<Sequential<Flatten<1, 28, 28>, Linear<784, 10>>>{}),
            "Sequential(\n"
            "  (0): Flatten(start_dim=1, end_dim=-1)\n"
            "  (1): Linear(in_features=784, out_features=10, bias=True)\n"
            ")");
}

TEST(Print, BiasFalseAndNamedActivations) {
  EXPECT_EQ(printed(Model<Sequential<Linear<5, 13, false>, Named<"act", GELUTanh>, Linear<13, 37>>>{}),
            "Sequential(\n"
            "  (0): Linear(in_features=5, out_features=13, bias=False)\n"
            "  (act): GELU(approximate='tanh')\n"
            "  (2): Linear(in_features=13, out_features=37, bias=True)\n"
            ")");
  EXPECT_EQ(printed(Model<Linear<5, 13, false>>{}), "Linear(in_features=5, out_features=13, bias=False)");
}

// ---- ModuleList, ModuleDict, nesting ---------------------------------------------------

TEST(Print, ModuleDictNestedIndentation) {
  using Net = Sequential<
      Named<"trunk", Sequential<Linear<5, 13>, ReLU>>,
      Named<"heads", Heads<Named<"a", Sequential<Linear<13, 37>, Tanh, Linear<37, 7>>>, Named<"b", Linear<13, 1, false>>>>>;
  EXPECT_EQ(printed(Model<Net>{}),
            "Sequential(\n"
            "  (trunk): Sequential(\n"
            "    (0): Linear(in_features=5, out_features=13, bias=True)\n"
            "    (1): ReLU()\n"
            "  )\n"
            "  (heads): ModuleDict(\n"
            "    (a): Sequential(\n"
            "      (0): Linear(in_features=13, out_features=37, bias=True)\n"
            "      (1): Tanh()\n"
            "      (2): Linear(in_features=37, out_features=7, bias=True)\n"
            "    )\n"
            "    (b): Linear(in_features=13, out_features=1, bias=False)\n"
            "  )\n"
            ")");
}

TEST(Print, ModuleListNestedIndentation) {
  // A ModuleList MLP inside a residual inside a named Sequential, three levels deep.
  using Net = Sequential<Named<"stage", Sequential<Residual<Named<"layers", MLPOf<Tanh, 13, 37, 13>>>>>,
                         Named<"out", MLP<13, 5>>>;
  EXPECT_EQ(printed(Model<Net>{}),
            "Sequential(\n"
            "  (stage): Sequential(\n"
            "    (0): Residual(\n"
            "      (layers): ModuleList(\n"
            "        (0): Linear(in_features=13, out_features=37, bias=True)\n"
            "        (1): Linear(in_features=37, out_features=13, bias=True)\n"
            "      )\n"
            "    )\n"
            "  )\n"
            "  (out): ModuleList(\n"
            "    (0): Linear(in_features=13, out_features=5, bias=True)\n"
            "  )\n"
            ")");
}

TEST(Print, RepeatedBlocks) {
  using Net = Repeat<2, Residual<Named<"block", Sequential<Linear<13, 13>, SiLU>>>>;
  EXPECT_EQ(printed(Model<Net>{}),
            "Sequential(\n"
            "  (0): Residual(\n"
            "    (block): Sequential(\n"
            "      (0): Linear(in_features=13, out_features=13, bias=True)\n"
            "      (1): SiLU()\n"
            "    )\n"
            "  )\n"
            "  (1): Residual(\n"
            "    (block): Sequential(\n"
            "      (0): Linear(in_features=13, out_features=13, bias=True)\n"
            "      (1): SiLU()\n"
            "    )\n"
            "  )\n"
            ")");
}

TEST(Print, ContainerWithOnlyFunctionalChildren) {
  // nn.Sequential() with nothing registered prints "Sequential()".
  EXPECT_EQ(printed(Model<Sequential<Functional<Flatten<5>>>>{}), "Sequential()");
  EXPECT_EQ(printed(Model<Sequential<Named<"body", Sequential<Functional<Flatten<5>>>>, Linear<5, 13>>>{}),
            "Sequential(\n"
            "  (body): Sequential()\n"
            "  (1): Linear(in_features=5, out_features=13, bias=True)\n"
            ")");
}

// ---- mode marker ---------------------------------------------------------------------

TEST(Print, EvalMarkerOnlyInEvalMode) {
  Model<Mlp381> model;
  const std::string training = printed(model);
  EXPECT_EQ(training.find("mode: eval"), std::string::npos);
  EXPECT_EQ(training, architecture("mlp_3_8_1"));
  model.eval();
  const std::string evaluating = printed(model);
  EXPECT_EQ(evaluating, training + "\nmode: eval");
  EXPECT_EQ(std::count(evaluating.begin(), evaluating.end(), '\n'), std::count(training.begin(), training.end(), '\n') + 1);
  model.train();
  EXPECT_EQ(printed(model), training);
  model.train(false);
  EXPECT_EQ(printed(model), training + "\nmode: eval");
  // repr of the type alone has no mode.
  EXPECT_EQ(repr<Mlp381>(), training);
}

// ---- summary -------------------------------------------------------------------------

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

struct Leaf {
  std::string name, kind, shape, params;
};

/// Checks that the summary lists `leaves` in this order, one line each, with
/// their type, output shape and parameter count.
void expect_summary_rows(const std::string& text, const std::vector<Leaf>& leaves) {
  const auto lines = lines_of(text);
  std::size_t at = 0;
  for (const Leaf& leaf : leaves) {
    bool found = false;
    for (; at < lines.size(); ++at) {
      const auto w = words_of(lines[at]);
      if (!w.empty() && w[0] == leaf.name) {
        found = true;
        EXPECT_NE(lines[at].find(" " + leaf.kind + " "), std::string::npos) << lines[at];
        EXPECT_NE(lines[at].find(leaf.shape), std::string::npos) << lines[at];
        EXPECT_TRUE(std::find(w.begin(), w.end(), leaf.params) != w.end()) << lines[at];
        ++at;
        break;
      }
    }
    EXPECT_TRUE(found) << "no line (in order) for '" << leaf.name << "' in\n" << text;
  }
}

TEST(Print, SummaryOfTheContractNet) {
  Model<SeedResidualMlp> model;
  const std::string s = summary(model);
  SCOPED_TRACE(s);
  expect_summary_rows(s, {{"fc1", "Linear", "[-1, 16]", "64"},
                          {"1", "ReLU", "[-1, 16]", "0"},
                          {"2.fc2", "Linear", "[-1, 16]", "272"},
                          {"2.1", "ReLU", "[-1, 16]", "0"},
                          {"head", "Linear", "[-1, 1]", "17"}});
  EXPECT_NE(s.find("353"), std::string::npos);
  EXPECT_NE(s.find("total parameters: 353"), std::string::npos);
  // Bytes of the total: 353 floats.
  EXPECT_NE(s.find("1.4 KiB"), std::string::npos);
  // Activation memory per row: 80 floats (see test_core.cpp for the layout).
  EXPECT_NE(s.find("activation memory per row (training): 320 B"), std::string::npos);
  // Only leaves have rows: the residual itself does not.
  for (const auto& line : lines_of(s)) {
    const auto w = words_of(line);
    EXPECT_FALSE(!w.empty() && w[0] == "2") << line;
  }
}

TEST(Print, SummaryOfHeadsAndHelpers) {
  Model<MultiTask> mt;
  const std::string s = summary(mt);
  SCOPED_TRACE(s);
  expect_summary_rows(s, {{"shared", "Linear", "[-1, 32]", "544"},
                          {"heads.classify", "Linear", "[-1, 10]", "330"},
                          {"heads.regress", "Linear", "[-1, 1]", "33"}});
  EXPECT_NE(s.find("total parameters: 907"), std::string::npos);

  Model<DynamicMlp> dyn;
  const std::string d = summary(dyn);
  SCOPED_TRACE(d);
  expect_summary_rows(d, {{"layers.0", "Linear", "[-1, 32]", "416"},
                          {"layers.1", "Linear", "[-1, 16]", "528"},
                          {"layers.2", "Linear", "[-1, 8]", "136"},
                          {"layers.3", "Linear", "[-1, 3]", "27"}});
  EXPECT_NE(d.find("total parameters: 1107"), std::string::npos);
}

}  // namespace
}  // namespace ctnn::test

// The examples of docs/losses.md, compiled and run as a test. The values are
// compared with PyTorch's in tests/data/losses.safetensors (CONFORMANCE.md 8.2).
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "pytorch_reference.hpp"

using namespace ctnn;

using MultiTask = Sequential<Named<"shared", Linear<16, 32>>, Functional<ReLU>,
                             Named<"heads", Heads<Named<"classify", Linear<32, 10>>, Named<"regress", Linear<32, 1>>>>>;

int main() {
  bool ok = true;
  const SafetensorsFile file = SafetensorsFile::read(example::reference_file("losses"));
  const Batch<5> predictions(6, file.to_f32("predictions"));   // 6 rows of 5
  const Batch<5> regress(6, file.to_f32("target.regress"));
  const Batch<5> binary(6, file.to_f32("target.binary"));
  const Batch<5> log_probs(6, file.to_f32("nll.input"));
  Labels classes(6);
  const std::vector<std::int64_t> c = file.to_i64("target.class");
  std::copy(c.begin(), c.end(), classes.data());

  auto check = [&](const std::string& name, const Loss& loss) {
    ok = example::matches_pytorch("losses", name, std::vector<float>{loss.item()}) && ok;
  };

  // [functors]
  MSELoss mse;                                         // nn.MSELoss()
  L1Loss l1;                                           // nn.L1Loss()
  SmoothL1Loss smooth_l1{.beta = 0.5f};                // nn.SmoothL1Loss(beta=0.5)
  HuberLoss huber{.delta = 2.0f};                      // nn.HuberLoss(delta=2.0)
  CrossEntropyLoss ce;                                 // nn.CrossEntropyLoss()
  CrossEntropyLoss ce_smooth{.label_smoothing = 0.1f}; // nn.CrossEntropyLoss(label_smoothing=0.1)
  NLLLoss nll;                                         // nn.NLLLoss()
  BCEWithLogitsLoss bce;                               // nn.BCEWithLogitsLoss()
  MSELoss mse_sum{.reduction = Reduction::sum};        // nn.MSELoss(reduction="sum")
  // [/functors]

  // [values]
  Loss loss = mse(predictions, regress);               // loss = loss_fn(predictions, target)
  float value = loss.item();                           // loss.item()
  // [/values]
  std::cout << "mse = " << value << " (in double: " << loss.value() << ")\n";
  check("mse.mean.value", loss);
  check("l1.mean.value", l1(predictions, regress));
  check("smooth_l1_beta0.5.mean.value", smooth_l1(predictions, regress));
  check("huber_delta2.mean.value", huber(predictions, regress));
  // [classes]
  Labels targets{0, 4, 1, 3, 2, 0};                    // torch.tensor([0, 4, 1, 3, 2, 0]): class indices, int64
  Loss ce_loss = ce(predictions, targets);             // predictions are logits, one row per sample
  // [/classes]
  std::cout << "cross entropy with hand-written labels = " << ce_loss.item() << '\n';
  check("cross_entropy.mean.value", ce(predictions, classes));
  check("cross_entropy_ls0.1.mean.value", ce_smooth(predictions, classes));
  check("nll.mean.value", nll(log_probs, classes));
  check("bce_with_logits.mean.value", bce(predictions, binary));
  check("mse.sum.value", mse_sum(predictions, regress));

  // [gradient]
  Batch<5> grad(6);                                    // dLoss/dpredictions, as predictions.grad after backward()
  const double v = mse.compute(predictions.data(), regress.data(), predictions.rows(), 5, grad.data());
  // [/gradient]
  (void)v;
  ok = example::matches_pytorch("losses", "mse.mean.grad", grad.values()) && ok;

  // [errors]
  try {
    mse(predictions, Batch<5>(4));                     // 6 rows of predictions, 4 of targets
  } catch (const ShapeError& e) {
    std::cout << e.what() << '\n';
  }
  try {
    ce(predictions, Labels{0, 1, 2, 3, 5, 0});         // 5 classes: 5 is out of range
  } catch (const ValueError& e) {
    std::cout << e.what() << '\n';
  }
  // mse(predictions, Batch<4>(6)) does not compile: the widths differ.
  // [/errors]

  // [sum]
  Model<MultiTask> model{seed(0)};
  const Batch<16> x(4);
  const Labels labels{1, 7, 3, 0};
  const Batch<1> values(4, {0.5f, -1.0f, 2.0f, 0.0f});
  auto out = model(x);                                 // out = model(x), a dict of heads
  auto total = ce(out.get<"classify">(), labels)       // loss = ce(out["classify"], labels)
               + 0.5f * mse(out.get<"regress">(), values);   //      + 0.5 * mse(out["regress"], values)
  model.zero_grad();
  total.backward();                                    // loss.backward(): through both heads and the trunk
  // [/sum]
  std::cout << "multi-task loss = " << total.item() << "\n";

  // [eval_values]
  model.eval();
  auto scores = model(x);                              // evaluation mode: values only, no backward
  std::cout << "L1 " << l1(scores.get<"regress">(), values).item()
            << ", MSE " << mse(scores.get<"regress">(), values).item() << '\n';
  // [/eval_values]

  // [two_losses]
  Model<Linear<5, 5>> net{seed(1)};
  auto y_hat = net(predictions);
  Batch<5> dy(6), dy_l1(6);                            // each loss's dLoss/dy_hat, added
  const double both = mse.compute(y_hat.data(), regress.data(), 6, 5, dy.data()) +
                      l1.compute(y_hat.data(), regress.data(), 6, 5, dy_l1.data());
  for (std::size_t i = 0; i < dy.size(); ++i) dy.data()[i] += dy_l1.data()[i];
  net.zero_grad();
  net.backward_parameters(dy);                         // (mse(y_hat, t) + l1(y_hat, t)).backward()
  // [/two_losses]
  std::cout << "mse + l1 on one output = " << both << '\n';

  // The same gradient from two forwards, each with its own backward.
  Model<Linear<5, 5>> twin = net;
  twin.zero_grad();
  mse(twin(predictions), regress).backward();
  l1(twin(predictions), regress).backward();
  double worst = 0.0;
  for (std::size_t i = 0; i < net.gradients().size(); ++i)
    worst = std::max(worst, double(std::fabs(net.gradients()[i] - twin.gradients()[i])));
  std::cout << "vs two backward passes: max |grad diff| = " << worst << '\n';
  ok = ok && worst < 1e-6;

  // [metric]
  auto out_net = net(predictions);
  auto train_loss = mse(out_net, regress);
  const double mae = l1.compute(out_net.data(), regress.data(), out_net.rows(), 5, nullptr);   // a value only
  train_loss.backward();                               // still the latest loss on out_net
  // [/metric]
  std::cout << "training loss " << train_loss.item() << ", L1 metric " << mae << '\n';

  return ok ? 0 : 1;
}

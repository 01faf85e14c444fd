// The examples of docs/training-loop.md, compiled and run as a test.
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iostream>

using namespace ctnn;

using Net = Sequential<Linear<3, 16>, Tanh, Linear<16, 1>>;

int main() {
  bool ok = true;
  // y = x0 - 2 x1 + 0.5 x2, 64 samples.
  Generator data{seed(3)};
  Batch<3> X(64);
  Batch<1> y(64);
  for (std::size_t r = 0; r < X.rows(); ++r) {
    for (std::size_t c = 0; c < 3; ++c) X(r, c) = data.uniform(-1.0f, 1.0f);
    y(r, 0) = X(r, 0) - 2.0f * X(r, 1) + 0.5f * X(r, 2);
  }

  // [loop]
  Model<Net> model{seed(0)};                                 // model = Net()
  optim::SGD opt(model, {.lr = 0.1f, .momentum = 0.9f});     // opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
  MSELoss loss_fn;                                           // loss_fn = nn.MSELoss()
  model.train();                                             // model.train()  (a new model already is)
  for (int epoch = 0; epoch < 200; ++epoch) {
    auto y_hat = model(X);                                   // y_hat = model(X)
    auto loss = loss_fn(y_hat, y);                           // loss = loss_fn(y_hat, y)
    opt.zero_grad();                                         // opt.zero_grad()
    loss.backward();                                         // loss.backward()
    opt.step();                                              // opt.step()
    if (epoch % 50 == 0) std::cout << "epoch " << epoch << " loss " << loss.item() << '\n';   // loss.item()
  }
  model.eval();                                              // model.eval()
  Batch<1> prediction = model(X);                            // with torch.no_grad(): prediction = model(X)
  // [/loop]
  const float final_loss = loss_fn(prediction, y).item();
  std::cout << "after 200 epochs: loss " << final_loss << "\n\n";
  ok = ok && final_loss < 1e-2f;

  // [minibatches]
  model.train();
  for (int epoch = 0; epoch < 20; ++epoch) {
    for (std::size_t start = 0; start < X.rows(); start += 16) {   // for xb, yb in DataLoader(..., batch_size=16):
      const std::size_t rows = std::min<std::size_t>(16, X.rows() - start);
      BatchView<3> xb(X.data() + start * 3, rows);           // rows start .. start + rows of X, not copied
      BatchView<1> yb(y.data() + start, rows);
      opt.zero_grad();
      loss_fn(model(xb), yb).backward();
      opt.step();
    }
  }
  // [/minibatches]

  // [accumulate]
  opt.zero_grad();
  for (std::size_t start = 0; start < X.rows(); start += 32) {    // two half batches, one step
    BatchView<3> xb(X.data() + start * 3, 32);
    BatchView<1> yb(y.data() + start, 32);
    auto loss = 0.5f * loss_fn(model(xb), yb);               // (0.5 * loss_fn(model(xb), yb)).backward()
    loss.backward();                                         // gradients add up until zero_grad()
  }
  opt.step();
  // [/accumulate]

  // Two accumulated half batches give the full batch's gradient.
  Model<Net> twin = model;
  twin.zero_grad();
  loss_fn(twin(X), y).backward();
  model.zero_grad();
  for (std::size_t start = 0; start < X.rows(); start += 32)
    (0.5f * loss_fn(model(BatchView<3>(X.data() + start * 3, 32)), BatchView<1>(y.data() + start, 32))).backward();
  double worst = 0.0;
  for (std::size_t i = 0; i < Model<Net>::num_params; ++i)
    worst = std::max(worst, double(std::fabs(model.gradients()[i] - twin.gradients()[i])));
  std::cout << "two accumulated half batches vs one full batch: max |grad diff| = " << worst << '\n';
  ok = ok && worst < 1e-5;

  // [gradients]
  for (auto&& p : model.named_parameters()) {                // for name, p in model.named_parameters():
    double norm = 0.0;
    for (float g : p.grad_span()) norm += double(g) * g;     //     p.grad.norm()
    std::cout << p.name << " grad norm " << std::sqrt(norm) << '\n';
  }
  // [/gradients]

  // [low_level]
  model.train();
  auto out = model(X);
  Batch<1> dy(out.rows());                                   // dLoss/dOutput, here from the loss's own formula
  loss_fn.compute(out.data(), y.data(), out.rows(), 1, dy.data());
  model.zero_grad();
  Batch<3> dx = model.backward(dy);                          // X.requires_grad_(); out.backward(dy); X.grad
  // [/low_level]
  std::cout << "dLoss/dX row 0: " << dx(0, 0) << ' ' << dx(0, 1) << ' ' << dx(0, 2) << "\n\n";

  // [latest_forward]
  auto first = model(BatchView<3>(X.data(), 32));
  auto second = model(BatchView<3>(X.data() + 32 * 3, 32));  // the model now holds this forward only
  try {
    loss_fn(first, BatchView<1>(y.data(), 32)).backward();
  } catch (const Error& e) {
    std::cout << e.what() << '\n';
  }
  // [/latest_forward]
  (void)second;

  // [eval_no_backward]
  model.eval();
  auto evaluated = loss_fn(model(X), y);                     // a value only: evaluated.requires_grad() is false
  try {
    evaluated.backward();
  } catch (const Error& e) {
    std::cout << e.what() << '\n';
  }
  // [/eval_no_backward]
  ok = ok && !evaluated.requires_grad();

  return ok ? 0 : 1;
}

// The tutorial's residual MLP trained on an NVIDIA GPU: the same architecture
// type as on the CPU, copied to the device once, trained there with the
// PyTorch-style loop, copied back and compared with the same training on the
// CPU. Built by nvcc (tests/cuda/meson.build); on a machine without a GPU it
// prints CUDA's reason and exits with 77, which meson reports as skipped.
#include <cmath>
#include <cstdio>
#include <iostream>

#include <ctnn/ctnn.hpp>
#include <ctnn/cuda.hpp>

using namespace ctnn;

using Net = Sequential<Named<"fc1", Linear<3, 16>>, ReLU,
                       Residual<Named<"fc2", Linear<16, 16>>, ReLU>,   // h = relu(fc2(h)) + h
                       Named<"head", Linear<16, 1>>>;

int main() {
  // y = sin(x0) + x1 * x2 on 512 points.
  constexpr std::size_t rows = 512;
  Batch<3> host_x(rows);
  Batch<1> host_y(rows);
  Generator g(seed(1));
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < 3; ++c) host_x(r, c) = g.uniform(-2.0f, 2.0f);
    host_y(r, 0) = std::sin(host_x(r, 0)) + host_x(r, 1) * host_x(r, 2);
  }

  Model<Net> model{seed(0)};
  if (const auto a = cuda::availability(); !a) {
    std::cout << "no CUDA device: " << a.reason << "\n";  // cuda::to_device would throw cuda::Error
    return 77;                                            // meson: skipped
  }
  {
    cuda::Model<Net> gpu = cuda::to_device(model);   // parameters, gradients, flags: one copy each
    std::cout << "device: " << cuda::device_info().name << "\n";
    cuda::Batch<3> x = cuda::to_device(host_x);
    cuda::Batch<1> y = cuda::to_device(host_y);
    cuda::optim::SGD opt(gpu, {.lr = 0.05f, .momentum = 0.9f});   // step() runs on the GPU

    optim::SGD cpu_opt(model, {.lr = 0.05f, .momentum = 0.9f});   // the same training on the CPU
    for (int epoch = 0; epoch < 200; ++epoch) {
      auto loss = cuda::MSELoss{}(gpu(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();

      auto cpu_loss = MSELoss{}(model(host_x), host_y);
      cpu_opt.zero_grad();
      cpu_loss.backward();
      cpu_opt.step();
      if (epoch % 50 == 0 || epoch == 199)
        std::printf("epoch %3d  loss on the GPU %.6f  on the CPU %.6f\n", epoch, loss.item(), cpu_loss.item());
    }

    Model<Net> back = cuda::to_host(gpu);   // a CPU model again: save_safetensors(back, ...) works on it
    double worst = 0.0;
    for (std::size_t i = 0; i < Model<Net>::num_params; ++i)
      worst = std::fmax(worst, std::fabs(double(back.parameters()[i]) - double(model.parameters()[i])));
    std::printf("largest parameter difference GPU vs CPU after 200 steps: %.3g\n", worst);
    return worst < 1e-2 ? 0 : 1;  // rounding differs (FMA, summation order), not the arithmetic
  }
}

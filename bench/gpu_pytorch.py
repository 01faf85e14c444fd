"""PyTorch on the same GPU, for the comparison with bench/gpu_throughput.cu.

The same networks (W1-W5 of bench/workloads.hpp and the width-16/32/64/128
MLPs of five Linear layers), the same batches (2^14 to 2^21 rows, the same
caps), the same timing (3 warm-up calls, then 50 calls, or 10 from 2^19 rows,
between two CUDA events) and the same CSV columns, with path "torch":

  forward      model.eval(), under torch.no_grad()
  train_step   model.train(); loss = MSELoss(model(x), t); opt.zero_grad();
               loss.backward(); opt.step()   (SGD, lr 1e-4)

float32 everywhere, with PyTorch's defaults (TF32 off for matrix products:
torch.backends.cuda.matmul.allow_tf32 is False unless set). Eager mode; no
torch.compile or CUDA graphs.

  python3 bench/gpu_pytorch.py [max_log2_rows=21] [min_log2_rows=14] > torch.csv
"""

import sys

import torch
import torch.nn as nn


class Residual(nn.Module):
    def __init__(self, *body):
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return self.body(x) + x


def wide(w):
    layers = []
    for i in range(5):
        layers.append(nn.Linear(w, w))
        if i < 4:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def w1():
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), Residual(nn.Linear(16, 16), nn.ReLU()), nn.Linear(16, 1))


def w2():
    return nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))


def w3():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def w4():
    return nn.Sequential(*[Residual(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128)) for _ in range(4)])


def w5():
    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024))


WARMUP = 3


def ms_per_call(f, iterations):
    for _ in range(WARMUP):
        f()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        f()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / iterations


def run(name, make, in_features, out_features, max_lg, min_lg):
    torch.manual_seed(0)
    model = make().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    loss_fn = nn.MSELoss()
    for lg in range(min_lg, max_lg + 1):
        rows = 1 << lg
        x = torch.rand(rows, in_features, device="cuda") * 2 - 1
        t = torch.zeros(rows, out_features, device="cuda")
        iterations = 10 if lg >= 19 else 50

        def forward():
            with torch.no_grad():
                model(x)

        def step():
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()

        model.eval()
        f_ms = ms_per_call(forward, iterations)
        model.train()
        t_ms = ms_per_call(step, iterations)
        print(f"{name},{rows},forward,torch,{f_ms:.4f},{rows / (f_ms * 1e-3):.4g}")
        print(f"{name},{rows},train_step,torch,{t_ms:.4f},{rows / (t_ms * 1e-3):.4g}", flush=True)
        del x, t
    del model, opt
    torch.cuda.empty_cache()


def main():
    max_lg = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    min_lg = int(sys.argv[2]) if len(sys.argv) > 2 else 14
    p = torch.cuda.get_device_properties(0)
    print(f"# device: {p.name} (sm_{p.major}{p.minor}, {p.multi_processor_count} SMs); "
          f"torch {torch.__version__}, allow_tf32 {torch.backends.cuda.matmul.allow_tf32}")
    print("network,rows,mode,path,ms,rows_per_s")
    for w in (16, 32, 64, 128):
        run(f"mlp_w{w}x5", lambda w=w: wide(w), w, w, max_lg, min_lg)
    run("w1_residual_mlp", w1, 3, 1, max_lg, min_lg)
    run("w2_sinenet", w2, 1, 1, max_lg, min_lg)
    run("w3_mnist_mlp", w3, 784, 10, min(max_lg, 19), min_lg)
    run("w4_resblocks", w4, 128, 128, min(max_lg, 20), min_lg)
    run("w5_wide1024", w5, 1024, 1024, min(max_lg, 17), min_lg)


if __name__ == "__main__":
    main()

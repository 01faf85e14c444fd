#!/usr/bin/python3
"""PyTorch (eager and TorchScript) on the issue-6 workloads, measured the way
bench_ctnn.cpp measures ctnn: batch-1 latency (independent and chained calls),
forward throughput, one training step, and the sine task.

Run with Debian's interpreter (/usr/bin/python3, python3-torch), pinned to one
core by bench/run.sh. Writes JSON shaped like Google Benchmark's output (one
"median" aggregate per benchmark, times in ns) so that bench/report.py reads
every system the same way.

    /usr/bin/python3 bench/bench_torch.py --out torch.json [--reps 5] [--min-time 0.5]
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)

# Shared with bench/workloads.hpp.
THROUGHPUT_BATCH = 256
THROUGHPUT_BATCH_W5 = 512
TRAIN_BATCH = 256
TRAIN_BATCH_W2 = 200
SINE_LR = 0.05
SINE_TARGET_MSE = 0.02
SINE_MAX_EPOCHS = 20000
CHAIN_GAIN = 1e-3


class ResidualMLP(nn.Module):  # W1, the tutorial's MLP
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 16)
        self.fc2 = nn.Linear(16, 16)
        self.head = nn.Linear(16, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        h = self.act(self.fc1(x))
        h = self.act(self.fc2(h)) + h
        return self.head(h)


class ResBlock(nn.Module):  # one block of W4
    def __init__(self, width=128):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x):
        return x + self.block(x)


class SineNet(nn.Module):  # W2
    def __init__(self, hidden=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


def w3():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def w5():
    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024))


# name, constructor, input width, output width, throughput batch, train batch, classify
WORKLOADS = [
    ("W6", lambda: nn.Linear(3, 1), 3, 1, THROUGHPUT_BATCH, TRAIN_BATCH, False),
    ("W1", ResidualMLP, 3, 1, THROUGHPUT_BATCH, TRAIN_BATCH, False),
    ("W2", SineNet, 1, 1, THROUGHPUT_BATCH, TRAIN_BATCH_W2, False),
    ("W3", w3, 784, 10, THROUGHPUT_BATCH, TRAIN_BATCH, True),
    ("W4", lambda: nn.Sequential(*[ResBlock() for _ in range(4)]), 128, 128, THROUGHPUT_BATCH, TRAIN_BATCH, False),
    ("W5", w5, 1024, 1024, THROUGHPUT_BATCH_W5, TRAIN_BATCH, False),
]


def timed(fn, n):
    c0, r0 = time.process_time_ns(), time.perf_counter_ns()
    fn(n)
    return time.process_time_ns() - c0, time.perf_counter_ns() - r0


def measure(fn, reps, min_time):
    """fn(n) runs n iterations. Calibrates n so one repetition takes about
    min_time seconds (as Google Benchmark does), then returns the median over
    `reps` repetitions of the time per iteration (cpu and real, ns)."""
    fn(3)  # warm up
    n = 1
    while True:
        cpu, real = timed(fn, n)
        if cpu >= 0.1 * min_time * 1e9 or n >= 10**8:
            break
        n *= 10
    n = max(1, int(math.ceil(n * min_time * 1e9 / max(cpu, 1))))
    samples = [timed(fn, n) for _ in range(reps)]
    return summarize(samples, n)


def cv(values):
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def summarize(samples, n):
    """Median time per iteration (cpu, real), the iteration count, and the
    coefficients of variation over the repetitions (cpu, real)."""
    cpu = [s[0] / n for s in samples]
    real = [s[1] / n for s in samples]
    return statistics.median(cpu), statistics.median(real), n, cv(cpu), cv(real)


def record(results, name, cpu, real, n, cv_cpu=0.0, cv_real=0.0, **counters):
    entry = {"name": name, "run_name": name, "run_type": "aggregate", "aggregate_name": "median", "iterations": n,
             "cpu_time": cpu, "real_time": real, "time_unit": "ns"}
    entry.update(counters)
    results.append(entry)
    results.append({"name": name + "_cv", "run_name": name, "run_type": "aggregate", "aggregate_name": "cv",
                    "aggregate_unit": "percentage", "iterations": n, "cpu_time": cv_cpu, "real_time": cv_real,
                    "time_unit": "ns"})
    print(f"{name:32s} {cpu:14.1f} ns cpu {real:14.1f} ns real  x{n}", file=sys.stderr, flush=True)


def inference_module(make, script):
    torch.manual_seed(1)
    m = make().eval()
    if script:
        m = torch.jit.freeze(torch.jit.script(m))
    return m


def training_module(make, script):
    torch.manual_seed(1)
    m = make().train()
    if script:
        m = torch.jit.script(m)
    return m


def bench_workload(results, tag, script, w, reps, min_time):
    name, make, n_in, n_out, tp_batch, train_batch, classify = w
    prefix = f"{tag}/{name}/"
    gen = torch.Generator().manual_seed(7)

    m = inference_module(make, script)
    x1 = torch.rand(1, n_in, generator=gen) * 2 - 1
    with torch.inference_mode():
        def latency(n):
            for _ in range(n):
                m(x1)
        record(results, prefix + "latency", *measure(latency, reps, min_time))

        e0 = torch.zeros(1, n_in)
        e0[0, 0] = 1.0

        def chained(n):
            x = x1
            for _ in range(n):
                y = m(x)
                x = torch.addcmul(x1, y[:, :1], e0, value=CHAIN_GAIN)  # x = x1 + gain * y0 * e0
        record(results, prefix + "chained", *measure(chained, reps, min_time))

        xb = torch.rand(tp_batch, n_in, generator=gen) * 2 - 1

        def throughput(n):
            for _ in range(n):
                m(xb)
        record(results, prefix + "throughput", *measure(throughput, reps, min_time))

    m = training_module(make, script)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    xt = torch.rand(train_batch, n_in, generator=gen) * 2 - 1
    if classify:
        target = torch.arange(train_batch) % n_out
        loss_fn = nn.CrossEntropyLoss()
    else:
        target = torch.rand(train_batch, n_out, generator=gen) * 2 - 1
        loss_fn = nn.MSELoss()

    def train(n):
        for _ in range(n):
            opt.zero_grad()
            loss = loss_fn(m(xt), target)
            loss.backward()
            opt.step()
    record(results, prefix + "train", *measure(train, reps, min_time))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").copy()).reshape(v["shape"])
    return out


def bench_sine(results, tag, script, data_file, reps):
    """The sine task: same data and starting weights as bench_ctnn.cpp."""
    data = read_safetensors(data_file)
    model = SineNet()
    model.load_state_dict({k[len("param."):]: v for k, v in data.items() if k.startswith("param.")})
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    x, t = data["input"], data["target"]
    m = torch.jit.script(model) if script else model
    m.train()
    loss_fn = nn.MSELoss()
    state = {}

    def run(n):
        for _ in range(n):
            model.load_state_dict(initial)
            opt = torch.optim.SGD(m.parameters(), lr=SINE_LR)
            epochs, last = 0, 0.0
            while epochs < SINE_MAX_EPOCHS:
                opt.zero_grad()
                loss = loss_fn(m(x), t)
                loss.backward()
                opt.step()
                epochs += 1
                last = loss.item()
                if last < SINE_TARGET_MSE:
                    break
            state.update(epochs=epochs, final_loss=last)

    run(1)  # warm up (TorchScript profiles its first runs)
    samples = [timed(run, 1) for _ in range(reps)]
    record(results, f"{tag}/sine/task", *summarize(samples, 1), **state)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--sine-data", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                        "sinenet.safetensors"))
    ap.add_argument("--filter", default="", help="only workloads whose name contains this")
    args = ap.parse_args()

    results = []
    for tag, script in (("torch", False), ("torchscript", True)):
        for w in WORKLOADS:
            if args.filter in w[0]:
                bench_workload(results, tag, script, w, args.reps, args.min_time)
        if args.filter in "sine":
            bench_sine(results, tag, script, args.sine_data, args.reps)

    blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line})
    context = {"torch_version": torch.__version__, "num_threads": torch.get_num_threads(), "blas": blas,
               "python": sys.version.split()[0]}
    with open(args.out, "w") as f:
        json.dump({"context": context, "benchmarks": results}, f, indent=1)


if __name__ == "__main__":
    main()

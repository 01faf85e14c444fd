#!/usr/bin/python3
"""Writes docs/performance.md (and the PNG plot) from the results of one
bench/run.sh run: peak.json, ctnn.json, ctnn_threads.json, eigen.json (Google Benchmark JSON),
torch.json (bench_torch.py), compile.json (compile/measure.py) and the run's
meta files (commands.txt, start.txt, loadavg_*.txt).

    /usr/bin/python3 bench/report.py --results build-bench/results --out docs/performance.md \
        --plot docs/performance.png [--time cpu|real] [--note TEXT]
"""
import argparse
import json
import os
import platform
import re
import subprocess

SYSTEMS = [("ctnn", "ctnn"), ("torch", "PyTorch eager"), ("torchscript", "TorchScript"), ("eigen", "Eigen (run-time)")]
PEERS = SYSTEMS[1:]
WORKLOADS = ["W6", "W1", "W2", "W3", "W4", "W5"]
WORKLOAD_TEXT = {
    "W6": "`Linear<3,1>`",
    "W1": "residual MLP 3→16→16(+skip)→1",
    "W2": "SineNet 1→64→64→1 Tanh",
    "W3": "MNIST MLP 784→256→128→10",
    "W4": "4 residual blocks, width 128",
    "W5": "1024→1024→1024→1024 ReLU",
}
# Kept in step with bench/workloads.hpp.
FLOPS = {"W6": 2.0 * 3, "W1": 2.0 * (3 * 16 + 16 * 16 + 16), "W2": 2.0 * (64 + 64 * 64 + 64),
         "W3": 2.0 * (784 * 256 + 256 * 128 + 128 * 10), "W4": 2.0 * 8 * 128 * 128, "W5": 2.0 * 3 * 1024 * 1024}
FIRST_LAYER = {"W6": 3 * 1, "W1": 3 * 16, "W2": 64, "W3": 784 * 256, "W4": 128 * 128, "W5": 1024 * 1024}
TRAIN_FLOPS = {w: 3.0 * FLOPS[w] - 2.0 * FIRST_LAYER[w] for w in WORKLOADS}
PARAMS = {"W6": 4, "W1": 353, "W2": 64 * 2 + 64 * 65 + 65, "W3": 785 * 256 + 257 * 128 + 129 * 10,
          "W4": 8 * 129 * 128, "W5": 3 * 1025 * 1024}
TP_BATCH = {w: 512 if w == "W5" else 256 for w in WORKLOADS}
TRAIN_BATCH = {w: 200 if w == "W2" else 256 for w in WORKLOADS}


# ---- loading ---------------------------------------------------------------

UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# bench_ctnn's ctnn-kernel/ benchmarks: multiply-adds per call, and what each runs.
KERNEL_FMAS = {
    "ctnn-kernel/tile-L1": 12 * 256 * 32,
    "ctnn-kernel/forward-512x256x1024": 512 * 256 * 1024,
    "ctnn-kernel/forward-512x1024x1024": 512 * 1024 * 1024,
    "ctnn-kernel/forward-256x784x256": 256 * 784 * 256,
    "ctnn-kernel/forward-200x64x64": 200 * 64 * 64,
    "ctnn-kernel/forward-200x64x64-tanh": 200 * 64 * 64,
}
KERNEL_WHAT = {
    "ctnn-kernel/tile-L1": "dx[12, 32] = dy[12, 256] · w[256, 32]: A, B, C in L1, one K block (the tile alone)",
    "ctnn-kernel/forward-512x256x1024": "Linear<256, 1024> + ReLU, 512 rows: W5's width and batch, one K block",
    "ctnn-kernel/forward-512x1024x1024": "Linear<1024, 1024> + ReLU, 512 rows: one layer of W5 (four K blocks)",
    "ctnn-kernel/forward-256x784x256": "Linear<784, 256> + ReLU, 256 rows: W3's first layer (85 % of its FLOPs)",
    "ctnn-kernel/forward-200x64x64": "Linear<64, 64>, 200 rows: the shape of each of W2's three GEMMs per step",
    "ctnn-kernel/forward-200x64x64-tanh": "the same with Tanh in the epilogue: W2's forward through its middle layer",
}


def load_gbench(path, results, timekey):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    cvs = {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if name.endswith("/real_time"):  # UseRealTime() adds it to the name
            name = name[: -len("/real_time")]
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "cv":
            cvs[name] = b[timekey]
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        scale = UNIT[b.get("time_unit", "ns")]
        entry = dict(b)
        entry["t"] = b[timekey] * scale
        entry["cpu_ns"] = b["cpu_time"] * scale
        entry["real_ns"] = b["real_time"] * scale
        results[name] = entry
    for name, v in cvs.items():
        if name in results:
            results[name]["cv"] = v
    return data.get("context", {})


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


# ---- formatting ------------------------------------------------------------

def fmt_time(ns):
    if ns is None:
        return "—"
    if ns < 1e3:
        return f"{ns:.3g} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def fmt_rate(x):
    if x is None:
        return "—"
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if x >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ---- the report ------------------------------------------------------------

NOISY_CV = 0.10  # repetitions that vary more than this are marked


class Report:
    def __init__(self, res, peak, bw):
        self.res, self.peak, self.bw = res, peak, bw
        self.noisy = 0

    def mark(self, system, workload, measure):
        """'†' when the repetitions of this cell varied by more than NOISY_CV."""
        e = self.res.get(f"{system}/{workload}/{measure}")
        if e and e.get("cv", 0) > NOISY_CV:
            self.noisy += 1
            return "†"
        return ""

    def t(self, system, workload, measure):
        e = self.res.get(f"{system}/{workload}/{measure}")
        return e["t"] if e else None

    def pct(self, gflops):
        return f"{100 * gflops / self.peak:.0f} %" if gflops is not None and self.peak else "—"

    def ctnn_system(self, measure):
        """Which ctnn runner a measure's ratios and targets use: for one sample,
        the InferenceModel snapshot (packed weights) when it was measured."""
        if measure in ("latency", "chained") and any(k.startswith("ctnn-inference/") for k in self.res):
            return "ctnn-inference"
        return "ctnn"

    def time_table(self, measure):
        best = self.ctnn_system(measure)
        systems = SYSTEMS if best == "ctnn" else [("ctnn", "ctnn Model"), (best, "ctnn InferenceModel")] + PEERS
        best_label = dict(systems)[best]
        header = ["workload"] + [label for _, label in systems] + [f"{best_label} / {label}" for _, label in PEERS]
        rows = []
        for w in WORKLOADS:
            ts = {s: self.t(s, w, measure) for s, _ in systems}
            rows.append([f"{w} {WORKLOAD_TEXT[w]}"] + [fmt_time(ts[s]) + self.mark(s, w, measure) for s, _ in systems] +
                        [fmt_ratio(ts[best], ts[s]) for s, _ in PEERS])
        return table(header, rows)

    def throughput(self, s, w):
        t = self.t(s, w, "throughput")
        return None if t is None else TP_BATCH[w] / (t * 1e-9)

    def gflops(self, s, w, measure="throughput"):
        t = self.t(s, w, measure)
        if t is None:
            return None
        if measure == "throughput":
            return FLOPS[w] * TP_BATCH[w] / t
        return TRAIN_FLOPS[w] * TRAIN_BATCH[w] / t

    def throughput_table(self):
        header = (["workload (batch)"] + [f"{label} samples/s" for _, label in SYSTEMS] +
                  [f"ctnn / {label}" for _, label in PEERS])
        rows = []
        for w in WORKLOADS:
            v = {s: self.throughput(s, w) for s, _ in SYSTEMS}
            rows.append([f"{w} ({TP_BATCH[w]})"] + [fmt_rate(v[s]) + self.mark(s, w, "throughput") for s, _ in SYSTEMS] +
                        [fmt_ratio(v["ctnn"], v[s]) for s, _ in PEERS])
        return table(header, rows)

    def gflops_table(self, measure):
        header = ["workload"] + [f"{label} GFLOP/s (of peak)" for _, label in SYSTEMS]
        rows = []
        for w in WORKLOADS:
            cells = []
            for s, _ in SYSTEMS:
                g = self.gflops(s, w, measure)
                cells.append("—" if g is None else f"{g:.3g} ({self.pct(g)}){self.mark(s, w, measure)}")
            rows.append([w] + cells)
        return table(header, rows)

    def module_table(self):
        """The same network as a pipeline and as a custom module (issue 4's parity)."""
        header = ["workload", "measure", "pipeline", "custom module", "module / pipeline"]
        rows = []
        for w in ("W1", "W2"):
            for m in ("latency", "chained", "throughput", "train"):
                a, b = self.t("ctnn", w, m), self.t("ctnn-module", w, m)
                if a is None or b is None:
                    continue
                rows.append([f"{w} {WORKLOAD_TEXT[w]}", m, fmt_time(a) + self.mark("ctnn", w, m),
                             fmt_time(b) + self.mark("ctnn-module", w, m), fmt_ratio(b, a)])
        return table(header, rows) if rows else "(not measured)"

    def threads_table(self):
        """ctnn with a ThreadPool of 2 on both cores (wall clock) against one
        thread on one core (the tables above)."""
        header = ["workload", "measure", "1 thread", "2 threads", "speed-up", "2 threads GFLOP/s (of 2 cores' peak)"]
        rows = []
        for w in WORKLOADS:
            for m in ("throughput", "train"):
                one, two = self.t("ctnn", w, m), self.t("ctnn-2threads", w, m)
                if one is None or two is None:
                    continue
                flops = FLOPS[w] * TP_BATCH[w] if m == "throughput" else TRAIN_FLOPS[w] * TRAIN_BATCH[w]
                g = flops / two
                of_peak = f"{100 * g / (2 * self.peak):.0f} %" if self.peak else "—"
                rows.append([f"{w} {WORKLOAD_TEXT[w]}", "forward" if m == "throughput" else "training step",
                             fmt_time(one) + self.mark("ctnn", w, m), fmt_time(two) + self.mark("ctnn-2threads", w, m),
                             f"{one / two:.2f}x", f"{g:.3g} ({of_peak})"])
        return table(header, rows) if rows else "(not measured: ctnn_threads.json is missing)"

    def sine_table(self):
        header = ["system", "time to MSE < 0.02", "epochs", "final loss", "time per epoch", "ctnn speed-up"]
        rows = []
        ct = self.res.get("ctnn/sine/task")
        for s, label in SYSTEMS:
            e = self.res.get(f"{s}/sine/task")
            if not e:
                rows.append([label, "—", "—", "—", "—", "—"])
                continue
            ep = e.get("epochs")
            rows.append([label, fmt_time(e["t"]) + self.mark(s, "sine", "task"), f"{ep:.0f}" if ep else "—",
                         f"{e.get('final_loss', float('nan')):.4f}",
                         fmt_time(e["t"] / ep) if ep else "—",
                         "—" if s == "ctnn" or not ct else fmt_ratio(e["t"], ct["t"])])
        return table(header, rows)

    # -- targets --

    def bound(self, w, measure):
        """What bounds one call: FMA time at peak and streaming the weights
        from the smallest cache level that holds them, at the measured bandwidth."""
        if measure in ("latency", "chained"):
            flops, rows = FLOPS[w], 1
        elif measure == "throughput":
            flops, rows = FLOPS[w] * TP_BATCH[w], TP_BATCH[w]
        else:
            flops, rows = TRAIN_FLOPS[w] * TRAIN_BATCH[w], TRAIN_BATCH[w]
        fma_ns = flops / self.peak if self.peak else None
        wbytes = PARAMS[w] * 4
        level = None
        for name, size, gbps in self.bw:
            if wbytes <= size or name == "DRAM":
                level = (name, gbps)
                break
        stream_ns = wbytes / level[1] if level and level[1] else None
        return fma_ns, wbytes, level, stream_ns

    # What the two bounds above do not show, from measurements recorded in
    # docs/kernels.md (a link, not numbers of this run).
    WHY = {
        ("W1", "latency"): "neither: the row is 65 instructions, all in registers, of which 20 FMAs and 20 shuffles "
                           "and extracts that move values across lanes (the 16 → 16 layer's broadcasts, the head's "
                           "horizontal sum), about 25 cycles per call "
                           "([kernels.md](kernels.md#one-sample-with-packed-weights-inferencemodel))",
        ("W2", "latency"): "the row is one dependency chain through two tanh, about 38 cycles each from input to "
                           "result, around the 64 → 64 layer's 128 cycles of FMAs "
                           "([kernels.md](kernels.md#one-sample-with-packed-weights-inferencemodel))",
        ("W1", "chained"): "about 90 cycles from one call's input to the next: x through memory, three layers "
                           "each waiting for the last, the head's horizontal sum of 16 lanes (~27 cycles) "
                           "([kernels.md](kernels.md#one-sample-with-packed-weights-inferencemodel))",
        ("W3", "latency"): "its weights nearly fill the 1 MiB L2, and which physical pages they land on decides how "
                           "many stay there ([kernels.md](kernels.md#one-sample-with-packed-weights-inferencemodel))",
        ("W2", "train"): "2 × 12 800 tanh per step, at 8.1–8.6 cycles per vector of 16, add about 4 µs to the FMA "
                         "time ([kernels.md](kernels.md#one-sample-with-packed-weights-inferencemodel))",
        ("W3", "throughput"): "the register tile's ceiling: [the GEMM alone](#the-gemm-alone), below",
        ("W5", "throughput"): "the register tile's ceiling: [the GEMM alone](#the-gemm-alone), below",
    }

    def bound_text(self, w, measure, measured):
        fma_ns, wbytes, level, stream_ns = self.bound(w, measure)
        parts = [f"FMA at peak: {fmt_time(fma_ns)}"]
        if level:
            size = f"{wbytes / 2**20:.3g} MiB" if wbytes >= 2**20 else f"{wbytes / 1024:.3g} KiB"
            parts.append(f"weights {size} from {level[0]} at {level[1]:.0f} GB/s: {fmt_time(stream_ns)}")
        b = max(x for x in (fma_ns, stream_ns) if x is not None) if (fma_ns or stream_ns) else None
        if b and measured:
            parts.append(f"measured = {measured / b:.2g}× the larger bound")
        if (w, measure) in self.WHY:
            parts.append(self.WHY[(w, measure)])
        if (w, measure) == ("W2", "train"):
            parts.extend(self.w2_step_floor())
        return "; ".join(parts)

    def w2_step_floor(self):
        """W2's step from its parts, timed alone in this run: three GEMMs of
        200 x 64 x 64, and what tanh in the forward's epilogue adds."""
        gemm = self.res.get("ctnn-kernel/forward-200x64x64")
        with_tanh = self.res.get("ctnn-kernel/forward-200x64x64-tanh")
        if not gemm or not with_tanh:
            return []
        g = self.kernel_gflops("ctnn-kernel/forward-200x64x64")
        return [f"its three GEMMs (forward, dW, dx) are 200 × 64 × 64 each, and one timed alone here takes "
                f"{fmt_time(gemm['t'])} ({self.pct(g)} of peak): {fmt_time(3 * gemm['t'])} for three, before "
                f"any tanh; tanh in that GEMM's epilogue adds {fmt_time(with_tanh['t'] - gemm['t'])} per 12 800 "
                f"([the GEMM alone](#the-gemm-alone))"]

    def kernel_gflops(self, name):
        e = self.res.get(name)
        return 2.0 * KERNEL_FMAS[name] / e["t"] if e else None

    def kernel_section(self):
        """The GEMM alone (bench_ctnn's ctnn-kernel/ benchmarks): what the
        throughput targets' layers reach without the rest of the model."""
        if not any(self.res.get(k) for k in KERNEL_FMAS):
            return []
        L = ["### The GEMM alone\n",
             "The throughput targets above 90 % of peak ask for the GEMM's register tile to run at its ceiling "
             "on every layer. These runs (same process as the workloads, `ctnn-kernel/` in bench/bench_ctnn.cpp) "
             "time single layers' kernels, from the tile alone in L1 to W5's full layer, and the shape of W2's "
             "training GEMMs:\n"]
        rows = []
        for name, what in KERNEL_WHAT.items():
            g = self.kernel_gflops(name)
            e = self.res.get(name)
            rows.append([f"`{name.split('/', 1)[1]}`", what, fmt_time(e["t"]) if e else "—",
                         "—" if g is None else f"{g:.3g} ({self.pct(g)})"])
        L.append(table(["kernel", "what it runs", "time", "GFLOP/s (of peak)"], rows) + "\n")
        tile, one_k, w5_layer = (self.kernel_gflops(f"ctnn-kernel/{k}") for k in
                                 ("tile-L1", "forward-512x256x1024", "forward-512x1024x1024"))
        w5 = self.gflops("ctnn", "W5")
        if tile and one_k and w5_layer and w5 and self.peak:
            L.append(f"Read together: the register tile itself reaches {self.pct(tile)} of peak with everything in "
                     f"L1; at W5's width and batch, one K block deep (weights packed transposed from L3, A from L2), "
                     f"{self.pct(one_k)}; W5's 1024-deep layer, four K blocks, {self.pct(w5_layer)} (its 512 x 1024 "
                     f"partial sums, 2 MiB, leave L2 between the K blocks; running each 192-row block through "
                     f"all four K blocks before the next, so that its 768 KiB of sums stay in L2, measured the "
                     f"same in a separate A/B run of interleaved processes: 5.53 -> 5.51 ms); the whole W5 forward "
                     f"{self.pct(w5)} (three such layers, each reading the previous one's output from L3)."
                     + (" The 97 % target is above what the tile reaches even from L1 in this run: meeting it "
                        "would take another register tile and blocking, not overhead removed around this one."
                        if tile < 0.97 * self.peak else "") + "\n")
        return L

    def best_peer(self, w, measure, higher=False):
        vals = []
        for s, label in PEERS:
            if measure == "sine":
                e = self.res.get(f"{s}/sine/task")
                v = e["t"] if e else None
            elif measure == "samples":
                v = self.throughput(s, w)
            elif measure == "gflops":
                v = self.gflops(s, w)
            else:
                v = self.t(s, w, measure)
            if v is not None:
                vals.append((v, label))
        if not vals:
            return None
        return max(vals) if higher else min(vals)

    def targets(self):
        T = []  # (label, kind, workload, measure, target, issue_peer_text)
        for w, lim, peer in (("W1", 6, "10.8 ns"), ("W2", 60, "92 ns"), ("W3", 5000, "8.8 µs"), ("W4", 2000, "2.65 µs")):
            T.append((f"batch-1 latency, independent, {w}", "le", w, "latency", lim, peer))
        T.append(("batch-1 latency, chained, W1", "le", "W1", "chained", 20, "28.7 ns"))
        T.append(("throughput W1, batch 256 (samples/s)", "ge", "W1", "samples", 250e6, "82 M/s"))
        T.append(("throughput W3 (GFLOP/s)", "ge", "W3", "gflops", 200, "186 GFLOP/s"))
        T.append(("throughput W5, batch 512 (GFLOP/s)", "ge", "W5", "gflops", 216, "212 GFLOP/s (oneDNN)"))
        for w, lim, peer in (("W1", 5e3, "120 µs"), ("W2", 25e3, "204 µs"), ("W3", 1.5e6, "1.61 ms"), ("W5", 45e6, "47.5 ms")):
            T.append((f"training step {w}", "le", w, "train", lim, peer))
        rows, missed = [], []
        for label, kind, w, measure, lim, peer in T:
            if measure == "samples":
                v = self.throughput("ctnn", w)
                vt, lt = fmt_rate(v) + "/s" if v else "—", f"≥ {fmt_rate(lim)}/s"
            elif measure == "gflops":
                v = self.gflops("ctnn", w)
                vt = f"{v:.3g} GFLOP/s ({self.pct(v)})" if v else "—"
                lt = f"≥ {lim} GFLOP/s" + (" (≥ 97 % of peak)" if w == "W5" else "")
            else:
                v = self.t(self.ctnn_system(measure), w, measure)
                vt, lt = fmt_time(v), f"≤ {fmt_time(lim)}"
                if self.ctnn_system(measure) != "ctnn":
                    vt += " (InferenceModel)"
            bp = self.best_peer(w, measure, higher=(kind == "ge"))
            if bp is None:
                bpt = "—"
            elif measure == "samples":
                bpt = f"{fmt_rate(bp[0])}/s ({bp[1]})"
            elif measure == "gflops":
                bpt = f"{bp[0]:.3g} GFLOP/s ({bp[1]})"
            else:
                bpt = f"{fmt_time(bp[0])} ({bp[1]})"
            if v is None:
                verdict = "not measured"
            else:
                ok = v <= lim if kind == "le" else v >= lim
                if w == "W5" and measure == "gflops" and self.peak:
                    ok97 = v >= 0.97 * self.peak
                    verdict = ("met" if ok else "missed") + f"; ≥ 97 % of the peak measured here: {'met' if ok97 else 'missed'}"
                    ok = ok and ok97
                else:
                    verdict = "met" if ok else "missed"
                if not ok:
                    m = {"samples": "throughput", "gflops": "throughput"}.get(measure, measure)
                    measured_ns = self.t(self.ctnn_system(m), w, m)
                    missed.append((label, self.bound_text(w, m, measured_ns)))
            m_ = {"samples": "throughput", "gflops": "throughput"}.get(measure, measure)
            rows.append([label, lt, peer, bpt, vt + self.mark(self.ctnn_system(m_), w, m_), f"**{verdict}**"])
        # The sine task.
        ct, pt = self.res.get("ctnn/sine/task"), self.res.get("torch/sine/task")
        if ct and pt:
            sp = pt["t"] / ct["t"]
            sp_ref = 0.32e9 / ct["t"]
            ok = sp >= 30
            rows.append(["sine task to MSE < 0.02", "≥ 30× faster than PyTorch eager", "0.32 s for 1600 epochs",
                         f"{fmt_time(pt['t'])} (PyTorch eager, {pt.get('epochs', 0):.0f} epochs)",
                         f"{fmt_time(ct['t'])}, {sp:.3g}× PyTorch eager here ({sp_ref:.3g}× the issue's 0.32 s)",
                         f"**{'met' if ok else 'missed'}**"])
            if not ok:
                ep = ct.get("epochs") or 1
                goal = pt["t"] / 30 / ep  # per epoch, at ctnn's epoch count
                fma_ns = self.bound("W2", "train")[0]
                below = (f"; 30× PyTorch eager here means {fmt_time(goal)} per epoch, "
                         + ("below" if fma_ns and goal < fma_ns else "above") + " the FMA bound") if fma_ns else ""
                missed.append(("sine task", f"{ct.get('epochs', 0):.0f} epochs, {fmt_time(ct['t'] / ep)} per epoch; "
                               f"the training step of W2 alone: {fmt_time(self.t('ctnn', 'W2', 'train'))}; "
                               + self.bound_text("W2", "train", ct["t"] / ep) + below))
        header = ["target", "goal", "issue's best peer", "best peer measured here", "ctnn measured here", "verdict"]
        return table(header, rows), missed


def sysconf(name, default):
    try:
        v = os.sysconf(name)
        return v if v and v > 0 else default
    except (ValueError, OSError):
        return default


def machine_info(root):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=root).stdout.strip()
        except OSError:
            return ""
    lscpu = sh("LC_ALL=C lscpu")
    field = lambda k: (re.search(rf"^{k}:\s*(.*)$", lscpu, re.M) or [None, "?"])[1]
    return {
        "model": field("Model name"), "vendor": field("Vendor ID"), "family": field("CPU family"),
        "cpus": field("CPU\\(s\\)"), "flags": field("Flags"),
        "kernel": platform.release(),
        "gxx": sh("g++ --version | head -1"), "clang": sh("clang++ --version | head -1"),
        "meson": sh("meson --version"),
        "benchmark": sh("dpkg-query -W -f '${Version}' libbenchmark-dev 2>/dev/null"),
        "eigen": sh("dpkg-query -W -f '${Version}' libeigen3-dev 2>/dev/null"),
        "commit": sh("git rev-parse --short HEAD 2>/dev/null"),
        "caches": sh("getconf -a | grep -E 'LEVEL[123]_(D)?CACHE_SIZE' | awk '{printf \"%s=%s \", $1, $2}'"),
    }


def make_plot(rep, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    width = 0.2
    panels = [("batch-1 latency, independent calls (lower is better)",
               lambda s, w: rep.t(rep.ctnn_system("latency") if s == "ctnn" else s, w, "latency"), "time per call [ns]"),
              ("forward throughput, batch 256 (W5: 512) (higher is better)", lambda s, w: rep.throughput(s, w), "samples/s"),
              ("training step, batch 256 (W2: 200) (lower is better)", lambda s, w: rep.t(s, w, "train"), "time per step [ns]")]
    for ax, (title, get, ylabel) in zip(axes, panels):
        for i, (s, label) in enumerate(SYSTEMS):
            xs, ys = [], []
            for j, w in enumerate(WORKLOADS):
                v = get(s, w)
                if v:
                    xs.append(j + (i - 1.5) * width)
                    ys.append(v)
            ax.bar(xs, ys, width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(range(len(WORKLOADS)))
        ax.set_xticklabels(WORKLOADS)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compile_table(path, include_root):
    if not os.path.exists(path):
        return "(not measured: compile.json is missing)", []
    with open(path) as f:
        rows = json.load(f)["rows"]
    by = {}
    for r in rows:
        by.setdefault((r["compiler"], r.get("extra_flags", ""), r["layers"]), {})[r["kind"]] = r
    out = []

    def cell(r):
        if not r:
            return ["—"] * 3
        if not r["ok"]:
            why = " (constexpr step limit)" if "maximum step limit" in r.get("error", "") else ""
            return [f"**failed**{why}", f"{r['user_s'] + r['sys_s']:.1f} s", f"{r['max_rss_kb'] / 1024:.0f} MiB"]
        return [f"{r['wall_s']:.1f} s", f"{r['user_s'] + r['sys_s']:.1f} s", f"{r['max_rss_kb'] / 1024:.0f} MiB"]
    for (cxx, extra, n), d in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        name = cxx + (f" `{extra}`" if extra else "")
        out.append([name, "header only" if n == 0 else str(n)] + cell(d.get("check")) + cell(d.get("train")))
    header = ["compiler", "layers", "shape check: wall", "CPU", "peak memory", "-O2 build: wall", "CPU", "peak memory"]
    versions = sorted({r["compiler_version"] for r in rows})
    commands = sorted({re.sub(r"seq\d+_", "seqN_", r["command"]) for r in rows if not r.get("extra_flags")})
    notes = versions + ["commands: " + "; ".join(f"`{c}`" for c in commands)]
    for r in rows:
        if not r["ok"]:
            first = (r.get("error", "").splitlines() or [""])[0]
            limit = [l for l in r.get("error", "").splitlines() if "maximum step limit" in l]
            strip = lambda line: line.replace(include_root, "include").strip()[:220]
            flags = f" {r['extra_flags']}" if r.get("extra_flags") else ""
            notes.append(f"FAILED: {r['compiler']}{flags}, {r['layers']} layers, {r['kind']}: "
                         f"`{strip(first)}`" + (f" — `{strip(limit[0])}`" if limit else ""))
        elif r.get("kind") == "train" and r.get("runs") is False:
            notes.append(f"{r['compiler']} {r['layers']} layers: the program built but did not exit with 0")
    return table(header, out), notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--time", choices=["cpu", "real"], default="cpu")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    R = args.results
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    timekey = "cpu_time" if args.time == "cpu" else "real_time"

    res = {}
    peak_ctx = load_gbench(os.path.join(R, "peak.json"), res, timekey) or {}
    ctnn_ctx = load_gbench(os.path.join(R, "ctnn.json"), res, timekey) or {}
    load_gbench(os.path.join(R, "eigen.json"), res, timekey)
    # Two threads: the wall clock (a thread's CPU time would leave out the other's).
    load_gbench(os.path.join(R, "ctnn_threads.json"), res, "real_time")
    torch_ctx = load_gbench(os.path.join(R, "torch.json"), res, timekey) or {}

    def rate_of(name):
        e = res.get(name)
        return e["flops_per_iter"] / e["t"] if e and e.get("flops_per_iter") else None
    peak = rate_of("peak/fma512") or rate_of("peak/fma256")
    peak256 = rate_of("peak/fma256")
    bw = []
    for name, size in (("L1", 16 << 10), ("L2", 512 << 10), ("L3", 8 << 20), ("DRAM", 256 << 20)):
        e = res.get(f"bw/read/{size}")
        if e:
            # The level's capacity for the "fits" test, as the C library reports it.
            cap = {"L1": sysconf("SC_LEVEL1_DCACHE_SIZE", 32 << 10), "L2": sysconf("SC_LEVEL2_CACHE_SIZE", 1 << 20),
                   "L3": sysconf("SC_LEVEL3_CACHE_SIZE", 32 << 20), "DRAM": 1 << 62}[name]
            bw.append((name, cap, e["bytes_per_iter"] / e["t"]))
    rep = Report(res, peak, bw)
    mi = machine_info(root)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    make_plot(rep, args.plot)
    targets, missed = rep.targets()
    ctab, cnotes = compile_table(os.path.join(R, "compile.json"), os.path.join(root, "include"))

    start = read_text(os.path.join(R, "start.txt"), "?")
    load0 = read_text(os.path.join(R, "loadavg_start.txt"), "?")
    load1 = read_text(os.path.join(R, "loadavg_end.txt"), "?")
    commands = read_text(os.path.join(R, "commands.txt"))
    duration = read_text(os.path.join(R, "duration.txt"), "?")
    blas = ", ".join(torch_ctx.get("blas", [])) or "?"
    plot_rel = os.path.relpath(os.path.abspath(args.plot), os.path.dirname(os.path.abspath(args.out)))
    tname = "CPU time" if args.time == "cpu" else "wall-clock time"

    L = []
    L.append("# Performance\n")
    L.append("<!-- Generated by bench/run.sh (bench/report.py); edit those, not this file. -->\n")
    L.append(f"Measured **{start}** on this machine ({mi['model']}, {mi['cpus']} cores), commit `{mi['commit']}` "
             f"plus the working tree, in one run of `bench/run.sh` ({duration}). ctnn, PyTorch {torch_ctx.get('torch_version', '?')} "
             "(eager and TorchScript) and a run-time design written with Eigen's dynamic matrices run the same "
             "workloads, single-threaded, pinned to one core.\n")
    if args.note:
        L.append(f"> **Note.** {args.note}\n")
    L.append("Contents: [targets](#targets-of-issue-6) · [batch-1 latency](#a-batch-1-latency) · "
             "[throughput](#b-forward-throughput) · [training step](#c-training-step) · [sine task](#d-the-sine-task) · "
             "[pipeline and custom module](#pipeline-and-custom-module) · [plot](#plot) · [compile cost](#compile-cost) · [what bounds the missed targets](#what-bounds-the-missed-targets) · "
             "[machine and method](#machine-and-method) · [commands](#commands)\n")

    L.append("The GPU path (issue 5) is measured separately, on the GPU machine it needs: "
             "[gpu-performance.md](gpu-performance.md).\n")

    L.append("## Peak of this core\n")
    if peak:
        L.append(f"Single-core peak FP32 FMA rate, measured by `bench/peak_fma.cpp` (16 independent FMA chains): "
                 f"**{peak:.1f} GFLOP/s** on 512-bit vectors (AVX-512)"
                 + (f", {peak256:.1f} GFLOP/s on 256-bit vectors" if peak256 else "") +
                 f". At 2 × 16 lanes × 2 FLOPs per cycle (two 512-bit FMA pipes) that is {peak / 64:.2f} GHz. "
                 "Every GFLOP/s figure below is also given as a fraction of the 512-bit peak.\n")
    if bw:
        L.append("Read bandwidth of one core (same program; used for the bounds below): " +
                 ", ".join(f"{n} {g:.0f} GB/s" for n, _, g in bw) + ".\n")

    L.append("## Targets of issue 6\n")
    L.append("The issue's figures to beat, the best peer measured in this run (PyTorch eager, TorchScript, Eigen; "
             "the issue's peers also include LibTorch, oneDNN and RTNeural, which are not run here), and ctnn.\n")
    L.append(targets + "\n")
    L.append(f"† in any table: the repetitions of that cell varied by more than {NOISY_CV:.0%} "
             "(coefficient of variation), so the median is less certain; see the load average under "
             "[machine and method](#machine-and-method).\n")

    L.append("## (a) Batch-1 latency\n")
    L.append(f"One sample per call, evaluation mode (ctnn: `model(Vec<In>)` on the Model, and on an "
             f"`InferenceModel<Net>` snapshot of it, whose weights are packed once for the single-row kernels "
             f"(core/inference_model.hpp; the ratios use it); PyTorch: a `(1, In)` tensor under "
             f"`torch.inference_mode()`; Eigen: a one-column matrix). Median {tname} per call over the repetitions. "
             "Ratios are ctnn's time over the other system's: below 1, ctnn is faster.\n")
    L.append("### Independent calls\n")
    L.append("The same input every call: calls can overlap in the CPU's pipeline.\n")
    L.append(rep.time_table("latency") + "\n")
    L.append("### Chained calls\n")
    L.append("Each input depends on the previous output (`x[0] = x0[0] + 1e-3 · y[0]`), as in a control loop: "
             "the latency of the whole dependency chain is exposed.\n")
    L.append(rep.time_table("chained") + "\n")

    L.append("## (b) Forward throughput\n")
    L.append("Batch 256 (W5: 512), evaluation mode, one forward per iteration (ctnn: `forward_into` on the "
             "Model; W6, W1 and W2, whose layers are at most 64 wide, run with the samples in the vector lanes, "
             "the others through the batch GEMM: [kernels.md](kernels.md#narrow-networks-samples-in-the-lanes)). "
             "Ratios are ctnn's rate over the other's: above 1, ctnn is faster.\n")
    L.append(rep.throughput_table() + "\n")
    L.append("GFLOP/s counts 2 · In · Out per Linear per sample (bias and activations not counted), "
             "and the fraction of this core's peak:\n")
    L.append(rep.gflops_table("throughput") + "\n")

    L.append("## (c) Training step\n")
    L.append("One step: `zero_grad`, forward, loss (MSE; W3: cross-entropy over 10 classes), backward, SGD step "
             "(lr 1e-3), at batch 256 (W2: 200). Median time per step; ratios as in (a).\n")
    L.append(rep.time_table("train") + "\n")
    L.append("Nominal GFLOP/s of a step (forward 2 · In · Out, weight gradient 2 · In · Out, input gradient "
             "2 · In · Out for every Linear but the first) and its fraction of peak:\n")
    L.append(rep.gflops_table("train") + "\n")

    L.append("## Two threads\n")
    L.append("The same forward and training step with a `ThreadPool` of 2 given to the model "
             "(`model.set_thread_pool(&pool)`; [kernels.md](kernels.md#threads)), run over both cores "
             "(`taskset -c 0,1`) and timed by the wall clock, against one thread on one core from the tables above. "
             "Each product of at least 2^21 multiply-adds splits its rows or columns between the threads (the same bits as "
             "one thread); W1, W2 and W6 have none that large. Not a target of issue 6 (its targets are single-thread).\n")
    L.append(rep.threads_table() + "\n")

    L.append("## (d) The sine task\n")
    L.append("The tutorial's SineNet on 200 points x ~ U(0, 2π), y = sin x + 0.1 · noise, full batch, MSE, SGD lr 0.05, "
             "Xavier-uniform weights and zero biases. Data and starting weights are read from "
             "`tests/data/sinenet.safetensors` (PyTorch: `manual_seed(42)` for the model, `manual_seed(0)` for the data), "
             "so every system starts from the same numbers. One epoch is zero_grad, forward, loss, backward, step; "
             "training stops after the first epoch whose loss (computed before its update) is below 0.02. "
             "Time is the whole loop, median over the repetitions.\n")
    L.append(rep.sine_table() + "\n")

    L.append("## Pipeline and custom module\n")
    L.append("W1 and W2 written as custom modules (`bench/workloads.hpp`: `W1Module`, `W2Module`, a `forward` traced "
             "at compile time) against the same networks as pipelines; same measures as above. A ratio near 1 is "
             "the goal: the module's graph gets the same fused kernels (module/symbolic.hpp).\n")
    L.append(rep.module_table() + "\n")

    L.append("## Plot\n")
    L.append(f"![batch-1 latency, throughput and training step per workload]({plot_rel})\n")

    L.append("## Compile cost\n")
    L.append("`bench/compile/measure.py`: a `Sequential` of N layers (`Linear<32, 32>` and `ReLU` alternating, N/2 "
             "of each; `bench/compile/gen.py`), compiled alone on one core under `/usr/bin/time -v`. *Shape check*: "
             "`-fsyntax-only` on a TU that `static_assert`s the parameter count (and instantiates `Model<Net>`, so the "
             "Sequential's shape checks run). *-O2 build*: compile and link a program that constructs the model, runs "
             "a training step (forward, MSE, backward, SGD) and an evaluation forward. No `-march` flag, so every "
             "kernel is compiled for each architecture the library dispatches over. *Header only* is the "
             "same TU without a network: the cost of `#include <ctnn/ctnn.hpp>`. CPU is user + system time.\n")
    L.append(ctab + "\n")
    for n in cnotes:
        L.append(f"- {n}")
    L.append("")

    L.append("## What bounds the missed targets\n")
    if missed:
        L.append("For each missed target, the two lower bounds this run can measure: the FLOPs at this core's peak "
                 "FMA rate, and streaming the weights once from the smallest cache level that holds them at the "
                 "read bandwidth measured above. A measured time far above both is overhead or a dependency chain "
                 "(batch 1: each layer's reduction waits for the previous layer), not FMA throughput or bandwidth.\n")
        for label, text in missed:
            L.append(f"- **{label}**: {text}")
        L.append("")
    else:
        L.append("None: every target was met in this run.\n")
    L += rep.kernel_section()

    L.append("## Machine and method\n")
    L.append(f"- CPU: {mi['model']} ({mi['vendor']}, family {mi['family']}), {mi['cpus']} logical CPUs; caches "
             f"(getconf): {mi['caches']}; kernel {mi['kernel']}.")
    L.append(f"- CPU flags: `{mi['flags']}`")
    L.append(f"- Compilers: {mi['gxx']}; {mi['clang']}; meson {mi['meson']}. Google Benchmark {mi['benchmark']}, "
             f"Eigen {mi['eigen']}.")
    L.append(f"- PyTorch {torch_ctx.get('torch_version', '?')} (Debian's python3-torch, `/usr/bin/python3` "
             f"{torch_ctx.get('python', '?')}), `torch.set_num_threads(1)` (reported: {torch_ctx.get('num_threads', '?')}); "
             f"BLAS loaded by the process: `{blas}`. TorchScript: `torch.jit.script`, and for inference "
             "`torch.jit.freeze` of the scripted module in eval mode.")
    L.append("- The C++ benchmarks are built by meson (`-Dbench=true`, buildtype release: `-O3`) with `-march=native`, "
             "so ctnn's kernel choice is static (AVX-512 here) and Eigen vectorises for AVX-512 too.")
    L.append(f"- Every benchmark runs pinned to one core (`taskset -c`), repeated; the tables show the median of the "
             f"repetitions' {tname} per iteration. PyTorch is timed by `bench/bench_torch.py` the way Google Benchmark "
             "times the C++ programs (iterations calibrated to a minimum time, then repetitions).")
    L.append(f"- Load average (1, 5, 15 min) at the start: {load0}; at the end: {load1}. "
             + ("CPU time is reported because other processes shared this 2-core machine during the run; "
                "wall-clock times are in the raw JSON files." if args.time == "cpu" else ""))
    if ctnn_ctx:
        L.append(f"- Google Benchmark context: {ctnn_ctx.get('num_cpus', '?')} CPUs at "
                 f"{ctnn_ctx.get('mhz_per_cpu', '?')} MHz (nominal).")
    L.append("- Weights: PyTorch's default init (uniform ±1/√fan_in) for (a)–(c) in all systems, from different "
             "generators; the timings do not depend on the values.")
    L.append("")

    L.append("## Commands\n")
    L.append("Regenerate this page (about 10–15 minutes on an idle 2-core machine):\n")
    L.append("```sh\nbench/run.sh\n```\n")
    L.append("The commands that run executed:\n")
    L.append("```sh\n" + commands + "\n```\n")

    with open(args.out, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compile cost of ctnn (issue 6, part 9): wall time, CPU time and peak memory
of g++ and clang++ compiling a Sequential of 16, 64 and 256 layers (bench/compile/gen.py),
once for shape checking only (-fsyntax-only) and once as a full -O2 build of a
program that runs a forward and a training step; plus the baseline (the header
alone). Each compile runs alone, pinned to one core, under /usr/bin/time -v.

    measure.py --root . --out compile.json [--core 1] [--sizes 16,64,256] [--compilers g++,clang++]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_time_v(text):
    def grab(label):
        m = re.search(re.escape(label) + r":\s*(.+)", text)
        return m.group(1).strip() if m else None

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = 0.0
    if wall:
        for part in wall.split(":"):
            secs = secs * 60 + float(part)
    return {
        "wall_s": secs,
        "user_s": float(grab("User time (seconds)") or 0),
        "sys_s": float(grab("System time (seconds)") or 0),
        "max_rss_kb": int(grab("Maximum resident set size (kbytes)") or 0),
    }


def compile_once(cxx, version, n, kind, src, include, work, core, extra):
    if kind == "check":
        flags = ["-std=c++20", "-fsyntax-only"]
    else:
        flags = ["-std=c++20", "-O2", "-o", os.path.join(work, f"seq{n}_{cxx}.out")]
    cmd = [cxx] + flags + extra + ["-I", include, src]
    full = ["taskset", "-c", core, "/usr/bin/time", "-v"] + cmd
    p = subprocess.run(full, capture_output=True, text=True)
    shown = " ".join(cmd).replace(include, "include").replace(work + os.sep, "")
    row = {"compiler": cxx, "compiler_version": version, "layers": n, "kind": kind, "ok": p.returncode == 0,
           "command": shown, "extra_flags": " ".join(extra)}
    row.update(parse_time_v(p.stderr))
    if p.returncode == 0 and kind == "train":
        run = subprocess.run([os.path.join(work, f"seq{n}_{cxx}.out")], capture_output=True)
        row["runs"] = run.returncode == 0
    if p.returncode != 0:
        lines = [l for l in p.stderr.splitlines() if ": error:" in l or "maximum step limit" in l
                 or "exceeds" in l or "limit" in l]
        row["error"] = "\n".join(l[:300] for l in lines[:8])
    print(f"compile cost: {cxx:8s} {n:4d} layers {kind:6s} wall {row['wall_s']:7.2f} s  cpu "
          f"{row['user_s'] + row['sys_s']:7.2f} s  peak {row['max_rss_kb'] / 1024:7.0f} MiB"
          f"{'' if row['ok'] else '  FAILED'} {row['extra_flags']}", file=sys.stderr, flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--core", default="1")
    ap.add_argument("--sizes", default="16,64,256")
    ap.add_argument("--compilers", default="g++,clang++")
    args = ap.parse_args()

    include = os.path.join(os.path.abspath(args.root), "include")
    sizes = [0] + [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="ctnn-compile-")
    rows = []
    for cxx in args.compilers.split(","):
        if not shutil.which(cxx):
            print(f"compile cost: {cxx} not found, skipped", file=sys.stderr)
            continue
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        for n in sizes:
            for kind in ("check", "train"):
                src = os.path.join(work, f"seq{n}_{kind}.cpp")
                with open(src, "w") as f:
                    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), str(n), kind], stdout=f, check=True)
                extra = []
                while True:
                    row = compile_once(cxx, version, n, kind, src, include, work, args.core, extra)
                    rows.append(row)
                    # clang's default constexpr step limit (-fconstexpr-steps=1048576) can stop a long
                    # Sequential; measure once more with a higher limit to show what it costs.
                    if row["ok"] or extra or "maximum step limit" not in row.get("error", ""):
                        break
                    extra = [f"-fconstexpr-steps={1 << 28}"]
    shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

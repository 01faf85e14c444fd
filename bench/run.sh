#!/usr/bin/env bash
# Runs every benchmark of issue 6 in one go and writes docs/performance.md and
# docs/performance.png: ctnn, PyTorch (eager and TorchScript) and the run-time
# Eigen design on the same workloads, this core's peak FMA rate, and the
# compile cost. Everything that is timed runs pinned to one core, one program at
# a time.
#
#   bench/run.sh
#
# Settings (environment):
#   BUILD=build-bench       meson build folder for the benchmark programs
#   BENCH_CORE=1            the core everything is pinned to
#   BENCH_REPS=5            repetitions (the tables show their median)
#   BENCH_MIN_TIME=0.5      minimum seconds per repetition
#   BENCH_TIME=cpu          cpu or real: which time the tables use
#   BENCH_SKIP_COMPILE=1    skip the compile-cost measurement
#   BENCH_NOTE="..."        a note printed at the top of the page
#
# Needs: meson, ninja, g++, clang++, libbenchmark-dev, libeigen3-dev, taskset,
# /usr/bin/time, Debian's python3-torch and python3-matplotlib for /usr/bin/python3
# (`apt-get install -y python3-torch python3-matplotlib time`), and for PyTorch a
# real BLAS (`apt-get install -y libopenblas0-pthread`; with Debian's reference
# BLAS alone PyTorch's Linear runs at a few GFLOP/s).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build-bench}
CORE=${BENCH_CORE:-1}
REPS=${BENCH_REPS:-5}
MIN_TIME=${BENCH_MIN_TIME:-0.5}
TIME_KIND=${BENCH_TIME:-cpu}
OUT=$BUILD/results
PY=/usr/bin/python3

missing=()
command -v taskset >/dev/null || missing+=(util-linux)
[ -x /usr/bin/time ] || missing+=(time)
command -v clang++ >/dev/null || missing+=(clang)
$PY -c 'import torch' 2>/dev/null || missing+=(python3-torch)
$PY -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/run.sh: missing: ${missing[*]}; install with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! ls /usr/lib/x86_64-linux-gnu/openblas*/libblas.so.3 >/dev/null 2>&1; then
  echo "bench/run.sh: warning: no OpenBLAS; PyTorch will use the reference BLAS (apt-get install -y libopenblas0-pthread)" >&2
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/commands.txt
date -u '+%Y-%m-%d %H:%M UTC' > "$OUT/start.txt"
cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg_start.txt"
t0=$(date +%s)

# Runs a command and records it for the report.
run() {
  echo "$*" >> "$OUT/commands.txt"
  echo "+ $*" >&2
  "$@"
}

# Build (both cores; nothing is timed yet).
if [ -f "$BUILD/build.ninja" ]; then
  run meson setup --reconfigure "$BUILD" -Dbench=true -Dtests=false -Dexamples=false --buildtype=release
else
  run meson setup "$BUILD" -Dbench=true -Dtests=false -Dexamples=false --buildtype=release
fi
run ninja -C "$BUILD" bench/bench_ctnn bench/bench_eigen bench/peak_fma

PIN=(taskset -c "$CORE")
GB=(--benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true --benchmark_min_time="$MIN_TIME"
    --benchmark_out_format=json)

run "${PIN[@]}" "$BUILD/bench/peak_fma" "${GB[@]}" --benchmark_out="$OUT/peak.json"
run "${PIN[@]}" "$BUILD/bench/bench_ctnn" "${GB[@]}" --benchmark_filter=-threads/ --benchmark_out="$OUT/ctnn.json"
# ctnn with a ThreadPool of 2 (core/thread_pool.hpp), on the two cores: wall-clock time.
run taskset -c 0,1 "$BUILD/bench/bench_ctnn" "${GB[@]}" --benchmark_filter=threads/ \
  --benchmark_out="$OUT/ctnn_threads.json"
run "${PIN[@]}" "$BUILD/bench/bench_eigen" "${GB[@]}" --benchmark_out="$OUT/eigen.json"
run env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "${PIN[@]}" \
  $PY bench/bench_torch.py --out "$OUT/torch.json" --reps "$REPS" --min-time "$MIN_TIME"
if [ "${BENCH_SKIP_COMPILE:-0}" != 1 ]; then
  run $PY bench/compile/measure.py --root . --out "$OUT/compile.json" --core "$CORE"
fi

cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg_end.txt"
echo "$(( ($(date +%s) - t0) / 60 )) min $(( ($(date +%s) - t0) % 60 )) s" > "$OUT/duration.txt"
echo "$PY bench/report.py --results $OUT --out docs/performance.md --plot docs/performance.png --time $TIME_KIND" \
  >> "$OUT/commands.txt"
$PY bench/report.py --results "$OUT" --out docs/performance.md --plot docs/performance.png \
  --time "$TIME_KIND" --note "${BENCH_NOTE:-}"
echo "bench/run.sh: wrote docs/performance.md and docs/performance.png (raw results in $OUT)" >&2

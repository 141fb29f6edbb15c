#!/bin/bash
# Times spnas and torchvision on the same cases, same sizes, same threads, in one run, and
# prints "ratio <case> <ours_seconds / torchvision_seconds>" per case (below 1: spnas is faster).
#   benchmarks/compare_torchvision.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
export SPNAS_THREADS=${1:-$(nproc)}
bazel build //benchmarks:spnas_benchmark >/dev/null 2>&1
ours=$(bazel-bin/benchmarks/spnas_benchmark --benchmark_format=json 2>/dev/null)
PYTHON="${SPNAS_VENV:-$HOME/.cache/spnas/venv}/bin/python3"  # the pinned torch and torchvision
theirs=$("$PYTHON" benchmarks/torchvision_cases.py)
echo "threads: $SPNAS_THREADS"
"$PYTHON" - "$ours" "$theirs" <<'PY'
import json, sys
ours = {b["name"].split("/")[0]: b["real_time"] / 1000.0 for b in json.loads(sys.argv[1])["benchmarks"]}  # ms -> s
theirs = dict((l.split()[0], float(l.split()[1])) for l in sys.argv[2].strip().splitlines())
for case, t in theirs.items():
    print(f"{case}: spnas {ours[case]:.4f} s, torchvision {t:.4f} s")
for case, t in theirs.items():
    print(f"ratio {case} {ours[case] / t:.3f}")
print(f"coco_eval (5000 images x 100 detections): spnas {ours['coco_eval']:.3f} s")
PY

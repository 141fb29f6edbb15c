#!/bin/bash
# Data-parallel step time: the quickstart's fine_tune step (FasterRCNN on FashionDet) with
# data_parallel at a global batch B (default 8), as 1 rank of 1 thread (batch B) and as 2 ranks
# of 1 thread each (batch B/2 each), started by torchrun in the same run. Prints the mean step
# time of each over iterations 6..N (the first ones warm up) and the speed-up.
#   benchmarks/data_parallel_step.sh [iterations] [global batch]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-40}
batch=${2:-8}
bazel build //:spnas >/dev/null 2>&1 || { echo "build failed"; exit 1; }
torchrun=$HOME/.cache/spnas/venv/bin/torchrun
work=$(mktemp -d)
# The quickstart's first step, trained data parallel for a fixed number of iterations.
config() {  # batch size per rank
  awk '/^step \{/ { n++ } n <= 1' configs/spnas_quickstart.textproto |
    sed -e 's|pipe_step { type: "TrainPipeStep" }|pipe_step { type: "TrainPipeStep" options { [type.googleapis.com/spnas.TrainPipeStepOptions] { data_parallel: true } } }|' \
      -e "s|epochs: 4 warmup_iterations: 50|epochs: 1 warmup_iterations: 50 batch_size: $1 max_iterations: $iterations log_every: 1|" \
      -e 's|final_step: "fullytrain"|final_step: "fine_tune"|'
}
config "$batch" >"$work/one.textproto"
config $((batch / 2)) >"$work/two.textproto"
grep -q "batch_size: $((batch / 2)) max_iterations" "$work/two.textproto" || { echo "config edit failed"; exit 1; }
bazel-bin/spnas/spnas run --config="$work/one.textproto" --local_base_path="$work/one" --threads=1 >"$work/one.log" 2>&1
"$torchrun" --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=29650 --no-python bazel-bin/spnas/spnas run \
  --config="$work/two.textproto" --local_base_path="$work/two" --threads=1 >"$work/two.log" 2>&1
/usr/bin/python3 - "$work" "$iterations" "$batch" <<'PY'
import json, sys
work, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
step = {}
for run in ("one", "two"):
    lines = [json.loads(l) for l in open(f"{work}/{run}/output/fine_tune/metrics_0.jsonl")]
    seconds = {l["iteration"]: l["seconds"] for l in lines if "loss" in l}
    step[run] = (seconds[n] - seconds[5]) / (n - 5)
print(f"1 rank x 1 thread, batch {batch}: {step['one']:.3f} s/step")
print(f"2 ranks x 1 thread, batch {batch // 2} each: {step['two']:.3f} s/step")
print(f"speed-up: {step['one'] / step['two']:.2f}x")
PY
echo "logs in $work"

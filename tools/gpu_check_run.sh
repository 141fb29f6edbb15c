#!/bin/bash
# Runs on the GPU machine, from the bundle tools/gpu_check.sh made (as BUNDLE/run.sh), against
# that machine's torch wheel: `bash BUNDLE/run.sh [python3]`. Prints one line per result.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${1:-python3}
site=$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))') || {
  echo "gpu_check: no torch in $python" >&2
  exit 1
}
torch_version=$("$python" -c 'import torch; print(torch.__version__)')
gpu=$("$python" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")')
echo "gpu_check: torch $torch_version, GPU $gpu"
nvidia_libs=$(ls -d "$site"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
# Our binaries' libraries, for them alone (Python keeps the machine's own).
libs="$here/lib:$site/torch/lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
if ! LD_LIBRARY_PATH="$libs" "$here/bin/spnas" list >/dev/null 2>&1; then
  libs="$here/lib/fallback:$libs"  # a C++ runtime older than the one the bundle was built with
fi
ours() { LD_LIBRARY_PATH="$libs" "$@"; }
work=$(mktemp -d)
status=0

# CUDA tests: one line per test case.
for t in ops_cuda_test detector_cuda_test; do
  (cd "$here" && ours "bin/$t" >"$work/$t.log" 2>&1) || status=1
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z].* \(' "$work/$t.log" | sed "s/^/test $t: /"
  grep -qE '^\[  PASSED  \]' "$work/$t.log" || { echo "test $t: did not pass"; tail -20 "$work/$t.log"; }
done

# The benchmark cases on the GPU, ours and torchvision's, same GPU, same run.
export SPNAS_DEVICE=cuda SPNAS_THREADS=${SPNAS_THREADS:-4}
ours "$here/bin/spnas_benchmark" --benchmark_filter='roi_align|nms|train_step|inference' --benchmark_format=json \
  >"$work/ours.json" 2>"$work/bench.log" || { status=1; tail -20 "$work/bench.log"; }
"$python" "$here/torchvision_cases.py" >"$work/theirs.txt" 2>>"$work/bench.log" || { status=1; tail -20 "$work/bench.log"; }
[[ -s "$work/ours.json" && -s "$work/theirs.txt" ]] && "$python" - "$work/ours.json" "$work/theirs.txt" <<'PY'
import json, sys
ours = {b["name"].split("/")[0]: b["real_time"] / 1000.0 for b in json.load(open(sys.argv[1]))["benchmarks"]}
for line in open(sys.argv[2]):
    case, t = line.split()[0], float(line.split()[1])
    if case in ours:
        print(f"benchmark {case} cuda: spnas {ours[case]:.5f} s, torchvision {t:.5f} s, ratio {ours[case] / t:.3f}")
PY

# The quickstart with device "cuda", on the bundled Fashion-MNIST.
sed "s|{ split: |{ root: \"$here/data\" split: |g" "$here/configs/spnas_quickstart.textproto" >"$work/quickstart.textproto"
start=$(date +%s)
if ours "$here/bin/spnas" run --config="$work/quickstart.textproto" --local_base_path="$work/quickstart" \
  --device=cuda >"$work/quickstart.log" 2>&1; then
  echo "quickstart cuda: finished in $(($(date +%s) - start)) s"
  ours "$here/bin/spnas" report --config="$work/quickstart.textproto" --local_base_path="$work/quickstart" >/dev/null 2>&1
  grep -hE "final model|mAP" "$work/quickstart/output/fullytrain/"*.json 2>/dev/null | head -3
  grep -E "trial [0-9]+ eval" "$work/quickstart.log" | tail -3 | sed 's/^/quickstart: /'
else
  status=1
  echo "quickstart cuda: FAILED after $(($(date +%s) - start)) s"
  tail -30 "$work/quickstart.log"
fi
# Data parallel on the GPU: the quickstart's fine_tune step (30 iterations at a global batch of
# 8) as one rank, then as 2 ranks sharing the GPU ("cuda" is cuda:LOCAL_RANK mod the GPUs).
data_parallel() {  # batch size per rank
  awk '/^step \{/ { n++ } n <= 1' "$work/quickstart.textproto" |
    sed -e 's|pipe_step { type: "TrainPipeStep" }|pipe_step { type: "TrainPipeStep" options { [type.googleapis.com/spnas.TrainPipeStepOptions] { data_parallel: true } } }|' \
      -e "s|epochs: 4 warmup_iterations: 50|epochs: 1 warmup_iterations: 50 batch_size: $1 max_iterations: 30 log_every: 1|" \
      -e 's|final_step: "fullytrain"|final_step: "fine_tune"|'
}
data_parallel 8 >"$work/dp1.textproto"
data_parallel 4 >"$work/dp2.textproto"
ours "$here/bin/spnas" run --config="$work/dp1.textproto" --local_base_path="$work/dp1" --device=cuda \
  >"$work/dp1.log" 2>&1 || status=1
ranks=()
for rank in 0 1; do
  RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 MASTER_PORT=29640 ours "$here/bin/spnas" run \
    --config="$work/dp2.textproto" --local_base_path="$work/dp2" --device=cuda >"$work/dp2_$rank.log" 2>&1 &
  ranks+=($!)
done
for pid in "${ranks[@]}"; do wait "$pid" || status=1; done  # a bare `wait` returns 0 whatever they did
"$python" - "$work" <<'PY'
import json, sys
for run, what in (("dp1", "1 rank, batch 8"), ("dp2", "2 ranks on one GPU, batch 4 each")):
    try:
        lines = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/output/fine_tune/metrics_0.jsonl")]
    except OSError:
        print(f"data parallel cuda, {what}: FAILED (no metrics)")
        continue
    steps = [l for l in lines if "loss" in l]
    seconds = {l["iteration"]: l["seconds"] for l in steps}
    maps = [l["mAP"] for l in lines if "mAP" in l]
    print(f"data parallel cuda, {what}: {(seconds[30] - seconds[5]) / 25:.4f} s/step, "
          f"loss {steps[-1]['loss']:.4f} at {steps[-1]['iteration']}, mAP {maps[-1] if maps else 'none'}")
PY
echo "gpu_check: logs in $work"
exit $status

#!/bin/bash
# Runs on the GPU machine, from the bundle tools/gpu_check.sh made (as BUNDLE/run.sh), against
# that machine's torch wheel: `bash BUNDLE/run.sh [python3]`. Prints one line per result, a
# "gpu_check: part <name>: passed|FAILED" line per part, and at the end the summary line
# "gpu_check: N parts passed, M failed"; exits non-zero when any part failed. Parts:
#   cuda             a usable CUDA device, as torch sees it; without one the check fails here
#                    and stops (nothing below means anything without a GPU)
#   ops_cuda_test, detector_cuda_test
#                    the CUDA tests, with SPNAS_REQUIRE_CUDA=1: a skipped test is a failure
#   host_syncs       host syncs per training iteration, spnas's and torchvision's, side by side
#                    (spnas above torchvision is reported, not failed)
#   nms_reference    torchvision's batched_nms on CUDA keeps what tests/fixtures/nms_large.pt says
#   benchmarks       the benchmark cases, spnas and torchvision, same GPU, same run, same
#                    statistic (mean real time per iteration)
#   quickstart       the quickstart with device "cuda"
#   mixed_precision  the quickstart's fine_tune in FLOAT16 and BFLOAT16 against float32
#   data_parallel    fine_tune as 1 rank, then 2 ranks, and the device each rank used
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${1:-python3}
work=$(mktemp -d)
passed=0
failed=0
pass() { echo "gpu_check: part $1: passed"; passed=$((passed + 1)); }
fail() { echo "gpu_check: part $1: FAILED${2:+ ($2)}"; failed=$((failed + 1)); }
finish() {
  echo "gpu_check: logs in $work"
  echo "gpu_check: $passed parts passed, $failed failed"
  exit $((failed > 0 ? 1 : 0))
}

site=$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))') || {
  echo "gpu_check: no torch in $python" >&2
  fail cuda "no torch in $python"
  finish
}

# cuda: torch's view of the GPUs. Without one every later part would only skip or fail, so the
# check stops here, failed.
if cuda=$("$python" - <<'PY'
import sys, torch
count = torch.cuda.device_count() if torch.cuda.is_available() else 0
if count == 0:
    print(f"torch {torch.__version__} (built for CUDA {torch.version.cuda}): no usable CUDA device "
          f"(torch.cuda.is_available() {torch.cuda.is_available()}, device count {torch.cuda.device_count()})")
    sys.exit(1)
names = ", ".join(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(count))
print(f"torch {torch.__version__}, {count} GPU{'s' if count > 1 else ''}: {names}")
PY
); then
  echo "gpu_check: $cuda"
  gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())')
  pass cuda
else
  echo "gpu_check: FAILED: $cuda"
  fail cuda "no usable CUDA device"
  finish
fi
export SPNAS_REQUIRE_CUDA=1  # the CUDA tests fail, not skip, if they find no GPU after all

nvidia_libs=$(ls -d "$site"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
# Our binaries' libraries, for them alone (Python keeps the machine's own).
libs="$here/lib:$site/torch/lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
if ! LD_LIBRARY_PATH="$libs" "$here/bin/spnas" list >/dev/null 2>&1; then
  libs="$here/lib/fallback:$libs"  # a C++ runtime older than the one the bundle was built with
fi
ours() { LD_LIBRARY_PATH="$libs" "$@"; }

# The CUDA tests: one line per test case; a part each.
for t in ops_cuda_test detector_cuda_test; do
  (cd "$here" && ours "bin/$t" >"$work/$t.log" 2>&1)
  rc=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z].* \(' "$work/$t.log" | sed "s/^/test $t: /"
  # What the detector test measures: its gradient differences and mixed-precision losses.
  grep -E '^(float(32|64): largest|mixed precision )' "$work/$t.log" | sed "s/^/test $t: /"
  skipped=$(grep -cE '^\[  SKIPPED \] [A-Za-z].* \(' "$work/$t.log")
  if ((rc != 0)); then
    fail "$t" "exit status $rc"
    tail -30 "$work/$t.log"
  elif ((skipped > 0)); then
    fail "$t" "$skipped skipped: on the GPU machine a skip is a failure"
  elif ! grep -qE '^\[  PASSED  \]' "$work/$t.log"; then
    fail "$t" "no PASSED line"
  else
    pass "$t"
  fi
done

# host_syncs: per training iteration of the train_step case, spnas's (counted by
# detector_cuda_test) beside torchvision's.
grep -E '^host_syncs spnas ' "$work/detector_cuda_test.log" >"$work/syncs.txt"
"$python" "$here/gpu_sync_count.py" >>"$work/syncs.txt" 2>"$work/syncs.log" || tail -20 "$work/syncs.log"
if "$python" - "$work/syncs.txt" <<'PY'; then
import sys
counts = {}
for line in open(sys.argv[1]):
    _, side, precision, n = line.split()
    counts[(side, precision)] = int(n)
ok = True
for precision in ("float32", "bfloat16", "float16"):
    ours, theirs = counts.get(("spnas", precision)), counts.get(("torchvision", precision))
    if ours is None or theirs is None:
        print(f"host syncs per training iteration, {precision}: spnas {ours}, torchvision {theirs}: MISSING")
        ok = False
        continue
    verdict = "spnas <= torchvision" if ours <= theirs else f"SPNAS ABOVE TORCHVISION by {ours - theirs}"
    print(f"host syncs per training iteration (train_step case), {precision}: spnas {ours}, torchvision {theirs} ({verdict})")
sys.exit(0 if ok else 1)
PY
  pass host_syncs
else
  fail host_syncs "a count is missing"
fi

# nms_reference: ops_cuda_test holds spnas's CUDA BatchedNms to the fixture's kept indices, which
# torchvision computed on the CPU; torchvision on CUDA must keep the same.
if "$python" - "$here/tests/fixtures/nms_large.pt" <<'PY'; then
import sys, torch
from torchvision.ops import batched_nms
fixture = torch.load(sys.argv[1])
ok = True
for name in ("mid", "large"):
    boxes, scores, idxs = (fixture[f"{name}.{k}"].cuda() for k in ("boxes", "scores", "idxs"))
    keep = batched_nms(boxes, scores, idxs, 0.5).cpu()
    same = torch.equal(keep, fixture[f"{name}.keep"])
    ok = ok and same
    print(f"nms reference {name} ({boxes.numel()} coordinates): torchvision on cuda keeps {keep.numel()}, "
          f"{'the same as' if same else 'NOT the same as'} the fixture's {fixture[f'{name}.keep'].numel()}")
sys.exit(0 if ok else 1)
PY
  pass nms_reference
else
  fail nms_reference "torchvision on CUDA disagrees with the fixture, or did not run"
fi

# benchmarks: the same cases on both sides, same GPU, same run. Both report the mean real time
# of one iteration (Google Benchmark's real_time; torchvision_cases.py the same), and each
# iteration waits for the GPU on both sides.
export SPNAS_DEVICE=cuda SPNAS_THREADS=${SPNAS_THREADS:-4}
cases=(roi_align_forward roi_align_backward roi_align_autograd nms train_step train_step_bf16 train_step_fp16 inference)
filter="^($(IFS='|'; echo "${cases[*]}"))(/.*)?\$"
ours "$here/bin/spnas_benchmark" --benchmark_filter="$filter" --benchmark_format=json \
  >"$work/ours.json" 2>"$work/bench.log"
ours_rc=$?
"$python" "$here/torchvision_cases.py" "${cases[@]}" >"$work/theirs.txt" 2>>"$work/bench.log"
theirs_rc=$?
if "$python" - "$work/ours.json" "$work/theirs.txt" "${cases[@]}" <<'PY'; then
import json, sys
to_seconds = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
ours, errors = {}, {}
try:
    for b in json.load(open(sys.argv[1]))["benchmarks"]:
        name = b["name"].split("/")[0]
        if b.get("error_occurred"):
            errors[name] = b.get("error_message", "error")
        else:
            ours[name] = b["real_time"] * to_seconds[b.get("time_unit", "ns")]
except (OSError, ValueError, KeyError) as e:
    print(f"benchmark: no spnas results ({e})")
theirs = {}
for line in open(sys.argv[2]):
    case, seconds = line.split()
    theirs[case] = float(seconds)
ok = True
for case in sys.argv[3:]:
    if case in errors:
        print(f"benchmark {case} cuda: spnas FAILED ({errors[case]})")
    elif case not in ours:
        print(f"benchmark {case} cuda: MISSING on the spnas side (benchmarks/spnas_benchmark.cc has no such case)")
    elif case not in theirs:
        print(f"benchmark {case} cuda: MISSING on the torchvision side (benchmarks/torchvision_cases.py)")
    else:
        print(f"benchmark {case} cuda: spnas {ours[case]:.5f} s, torchvision {theirs[case]:.5f} s, "
              f"ratio {ours[case] / theirs[case]:.3f} (mean real time per iteration, both)")
        continue
    ok = False
sys.exit(0 if ok else 1)
PY
  if ((ours_rc == 0 && theirs_rc == 0)); then
    pass benchmarks
  else
    fail benchmarks "spnas_benchmark exit $ours_rc, torchvision_cases.py exit $theirs_rc"
    tail -20 "$work/bench.log"
  fi
else
  fail benchmarks "a case is missing or failed"
  tail -20 "$work/bench.log"
fi

# quickstart: the whole pipeline with device "cuda", on the bundled Fashion-MNIST.
sed "s|{ split: |{ root: \"$here/data\" split: |g" "$here/configs/spnas_quickstart.textproto" >"$work/quickstart.textproto"
start=$(date +%s)
if ours "$here/bin/spnas" run --config="$work/quickstart.textproto" --local_base_path="$work/quickstart" \
  --device=cuda >"$work/quickstart.log" 2>&1; then
  echo "quickstart cuda: finished in $(($(date +%s) - start)) s"
  grep -hE "final model|mAP" "$work/quickstart/output/fullytrain/"*.json 2>/dev/null | head -3
  grep -E "trial [0-9]+ eval" "$work/quickstart.log" | tail -3 | sed 's/^/quickstart: /'
  if ours "$here/bin/spnas" report --config="$work/quickstart.textproto" --local_base_path="$work/quickstart" \
    >"$work/report.log" 2>&1; then
    pass quickstart
  else
    tail -10 "$work/report.log"
    fail quickstart "spnas report failed"
  fi
else
  echo "quickstart cuda: FAILED after $(($(date +%s) - start)) s"
  tail -30 "$work/quickstart.log"
  fail quickstart "spnas run failed"
fi

# The quickstart's fine_tune step alone: 30 iterations at a global batch of 8, logging every
# iteration; `short BATCH [PRECISION]` prints its config (a batch per rank, data parallel on).
short() {
  awk '/^step \{/ { n++ } n <= 1' "$work/quickstart.textproto" |
    sed -e 's|pipe_step { type: "TrainPipeStep" }|pipe_step { type: "TrainPipeStep" options { [type.googleapis.com/spnas.TrainPipeStepOptions] { data_parallel: true } } }|' \
      -e "s|epochs: 4 warmup_iterations: 50|epochs: 1 warmup_iterations: 50 batch_size: $1 max_iterations: 30 log_every: 1${2:+ mixed_precision: $2}|" \
      -e 's|final_step: "fullytrain"|final_step: "fine_tune"|'
}
short 8 >"$work/dp1.textproto"
short 4 >"$work/dp2.textproto"
short 8 FLOAT16 >"$work/fp16.textproto"
short 8 BFLOAT16 >"$work/bf16.textproto"
short_ok=()
for run in dp1 fp16 bf16; do
  ours "$here/bin/spnas" run --config="$work/$run.textproto" --local_base_path="$work/$run" --device=cuda \
    >"$work/$run.log" 2>&1 && short_ok+=("$run")
done

# mixed_precision: the same 30 iterations (same data, same order) in float16 and bfloat16
# against float32. Every loss finite; the first (same weights, the forward's precision alone)
# within 2% of float32's (3% in bfloat16); the mean of the last 10 within 20% (25%). Measured
# with BFLOAT16 on the CPU: 0.2% on the first, 9% on the mean of the last 10, while single later
# iterations differ by up to 25% (after a few steps the runs see other proposals); a loss in half
# precision, a wrong loss scale or a diverging run falls far outside.
if "$python" - "$work" "${short_ok[@]}" <<'PY'; then
import json, math, sys
work, finished = sys.argv[1], set(sys.argv[2:])

def losses(run):
    if run not in finished:
        return None
    try:
        lines = [json.loads(l) for l in open(f"{work}/{run}/output/fine_tune/metrics_0.jsonl")]
    except OSError:
        return None
    return {l["iteration"]: l["loss"] for l in lines if "loss" in l}

reference = losses("dp1")
if not reference or len(reference) < 30:
    print("mixed precision: no float32 reference run")
    sys.exit(1)
ok = True
mean = lambda xs: sum(xs) / len(xs)
first = min(reference)
ref_last = mean([reference[i] for i in range(21, 31)])
for run, precision, first_rtol, last_rtol in (("fp16", "FLOAT16", 0.02, 0.20), ("bf16", "BFLOAT16", 0.03, 0.25)):
    got = losses(run)
    if not got or len(got) < 30:
        print(f"mixed precision {precision}: FAILED (the run did not finish; see {run}.log)")
        ok = False
        continue
    finite = all(math.isfinite(v) for v in got.values())
    last = mean([got[i] for i in range(21, 31)])
    first_ok = abs(got[first] - reference[first]) <= first_rtol * reference[first]
    last_ok = abs(last - ref_last) <= last_rtol * ref_last
    ok = ok and finite and first_ok and last_ok
    print(f"mixed precision {precision}: first loss {got[first]:.4f} (float32 {reference[first]:.4f}, "
          f"{100 * (got[first] / reference[first] - 1):+.1f}%, tolerance {100 * first_rtol:.0f}%), mean of the last 10 "
          f"{last:.4f} (float32 {ref_last:.4f}, {100 * (last / ref_last - 1):+.1f}%, tolerance {100 * last_rtol:.0f}%)"
          f"{'' if finite else ', NON-FINITE losses'}{'' if first_ok and last_ok else ', OUT OF TOLERANCE'}")
sys.exit(0 if ok else 1)
PY
  pass mixed_precision
else
  fail mixed_precision
fi

# data_parallel: fine_tune as 1 rank, then as 2 ranks sharing the GPUs ("cuda" is
# cuda:(LOCAL_RANK mod the GPUs)), and the device each rank logged against that rule.
dp_ok=1
[[ " ${short_ok[*]} " == *" dp1 "* ]] || dp_ok=0
ranks=()
for rank in 0 1; do
  # exec: $! is the rank's own process, for nvidia-smi below.
  (export LD_LIBRARY_PATH="$libs" RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 MASTER_PORT=29640
    exec "$here/bin/spnas" run --config="$work/dp2.textproto" --local_base_path="$work/dp2" --device=cuda) \
    >"$work/dp2_$rank.log" 2>&1 &
  ranks+=($!)
done
# Which GPU each rank's process holds, as the driver sees it (where nvidia-smi can see them).
if command -v nvidia-smi >/dev/null; then
  while kill -0 "${ranks[0]}" 2>/dev/null || kill -0 "${ranks[1]}" 2>/dev/null; do
    nvidia-smi --query-compute-apps=pid,gpu_uuid --format=csv,noheader 2>/dev/null
    sleep 1
  done | sort -u >"$work/dp2_gpus.txt"
  nvidia-smi --query-gpu=index,uuid --format=csv,noheader >"$work/gpu_uuids.txt" 2>/dev/null
fi
for pid in "${ranks[@]}"; do wait "$pid" || dp_ok=0; done  # a bare `wait` returns 0 whatever they did
for rank in 0 1; do
  expected="cuda:$((rank % gpus))"
  logged=$(grep -oE 'device cuda(:[0-9]+)?' "$work/dp2_$rank.log" | head -1 | cut -d' ' -f2)
  seen=""
  if [[ -s "$work/dp2_gpus.txt" ]]; then
    seen=$(awk -F', ' -v pid="${ranks[$rank]}" '$1 == pid { print $2 }' "$work/dp2_gpus.txt" |
      while read -r uuid; do awk -F', ' -v u="$uuid" '$2 == u { print "cuda:" $1 }' "$work/gpu_uuids.txt"; done |
      sort -u | tr '\n' ' ')
  fi
  echo "data parallel cuda, rank $rank (LOCAL_RANK $rank, $gpus GPU(s)): logged device ${logged:-none}," \
    "expected $expected, nvidia-smi: ${seen:-not visible}"
  [[ "$logged" == "$expected" ]] || dp_ok=0
done
if "$python" - "$work" <<'PY'; then
import json, sys
ok = True
for run, what in (("dp1", "1 rank, batch 8"), ("dp2", "2 ranks, batch 4 each")):
    try:
        lines = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/output/fine_tune/metrics_0.jsonl")]
        steps = [l for l in lines if "loss" in l]
        seconds = {l["iteration"]: l["seconds"] for l in steps}
        maps = [l["mAP"] for l in lines if "mAP" in l]
        print(f"data parallel cuda, {what}: {(seconds[30] - seconds[5]) / 25:.4f} s/step, "
              f"loss {steps[-1]['loss']:.4f} at {steps[-1]['iteration']}, mAP {maps[-1] if maps else 'none'}")
    except (OSError, KeyError, IndexError, ValueError) as e:
        print(f"data parallel cuda, {what}: FAILED (no metrics: {e!r})")
        ok = False
sys.exit(0 if ok else 1)
PY
  if ((dp_ok)); then
    pass data_parallel
  else
    fail data_parallel "a run failed, or a rank used another device than expected"
  fi
else
  fail data_parallel "no metrics"
fi

finish

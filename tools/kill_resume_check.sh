#!/bin/bash
# SIGKILL soak: runs the quickstart pipeline once uninterrupted (the reference), then again
# killed with SIGKILL at --rounds random moments in a row, resuming each time with --resume,
# and checks that
#   - every record finished before a kill is kept unchanged by the resumes (same file), and a
#     trial cut off in the middle continues from its last checkpoint,
#   - the killed run ends with the same records (ids, status, metrics but the times) and the
#     same final model (bit for bit) as the reference.
#   tools/kill_resume_check.sh [--rounds=20] [--max_delay=40] [--config=configs/spnas_quickstart.textproto]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=20
max_delay=40
config=configs/spnas_quickstart.textproto
for arg in "$@"; do
  case "$arg" in
    --rounds=*) rounds="${arg#*=}" ;;
    --max_delay=*) max_delay="${arg#*=}" ;;
    --config=*) config="${arg#*=}" ;;
    *) echo "usage: $0 [--rounds=N] [--max_delay=SECONDS] [--config=FILE]" >&2; exit 2 ;;
  esac
done
bazel build //:spnas >/dev/null 2>&1 || { echo "build failed"; exit 1; }
SPNAS=$(mktemp -d)/spnas
cp bazel-bin/spnas/spnas "$SPNAS"  # a later build must not change the binary under test
work=$(mktemp -d)
echo "output in $work"

# Records as "path id status metrics" without the timing metrics, and the models' checksums.
records() {
  /usr/bin/python3 - "$1/output" <<'PY'
import json, pathlib, sys
timing = {"train_seconds", "latency_ms", "seconds"}
for p in sorted(pathlib.Path(sys.argv[1]).rglob("performance_*.json")):
    r = json.loads(p.read_text())
    metrics = {k: v for k, v in r.get("metrics", {}).items() if k not in timing}
    print(p.relative_to(sys.argv[1]), r.get("status"), json.dumps(metrics, sort_keys=True))
PY
}
models() { (cd "$1/output" && find . -name 'model_*.pth' ! -name '*.last.pth' ! -name '*.best.pth' | sort | xargs -r md5sum); }

start=$SECONDS
if ! "$SPNAS" run --config="$config" --local_base_path="$work/reference" >"$work/reference.log" 2>&1; then
  echo "FAIL: the reference run failed; see $work/reference.log"; exit 1
fi
reference_seconds=$((SECONDS - start))
echo "reference run: ${reference_seconds} s"

base="$work/killed"
kills=0
snapshot() { (cd "$base/output" 2>/dev/null && find . -name 'performance_*.json' | sort | xargs -r md5sum); }
for ((round = 1; round <= rounds; round++)); do
  flag=""
  [[ -d "$base/output" ]] && flag="--resume"
  before=$(snapshot)
  "$SPNAS" run --config="$config" --local_base_path="$base" $flag >>"$work/killed.log" 2>&1 &
  pid=$!
  delay=$((2 + RANDOM % max_delay))
  for ((t = 0; t < delay * 10; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    kills=$((kills + 1))
    echo "round $round: killed after ${delay}s; $(snapshot | grep -c .) records"
  else
    wait "$pid"
    echo "round $round: the run finished before ${delay}s (exit $?)"
  fi
  lost=$(comm -23 <(echo "$before" | sort) <(snapshot | sort))
  if [[ -n "$before" && -n "$lost" ]]; then
    echo "FAIL: records changed or lost by round $round:"; echo "$lost"; exit 1
  fi
done
if ! "$SPNAS" run --config="$config" --local_base_path="$base" --resume >>"$work/killed.log" 2>&1; then
  echo "FAIL: the last resume failed; see $work/killed.log"; exit 1
fi

status=0
if ! diff <(records "$work/reference") <(records "$base") >"$work/records.diff"; then
  echo "FAIL: the records differ from the reference run's ($work/records.diff)"; status=1
fi
if ! diff <(models "$work/reference") <(models "$base") >"$work/models.diff"; then
  echo "FAIL: the models differ from the reference run's ($work/models.diff)"; status=1
fi
test -f "$base/output/report.html" || { echo "FAIL: no report"; status=1; }
if ((status == 0)); then
  echo "OK: $kills kills in $rounds rounds, $(grep -c ' resumes at iteration ' "$work/killed.log") trials resumed" \
    "from a checkpoint; $(records "$base" | wc -l) records and $(models "$base" | wc -l) models equal to the" \
    "uninterrupted run's (which took ${reference_seconds} s)"
fi
exit $status

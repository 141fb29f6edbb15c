#!/bin/bash
# Kills the quickstart pipeline with SIGKILL at a random moment, resumes it with --resume, and
# checks that every trial finished before the kill is kept unchanged (same ids, same metrics)
# and that the run completes.
#   tools/kill_resume_check.sh [seconds_before_kill]
set -uo pipefail
cd "$(dirname "$0")/.."
bazel build //:spnas >/dev/null 2>&1 || { echo "build failed"; exit 1; }
SPNAS=bazel-bin/spnas/spnas
BASE=$(mktemp -d)/run
CONFIG=configs/spnas_quickstart.textproto
delay=${1:-$((30 + RANDOM % 150))}

"$SPNAS" run --config=$CONFIG --local_base_path="$BASE" >"$BASE.first.log" 2>&1 &
pid=$!
sleep "$delay"
kill -9 "$pid" 2>/dev/null && echo "killed after ${delay}s" || echo "the run ended before ${delay}s"
wait "$pid" 2>/dev/null

snapshot() { (cd "$BASE/output" 2>/dev/null && find . -name 'performance_*.json' | xargs -r md5sum | sort); }
before=$(snapshot)
echo "$(grep -c . <<<"$before") finished records before the resume"

if ! "$SPNAS" run --config=$CONFIG --local_base_path="$BASE" --resume >"$BASE.resume.log" 2>&1; then
  echo "FAIL: the resumed run failed; see $BASE.resume.log"; exit 1
fi
after=$(snapshot)
missing=$(comm -23 <(echo "$before") <(echo "$after"))
if [[ -n "$missing" ]]; then
  echo "FAIL: records changed or lost by the resume:"; echo "$missing"; exit 1
fi
test -f "$BASE/output/report.html" || { echo "FAIL: no report"; exit 1; }
echo "OK: $(grep -c . <<<"$before") records kept, $(grep -c . <<<"$after") after the resume; output in $BASE/output"

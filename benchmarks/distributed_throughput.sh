#!/bin/bash
# Search throughput of a distributed run: the quickstart's fine_tune and serial steps (serial
# with 8 candidates) started by torchrun with 1 and then 2 worker processes of 1 thread each,
# besides rank 0. Prints finished serial trials per hour for both, their ratio, and what shipping
# weights through the c10d store cost per trial.
#   benchmarks/distributed_throughput.sh [candidates]
set -euo pipefail
cd "$(dirname "$0")/.."
candidates=${1:-8}
bazel build //:spnas >/dev/null 2>&1 || { echo "build failed"; exit 1; }
torchrun=$HOME/.cache/spnas/venv/bin/torchrun
work=$(mktemp -d)
# The quickstart up to its serial step.
awk '/^step \{/ { n++ } n <= 2' configs/spnas_quickstart.textproto |
  sed -e "s/max_sample: 5/max_sample: $candidates/" -e "s/final_step: \"fullytrain\"/final_step: \"serial\"/" >"$work/config.textproto"
for workers in 1 2; do
  "$torchrun" --nproc_per_node=$((workers + 1)) --master_addr=127.0.0.1 --master_port=$((29600 + workers)) \
    --no-python bazel-bin/spnas/spnas run --config="$work/config.textproto" --local_base_path="$work/w$workers" \
    --threads=1 >"$work/w$workers.log" 2>&1
  /usr/bin/python3 - "$work/w$workers" "$workers" <<'PY'
import json, pathlib, re, sys
base, workers = pathlib.Path(sys.argv[1]), sys.argv[2]
status = json.loads((base / "output/serial/step_status.json").read_text())
per_hour = 3600 * status["trials"] / status["seconds"]
log = (base.parent / f"w{workers}.log").read_text()
ship = [tuple(map(float, m)) for m in re.findall(
    r"shipping cost ([\d.e+-]+) MB out in ([\d.e+-]+) s, ([\d.e+-]+) MB back in ([\d.e+-]+) s", log)]
mb = sum(a + c for a, _, c, _ in ship) / len(ship)
sec = sum(b + d for _, b, _, d in ship) / len(ship)
print(f"{workers} worker(s): {status['trials']} serial trials in {status['seconds']:.1f} s = {per_hour:.1f} trials/hour; "
      f"shipping per trial {mb:.2f} MB in {sec:.3f} s")
(base.parent / f"rate{workers}").write_text(str(per_hour))
PY
done
/usr/bin/python3 -c "import sys; a=float(open('$work/rate1').read()); b=float(open('$work/rate2').read()); print(f'speed-up with 2 workers: {b/a:.2f}x')"
echo "logs in $work"

#!/bin/bash
# A distributed search on one machine over loopback: 3 processes started by torchrun give the
# records of a single-process run; a worker killed mid-trial loses no trial, and started again it
# rejoins; ranks started with different configs, a master nobody serves and a port in use stop
# at once with a clear error.
#   distributed_test.sh <spnas binary with the test plugins> <python of the environment>
set -u
source "$(dirname "$0")/check.sh"
SPNAS=$(realpath "$1")
PYTHON=$2
config=$(realpath "$(dirname "$0")/testdata/distributed_search.textproto")
work=${TEST_TMPDIR:-$(mktemp -d)}
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# "id status metrics" of a step's records, without the timings.
records() {
  "$PYTHON" - "$1" <<'PY'
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("performance_*.json"), key=lambda p: int(p.stem.split("_")[1])):
    r = json.loads(p.read_text())
    m = {k: v for k, v in r.get("metrics", {}).items() if k != "train_seconds"}
    print(r["id"], r["status"], r.get("hyperparameters"), json.dumps(m, sort_keys=True), r.get("has_weights", False))
PY
}

"$SPNAS" run --config="$config" --local_base_path="$work/single" --threads=1 >"$work/single.log" 2>&1
check "single-process run" test -f "$work/single/output/train/step_status.json"

# 1. torchrun, 3 processes: rank 0 searches, ranks 1 and 2 train.
port=$(free_port)
timeout 180 "$PYTHON" -m torch.distributed.run --nproc_per_node=3 --master_addr=127.0.0.1 --master_port="$port" \
  --no-python "$SPNAS" run --config="$config" --local_base_path="$work/torchrun" --threads=1 >"$work/torchrun.log" 2>&1
check "torchrun run finishes" test -f "$work/torchrun/output/train/step_status.json"
check "every trial's record equals the single-process run's" \
  diff <(records "$work/single/output/search/trials") <(records "$work/torchrun/output/search/trials")
check "both workers trained trials" bash -c "grep -l '\"worker_rank\": \"1\"' $work/torchrun/output/search/trials/performance_*.json >/dev/null &&
  grep -l '\"worker_rank\": \"2\"' $work/torchrun/output/search/trials/performance_*.json >/dev/null"
check "the weights came back" bash -c "ls $work/torchrun/output/search/trials/model_*.pth | wc -l | grep -qx 6"
check "the train step's records equal" diff <(records "$work/single/output/train") <(records "$work/torchrun/output/train")

# One worker: exactly the single-process run's records (every proposal sees every earlier trial).
port=$(free_port)
timeout 180 "$PYTHON" -m torch.distributed.run --nproc_per_node=2 --master_addr=127.0.0.1 --master_port="$port" \
  --no-python "$SPNAS" run --config="$config" --local_base_path="$work/one" --threads=1 >"$work/one.log" 2>&1
check "one worker: the single-process run's records" \
  diff <(records "$work/single/output/search/trials") <(records "$work/one/output/search/trials")
check "one worker: no proposal made while another trial ran" \
  bash -c "! grep -l proposed_while_running $work/one/output/search/trials/performance_*.json"

# 2. Started by hand as srun would (no torchrun agent), rank 2 killed by SIGKILL in its first trial.
port=$(free_port)
start() {  # rank, config, log, extra environment...
  local rank=$1 cfg=$2 log=$3; shift 3
  env "$@" RANK="$rank" WORLD_SIZE=3 LOCAL_RANK="$rank" MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" \
    timeout 120 "$SPNAS" run --config="$cfg" --local_base_path="$work/$base" --threads=1 --worker_timeout=2 \
    --connect_timeout=20 >"$log" 2>&1 &
}
base=killed
start 0 "$config" "$work/killed0.log" X=0; rank0=$!
start 1 "$config" "$work/killed1.log" X=0
start 2 "$config" "$work/killed2.log" SPNAS_TEST_KILL_AT_TRIAL=any
wait $rank0
check "the run with a killed worker finishes" test -f "$work/killed/output/train/step_status.json"
check "no trial lost or duplicated, the same records" \
  diff <(records "$work/single/output/search/trials") <(records "$work/killed/output/search/trials")
check "rank 0 said where the trial went" grep -q "sent no heartbeat for .* goes to another worker" "$work/killed0.log"
wait

# 3. A worker killed, then started again: it rejoins the run and trains again.
port=$(free_port)
base=rejoin
sed 's/max_sample: 6/max_sample: 16/' "$config" >"$work/many.textproto"
start 0 "$work/many.textproto" "$work/rejoin0.log" X=0; rank0=$!
start 1 "$work/many.textproto" "$work/rejoin1.log" X=0
start 2 "$work/many.textproto" "$work/rejoin2.log" SPNAS_TEST_KILL_AT_TRIAL=any; wait $!
start 2 "$work/many.textproto" "$work/rejoin2b.log" X=0
wait $rank0
check "the run with a restarted worker finishes" test -f "$work/rejoin/output/train/step_status.json"
check "rank 0 took the restarted worker back" grep -q "worker rank 2 rejoined the run" "$work/rejoin0.log"
check "all 16 trials finished, each once" \
  test "$(records "$work/rejoin/output/search/trials" | grep -c FINISHED)" = 16
check "the restarted worker trained trials" grep -q "rank 2 trains trial" "$work/rejoin2b.log"
wait

# 4. Ranks with different configs: an error on every rank, in seconds.
port=$(free_port)
sed 's/seed: 7/seed: 8/' "$config" >"$work/other.textproto"
SECONDS=0
base=mismatch
start 0 "$config" "$work/mismatch0.log" X=0; a=$!
start 1 "$work/other.textproto" "$work/mismatch1.log" X=0; b=$!
start 2 "$config" "$work/mismatch2.log" X=0; c=$!
wait $a; ra=$?; wait $b; rb=$?; wait $c; rc=$?
check "mismatched configs: every rank fails" test "$ra" = 1 -a "$rb" = 1 -a "$rc" = 1
check "mismatched configs: within 30 s" test "$SECONDS" -lt 30
check "mismatched configs: rank 0 names rank 1" grep -q "rank 1 runs something else than rank 0" "$work/mismatch0.log"
check "mismatched configs: rank 1 says so too" grep -q "rank 1 runs something else than rank 0" "$work/mismatch1.log"

# 5. A master nobody serves: a clear error, not a hang.
port=$(free_port)
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 60 "$SPNAS" run --config="$config" \
  --local_base_path="$work/alone" --connect_timeout=3 >"$work/alone.log" 2>&1
check "no master: an error naming the address" grep -q "cannot reach the master at 127.0.0.1:$port" "$work/alone.log"

# 6. Rank 0's port taken by another program: a clear error, at once.
port=$(free_port)
"$PYTHON" -c "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', $port)); s.listen(); time.sleep(60)" &
listener=$!
sleep 1
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 60 "$SPNAS" run --config="$config" \
  --local_base_path="$work/taken" --connect_timeout=5 >"$work/taken.log" 2>&1
check "a port in use: an error naming it" grep -q "cannot serve the run's store on port $port" "$work/taken.log"
kill $listener

for log in "$work"/*.log; do echo "== $log"; tail -5 "$log"; done
finish

#!/bin/bash
# A trial's TensorBoard files, read by TensorBoard's EventAccumulator (the pinned tensorboard).
set -u
SPNAS="$1"
PYTHON="$2"
source tests/check.sh
dir="${TEST_TMPDIR:-$(mktemp -d)}/tensorboard"
mkdir -p "$dir"
sed -e 's|epochs: 1 batch_size: 4|epochs: 2 batch_size: 4 log_every: 1|' tests/testdata/tiny_train.textproto >"$dir/config.textproto"
"$SPNAS" run --config="$dir/config.textproto" --local_base_path="$dir/run" --overwrite >"$dir/log" 2>&1
check "trained" test -s "$dir/run/output/train/model_0.pth"
check "event file in output/train/tb/0" bash -c "ls '$dir'/run/output/train/tb/0/events.out.tfevents.*"
out=$("$PYTHON" tests/tensorboard_check.py "$dir/run/output/train/tb/0" 2>&1)
echo "$out"
check "EventAccumulator finds the curves and texts" grep -q "^tensorboard reads" <<<"$out"
finish

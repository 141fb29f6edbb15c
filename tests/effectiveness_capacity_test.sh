#!/bin/bash
# tools/effectiveness_capacity.py over a stand-in study run (a tiny detector as the reignited
# serial winner): the deeper network it writes loads in spnas and detects exactly what the
# winner detects, and its config is valid.
set -u
SPNAS="$1"
PYTHON="$2"
source tests/check.sh
dir="${TEST_TMPDIR:-$(mktemp -d)}/effectiveness_capacity"
rm -rf "$dir"
mkdir -p "$dir"
sed "s|box_score_thresh: 0.01|box_score_thresh: 0.0|" tests/testdata/tiny_train.textproto >"$dir/tiny.textproto"
"$SPNAS" run --config="$dir/tiny.textproto" --local_base_path="$dir/tiny" --overwrite >"$dir/tiny.log" 2>&1
check "the winner trained" test -s "$dir/tiny/output/train/model_0.pth"

run="$dir/run"
mkdir -p "$run/output/parallel"
cp configs/effectiveness_fashiondet.textproto "$run/config.textproto"
cp -r "$dir/tiny/output/train" "$run/output/reignition"
printf 'id,status,parent,model,mAP\n0,FINISHED,"reignition/0","parallel_code=[0, 0, 0, 0]",1.0\n' \
  >"$run/output/parallel/summary.csv"
out=$("$PYTHON" tools/effectiveness_capacity.py "$run" 2>&1)
echo "$out"
check "deepens stages 2-4 and checks the function" grep -q "11-21-21-21 -> 11-211-211-211, the same function at first" <<<"$out"
check "writes a valid config" "$SPNAS" validate --config="$run/capacity/config.textproto"
check "the config starts from the deeper weights" grep -q "pretrained_model_file: \"{local_base_path}/init/model_0.pth\"" "$run/capacity/config.textproto"

# spnas eval reads a records folder: the winner's performance record stands in for the deeper one's.
cp "$dir/tiny/output/train/performance_0.json" "$run/capacity/init/"
for model in "$dir/tiny/output/train" "$run/capacity/init"; do
  "$SPNAS" eval --model_dir="$model" --id=0 --dataset=fashiondet:val:12:64 --detections_out="$model/dets.json" \
    >"$model/eval.log" 2>&1
done
check "spnas loads the deeper weights" test -s "$run/capacity/init/dets.json"
check "the deeper network detects exactly what the winner does" \
  cmp "$dir/tiny/output/train/dets.json" "$run/capacity/init/dets.json"
check "detections to compare" test "$(grep -o '"score"' "$run/capacity/init/dets.json" | wc -l)" -gt 100

sed -i 's|"code": "11-21-21-21"|"code": "11-21-21"|' "$run/output/reignition/desc_0.json"
out=$("$PYTHON" tools/effectiveness_capacity.py "$run" 2>&1)
check "a code of 3 stages is refused by name" grep -q "serial code 11-21-21: fewer than 4 stages" <<<"$out"
finish

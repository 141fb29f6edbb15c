#!/bin/bash
# The commands around a trained model: eval (with COCO results out), export_coco, cocoeval
# (must agree with eval on the same data), predict, and convert of a torchvision checkpoint.
set -u
SPNAS="$1"
source tests/check.sh
dir="${TEST_TMPDIR:-$(mktemp -d)}/cli_model"
rm -rf "$dir"

"$SPNAS" run --config=tests/testdata/tiny_train.textproto --local_base_path="$dir" >"$dir.log" 2>&1
check "tiny pipeline runs" test $? -eq 0
model="$dir/output/train"
check "records name the commit the binary was built from" \
  grep -qE '"commit": "([0-9a-f]{40}(-dirty)?|unknown)"' "$model/performance_0.json"
check "the run wrote its report" grep -q "<svg" "$dir/output/report.html"
rm "$dir/output/report.html"
"$SPNAS" report --config=tests/testdata/tiny_train.textproto --local_base_path="$dir" >/dev/null 2>&1
check "report rewrites it" grep -q "Final model" "$dir/output/report.html"
for axis in "parameters (millions)" "multiply-adds (billions)"; do
  check "report plots mAP against $axis" grep -q "<h2>Trials: mAP against $axis</h2>" "$dir/output/report.html"
done
check "report links the trial's curves" grep -q "<a href='train/metrics_0.jsonl'><svg" "$dir/output/report.html"
check "with the loss curve" grep -q "<title>loss [0-9.]* to [0-9.]*, mAP" "$dir/output/report.html"

spec="fashiondet:val:12:64"
out=$("$SPNAS" eval --model_dir="$model" 2>&1)
check "eval defaults to the step's val_data" grep -q "on 12 images (FashionDet)" <<<"$out"

# A torchvision checkpoint converted into a records folder.
out=$("$SPNAS" convert --weights=tests/fixtures/checkpoints/tiny_frcnn_legacy.pth \
  --model_config=tests/testdata/tiny_frcnn.textproto --out="$dir/converted" 2>&1)
check "convert loads every tensor" grep -q "loaded, 0 missing, 0 unexpected, 0 of another shape" <<<"$out"
check "convert writes a record" test -s "$dir/converted/model_0.pth" -a -s "$dir/converted/performance_0.json"
# A damaged zip checkpoint: LibTorch's error, without its C++ backtrace.
printf 'PK\003\004 a zip cut short' >"$dir/cut.pth"
out=$("$SPNAS" convert --weights="$dir/cut.pth" --model_config=tests/testdata/tiny_frcnn.textproto --out="$dir/cut" 2>&1)
check "a damaged zip is named" grep -q "cut.pth' is not a readable torch.save zip file: PytorchStreamReader failed" <<<"$out"
check "no backtrace reaches the user" test "$(grep -c "frame #" <<<"$out")" -eq 0

# That detector (random, but confident) gives many detections: eval and cocoeval must agree.
out=$("$SPNAS" eval --model_dir="$dir/converted" --dataset=$spec --detections_out="$dir/dets.json" 2>/dev/null)
check "eval prints mAP" grep -q "mAP" <<<"$out"
check "eval writes COCO results" grep -q '"category_id"' "$dir/dets.json"
"$SPNAS" export_coco --dataset=$spec --out="$dir/coco" >/dev/null 2>&1
check "export_coco writes annotations" test -s "$dir/coco/annotations.json"
stats=$("$SPNAS" cocoeval --annotations="$dir/coco/annotations.json" --detections="$dir/dets.json" 2>&1)
check "cocoeval prints the 12 stats" test "$(grep -c 'Average' <<<"$stats")" -eq 12
check "cocoeval agrees with eval line by line" diff <(grep Average <<<"$out") <(grep Average <<<"$stats")

# Ground truth given as detections scores 1.000; the boxes shifted by half their width, less.
/usr/bin/python3 - "$dir/coco/annotations.json" "$dir" <<'PY'
import json, sys
gt = json.load(open(sys.argv[1]))
perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in gt["annotations"]]
shifted = [dict(d, bbox=[d["bbox"][0] + d["bbox"][2] / 2] + d["bbox"][1:]) for d in perfect]
json.dump(perfect, open(sys.argv[2] + "/perfect.json", "w"))
json.dump(shifted, open(sys.argv[2] + "/shifted.json", "w"))
PY
stats=$("$SPNAS" cocoeval --annotations="$dir/coco/annotations.json" --detections="$dir/perfect.json" 2>&1)
check "ground truth as detections scores 1" grep -q "IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000" <<<"$stats"
stats=$("$SPNAS" cocoeval --annotations="$dir/coco/annotations.json" --detections="$dir/shifted.json" 2>&1)
check "boxes shifted by half score 0 (IoU 1/3)" grep -q "IoU=0.50      | area=   all | maxDets=100 ] = 0.000" <<<"$stats"

"$SPNAS" predict --model_dir="$dir/converted" --image="$dir/coco/images/0.png" --out="$dir/pred.png" \
  --json_out="$dir/pred.json" --score_threshold=0.0 >/dev/null 2>&1
check "predict draws an image" test -s "$dir/pred.png"
check "predict writes JSON" grep -q '"score"' "$dir/pred.json"
mkdir -p "$dir/folder"
cp "$dir/coco/images/0.png" "$dir/coco/images/1.png" "$dir/folder/"
echo "not an image" >"$dir/folder/2.png"
out=$("$SPNAS" predict --model_dir="$dir/converted" --image="$dir/folder" --out="$dir/folder_out" \
  --score_threshold=0.0 2>&1); status=$?
check "predict on a folder writes an image and a JSON per image" \
  test -s "$dir/folder_out/0.png" -a -s "$dir/folder_out/0.json" -a -s "$dir/folder_out/1.png" -a -s "$dir/folder_out/1.json"
check "with a progress line per image" grep -q "^\[3/3\] 2.png: image file .* cannot be decoded" <<<"$out"
check "and fails naming the image it could not read (exit $status)" grep -q "1 of 3 images failed" <<<"$out"

out=$("$SPNAS" eval --model_dir="$dir/nothing" --dataset=$spec 2>&1); status=$?
check "eval of an empty folder fails clearly" test $status -ne 0
check "the message names the folder" grep -q "holds no records" <<<"$out"
out=$("$SPNAS" eval --model_dir="$model" --dataset=fashion:val 2>&1)
check "a bad dataset spec is explained" grep -q "is not one of fashiondet" <<<"$out"

# A wrong plugin name inside a model description is an error naming the file, never a crash.
for typo in 's/"FPN"/"FPNN"/:FPN' 's/"TwoMLPHead"/"TwoMLPHeadd"/:TwoMLPHead'; do
  sed "${typo%%:*}" tests/testdata/tiny_frcnn.textproto >"$dir/typo.textproto"
  out=$("$SPNAS" convert --weights=tests/fixtures/checkpoints/tiny_frcnn_legacy.pth \
    --model_config="$dir/typo.textproto" --out="$dir/typo_out" 2>&1); status=$?
  check "convert with a misspelt ${typo##*:} fails cleanly (exit $status)" test $status -eq 1
  check "convert names the file and the fix" grep -q "typo.textproto: .*Did you mean '${typo##*:}'" <<<"$out"
done
cp -r "$dir/converted" "$dir/bad_desc"
sed -i 's/"FPN"/"FPNN"/' "$dir/bad_desc/desc_0.json"
out=$("$SPNAS" eval --model_dir="$dir/bad_desc" --dataset=$spec 2>&1); status=$?
check "eval of a bad description fails cleanly (exit $status)" test $status -eq 1
check "eval names desc_0.json and the fix" grep -q "desc_0.json: .*neck.*Did you mean 'FPN'" <<<"$out"
out=$("$SPNAS" predict --model_dir="$dir/bad_desc" --image="$dir/coco/images/0.png" --out="$dir/bad.png" 2>&1); status=$?
check "predict of a bad description fails cleanly (exit $status)" test $status -eq 1
check "predict names desc_0.json and the fix" grep -q "desc_0.json: .*neck.*Did you mean 'FPN'" <<<"$out"

finish

#!/bin/bash
# python/spnas_torch builds a searched model (a serial code, and one with the parallel structure)
# as a torchvision FasterRCNN, loads its weights strictly, and detects what `spnas predict` does;
# its ONNX export detects the same in ONNX Runtime, and its TorchScript export in torch.jit.
set -u
SPNAS="$1"
PYTHON="$2"
source tests/check.sh
dir="${TEST_TMPDIR:-$(mktemp -d)}/spnas_torch"
mkdir -p "$dir"
"$SPNAS" export_coco --dataset=fashiondet:val:1:64 --out="$dir/coco" >/dev/null 2>&1
image="$dir/coco/images/0.png"
base='code: "11-21-21-21" block: BASIC stem_width: 8'
for name in serial parallel resnext_frozen; do
  case "$name" in
    serial) body="$base" ;;
    parallel) body="$base parallel_code: [1, 0, 2, 1]" ;;
    resnext_frozen) body='code: "11-21-21-21" block: RESNEXT groups: 2 base_width: 8 stem_width: 8 norm: FROZEN_BATCH_NORM parallel_code: [0, 1, 0, 1]' ;;
  esac
  sed -e "s|$base|$body|" -e "s|box_score_thresh: 0.01|box_score_thresh: 0.0|" \
    tests/testdata/tiny_train.textproto >"$dir/$name.textproto"
  "$SPNAS" run --config="$dir/$name.textproto" --local_base_path="$dir/$name" --overwrite >"$dir/$name.log" 2>&1
  check "$name: trained" test -s "$dir/$name/output/train/model_0.pth"
  if [[ "$name" != serial ]]; then
    # A short training leaves the passes' statistics near the layers' and the connections near
    # zero: random statistics and open connections make every pass count in the comparison.
    "$PYTHON" - "$dir/$name/output/train/model_0.pth" <<'EOF'
import sys
import torch
path = sys.argv[1]
state = torch.load(path)
torch.manual_seed(0)
for name, t in state.items():
    if "running_mean_pass" in name:
        t.uniform_(-0.5, 0.5)
    elif "running_var_pass" in name:
        t.uniform_(0.5, 2.0)
    elif name.startswith("backbone.body.connect") and name.endswith(".1.weight"):
        t.fill_(1.0)
torch.save(state, path)
EOF
  fi
  "$SPNAS" predict --model_dir="$dir/$name/output/train" --image="$image" --out="$dir/$name.png" \
    --json_out="$dir/$name.json" --score_threshold=0 >/dev/null 2>&1
  out=$("$PYTHON" tests/spnas_torch_check.py "$dir/$name/output/train" "$image" "$dir/$name.json" 2>&1)
  check "$name: torchvision model detects what spnas does ($out)" grep -q "detections equal" <<<"$out"
  if [[ "$name" != resnext_frozen ]]; then
    out=$("$PYTHON" tests/spnas_torch_export_check.py "$dir/$name/output/train" "$image" "$dir/$name.export" 2>&1)
    echo "$out"
    check "$name: ONNX Runtime detects what torch does" grep -q "^onnx detections equal" <<<"$out"
    check "$name: TorchScript detects what torch does" grep -q "^torchscript detections equal" <<<"$out"
  fi
done
# The command line drives the same export.
"$SPNAS" export --model_dir="$dir/serial/output/train" --format=onnx --out="$dir/cli.onnx" >"$dir/export.log" 2>&1
check "spnas export writes an ONNX file" test -s "$dir/cli.onnx"
check "it loads in ONNX Runtime" "$PYTHON" -c "import onnxruntime as o; o.InferenceSession('$dir/cli.onnx')"
"$SPNAS" export --model_dir="$dir/serial/output/train" --format=tflite --out="$dir/x" >"$dir/bad.log" 2>&1
check "an unknown format is an error naming the formats" grep -q "must be onnx or torchscript" "$dir/bad.log"
finish

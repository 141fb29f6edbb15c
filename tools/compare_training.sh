#!/bin/bash
# Trains configs/fashiondet_resnet18.textproto with spnas and the same recipe with torchvision
# (tools/torchvision_fashiondet.py on the same scenes exported as COCO), on the same machine, and
# prints both mAPs (scored by the same COCO evaluation) and training speeds.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //:spnas >/dev/null 2>&1
SPNAS=bazel-bin/spnas/spnas
work=$(mktemp -d)
"$SPNAS" run --config=configs/fashiondet_resnet18.textproto --local_base_path="$work/spnas" >"$work/spnas.log" 2>&1
grep -E "epoch [0-9]+/[0-9]+ done" "$work/spnas.log" | sed 's/.*trial 0: /spnas: /'
"$SPNAS" export_coco --dataset=fashiondet:train:2000 --out="$work/train" >/dev/null 2>&1
"$SPNAS" export_coco --dataset=fashiondet:val:500 --out="$work/val" >/dev/null 2>&1
"$SPNAS" eval --model_dir="$work/spnas/output/train" --dataset=coco:"$work/val/annotations.json":"$work/val/images" \
  --detections_out="$work/spnas_dets.json" 2>/dev/null | grep -E "mAP|AP50 "
"${SPNAS_VENV:-$HOME/.cache/spnas/venv}/bin/python3" tools/torchvision_fashiondet.py "$work/train" "$work/val" "$work/tv_dets.json"
echo "torchvision, same recipe:"
"$SPNAS" cocoeval --annotations="$work/val/annotations.json" --detections="$work/tv_dets.json" | head -2
echo "logs and detections in $work"

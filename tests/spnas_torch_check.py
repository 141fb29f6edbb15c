"""Detections of python/spnas_torch's torchvision model against `spnas predict`'s JSON.

    spnas_torch_check.py MODEL_DIR IMAGE.png PREDICT.json
"""
import json
import sys

import torch
import torchvision

sys.path.insert(0, "python")
import spnas_torch  # noqa: E402

model_dir, image_path, predicted = sys.argv[1:4]
model = spnas_torch.load(model_dir)  # strict=True: every tensor has its module, every module its tensor
image = torchvision.io.read_image(image_path, torchvision.io.ImageReadMode.RGB).float() / 255
with torch.no_grad():
    ours = model([image])[0]
theirs = json.load(open(predicted))
boxes = torch.tensor([d["box"] for d in theirs], dtype=torch.float32).reshape(-1, 4)
scores = torch.tensor([d["score"] for d in theirs], dtype=torch.float32)
labels = torch.tensor([d["label"] for d in theirs], dtype=torch.int64)
assert len(theirs) > 0, "spnas predict found nothing to compare"
assert ours["boxes"].shape == boxes.shape, f"{ours['boxes'].shape[0]} detections vs spnas's {boxes.shape[0]}"
box_error = (ours["boxes"] - boxes).abs().max().item()
score_error = (ours["scores"] - scores).abs().max().item()
assert box_error < 1e-4 and score_error < 1e-4, f"box error {box_error}, score error {score_error}"
assert torch.equal(ours["labels"], labels), "labels differ"
print(f"{len(theirs)} detections equal: box error {box_error:.2e}, score error {score_error:.2e}")

"""Detections of python/spnas_torch's torchvision model against `spnas predict`'s JSON.

    spnas_torch_check.py MODEL_DIR IMAGE.png PREDICT.json
"""
import json
import os
import shutil
import sys
import tempfile

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

# Where passes keep their own BatchNorm statistics, the comparison above depends on them: with
# the layers' own statistics instead, the detections move.
pass_norms = [m for m in model.modules() if isinstance(m, spnas_torch._PassBatchNorm)]
if pass_norms:
    with torch.no_grad():
        for norm in pass_norms:
            for name, buffer in norm.named_buffers():
                if "_pass" in name:
                    buffer.copy_(getattr(norm, name[:name.index("_pass")]))
        shared = model([image])[0]
    moved = float("inf")
    if shared["boxes"].shape == ours["boxes"].shape:
        moved = max((shared["boxes"] - ours["boxes"]).abs().max().item(),
                    (shared["scores"] - ours["scores"]).abs().max().item())
    assert moved > 1e-3, f"detections do not depend on the passes' statistics (they move by {moved:.2e})"
    # Saved without statistics per pass (one set per layer), the model loads with each pass
    # starting from its layer's: exactly the detections above.
    with tempfile.TemporaryDirectory() as old:
        for name in os.listdir(model_dir):
            source = os.path.join(model_dir, name)
            if name.startswith("model_") and name.endswith(".pth"):
                state = torch.load(source)
                torch.save({k: v for k, v in state.items() if "_pass" not in k}, os.path.join(old, name))
            elif name.startswith(("desc_", "performance_")):
                shutil.copy(source, old)
        with torch.no_grad():
            loaded = spnas_torch.load(old)([image])[0]
    assert all(torch.equal(loaded[k], shared[k]) for k in ("boxes", "scores", "labels")), \
        "a model saved without statistics per pass does not detect what its layers' statistics give"
    print(f"{len(pass_norms)} layers with statistics per pass; the layers' own move the detections by {moved:.2e}")
print(f"{len(theirs)} detections equal: box error {box_error:.2e}, score error {score_error:.2e}")

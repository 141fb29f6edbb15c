#!/usr/bin/env python3
"""Writes tests/fixtures/ops.pt: inputs and torchvision outputs for NMS, box IoU and RoIAlign.

Bazel runs it at build time with the project's Python environment (//tests:ops_fixture), so the
reference is made by the pinned torchvision on the machine that runs the tests. By hand:
~/.cache/spnas/venv/bin/python3 tools/golden/make_ops_fixtures.py [OUT_DIR]
The file is a plain dict of tensors in the zip format, which LibTorch's pickle_load reads.
"""
import os
import sys
import torch
import torchvision
from torchvision.ops import batched_nms, box_iou, nms, roi_align

torch.manual_seed(0)
out = {}


def random_boxes(n, size=100.0):
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * size / 3 + 1
    return torch.cat([xy, xy + wh], 1)


# NMS: distinct scores, so the order is unambiguous.
boxes = random_boxes(300)
scores = torch.randperm(300).float() / 300
out["nms.boxes"] = boxes
out["nms.scores"] = scores
for t in (0.3, 0.5, 0.7):
    out[f"nms.keep_{t}"] = nms(boxes, scores, t)
idxs = torch.randint(0, 5, (300,))
out["nms.idxs"] = idxs
out["nms.batched_keep"] = batched_nms(boxes, scores, idxs, 0.5)
# Over 4000 coordinates torchvision switches to per-class NMS.
big = random_boxes(1500, 400.0)
big_scores = torch.randperm(1500).float() / 1500
big_idxs = torch.randint(0, 7, (1500,))
out["nms.big_boxes"] = big
out["nms.big_scores"] = big_scores
out["nms.big_idxs"] = big_idxs
out["nms.big_batched_keep"] = batched_nms(big, big_scores, big_idxs, 0.5)

out["iou.a"] = random_boxes(20)
out["iou.b"] = random_boxes(30)
out["iou.iou"] = box_iou(out["iou.a"], out["iou.b"])

# RoIAlign forward and input gradient for several settings.
x = torch.randn(2, 3, 13, 17, dtype=torch.float64)
rois = torch.cat([torch.randint(0, 2, (24, 1)).double(), random_boxes(24, 60.0).double()], 1)
rois[0, 1:] = torch.tensor([-10.0, -10.0, 5.0, 5.0])  # partly outside
rois[1, 1:] = torch.tensor([50.0, 40.0, 80.0, 70.0])  # mostly outside
rois[2, 1:] = torch.tensor([3.0, 3.0, 3.2, 3.1])  # tiny
grad = torch.randn(24, 3, 5, 4, dtype=torch.float64)
out["roi.input"] = x
out["roi.rois"] = rois
out["roi.grad"] = grad
for aligned in (False, True):
    for ratio in (-1, 0, 1, 2, 3):
        xi = x.clone().requires_grad_(True)
        y = roi_align(xi, rois, (5, 4), spatial_scale=0.25, sampling_ratio=ratio, aligned=aligned)
        y.backward(grad)
        key = f"roi.{int(aligned)}_{ratio}"
        out[key + ".out"] = y.detach()
        out[key + ".grad_input"] = xi.grad

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
path = os.path.join(out_dir, "ops.pt")
torch.save(out, path, _use_new_zipfile_serialization=True)
print("wrote", os.path.normpath(path), "torchvision", torchvision.__version__)

#!/usr/bin/env python3
"""Writes tests/fixtures/nms_large.pt (argument: the output file): BatchedNms inputs on either side
of torchvision's per-device strategy limits, and torchvision.ops.batched_nms's kept indices.

  mid:   10,000 boxes (40,000 coordinates): on CUDA, torchvision offsets the categories apart
         (the limit there is 100,000); on the CPU (limit 4,000) it runs one NMS per category.
  large: 30,000 boxes (120,000 coordinates): one NMS per category on both devices.

The kept indices are the same whichever strategy runs, for these inputs: whole-number
coordinates below 2^12 (every area, intersection and offset exact in float32) and distinct
scores (the per-category strategy's final sort is not stable). Boxes gather around a few
hundred centres, so most are suppressed. Bazel runs it at build time with the project's Python
environment (//tests:nms_large_fixture); tools/gpu_check_run.sh checks that torchvision on CUDA
keeps the same indices.
"""
import sys

import torch
from torchvision.ops import batched_nms

torch.manual_seed(0)
out = {}
for name, n, classes in (("mid", 10_000, 7), ("large", 30_000, 5)):
    centres = (torch.rand(300, 2) * 3000).floor()
    xy = centres[torch.randint(0, 300, (n,))] + torch.randint(-8, 9, (n, 2)).float()
    wh = torch.randint(40, 90, (n, 2)).float()
    boxes = torch.cat([xy, xy + wh], 1)
    scores = (torch.randperm(n) + 1).float() / n
    idxs = torch.randint(0, classes, (n,))
    out[f"{name}.boxes"] = boxes
    out[f"{name}.scores"] = scores
    out[f"{name}.idxs"] = idxs
    out[f"{name}.keep"] = batched_nms(boxes, scores, idxs, 0.5)
    print(name, n, "boxes,", out[f"{name}.keep"].numel(), "kept")
torch.save(out, sys.argv[1])

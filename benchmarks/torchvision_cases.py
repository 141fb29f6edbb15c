#!/usr/bin/env python3
"""The cases of spnas_benchmark.cc, in torchvision: prints "<case> <median seconds>" per line.
Run with the project's Python environment (~/.cache/spnas/venv/bin/python3, the pinned torchvision);
SPNAS_THREADS sets the threads, SPNAS_DEVICE the device (cpu, cuda, cuda:N)."""
import os
import statistics
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import nms, roi_align

torch.set_num_threads(int(os.environ.get("SPNAS_THREADS", os.cpu_count())))
dev = torch.device(os.environ.get("SPNAS_DEVICE", "cpu"))


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def median_time(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rois(n, images, size):
    torch.manual_seed(0)
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * size / 4 + 4
    idx = torch.randint(0, images, (n, 1)).float()
    return torch.cat([idx, xy, xy + wh], 1).to(dev)


x = torch.rand(8, 256, 50, 50).to(dev)
r = rois(2000, 8, 400)
print("roi_align_forward", median_time(lambda: roi_align(x, r, (7, 7), 0.125, 2, False), 10))

xg = x.clone().requires_grad_(True)
grad = torch.rand(2000, 256, 7, 7).to(dev)


def backward():
    y = roi_align(xg, r, (7, 7), 0.125, 2, False)
    sync()
    start = time.perf_counter()
    y.backward(grad)
    sync()
    return time.perf_counter() - start


backward()
print("roi_align_backward", statistics.median([backward() for _ in range(5)]))

torch.manual_seed(1)
xy = torch.rand(3000, 2) * 500
boxes = torch.cat([xy, xy + torch.rand(3000, 2) * 100 + 1], 1).to(dev)
scores = torch.rand(3000).to(dev)
print("nms", median_time(lambda: nms(boxes, scores, 0.5), 20))

torch.manual_seed(2)
backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=torch.nn.BatchNorm2d, trainable_layers=5)
model = FasterRCNN(backbone, num_classes=91, min_size=128, max_size=128).to(dev).train()
sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
images = [torch.rand(3, 128, 128).to(dev) for _ in range(8)]
targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0], [50.0, 40.0, 120.0, 110.0]], device=dev),
            "labels": torch.tensor([3, 7], device=dev)} for _ in range(8)]


def step():
    loss = sum(model(images, targets).values())
    sgd.zero_grad()
    loss.backward()
    sgd.step()


print("train_step", median_time(step, 5))

torch.manual_seed(3)
detector = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).to(dev).eval()
image = [torch.rand(3, 800, 800).to(dev)]
with torch.no_grad():
    print("inference", median_time(lambda: detector(image), 3))

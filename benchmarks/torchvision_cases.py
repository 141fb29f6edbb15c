#!/usr/bin/env python3
"""The cases of benchmarks/spnas_benchmark.cc, in torchvision: prints "<case> <seconds>" per case,
the mean real time of one iteration, as Google Benchmark's real_time is on the spnas side (each
iteration waits for the device on both sides).

  torchvision_cases.py [CASE...]

Cases: the arguments, or by default those benchmarks/compare_torchvision.sh compares
(roi_align_forward, roi_align_backward, nms, train_step, inference). Also: roi_align_autograd
(forward and backward through autograd), train_step_bf16 and train_step_fp16 (train_step under
autocast; float16 on CUDA only, with a GradScaler). Run with the project's Python environment
(~/.cache/spnas/venv/bin/python3, the pinned torchvision); SPNAS_THREADS sets the threads,
SPNAS_DEVICE the device (cpu, cuda, cuda:N).
"""
import os
import sys
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import nms, roi_align

DEFAULT_CASES = ["roi_align_forward", "roi_align_backward", "nms", "train_step", "inference"]
MIN_SECONDS = 0.5  # Google Benchmark's default minimum time for cases without a fixed count


def device():
    return torch.device(os.environ.get("SPNAS_DEVICE", "cpu"))


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def mean_time(fn, dev, iterations=None):
    """Mean real time of one call of fn, the device waited for, after one warm-up call: over
    `iterations` calls (the spnas case's fixed count), or as many as fill MIN_SECONDS."""
    fn()
    sync(dev)
    n, start = 0, time.perf_counter()
    while True:
        fn()
        sync(dev)
        n += 1
        elapsed = time.perf_counter() - start
        if (iterations is not None and n == iterations) or (iterations is None and elapsed >= MIN_SECONDS):
            return elapsed / n


def rois(n, images, size, dev):
    torch.manual_seed(0)
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * size / 4 + 4
    idx = torch.randint(0, images, (n, 1)).float()
    return torch.cat([idx, xy, xy + wh], 1).to(dev)


# Features [8, 256, 50, 50], 2000 RoIs, 7 x 7, scale 1/8, sampling ratio 2, legacy alignment.
def roi_align_forward(dev):
    x, r = torch.rand(8, 256, 50, 50).to(dev), rois(2000, 8, 400, dev)
    return mean_time(lambda: roi_align(x, r, (7, 7), 0.125, 2, False), dev)


def roi_align_backward(dev):
    """The backward kernel alone, as spnas's case calls its own (ops::RoiAlignBackward)."""
    r, grad = rois(2000, 8, 400, dev), torch.rand(2000, 256, 7, 7).to(dev)
    kernel = torch.ops.torchvision._roi_align_backward
    return mean_time(lambda: kernel(grad, r, 0.125, 7, 7, 8, 256, 50, 50, 2, False), dev)


def roi_align_autograd(dev):
    """Forward and backward through autograd, from a fresh gradient each time (ops::RoiAlign,
    then backward, on the spnas side)."""
    x = torch.rand(8, 256, 50, 50).to(dev).requires_grad_(True)
    r, grad = rois(2000, 8, 400, dev), torch.rand(2000, 256, 7, 7).to(dev)

    def step():
        x.grad = None
        roi_align(x, r, (7, 7), 0.125, 2, False).backward(grad)

    return mean_time(step, dev)


def nms_case(dev):
    torch.manual_seed(1)
    xy = torch.rand(3000, 2) * 500
    boxes = torch.cat([xy, xy + torch.rand(3000, 2) * 100 + 1], 1).to(dev)
    scores = torch.rand(3000).to(dev)
    return mean_time(lambda: nms(boxes, scores, 0.5), dev)


def train_step(dev, precision="float32"):
    """One training iteration of the train_step case, as a function: Faster R-CNN ResNet-18 FPN
    (91 classes), batch 8 of 128 px, forward + backward + SGD step; for bfloat16 and float16 the
    forward under autocast, float16 with loss scaling (torch.amp.GradScaler, as spnas's
    LossScaler: one host sync per step to check the gradients)."""
    dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]
    if dtype == torch.float16 and dev.type != "cuda":
        sys.exit(f"torchvision_cases: float16 autocast needs CUDA (SPNAS_DEVICE=cuda), not {dev}")
    torch.manual_seed(2)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=torch.nn.BatchNorm2d,
                                   trainable_layers=5)
    model = FasterRCNN(backbone, num_classes=91, min_size=128, max_size=128).to(dev).train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    images = [torch.rand(3, 128, 128).to(dev) for _ in range(8)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0], [50.0, 40.0, 120.0, 110.0]], device=dev),
                "labels": torch.tensor([3, 7], device=dev)} for _ in range(8)]

    def step():
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            loss = sum(model(images, targets).values())
        sgd.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(sgd)
        scaler.update()

    return step


def inference(dev):
    torch.manual_seed(3)
    detector = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).to(dev).eval()
    image = [torch.rand(3, 800, 800).to(dev)]
    with torch.no_grad():
        return mean_time(lambda: detector(image), dev, iterations=3)


CASES = {
    "roi_align_forward": roi_align_forward,
    "roi_align_backward": roi_align_backward,
    "roi_align_autograd": roi_align_autograd,
    "nms": nms_case,
    "train_step": lambda dev: mean_time(train_step(dev), dev, iterations=5),
    "train_step_bf16": lambda dev: mean_time(train_step(dev, "bfloat16"), dev, iterations=5),
    "train_step_fp16": lambda dev: mean_time(train_step(dev, "float16"), dev, iterations=5),
    "inference": inference,
}


def main(names):
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"torchvision_cases: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    torch.set_num_threads(int(os.environ.get("SPNAS_THREADS", os.cpu_count())))
    dev = device()
    for name in names:
        print(name, CASES[name](dev), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT_CASES)

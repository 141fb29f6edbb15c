#!/usr/bin/env python3
"""Trains configs/fashiondet_resnet18.textproto's recipe with torchvision, on FashionDet exported
as COCO folders by `spnas export_coco`, and writes its validation detections in the COCO results
format (scored by `spnas cocoeval`). Prints the training wall time and seconds per iteration.
  ~/.cache/spnas/venv/bin/python3 tools/torchvision_fashiondet.py TRAIN_DIR VAL_DIR DETECTIONS.json
"""
import json
import os
import random
import sys
import time

import torch
import torchvision
from torchvision.io import read_image
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.models.resnet import BasicBlock
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

torch.set_num_threads(int(os.environ.get("SPNAS_THREADS", os.cpu_count())))
torch.manual_seed(1)
random.seed(1)
EPOCHS, BATCH, LR, WARMUP, MILESTONES = 4, 8, 0.04, 100, [3]


class SerialResNet(torchvision.models.ResNet):
    """The SerialBackbone code 11-21-21-21 with BasicBlock and stem width `width`."""

    def __init__(self, width):
        super().__init__(BasicBlock, [2, 2, 2, 2])
        self.inplanes = width
        self.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)


def load(folder):
    coco = json.load(open(os.path.join(folder, "annotations.json")))
    by_image = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        by_image[a["image_id"]].append(a)
    samples = []
    for im in coco["images"]:
        image = read_image(os.path.join(folder, "images", im["file_name"])).float() / 255
        anns = by_image[im["id"]]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        samples.append((im["id"], image, {"boxes": boxes, "labels": labels}))
    return samples


def flip(image, target):
    w = image.shape[-1]
    b = target["boxes"].clone()
    b[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    return image.flip(-1), {"boxes": b, "labels": target["labels"]}


train, val = load(sys.argv[1]), load(sys.argv[2])
body = SerialResNet(32)
backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, [32, 64, 128, 256], 64,
                           extra_blocks=LastLevelMaxPool())
model = FasterRCNN(backbone, num_classes=None, min_size=128, max_size=128,
                   rpn_anchor_generator=AnchorGenerator(((16,), (32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 5),
                   box_head=TwoMLPHead(64 * 49, 256), box_predictor=FastRCNNPredictor(256, 11),
                   rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
                   rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150, box_batch_size_per_image=128)
params = [p for p in model.parameters() if p.requires_grad]
sgd = torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=1e-4)
iterations = 0
start = time.perf_counter()
for epoch in range(EPOCHS):
    model.train()
    order = list(range(len(train)))
    random.shuffle(order)
    for b in range(0, len(order), BATCH):
        images, targets = [], []
        for i in order[b:b + BATCH]:
            _, image, target = train[i]
            if random.random() < 0.5:
                image, target = flip(image, target)
            images.append(image)
            targets.append(target)
        lr = LR * (0.1 ** sum(epoch >= m for m in MILESTONES))
        if iterations < WARMUP:
            alpha = iterations / WARMUP
            lr *= 0.001 * (1 - alpha) + alpha
        for g in sgd.param_groups:
            g["lr"] = lr
        loss = sum(model(images, targets).values())
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        iterations += 1
    print(f"epoch {epoch + 1}: {time.perf_counter() - start:.1f} s", flush=True)
seconds = time.perf_counter() - start
print(f"torchvision: {iterations} iterations in {seconds:.1f} s, {seconds / iterations:.3f} s per iteration, "
      f"{seconds / EPOCHS:.1f} s per epoch")

model.eval()
results = []
with torch.no_grad():
    for image_id, image, _ in val:
        d = model([image])[0]
        for box, label, score in zip(d["boxes"].tolist(), d["labels"].tolist(), d["scores"].tolist()):
            results.append({"image_id": image_id, "category_id": label,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score})
json.dump(results, open(sys.argv[3], "w"))

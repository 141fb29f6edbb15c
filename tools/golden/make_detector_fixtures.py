#!/usr/bin/env python3
"""Writes tests/fixtures/detector.pt: a tiny torchvision Faster R-CNN (ResNet-18 layout body,
small FPN and box head, 5 classes) with seeded random weights, its inputs, and the outputs of
its pieces and of the whole detector in eval and train mode.

Bazel runs it at build time with the project's Python environment (//tests:detector_fixture), so the
reference is made by the pinned torchvision on the machine that runs the tests. By hand:
~/.cache/spnas/venv/bin/python3 tools/golden/make_detector_fixtures.py [OUT_DIR]
"""
import os
import sys
import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.resnet import BasicBlock
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

torch.manual_seed(0)


class NarrowResNet18(torchvision.models.ResNet):
    """torchvision's ResNet-18 layout and names with `width` channels in the stem and first stage
    (64 in the real one): spnas SerialBackbone code 11-21-21-21, BASIC, stem_width = width."""

    def __init__(self, width):
        super().__init__(BasicBlock, [2, 2, 2, 2])
        self.inplanes = width
        self.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)
        self.fc = torch.nn.Linear(width * 8, 10)


def tiny_detector():
    body = NarrowResNet18(8)
    backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               [8, 16, 32, 64], 32, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(((16,), (32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 5)
    model = FasterRCNN(backbone, num_classes=None, min_size=128, max_size=192,
                       rpn_anchor_generator=anchors,
                       box_head=TwoMLPHead(32 * 7 * 7, 64), box_predictor=FastRCNNPredictor(64, 5),
                       rpn_pre_nms_top_n_train=300, rpn_pre_nms_top_n_test=200,
                       rpn_post_nms_top_n_train=150, rpn_post_nms_top_n_test=100,
                       box_batch_size_per_image=64, rpn_batch_size_per_image=64)
    # Non-trivial BatchNorm statistics, so eval mode is tested for real.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
        # Heads with larger weights than their init, so scores spread out.
        model.roi_heads.box_predictor.cls_score.weight.mul_(20)
    return model


out = {}
model = tiny_detector()
initial_state = model.state_dict()  # an OrderedDict with _metadata, as torch.save(model.state_dict()) writes
initial_state = type(initial_state)((k, v.clone()) for k, v in initial_state.items())
for k, v in initial_state.items():
    out["model." + k] = v  # a copy: the train-mode runs below update BatchNorm statistics

images = [torch.rand(3, 100, 120), torch.rand(3, 90, 70)]
targets = [
    {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0], [50.0, 40.0, 110.0, 95.0]]), "labels": torch.tensor([1, 3])},
    {"boxes": torch.tensor([[5.0, 5.0, 40.0, 30.0]]), "labels": torch.tensor([4])},
]
for i, im in enumerate(images):
    out[f"image{i}"] = im
for i, t in enumerate(targets):
    out[f"target{i}.boxes"] = t["boxes"]
    out[f"target{i}.labels"] = t["labels"]

model.eval()
with torch.no_grad():
    batch, _ = model.transform(images)
    out["batch.tensors"] = batch.tensors
    features = model.backbone(batch.tensors)
    for i, (name, f) in enumerate(features.items()):
        out[f"features.{i}"] = f
    anchors = model.rpn.anchor_generator(batch, list(features.values()))
    out["anchors"] = anchors[0]
    proposals, _ = model.rpn(batch, features)
    for i, p in enumerate(proposals):
        out[f"proposals.{i}"] = p
    detections = model(images)
    for i, d in enumerate(detections):
        for k in ("boxes", "scores", "labels"):
            out[f"detections.{i}.{k}"] = d[k]

# Box coder with the RoI heads' weights.
coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
ref = torch.rand(50, 4) * 50
ref[:, 2:] += ref[:, :2] + 1
prop = torch.rand(50, 4) * 50
prop[:, 2:] += prop[:, :2] + 1
out["coder.reference"] = ref
out["coder.proposals"] = prop
out["coder.encoded"] = coder.encode_single(ref, prop)
rel = torch.randn(50, 8)
out["coder.rel_codes"] = rel
out["coder.decoded"] = coder.decode(rel, [prop])

# Train mode: the losses on the same images and targets, with the sampler seeded.
model.train()
torch.manual_seed(123)
losses = model(images, targets)
for k, v in losses.items():
    out["losses." + k] = v.detach()
# And on a negative image (no boxes), as torchvision allows.
torch.manual_seed(7)
negative = model([images[1]], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
for k, v in negative.items():
    out["negative_losses." + k] = v.detach()

if __name__ == "__main__":
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
    path = os.path.join(out_dir, "detector.pt")
    torch.save(out, path, _use_new_zipfile_serialization=True)
    print("wrote", os.path.normpath(path), {k: float(v) for k, v in losses.items()})
    print("detections per image:", [len(d["boxes"]) for d in detections])

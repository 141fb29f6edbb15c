#!/usr/bin/env python3
"""Writes tests/fixtures/models.pt and tests/fixtures/resnet50_layout.txt:
- the parameter and buffer names and shapes of torchvision's resnet50 and
  fasterrcnn_resnet50_fpn (names must match spnas's SerialBackbone / FasterRCNN);
- an independent count of multiply-adds (conv and linear layers, via forward hooks) of
  resnet50 at 224x224 and of a narrow bottleneck network;
- a narrow ResNet-50 layout (width 4, bottleneck, 3-4-6-3) with seeded weights, an input and
  its output, to compare SerialBackbone's numbers with torchvision's.
"""
import os
import sys
import torch
import torchvision
from torchvision.models.resnet import Bottleneck

torch.manual_seed(0)
here = os.path.dirname(__file__)
fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "fixtures")


def count_macs(model, x):
    total = [0]

    def conv_hook(m, inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, inp, out):
        total[0] += inp[0].numel() // inp[0].shape[-1] * m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return total[0]


class NarrowResNet50(torchvision.models.ResNet):
    def __init__(self, width):
        super().__init__(Bottleneck, [3, 4, 6, 3])
        self.inplanes = width
        self.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(Bottleneck, width, 3)
        self.layer2 = self._make_layer(Bottleneck, width * 2, 4, stride=2)
        self.layer3 = self._make_layer(Bottleneck, width * 4, 6, stride=2)
        self.layer4 = self._make_layer(Bottleneck, width * 8, 3, stride=2)
        self.fc = torch.nn.Linear(width * 8 * 4, 10)


lines = []
resnet50 = torchvision.models.resnet50(weights=None)
for k, v in resnet50.state_dict().items():
    lines.append(f"resnet50 {k} {list(v.shape)}")
frcnn = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
for k, v in frcnn.state_dict().items():
    lines.append(f"fasterrcnn_resnet50_fpn {k} {list(v.shape)}")
with open(os.path.join(fixtures, "resnet50_layout.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

out = {}
out["resnet50.macs_224"] = torch.tensor(count_macs(resnet50.eval(), torch.zeros(1, 3, 224, 224)), dtype=torch.float64)
narrow = NarrowResNet50(4).eval()
with torch.no_grad():
    for m in narrow.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)
for k, v in narrow.state_dict().items():
    out["narrow." + k] = v.clone()
x = torch.rand(2, 3, 64, 80)
out["narrow.input"] = x
with torch.no_grad():
    out["narrow.logits"] = narrow(x)
    out["narrow.layer3"] = torch.nn.Sequential(narrow.conv1, narrow.bn1, narrow.relu, narrow.maxpool,
                                               narrow.layer1, narrow.layer2, narrow.layer3)(x)
out["narrow.macs_64x80"] = torch.tensor(count_macs(narrow, x[:1]), dtype=torch.float64)
torch.save(out, os.path.join(fixtures, "models.pt"), _use_new_zipfile_serialization=True)
print("resnet50 MACs at 224:", int(out["resnet50.macs_224"]), "narrow MACs:", int(out["narrow.macs_64x80"]))

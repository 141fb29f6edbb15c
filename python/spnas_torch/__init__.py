"""spnas models in PyTorch: a record's model description (desc_<id>.json) built as a torchvision
FasterRCNN with torchvision's module names, so that model_<id>.pth loads with strict=True.

    import sys; sys.path.insert(0, "python")
    import spnas_torch
    model = spnas_torch.load("runs/spnas_quickstart/output/fullytrain")   # eval mode
    detections = model([image])  # image: float [3, H, W] in [0, 1]

Options a description leaves unset take torchvision's defaults, which are spnas's too.
"""
import collections
import functools
import glob
import json
import os
import re

import torch
from torch import nn
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

__all__ = ["SerialBackbone", "build_model", "load", "prime_roi_scales"]

_RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _options(plugin):
    """The options of a PluginConfig in JSON, without the Any's type URL."""
    return {k: v for k, v in plugin.get("options", {}).items() if k != "@type"}


def _resnet_code(depth):
    stages = _RESNET_STAGES[depth]
    return "-".join(("1" if i == 0 else "2") + "1" * (n - 1) for i, n in enumerate(stages))


class _PassBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d (or, frozen, FrozenBatchNorm2d) of a stage that the parallel structure runs
    more than once: one extra set of running statistics per extra pass (running_mean_pass<p>,
    running_var_pass<p>, num_batches_tracked_pass<p>), picked by `pass_index` (0: its own)."""

    def __init__(self, num_features, passes, frozen=False):
        super().__init__(num_features)
        self.pass_index, self.frozen = 0, frozen
        for p in range(1, passes + 1):
            self.register_buffer(f"running_mean_pass{p}", torch.zeros(num_features))
            self.register_buffer(f"running_var_pass{p}", torch.ones(num_features))
            self.register_buffer(f"num_batches_tracked_pass{p}", torch.tensor(0, dtype=torch.long))
        if frozen:
            self.weight.requires_grad_(False)
            self.bias.requires_grad_(False)

    def forward(self, x):
        suffix = f"_pass{self.pass_index}" if self.pass_index else ""
        mean, var = getattr(self, "running_mean" + suffix), getattr(self, "running_var" + suffix)
        training, momentum = self.training and not self.frozen, self.momentum
        if training:
            batches = getattr(self, "num_batches_tracked" + suffix)
            batches.add_(1)
            momentum = 1.0 / float(batches) if momentum is None else momentum
        return nn.functional.batch_norm(x, mean, var, self.weight, self.bias, training, momentum or 0.0, self.eps)


def _run_pass(stage, x, pass_index):
    """The stage on x with its BatchNorm layers' statistics of `pass_index`."""
    norms = [m for m in stage.modules() if isinstance(m, _PassBatchNorm)]
    for norm in norms:
        norm.pass_index = pass_index
    try:
        return stage(x)
    finally:
        for norm in norms:
            norm.pass_index = 0


class SerialBackbone(nn.Module):
    """A backbone from a serial code ("11-21-21-21": '1' a block, '2' a block doubling the width,
    '-' a new stage with stride 2), with the SP-NAS parallel structure of `parallel_code`: stage l
    runs K_l extra passes with its own weights, chained from the last to the first through one
    connection (connect<l>: 1x1 conv + BN) and added to the stage's input in the trunk. With
    pass_statistics "PER_PASS" each pass keeps its own BatchNorm running statistics.
    Returns the outputs of `return_stages` (0-based) as an OrderedDict "0", "1", ..."""

    def __init__(self, code, block="BOTTLENECK", stem_width=64, groups=None, base_width=None, norm="BATCH_NORM",
                 parallel_code=(), return_stages=None, pass_statistics="PER_PASS"):
        super().__init__()
        frozen = norm == "FROZEN_BATCH_NORM"
        norm_layer = FrozenBatchNorm2d if frozen else nn.BatchNorm2d
        block_type = BasicBlock if block == "BASIC" else Bottleneck
        expansion = block_type.expansion
        groups = groups or (32 if block == "RESNEXT" else 1)
        base_width = base_width or (4 if block == "RESNEXT" else 64)
        self.conv1 = nn.Conv2d(3, stem_width, 7, 2, 3, bias=False)
        self.bn1 = norm_layer(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = code.split("-")
        self.parallel_code = list(parallel_code) or [0] * len(stages)
        in_channels, planes, stage_in = stem_width, stem_width, []
        self.stages, self.stage_channels = [], []
        for s, stage in enumerate(stages):
            stage_in.append(in_channels)
            blocks, stage_norm = [], norm_layer
            if self.parallel_code[s] > 0 and pass_statistics == "PER_PASS":
                stage_norm = functools.partial(_PassBatchNorm, passes=self.parallel_code[s], frozen=frozen)
            for b, c in enumerate(stage):
                if c == "2":
                    planes *= 2
                stride = 2 if s > 0 and b == 0 else 1
                out = planes * expansion
                downsample = None
                if stride != 1 or in_channels != out:
                    downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), stage_norm(out))
                kwargs = {"groups": groups, "base_width": base_width} if block_type is Bottleneck else {}
                blocks.append(block_type(in_channels, planes, stride, downsample, norm_layer=stage_norm, **kwargs))
                in_channels = out
            name = f"layer{s + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stages.append(name)
            if self.parallel_code[s] > 0:
                # Run once per pass: pass m uses its statistics set m (0: the layer's own).
                connect_norm = nn.BatchNorm2d(stage_in[s])
                if pass_statistics == "PER_PASS":
                    connect_norm = _PassBatchNorm(stage_in[s], self.parallel_code[s] - 1)
                self.add_module(f"connect{s + 1}", nn.Sequential(nn.Conv2d(in_channels, stage_in[s], 1, bias=False),
                                                                 connect_norm))
            self.stage_channels.append(in_channels)
        self.return_stages = list(range(len(stages))) if return_stages is None else list(return_stages)

    def forward(self, images):
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        outputs, previous = collections.OrderedDict(), []
        for s, name in enumerate(self.stages):
            stage, k = getattr(self, name), self.parallel_code[s]
            passes, fused = [None] * k, None
            for m in range(k - 1, -1, -1):
                source = x if not previous else previous[min(m, len(previous) - 1)]
                passes[m] = _run_pass(stage, source if fused is None else source + fused, m + 1)
                fused = _run_pass(getattr(self, f"connect{s + 1}"), passes[m], m)
                if fused.shape[-2:] != x.shape[-2:]:
                    fused = nn.functional.interpolate(fused, size=x.shape[-2:], mode="nearest")
            previous = passes
            x = stage(x if fused is None else x + fused)
            if s in self.return_stages:
                outputs[str(self.return_stages.index(s))] = x
        return outputs


class _BackboneWithFPN(nn.Module):
    """torchvision's BackboneWithFPN layout (body, fpn) over a SerialBackbone."""

    def __init__(self, body, out_channels):
        super().__init__()
        self.body = body
        in_channels = [body.stage_channels[s] for s in body.return_stages]
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x):
        return self.fpn(self.body(x))


def _backbone(plugin, stages):
    o = _options(plugin)
    if plugin["type"] == "ResNet":
        depth = o.get("depth", 50)
        block = "BASIC" if depth < 50 else ("RESNEXT" if "groups" in o or "base_width" in o else "BOTTLENECK")
        o = dict(o, code=_resnet_code(depth), block=block)
    elif plugin["type"] != "SerialBackbone":
        raise ValueError(f"backbone '{plugin['type']}' has no PyTorch builder (SerialBackbone and ResNet have)")
    return SerialBackbone(o["code"], o.get("block", "BOTTLENECK"), o.get("stem_width", 64), o.get("groups"),
                          o.get("base_width"), o.get("norm", "BATCH_NORM"), o.get("parallel_code", ()), stages,
                          o.get("pass_statistics", "PER_PASS"))


def build_model(desc):
    """A torchvision FasterRCNN for a model description (a dict, or the path of desc_<id>.json)."""
    if isinstance(desc, str):
        with open(desc) as f:
            desc = json.load(f)
    if desc["type"] != "FasterRCNN":
        raise ValueError(f"model '{desc['type']}' has no PyTorch builder (FasterRCNN has)")
    o = _options(desc)
    neck = o.get("neck", {"type": "FPN"})
    if neck["type"] != "FPN":
        raise ValueError(f"neck '{neck['type']}' has no PyTorch builder (FPN has)")
    fpn = _options(neck)
    stages = [s - 1 for s in fpn["stages"]] if fpn.get("stages") else None
    body = _backbone(o.get("backbone", {"type": "ResNet", "options": {"depth": 50}}), stages)
    backbone = _BackboneWithFPN(body, fpn.get("out_channels", 256))

    # One anchor size per level (the RoI levels and the max-pooled one); missing ones double.
    levels = len(body.return_stages) + 1
    sizes = list(o.get("anchor_sizes") or [32, 64, 128, 256, 512])[:levels]
    while len(sizes) < levels:
        sizes.append(sizes[-1] * 2)
    ratios = tuple(o.get("aspect_ratios") or (0.5, 1.0, 2.0))
    anchors = AnchorGenerator(tuple((s,) for s in sizes), (ratios,) * levels)

    resolution = o.get("roi_output_size", 7)
    roi_pool = MultiScaleRoIAlign([str(i) for i in range(levels - 1)], resolution, o.get("roi_sampling_ratio", 2))
    representation = _options(o.get("box_head", {})).get("representation_size", 1024)
    box_head = TwoMLPHead(backbone.out_channels * resolution**2, representation)
    predictor = FastRCNNPredictor(representation, o.get("num_classes", 91))

    kwargs = {k: o[k] for k in (
        "max_size", "rpn_pre_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_train",
        "rpn_post_nms_top_n_test", "rpn_nms_thresh", "rpn_fg_iou_thresh", "rpn_bg_iou_thresh",
        "rpn_batch_size_per_image", "rpn_positive_fraction", "rpn_score_thresh", "box_score_thresh",
        "box_nms_thresh", "box_detections_per_img", "box_fg_iou_thresh", "box_bg_iou_thresh",
        "box_batch_size_per_image", "box_positive_fraction", "size_divisible") if k in o}
    for k in ("image_mean", "image_std", "bbox_reg_weights"):
        if o.get(k):
            kwargs[k] = o[k]
    if o.get("min_size"):
        kwargs["min_size"] = tuple(o["min_size"])
    return FasterRCNN(backbone, rpn_anchor_generator=anchors, box_roi_pool=roi_pool, box_head=box_head,
                      box_predictor=predictor, **kwargs)


def load(model_dir, id=None):
    """The model of record `id` of a step's output folder (default: the best by mAP), with its
    weights, in eval mode."""
    if id is None:
        best = None
        for path in glob.glob(os.path.join(model_dir, "performance_*.json")):
            with open(path) as f:
                record = json.load(f)
            score = record.get("metrics", {}).get("mAP", float("-inf"))
            if record.get("status", "FINISHED") == "FINISHED" and (best is None or score > best[0]):
                best = (score, int(re.search(r"performance_(\d+)\.json$", path).group(1)))
        if best is None:
            raise FileNotFoundError(f"{model_dir} holds no finished records (performance_<id>.json)")
        id = best[1]
    model = build_model(os.path.join(model_dir, f"desc_{id}.json"))
    state = torch.load(os.path.join(model_dir, f"model_{id}.pth"))
    # Statistics per pass absent from a model saved with one set per layer start from the
    # layer's: the model computes what it computed.
    for name in model.state_dict():
        layer, _, p = name.rpartition("_pass")
        if name not in state and p.isdigit() and layer in state:
            state[name] = state[layer].clone()
    model.load_state_dict(state, strict=True)
    return prime_roi_scales(model.eval())


def prime_roi_scales(model):
    """Sets the RoI pooler's level scales (model.roi_heads.box_roi_pool) from a square image of the
    model's input size, if no image has set them yet. torchvision's MultiScaleRoIAlign infers them
    on its first call from the height of that call's resized image and keeps them: after a wide
    image (e.g. 45x64 padded to 64x64) it pools every level at twice its stride, and an export
    would keep whatever its example image gave."""
    pool = model.roi_heads.box_roi_pool
    if pool.scales is None or pool.map_levels is None:
        side = min(model.transform.min_size[-1], model.transform.max_size)
        with torch.no_grad():
            model([torch.zeros(3, side, side)])
    return model


"""Export of a searched model (spnas_torch.load) to ONNX or TorchScript, for use without spnas.

    PYTHONPATH=python python -m spnas_torch.export --model_dir=D --format=onnx --out=model.onnx [--id=N]

ONNX: one input "image", float [3, H, W] in [0, 1] with any H and W; outputs "boxes" [N, 4]
(x1, y1, x2, y2 in the image's pixels), "labels" [N] and "scores" [N]. Resizing, normalization and
post-processing are part of the graph, as in the torch model.

TorchScript: torch.jit.load(out)([image]) returns (losses, detections), as torchvision's scripted
detectors do; detections[0] holds "boxes", "labels" and "scores".
"""
import argparse
import os
import sys
import time
import warnings
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from . import load

__all__ = ["FORMATS", "export"]

FORMATS = ("onnx", "torchscript")

# torchvision registers ONNX symbolics for nms and roi_align from opset 11 on; 17 is well inside
# what both the legacy exporter and current ONNX Runtime support.
ONNX_OPSET = 17


def _example_image(model, image_size):
    """A random image of image_size ((H, W) or S), by default one of the model's largest inputs."""
    if image_size is None:
        # min_size bounds the short side and max_size the long one after resizing.
        short = min(model.transform.min_size[-1], model.transform.max_size)
        image_size = (short, model.transform.max_size)
    elif isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(v) for v in image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size {height}x{width} is not a positive size")
    return torch.rand(3, height, width)


def _export_onnx(model, image, path):
    # The legacy (TorchScript-based) exporter: torchvision's detection models carry ONNX code paths
    # (torchvision._is_tracing) and nms/roi_align symbolics written for it. It needs the onnx
    # package; the torch.export-based one (dynamo=True) would need onnxscript too.
    dynamic = {"image": {1: "height", 2: "width"}}
    dynamic.update({name: {0: "detections"} for name in ("boxes", "labels", "scores")})
    with warnings.catch_warnings():
        # Trace-time constants the tracer warns about (the backbone's stage structure, torchvision's
        # shape arithmetic) do not depend on the image; the check script runs the file to confirm.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        # torchvision's ONNX code paths copy tensors with torch.tensor(t); harmless.
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")
        # Its indices come from torch.where, topk and nms: never negative.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
        torch.onnx.export(model, ([image],), path, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["image"], output_names=["boxes", "labels", "scores"], dynamic_axes=dynamic)


class _ScriptedTransform(GeneralizedRCNNTransform):
    """torchvision's transform with the resize of eager mode. Scripted, torchvision computes the
    resize scale in float32, and the resized size (floor(side * scale)) can then come out one pixel
    short of eager mode's (100x37 becomes 63x23 instead of 64x23), which moves every detection."""

    def resize(self, image: Tensor,
               target: Optional[Dict[str, Tensor]] = None) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        h, w = image.shape[-2:]
        if self.training:
            if self._skip_resize:
                return image, target
            size = self.torch_choice(self.min_size)
        else:
            size = self.min_size[-1]
        if self.fixed_size is not None:
            resized = torch.nn.functional.interpolate(image[None], size=[self.fixed_size[1], self.fixed_size[0]],
                                                      mode="bilinear", align_corners=False)[0]
        else:
            # Python floats are doubles in TorchScript, as in eager mode.
            scale = min(float(size) / float(min(h, w)), float(self.max_size) / float(max(h, w)))
            resized = torch.nn.functional.interpolate(image[None], scale_factor=scale, mode="bilinear",
                                                      recompute_scale_factor=True, align_corners=False)[0]
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], [h, w], [resized.shape[-2], resized.shape[-1]])
        return resized, target


def _export_torchscript(model, image, path):
    # torchvision's FasterRCNN scripts, but SerialBackbone does not: it picks its stages and
    # connections with getattr(self, name), which TorchScript rejects. It is traced instead and
    # scripted with the rest. The trace holds for every image size: its sizes are traced, and its
    # one Python branch (resizing a connection's output to the stage's input) follows the stride,
    # taken in every stage but the first, whose stride is 1 (where sizes agree it resizes nothing).
    batch, _ = model.transform([image])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        body = torch.jit.trace(model.backbone.body, batch.tensors, strict=False)
    original = model.backbone.body, model.transform.__class__
    model.backbone.body, model.transform.__class__ = body, _ScriptedTransform
    try:
        scripted = torch.jit.script(model)
    except Exception as e:
        raise RuntimeError(f"torch.jit.script of the FasterRCNN failed: {str(e).strip().splitlines()[0]}") from e
    finally:
        model.backbone.body, model.transform.__class__ = original
    scripted.save(path)


def export(model_dir, out, format="onnx", id=None, image_size=None):
    """Writes the model of record `id` of model_dir (default: the best by mAP, as spnas_torch.load)
    to `out` as ONNX or TorchScript. image_size ((H, W) or S) is the size of the example image the
    export runs on; the exported model takes any size. Returns out."""
    if format not in FORMATS:
        raise ValueError(f"unknown format '{format}' (one of {', '.join(FORMATS)})")
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model_dir {model_dir} is not a folder")
    if id is not None:
        for name in (f"desc_{id}.json", f"model_{id}.pth"):
            if not os.path.isfile(os.path.join(model_dir, name)):
                raise FileNotFoundError(f"{model_dir} has no {name}")
    model = load(model_dir, id)
    image = _example_image(model, image_size)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # Written beside out and renamed, so that a failed export leaves no partial file behind.
    partial = f"{out}.partial"
    try:
        with torch.no_grad():
            (_export_onnx if format == "onnx" else _export_torchscript)(model, image, partial)
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return out


def _image_size(text):
    parts = text.split(",")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"'{text}' is not S or H,W")
    sizes = [int(p) for p in parts]
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, like the errors of export itself, rather than argparse's usage block.
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None):
    parser = _Parser(prog="python -m spnas_torch.export",
                     description="Exports a searched model (a step's output folder) to ONNX or TorchScript.")
    parser.add_argument("--model_dir", required=True, help="a step's output folder (desc_<id>.json, model_<id>.pth)")
    parser.add_argument("--out", required=True, help="the file to write")
    parser.add_argument("--format", default="onnx", help="onnx (default) or torchscript")
    parser.add_argument("--id", type=int, help="the record to export (default: the best by mAP)")
    parser.add_argument("--image_size", type=_image_size, help="S or H,W: the example image's size")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        export(args.model_dir, args.out, args.format, args.id, args.image_size)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 1
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({args.format}, {size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

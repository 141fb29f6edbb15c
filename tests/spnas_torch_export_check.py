"""Detections of python/spnas_torch's exports (ONNX in ONNX Runtime, TorchScript) against the torch
model's, on an image, on a smaller non-square crop of it and on a 100x37 resampling of it (both of
which the model's transform resizes), so that the exports' dynamic height and width are exercised.

    spnas_torch_export_check.py MODEL_DIR IMAGE.png OUT_DIR

Prints "onnx detections equal ..." and "torchscript detections equal ...", or "... detections
differ: ..." and exits 1. Equal: as many detections, the same labels, boxes and scores within 1e-3.
The model must detect something on the image (train it with box_score_thresh: 0.0).
"""
import os
import sys
import time
import warnings

import numpy as np
import onnxruntime
import torch
import torchvision

sys.path.insert(0, "python")
import spnas_torch  # noqa: E402
from spnas_torch.export import export  # noqa: E402

TOLERANCE = 1e-3

model_dir, image_path, out_dir = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)
# spnas_torch.load primes the RoI pooler's scales, which would otherwise come from the first image.
model = spnas_torch.load(model_dir)
image = torchvision.io.read_image(image_path, torchvision.io.ImageReadMode.RGB).float() / 255
height, width = image.shape[1:]
images = {
    "image": image,
    "crop": image[:, : max(1, height * 5 // 8), : max(1, width * 7 // 8)].contiguous(),
    # Resized by 0.64 for a 64-pixel model: 100 * 0.64 is 64 in double precision, 63.99... in float32.
    "resampled": torch.nn.functional.interpolate(image[None], size=(100, 37), mode="bilinear")[0],
}
with torch.no_grad():
    expected = {name: model([im])[0] for name, im in images.items()}
if len(expected["image"]["boxes"]) == 0:
    print(f"the torch model detects nothing on {image_path}: nothing to compare (lower box_score_thresh)")
    sys.exit(1)


def compare(format, detect):
    """Exports to `format`, runs detect(path, image) -> (boxes, labels, scores) and prints one line."""
    path = os.path.join(out_dir, "model.onnx" if format == "onnx" else "model.pt")
    start = time.perf_counter()
    export(model_dir, path, format)
    seconds = time.perf_counter() - start
    box_diff = score_diff = 0.0
    counts = []
    for name, im in images.items():
        boxes, labels, scores = (torch.as_tensor(np.asarray(v)) for v in detect(path, im))
        want = expected[name]
        size = "x".join(str(s) for s in im.shape[1:])
        if boxes.shape != want["boxes"].shape:
            return f"{format} detections differ: {boxes.shape[0]} detections vs torch's {want['boxes'].shape[0]} ({size})"
        if not torch.equal(labels.long(), want["labels"]):
            return f"{format} detections differ: labels differ ({size})"
        if len(boxes):
            box_diff = max(box_diff, (boxes - want["boxes"]).abs().max().item())
            score_diff = max(score_diff, (scores - want["scores"]).abs().max().item())
        counts.append(f"{len(boxes)} on {size}")
    numbers = (f"max box diff {box_diff:.2e}, max score diff {score_diff:.2e}, detections: {', '.join(counts)}; "
               f"export {seconds:.1f} s, {os.path.getsize(path) / 2**20:.2f} MiB")
    if box_diff > TOLERANCE or score_diff > TOLERANCE:
        return f"{format} detections differ: {numbers}"
    return f"{format} detections equal: {numbers}"


def onnx_detect(path, im):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # honours OMP_NUM_THREADS like torch
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(["boxes", "labels", "scores"], {"image": im.numpy()})


def torchscript_detect(path, im):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RCNN always returns")
        detections = torch.jit.load(path)([im])[1][0]
    return detections["boxes"], detections["labels"], detections["scores"]


failed = False
for format, detect in (("onnx", onnx_detect), ("torchscript", torchscript_detect)):
    line = compare(format, detect)
    print(line)
    failed |= " detections equal" not in line
sys.exit(1 if failed else 0)

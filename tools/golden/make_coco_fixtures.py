#!/usr/bin/env python3
"""Writes tests/fixtures/coco/: a synthetic COCO annotation file, detections in the results
format and the 12 numbers of pycocotools' COCOeval(..., 'bbox').stats (stats.txt, one per line).

Bazel runs it at build time with the project's Python environment (//tests:coco_fixtures), so
the reference is made by the pinned pycocotools. By hand:
~/.cache/spnas/venv/bin/python3 tools/golden/make_coco_fixtures.py [OUT_DIR]

The data exercise what the evaluator must get right: non-consecutive category ids, one category
with detections but no ground truth (and one with neither), empty images (with and without
detections), crowd regions with detections inside them and ordinary objects under them, objects
and detections of all three area ranges, duplicates and false positives, more than 100
detections of one category on a few images (maxDets 100) and 1-10 on most (maxDets 1, 10).
Coordinates are random floats (two decimals): no area falls on a range bound and no IoU within
1e-5 of a threshold, so rounding cannot flip a match; scores are distinct, so the ranking has no
ties. Ground truth ids start at 1: pycocotools takes a
match with id 0 for no match.
"""
import contextlib
import io
import json
import math
import os
import random
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

rng = random.Random(0)

CATEGORIES = [1, 2, 3, 5, 8, 13]
GT_CATEGORIES = [1, 2, 3, 5, 8]  # 13: detections only; see also NO_GT_OR_DETS
NO_GT_OR_DETS = 21  # in "categories", neither ground truth nor detections
NUM_IMAGES = 300
AREA_RANGES = {"small": (4.0, 31.5), "medium": (32.5, 95.5), "large": (96.5, 400.0)}  # sqrt(area)

images, annotations, detections = [], [], []
used_scores = set()


def r2(v):
    return round(v, 2)


def score(quality):
    """A distinct score, higher for better detections on average."""
    while True:
        s = 0.6 * quality + 0.4 * rng.random()
        if s not in used_scores and s > 0:
            used_scores.add(s)
            return s


def random_box(width, height, area_range=None):
    if area_range is None:
        area_range = rng.choice(list(AREA_RANGES))
    lo, hi = AREA_RANGES[area_range]
    side = rng.uniform(lo, min(hi, 0.95 * min(width, height)))
    aspect = math.exp(rng.uniform(-0.7, 0.7))
    w = min(side * math.sqrt(aspect), width - 1.0)
    h = min(side / math.sqrt(aspect), height - 1.0)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return [r2(x), r2(y), r2(w), r2(h)]


def jitter(box, width, height, sigma):
    x, y, w, h = box
    cx = x + w / 2 + rng.gauss(0, sigma) * w
    cy = y + h / 2 + rng.gauss(0, sigma) * h
    w = max(1.0, w * math.exp(rng.gauss(0, sigma)))
    h = max(1.0, h * math.exp(rng.gauss(0, sigma)))
    x0, y0 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
    x1, y1 = min(float(width), cx + w / 2), min(float(height), cy + h / 2)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return [r2(x0), r2(y0), r2(x1 - x0), r2(y1 - y0)]


def add_gt(image_id, category, box, crowd=False):
    # Crowd regions carry a segment area below the box's (unused: crowd is always ignored).
    area = box[2] * box[3] * (0.6 if crowd else 1.0)
    annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                        "bbox": box, "area": area, "iscrowd": int(crowd)})


def add_det(image_id, category, box, quality):
    detections.append({"image_id": image_id, "category_id": category, "bbox": box, "score": score(quality)})


def detect(image_id, category, box, width, height, miss=0.15):
    """Jittered copies of a ground truth box: maybe none, one, or duplicates; maybe the wrong class."""
    if rng.random() < miss:
        return
    for _ in range(2 if rng.random() < 0.2 else 1):
        sigma = rng.choice([0.01, 0.04, 0.08, 0.15, 0.3])
        d = jitter(box, width, height, sigma)
        if d is None:
            continue
        cat = category if rng.random() > 0.05 else rng.choice(CATEGORIES)
        add_det(image_id, cat, d, quality=1.0 - min(1.0, 3 * sigma))


image_ids = rng.sample(range(1, 100000), NUM_IMAGES)  # not consecutive, not sorted
crowded = set(rng.sample(range(NUM_IMAGES), 4))  # > 100 detections of one category
for n, image_id in enumerate(image_ids):
    width, height = rng.randint(160, 1000), rng.randint(160, 1000)
    images.append({"id": image_id, "width": width, "height": height, "file_name": "%012d.jpg" % image_id})
    if n in crowded:
        cat = rng.choice(GT_CATEGORIES)
        for _ in range(rng.randint(45, 70)):
            box = random_box(width, height, rng.choice(["small", "medium"]))
            add_gt(image_id, cat, box)
            for _ in range(2):
                d = jitter(box, width, height, rng.choice([0.02, 0.1, 0.25]))
                if d is not None:
                    add_det(image_id, cat, d, quality=rng.random())
        for _ in range(20):
            add_det(image_id, cat, random_box(width, height), quality=0.3 * rng.random())
        continue
    kind = rng.random()
    if kind < 0.1:  # no ground truth; half of these have false positives
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 4)):
                add_det(image_id, rng.choice(CATEGORIES), random_box(width, height), quality=0.5 * rng.random())
        continue
    objects = []
    for _ in range(rng.randint(1, 7)):
        objects.append((rng.choice(GT_CATEGORIES), random_box(width, height)))
    if rng.random() < 0.12:  # a crowd region with an object under it and detections inside it
        cat = rng.choice(GT_CATEGORIES)
        crowd = random_box(width, height, "large")
        add_gt(image_id, cat, crowd, crowd=True)
        x, y, w, h = crowd
        inner = [r2(x + w * 0.3), r2(y + h * 0.3), r2(w * 0.3), r2(h * 0.3)]
        objects.append((cat, inner))
        for _ in range(rng.randint(1, 5)):
            s = rng.uniform(0.1, 0.5)
            box = [r2(x + rng.uniform(0, w * (1 - s))), r2(y + rng.uniform(0, h * (1 - s))), r2(w * s), r2(h * s)]
            add_det(image_id, cat, box, quality=rng.random())
    for cat, box in objects:
        add_gt(image_id, cat, box)
    for cat, box in objects:
        detect(image_id, cat, box, width, height)
    for _ in range(rng.choice([0, 0, 0, 1, 2, 3])):  # false positives, some of a class without ground truth
        cat = 13 if rng.random() < 0.3 else rng.choice(CATEGORIES)
        add_det(image_id, cat, random_box(width, height), quality=0.5 * rng.random())

rng.shuffle(detections)
categories = [{"id": c, "name": "class_%d" % c, "supercategory": "thing"} for c in CATEGORIES + [NO_GT_OR_DETS]]
dataset = {"info": {"description": "spnas golden test"}, "images": images, "annotations": annotations,
           "categories": categories}

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests",
                                                              "fixtures", "coco")
os.makedirs(out_dir, exist_ok=True)
ann_path = os.path.join(out_dir, "annotations.json")
det_path = os.path.join(out_dir, "detections.json")
with open(ann_path, "w") as f:
    json.dump(dataset, f)
with open(det_path, "w") as f:
    json.dump(detections, f)

# Evaluate the files as written, so that both sides read the same numbers.
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(ann_path)
    dt = gt.loadRes(det_path)
    evaluator = COCOeval(gt, dt, "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
with open(os.path.join(out_dir, "stats.txt"), "w") as f:
    for s in evaluator.stats:
        f.write(repr(float(s)) + "\n")

per_image = {}
for d in detections:
    key = (d["image_id"], d["category_id"])
    per_image[key] = per_image.get(key, 0) + 1
print("wrote", os.path.normpath(out_dir) + ":", len(images), "images,", len(annotations), "annotations",
      "(%d crowd)," % sum(a["iscrowd"] for a in annotations), len(detections), "detections,",
      sum(v > 100 for v in per_image.values()), "image-categories over 100; AP %.4f" % evaluator.stats[0])

#!/usr/bin/env python3
"""Host syncs per training iteration of torchvision's Faster R-CNN in the train_step case of
benchmarks/torchvision_cases.py (ResNet-18 FPN, 91 classes, batch 8 of 128 px, SGD), counted
with CUDA's sync debug mode over the second iteration (the first one warms up). Prints
"host_syncs torchvision <precision> <count>" for float32, bfloat16 and float16 (autocast, float16
with a GradScaler). tests/detector_cuda_test.cc (HostSyncsPerTrainingIteration) counts spnas's
for the same case; tools/gpu_check_run.sh prints both side by side.

  gpu_sync_count.py      (torchvision_cases.py beside it, as in the GPU bundle, or in ../benchmarks)
"""
import os
import sys
import warnings

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "benchmarks")]

import torch  # noqa: E402
from torchvision_cases import train_step  # noqa: E402


def count_syncs(fn):
    """The sync debug mode's warnings (one per host sync) while fn runs."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing CUDA operation" in str(w.message) for w in caught)


def main():
    if not torch.cuda.is_available():
        sys.exit("gpu_sync_count: no usable CUDA device")
    dev = torch.device("cuda")
    known = count_syncs(lambda: torch.ones(1, device=dev).item())
    if known != 1:
        sys.exit(f"gpu_sync_count: a single known sync counted {known} times")
    for precision in ("float32", "bfloat16", "float16"):
        step = train_step(dev, precision)
        step()
        torch.cuda.synchronize(dev)
        print("host_syncs torchvision", precision, count_syncs(step), flush=True)
        torch.cuda.synchronize(dev)


if __name__ == "__main__":
    main()

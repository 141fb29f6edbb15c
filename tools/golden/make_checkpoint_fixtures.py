#!/usr/bin/env python3
"""Writes tests/fixtures/checkpoints/: files as Python's torch.save writes them, for spnas's reader.
- small_zip.pth: an OrderedDict state dict with _metadata (torch.save(model.state_dict()));
- small_legacy.pth: the same in the legacy (pre-1.6) format;
- small_nested.pth: {"epoch": 3, "model": state_dict} (a training checkpoint);
- small_values.pt: the expected tensors as a plain dict;
- evil.pth: a pickle that names os.system, which must be refused, never run;
- tiny_frcnn_legacy.pth: the tiny detector of detector.pt (same seed and weights), legacy format.
Bazel runs it at build time with the project's Python environment (//tests:checkpoint_fixtures), so the
reference is made by the pinned torchvision on the machine that runs the tests. By hand:
~/.cache/spnas/venv/bin/python3 tools/golden/make_checkpoint_fixtures.py [OUT_DIR]
"""
import os
import sys
import pickle
import runpy
import torch

here = os.path.dirname(__file__)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "fixtures", "checkpoints")
os.makedirs(out, exist_ok=True)

torch.manual_seed(1)
small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2, bias=False))
with torch.no_grad():
    small[1].running_var.uniform_(0.5, 2)
sd = small.state_dict()
assert hasattr(sd, "_metadata")
torch.save(sd, os.path.join(out, "small_zip.pth"))
torch.save(sd, os.path.join(out, "small_legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "model": sd}, os.path.join(out, "small_nested.pth"))
torch.save({k: v.clone() for k, v in sd.items()}, os.path.join(out, "small_values.pt"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


with open(os.path.join(out, "evil.pth"), "wb") as f:
    pickle.dump({"weight": Evil()}, f, protocol=2)

# The tiny detector of make_detector_fixtures.py, rebuilt with the same seed: identical weights.
detector = runpy.run_path(os.path.join(here, "make_detector_fixtures.py"), run_name="fixture_module")
torch.save(detector["initial_state"], os.path.join(out, "tiny_frcnn_legacy.pth"), _use_new_zipfile_serialization=False)
print("wrote", os.path.normpath(out))

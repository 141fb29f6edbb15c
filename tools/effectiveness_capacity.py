#!/usr/bin/env python3
"""Figure 2's capacity control: is the parallel structure's FLOP budget better spent on depth?

    tools/effectiveness_capacity.py runs/effectiveness/seed_1

Over a finished study run, writes <run>/capacity/:
- init/ (desc_0.json, model_0.pth): the serial winner with one new block appended to the end
  of stages 2, 3 and 4 (about +25% FLOPs, like the passes), with its reignited weights; each
  new block is an identity at first (its last BatchNorm's gamma and beta are 0, as after an
  expand mutation), which is checked;
- config.textproto: trains this deeper network like the parallel candidates (3 epochs), then
  fully trains it three times (5 epochs each), as figure 2 does with its two networks.
tools/effectiveness.sh then runs the config; tools/effectiveness_summary.py prints line "2c".
"""
import csv
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import spnas_torch  # noqa: E402

STAGES = (2, 3, 4)


def plain_parent(run):
    """The reignition record the parallel step's plain network (record 0) started from."""
    with open(f"{run}/output/parallel/summary.csv") as f:
        for row in csv.DictReader(f):
            if row["id"] == "0":
                folder, record = row["parent"].split("/")
                return f"{run}/output/{folder}", int(record)
    raise SystemExit(f"{run}/output/parallel/summary.csv: no record 0 (the plain network)")


def deepened(code):
    """The serial code with a '1' block appended to the end of each stage in STAGES."""
    stages = code.split("-")
    if len(stages) < max(STAGES):
        raise SystemExit(f"serial code {code}: fewer than {max(STAGES)} stages")
    return "-".join(s + "1" if i + 1 in STAGES else s for i, s in enumerate(stages))


def deepen_state(state):
    """Appends an identity block to the end of each stage in STAGES, in place."""
    generator = torch.Generator().manual_seed(0)
    for stage in STAGES:
        prefix = f"backbone.body.layer{stage}."
        last = max(int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix))
        if f"{prefix}{last}.conv3.weight" in state:
            raise SystemExit("a bottleneck backbone: only BASIC blocks are deepened")
        width = state[f"{prefix}{last}.conv2.weight"].shape[0]
        new = f"{prefix}{last + 1}."
        for conv in ("conv1", "conv2"):
            # torchvision's ResNet initialisation: normal, std sqrt(2 / fan_out).
            std = (2.0 / (width * 9)) ** 0.5
            state[new + conv + ".weight"] = torch.randn(width, width, 3, 3, generator=generator) * std
        for bn, gamma in (("bn1", 1.0), ("bn2", 0.0)):
            state[new + bn + ".weight"] = torch.full((width,), gamma)
            state[new + bn + ".bias"] = torch.zeros(width)
            state[new + bn + ".running_mean"] = torch.zeros(width)
            state[new + bn + ".running_var"] = torch.ones(width)
            state[new + bn + ".num_batches_tracked"] = torch.tensor(0)


def check_identity(desc, state, deep_desc, deep_state):
    """The deeper network computes what the serial winner computes: every FPN level equal."""
    outputs = []
    for d, st in ((desc, state), (deep_desc, deep_state)):
        model = spnas_torch.build_model(d)
        model.load_state_dict(st, strict=True)
        with torch.no_grad():
            outputs.append(model.eval().backbone(torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))))
    for level in outputs[0]:
        error = (outputs[0][level] - outputs[1][level]).abs().max().item()
        if error > 1e-5:
            raise SystemExit(f"the deeper network differs from the serial winner at FPN level {level} by {error}")


def config(run, code):
    """The study run's general line and shared blocks, the detector's code replaced, then the
    control's steps."""
    with open(f"{run}/config.textproto") as f:
        text = f.read()
    head = text[text.index("general {"):text.index("\nstep {") + 1]
    head, n = re.subn(r'code: "[0-9-]+"', f'code: "{code}"', head)
    if n != 1:
        raise SystemExit(f"{run}/config.textproto: expected one backbone code in the shared blocks, found {n}")
    head = re.sub(r'^general \{ local_base_path: "[^"]*"', f'general {{ local_base_path: "{run}/capacity"', head,
                  flags=re.M)
    head = head.replace(' final_step: "fullytrain"', "")
    steps = """step {
  name: "deep_candidate"
  pipe_step { type: "TrainPipeStep" }
  model { ref: "shared.detector" }
  pretrained_model_file: "{local_base_path}/init/model_0.pth"
  trainer { ref: "shared.candidate_train" options { [type.googleapis.com/spnas.TrainerOptions] { epochs: 3 } } }
  train_data { ref: "shared.train_data" }
  val_data { ref: "shared.val_data" }
}
"""
    for i in (1, 2, 3):
        steps += f"""step {{
  name: "deep_fullytrain_{i}"
  pipe_step {{ type: "TrainPipeStep" }}
  trainer {{ ref: "shared.full_train" }}
  train_data {{ ref: "shared.train_data" }}
  val_data {{ ref: "shared.val_data" }}
  models_folder: "deep_candidate"
}}
"""
    return f"# Figure 2's capacity control for {run}, by tools/effectiveness_capacity.py\n" + head + steps


def main(run):
    run = os.path.abspath(run)
    folder, record = plain_parent(run)
    desc = f"{folder}/desc_{record}.json"
    with open(desc) as f:
        deep_desc = json.load(f)
    code = deep_desc["options"]["backbone"]["options"]["code"]
    deep_desc["options"]["backbone"]["options"]["code"] = deepened(code)
    state = torch.load(f"{folder}/model_{record}.pth")
    deep_state = dict(state)
    deepen_state(deep_state)
    check_identity(desc, state, deep_desc, deep_state)
    # Named as in a records folder (desc_<id>.json, model_<id>.pth).
    init = f"{run}/capacity/init"
    os.makedirs(init, exist_ok=True)
    with open(f"{init}/desc_0.json", "w") as f:
        json.dump(deep_desc, f, indent=1)
    torch.save(deep_state, f"{init}/model_0.pth.tmp")
    os.replace(f"{init}/model_0.pth.tmp", f"{init}/model_0.pth")
    with open(f"{run}/capacity/config.textproto", "w") as f:
        f.write(config(run, deepened(code)))
    print(f"{run}/capacity: {code} -> {deepened(code)}, the same function at first")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])

"""Reads a trial's TensorBoard folder with TensorBoard's own reader and checks what spnas wrote.

Usage: tensorboard_check.py <tb/<id> folder>
Prints "tensorboard reads ..." and exits 0, or names what is missing and exits 1.
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
scalars = set(tags["scalars"])
missing = {"train/loss", "train/lr", "eval/mAP"} - scalars
if missing:
    sys.exit(f"missing scalars {sorted(missing)}; found {sorted(scalars)}")
loss = acc.Scalars("train/loss")
if len(loss) < 2 or any(not (e.value > 0) for e in loss):
    sys.exit(f"train/loss should hold positive values at several steps: {loss}")
texts = set(tags["tensors"])
if not {"model/text_summary", "final_metrics_and_costs/text_summary"} <= texts and not {"model", "final_metrics_and_costs"} <= texts:
    sys.exit(f"missing the text summaries; found tensors {sorted(texts)}")
model = [t for t in texts if t.startswith("model")][0]
text = acc.Tensors(model)[0].tensor_proto.string_val[0].decode()
if "SerialBackbone" not in text:
    sys.exit(f"the model text does not describe the model: {text[:200]}")
steps = [e.step for e in loss]
print(f"tensorboard reads {len(scalars)} scalar tags, train/loss at steps {steps[0]}..{steps[-1]} "
      f"({len(steps)} points), eval/mAP {acc.Scalars('eval/mAP')[-1].value:.3f}, texts {sorted(texts)}")

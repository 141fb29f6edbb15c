#!/usr/bin/env python3
"""One line per figure of the effectiveness study, mean ± standard deviation over the runs given.

    tools/effectiveness_summary.py runs/effectiveness/seed_1 runs/effectiveness/seed_2 ...
"""
import csv
import statistics
import sys


def records(run, folder):
    """Finished records of output/<folder>/summary.csv: id -> row."""
    with open(f"{run}/output/{folder}/summary.csv") as f:
        return {int(r["id"]): r for r in csv.DictReader(f) if r["status"] == "FINISHED"}


def only(run, step):
    rows = list(records(run, step).values())
    if len(rows) != 1:
        raise SystemExit(f"{run}/output/{step}: expected one finished record, found {len(rows)}")
    return {k: float(rows[0][k]) for k in ("mAP", "params", "flops")}


def ranks(values):
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / den if den else float("nan")


def edits(trials):
    """Edits from the step's input to each record of serial/trials: its own recorded mutations,
    plus its parent's edits when the parent is a record of the same step."""
    count = {}

    def of(i):
        if i not in count:
            own = len([m for m in trials[i]["mutations"].split(";") if m.strip()])
            parent = trials[i]["parent"]
            inside = parent.startswith("serial/") and int(parent.split("/")[1]) in trials
            count[i] = own + (of(int(parent.split("/")[1])) if inside else 0)
        return count[i]

    return {i: of(i) for i in trials}


def trainings(run, step):
    """`step`'s record in each training of its network: the study's, then the repeats'
    (configs/effectiveness_repeats.textproto in <run>/repeats) that finished."""
    found = [only(run, step)]
    for r in (2, 3):
        try:
            found.append(only(f"{run}/repeats", f"{step}_{r}"))
        except FileNotFoundError:
            pass
    return found


def distinct(run, maps):
    """Fails when two trainings scored exactly alike: one reused the other's trial seed."""
    seen = {}
    for step, values in maps.items():
        for i, m in enumerate(values):
            if m in seen:
                raise SystemExit(f"{run}: training {i + 1} of {step} scored exactly as {seen[m]} ({m}): "
                                 "it reused that training's trial seed")
            seen[m] = f"training {i + 1} of {step}"


def stat(values, digits=2):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def comparison(a, b, *extras):
    """One seed's row of a figure comparing two networks' trainings (mAP lists a and b):
    (mean a, mean b, trainings of the less trained, a, b, *extras)."""
    return (statistics.mean(a), statistics.mean(b), min(len(a), len(b)), a, b) + extras


def maps_line(rows):
    """The mAPs and differences of comparison rows, and each seed's trainings."""
    per_seed = "; ".join(" ".join(f"{m:.2f}" for m in r[3]) + " | " + " ".join(f"{m:.2f}" for m in r[4])
                         for r in rows)
    return (f"mAP {stat([r[0] for r in rows])} vs {stat([r[1] for r in rows])}, "
            f"difference {stat([r[0] - r[1] for r in rows])}", per_seed)


def main(runs):
    f1, f2, f2c, f3, f4, f1s, f3s = [], [], [], [], [], [], []
    for run in runs:
        steps = ["seed_fullytrain", "serial_fullytrain", "fullytrain", "plain_fullytrain"] + [
            f"{network}_scratch_fullytrain" for network in ("seed", "serial", "final", "random")]
        records_of = {step: trainings(run, step) for step in steps}
        maps = {step: [r["mAP"] for r in found] for step, found in records_of.items()}
        distinct(run, maps)
        seed, serial = records_of["seed_fullytrain"][0], records_of["serial_fullytrain"][0]
        final, plain = records_of["fullytrain"][0], records_of["plain_fullytrain"][0]
        rand = only(run, "random_fullytrain")
        f1.append(comparison(maps["serial_fullytrain"], maps["seed_fullytrain"], serial["params"], seed["params"]))
        f2.append(comparison(maps["fullytrain"], maps["plain_fullytrain"], final["flops"] / plain["flops"]))
        f3.append((final["mAP"], rand["mAP"], final["params"], rand["params"]))
        # tools/effectiveness_capacity.py's deeper serial winner, where it ran.
        try:
            deeps = [only(f"{run}/capacity", f"deep_fullytrain_{r}") for r in (1, 2, 3)]
            f2c.append(comparison([r["mAP"] for r in deeps], maps["plain_fullytrain"],
                                  deeps[0]["flops"] / plain["flops"], deeps[0]["params"] / plain["params"]))
        except FileNotFoundError:
            pass
        f1s.append(comparison(maps["serial_scratch_fullytrain"], maps["seed_scratch_fullytrain"]))
        f3s.append(comparison(maps["final_scratch_fullytrain"], maps["random_scratch_fullytrain"]))
        inherited, scratch = records(run, "serial/trials"), records(run, "scratch")
        ids = sorted(set(inherited) & set(scratch))
        a = [float(inherited[i]["mAP"]) for i in ids]
        b = [float(scratch[i]["mAP"]) for i in ids]
        depth = edits(inherited)
        cost = sum(float(inherited[i]["train_seconds"]) for i in ids) / sum(
            float(scratch[i]["train_seconds"]) for i in ids)
        f4.append((spearman(a, b), len(ids), statistics.mean(a), statistics.mean(b), cost,
                   spearman(a, [depth[i] for i in ids])))

    col = lambda rows, i: [r[i] for r in rows]
    n = len(runs)
    line, per_seed = maps_line(f1)
    print(f"1. serial winner vs seed ({n} seeds, at least {min(col(f1, 2))} training(s) per network): {line}; "
          f"params {stat([r[5] / 1e6 for r in f1], 3)} M vs {stat([r[6] / 1e6 for r in f1], 3)} M; per seed, "
          f"winner | seed: {per_seed}")
    line, per_seed = maps_line(f1s)
    print(f"1'. the same two networks fully trained from scratch ({n} seeds, at least {min(col(f1s, 2))} "
          f"training(s) per network): {line}; per seed, winner | seed: {per_seed}")
    line, per_seed = maps_line(f2)
    print(f"2. parallel final vs serial winner ({n} seeds, at least {min(col(f2, 2))} training(s) per network): "
          f"{line}; FLOPs x{stat(col(f2, 5), 3)}; per seed, final | plain: {per_seed}")
    if f2c:
        line, per_seed = maps_line(f2c)
        print(f"2c. capacity control, the serial winner with a block added to stages 2-4 vs the serial winner "
              f"({len(f2c)} seeds, 3 trainings): {line}; FLOPs x{stat(col(f2c, 5), 3)}; "
              f"params x{stat(col(f2c, 6), 3)}; per seed, deeper | plain: {per_seed}")
    print(f"3. SP-NAS vs random search ({n} seeds): mAP {stat(col(f3, 0))} vs {stat(col(f3, 1))}, "
          f"difference {stat([r[0] - r[1] for r in f3])}; params {stat([r[2] / 1e6 for r in f3], 3)} M vs "
          f"{stat([r[3] / 1e6 for r in f3], 3)} M")
    line, per_seed = maps_line(f3s)
    print(f"3'. the same two networks fully trained from scratch ({n} seeds, at least {min(col(f3s, 2))} "
          f"training(s) per network): {line}; per seed, SP-NAS | random: {per_seed}")
    print(f"4. inherited vs from-scratch evaluation ({n} seeds, {stat(col(f4, 1), 0)} candidates each): "
          f"Spearman {stat(col(f4, 0))}; mAP {stat(col(f4, 2))} vs {stat(col(f4, 3))}; "
          f"time ratio {stat(col(f4, 4))}; Spearman of inherited mAP with the edits from the seed {stat(col(f4, 5))}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])

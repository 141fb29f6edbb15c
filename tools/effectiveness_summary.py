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


def distinct(run, trainings):
    """Fails when two trainings scored exactly alike: one reused the other's trial seed."""
    seen = {}
    for name, records in trainings.items():
        for i, r in enumerate(records):
            if r["mAP"] in seen:
                raise SystemExit(f"{run}: training {i + 1} of {name} scored exactly as {seen[r['mAP']]} "
                                 f"({r['mAP']}): it reused that training's trial seed")
            seen[r["mAP"]] = f"training {i + 1} of {name}"


def stat(values, digits=2):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def per_seed(rows, a, b):
    """Each seed's trainings of two networks (lists at columns a and b): "x x x | y y y; ..."."""
    return "; ".join(" ".join(f"{m:.2f}" for m in r[a]) + " | " + " ".join(f"{m:.2f}" for m in r[b]) for r in rows)


def main(runs):
    f1, f2, f2c, f3, f4, f1s, f3s = [], [], [], [], [], [], []
    for run in runs:
        seeds, serials = trainings(run, "seed_fullytrain"), trainings(run, "serial_fullytrain")
        seed_maps, serial_maps = [r["mAP"] for r in seeds], [r["mAP"] for r in serials]
        finals, plains = trainings(run, "fullytrain"), trainings(run, "plain_fullytrain")
        distinct(run, {"seed_fullytrain": seeds, "serial_fullytrain": serials, "fullytrain": finals,
                       "plain_fullytrain": plains})
        final, plain = finals[0], plains[0]
        rand = only(run, "random_fullytrain")
        f1.append((statistics.mean(serial_maps), statistics.mean(seed_maps), serials[0]["params"], seeds[0]["params"],
                   min(len(serial_maps), len(seed_maps)), serial_maps, seed_maps))
        final_maps, plain_maps = [r["mAP"] for r in finals], [r["mAP"] for r in plains]
        f2.append((statistics.mean(final_maps), statistics.mean(plain_maps), final["flops"] / plain["flops"],
                   min(len(final_maps), len(plain_maps)), final_maps, plain_maps))
        f3.append((final["mAP"], rand["mAP"], final["params"], rand["params"]))
        # tools/effectiveness_capacity.py's deeper serial winner, where it ran.
        try:
            deeps = [only(f"{run}/capacity", f"deep_fullytrain_{r}") for r in (1, 2, 3)]
            deep_maps = [r["mAP"] for r in deeps]
            f2c.append((statistics.mean(deep_maps), statistics.mean(plain_maps), deeps[0]["flops"] / plain["flops"],
                        deeps[0]["params"] / plain["params"], deep_maps, plain_maps))
        except FileNotFoundError:
            pass
        scratch_maps = {step: [r["mAP"] for r in trainings(run, f"{step}_scratch_fullytrain")]
                        for step in ("seed", "serial", "final", "random")}
        distinct(run, {f"{step}_scratch_fullytrain": [{"mAP": m} for m in maps]
                       for step, maps in scratch_maps.items()})
        f1s.append((statistics.mean(scratch_maps["serial"]), statistics.mean(scratch_maps["seed"]),
                    min(len(scratch_maps["serial"]), len(scratch_maps["seed"])), scratch_maps["serial"],
                    scratch_maps["seed"]))
        f3s.append((statistics.mean(scratch_maps["final"]), statistics.mean(scratch_maps["random"]),
                    min(len(scratch_maps["final"]), len(scratch_maps["random"])), scratch_maps["final"],
                    scratch_maps["random"]))
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
    print(f"1. serial winner vs seed ({n} seeds, at least {min(col(f1, 4))} training(s) per network): mAP "
          f"{stat(col(f1, 0))} vs {stat(col(f1, 1))}, difference {stat([r[0] - r[1] for r in f1])}; params "
          f"{stat([r[2] / 1e6 for r in f1], 3)} M vs {stat([r[3] / 1e6 for r in f1], 3)} M; per seed, "
          f"winner | seed: {per_seed(f1, 5, 6)}")
    print(f"1'. the same two networks fully trained from scratch ({n} seeds, at least {min(col(f1s, 2))} "
          f"training(s) per network): mAP {stat(col(f1s, 0))} vs {stat(col(f1s, 1))}, difference "
          f"{stat([r[0] - r[1] for r in f1s])}; per seed, winner | seed: {per_seed(f1s, 3, 4)}")
    print(f"2. parallel final vs serial winner ({n} seeds, at least {min(col(f2, 3))} training(s) per network): mAP {stat(col(f2, 0))} "
          f"vs {stat(col(f2, 1))}, difference {stat([r[0] - r[1] for r in f2])}; FLOPs x{stat(col(f2, 2), 3)}; "
          f"per seed, final | plain: {per_seed(f2, 4, 5)}")
    if f2c:
        print(f"2c. capacity control, the serial winner with a block added to stages 2-4 vs the serial winner "
              f"({len(f2c)} seeds, 3 trainings): mAP {stat(col(f2c, 0))} vs {stat(col(f2c, 1))}, "
              f"difference {stat([r[0] - r[1] for r in f2c])}; FLOPs x{stat(col(f2c, 2), 3)}; "
              f"params x{stat(col(f2c, 3), 3)}; per seed, deeper | plain: {per_seed(f2c, 4, 5)}")
    print(f"3. SP-NAS vs random search ({n} seeds): mAP {stat(col(f3, 0))} vs {stat(col(f3, 1))}, "
          f"difference {stat([r[0] - r[1] for r in f3])}; params {stat([r[2] / 1e6 for r in f3], 3)} M vs "
          f"{stat([r[3] / 1e6 for r in f3], 3)} M")
    print(f"3'. the same two networks fully trained from scratch ({n} seeds, at least {min(col(f3s, 2))} "
          f"training(s) per network): mAP {stat(col(f3s, 0))} vs {stat(col(f3s, 1))}, difference "
          f"{stat([r[0] - r[1] for r in f3s])}; per seed, SP-NAS | random: {per_seed(f3s, 3, 4)}")
    print(f"4. inherited vs from-scratch evaluation ({n} seeds, {stat(col(f4, 1), 0)} candidates each): "
          f"Spearman {stat(col(f4, 0))}; mAP {stat(col(f4, 2))} vs {stat(col(f4, 3))}; "
          f"time ratio {stat(col(f4, 4))}; Spearman of inherited mAP with the edits from the seed {stat(col(f4, 5))}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])

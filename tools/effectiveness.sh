#!/bin/bash
# The search-effectiveness study: configs/effectiveness_fashiondet.textproto for three seeds
# (about 20 minutes each on 2 cores), then over each seed's run the repeats of figures 1, 1', 2
# and 3' (configs/effectiveness_repeats.textproto) and figure 2's capacity control
# (tools/effectiveness_capacity.py), then one line per figure, mean ± standard deviation:
#   tools/effectiveness.sh [--seeds "1 2 3"] [--out runs/effectiveness]
# A seed whose run finished is not run again; an interrupted one resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="1 2 3"
out="runs/effectiveness"
while (($#)); do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--seeds \"1 2 3\"] [--out DIR]" >&2; exit 2 ;;
  esac
done
tools/setup.sh
bazel build //:spnas
spnas="${SPNAS:-bazel-bin/spnas/spnas}"
python="${SPNAS_VENV:-$HOME/.cache/spnas/venv}/bin/python3"
# CONFIG with its general line's base path and seed replaced: for_run CONFIG BASE SEED
for_run() {
  sed "s|^general { local_base_path: \"[^\"]*\" seed: [0-9]*|general { local_base_path: \"$2\" seed: $3|" "$1"
}
for seed in $seeds; do
  base="$out/seed_$seed"
  mkdir -p "$base"
  for_run configs/effectiveness_fashiondet.textproto "$base" "$seed" > "$base/config.textproto"
  if [[ ! -f "$base/output/random_scratch_fullytrain/summary.csv" ]]; then
    flags=(--overwrite)
    if [[ -d "$base/output" ]]; then flags=(--resume); fi
    start=$(date +%s)
    "$spnas" run --config="$base/config.textproto" "${flags[@]}" > "$base/run.log" 2>&1
    echo "seed $seed: $(( $(date +%s) - start )) s"
  fi
  # The networks of figures 1, 1', 2 and 3' trained twice more, over the study's outputs.
  if [[ ! -f "$base/repeats/output/random_scratch_fullytrain_3/summary.csv" ]]; then
    for_run configs/effectiveness_repeats.textproto "$base/repeats" "$((seed + 1000))" > "$base/repeats.textproto"
    start=$(date +%s)
    "$spnas" run --config="$base/repeats.textproto" --resume > "$base/repeats.log" 2>&1
    echo "seed $seed, repeats: $(( $(date +%s) - start )) s"
  fi
  # Figure 2's capacity control: the serial winner made deeper instead of parallel.
  if [[ ! -f "$base/capacity/output/deep_fullytrain_3/summary.csv" ]]; then
    flags=(--resume)
    if [[ ! -d "$base/capacity/output" ]]; then
      "$python" tools/effectiveness_capacity.py "$base"
      flags=(--overwrite)
    fi
    start=$(date +%s)
    "$spnas" run --config="$base/capacity/config.textproto" "${flags[@]}" > "$base/capacity.log" 2>&1
    echo "seed $seed, figure 2 capacity control: $(( $(date +%s) - start )) s"
  fi
done
python3 tools/effectiveness_summary.py $(for seed in $seeds; do echo "$out/seed_$seed"; done)

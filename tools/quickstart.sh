#!/bin/bash
# The main job: the SP-NAS pipeline on the embedded FashionDet data
# (fine_tune -> serial -> reignition -> parallel -> fullytrain), after the set-up.
# Extra flags go to `spnas run`, e.g. --resume or --local_base_path=DIR; by default an
# earlier quickstart run is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build //:spnas
args=("$@")
if [[ " ${args[*]-} " != *" --resume "* ]]; then args+=(--overwrite); fi
exec bazel run //:spnas -- run --config=configs/spnas_quickstart.textproto "${args[@]}"

#!/bin/bash
# The main job: runs the quickstart pipeline after the set-up.
# Extra flags go to `spnas run` (e.g. --resume, --local_base_path=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build //examples/custom_search:spnas
exec bazel run //examples/custom_search:spnas -- run \
  --config=examples/custom_search/grid_search.textproto --local_base_path=runs/quickstart --overwrite "$@"

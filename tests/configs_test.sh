#!/bin/bash
# Every config in configs/ passes `spnas validate`.
set -u
SPNAS="$1"; shift
if (($# == 0)); then echo "FAIL: no configs given"; exit 1; fi
failures=0
for config in "$@"; do
  if out=$("$SPNAS" validate --config="$config" --local_base_path="${TEST_TMPDIR:-/tmp}/configs" 2>&1); then
    echo "ok: $config"
  else
    echo "FAIL: $config"; echo "$out"; failures=$((failures + 1))
  fi
done
exit $((failures > 0))

#!/bin/bash
# Replays a fuzz target's kept corpus: every input must run to the end without a crash.
#   corpus_test.sh <fuzz target binary> <corpus folder>
set -u
target="$1"
corpus="$2"
count=$(find -L "$corpus" -type f | wc -l)
if ((count == 0)); then
  echo "FAIL: the corpus $corpus is empty"
  exit 1
fi
# -runs=0: a libFuzzer build (--config=fuzz) runs the corpus once and stops.
if ! "$target" -runs=0 "$corpus"; then
  echo "FAIL: $target crashed on an input of $corpus"
  exit 1
fi
echo "ok: $count inputs of $corpus"

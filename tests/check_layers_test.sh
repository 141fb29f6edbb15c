#!/bin/bash
# tools/check_layers.py must catch each kind of offence, naming the file and line.
set -u
CHECK="$1"
source tests/check.sh
root="${TEST_TMPDIR:-$(mktemp -d)}/tree"
rm -rf "$root"
mkdir -p "$root/spnas/core" "$root/spnas/data" "$root/spnas/models"
cat >"$root/spnas/layers.bzl" <<'BZL'
ALLOWED_DEPS = {"core": [], "data": ["core"], "models": ["core"]}
BZL
printf '#include "spnas/core/status.h"\n' >"$root/spnas/data/ok.h"
printf 'package(default_visibility = [":users"])\n' >"$root/spnas/data/BUILD"

out=$(python3 "$CHECK" --root="$root" --no-query); status=$?
check "a clean tree passes ($out)" test $status -eq 0

printf '// Target\n#include "spnas/models/model.h"\n' >"$root/spnas/data/dataset.h"
printf 'import "spnas/data/data_options.proto";\n' >"$root/spnas/core/config.proto"
printf 'package(default_visibility = ["//visibility:public"])\n' >"$root/spnas/models/BUILD"
out=$(python3 "$CHECK" --root="$root" --no-query); status=$?
check "offences fail the check" test $status -eq 1
check "an include upwards is named with its line" grep -q "spnas/data/dataset.h:2: data may not include models" <<<"$out"
check "a proto import upwards is named" grep -q "spnas/core/config.proto:1: core may not include data" <<<"$out"
check "a public BUILD is named" grep -q "spnas/models/BUILD: public by default" <<<"$out"
check "the count is printed" grep -q "layers: 3 offences" <<<"$out"

finish

#!/bin/bash
# Runs the whole test suite (bazel test //...) after the set-up, then again under
# AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer (--config=asan; SPNAS_ASAN=0
# skips that pass), and prints "N passed, N failed" counted over the test cases of both.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

log=$(mktemp)
counts=$(mktemp)
status=0

# Count the test cases of each target Bazel reported, from its JUnit XML; a target that did
# not build, timed out or has no status counts as one failure. Appends "passed failed".
count() {
  /usr/bin/python3 - "$log" >>"$counts" <<'PY'
import glob, re, sys, xml.etree.ElementTree as ET
passed = failed = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^(//\S+)\s+(?:\(cached\) )?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)", line)
    if not m:
        continue
    target, result = m.groups()
    if result not in ("PASSED", "FAILED", "FLAKY"):
        failed += 1
        continue
    package, name = target[2:].split(":")
    # A sharded target writes one XML per shard, and a merged one only when its result is cached.
    logs = f"bazel-testlogs/{package}/{name}"
    try:
        cases = [c for path in glob.glob(f"{logs}/test.xml") or glob.glob(f"{logs}/shard_*/test.xml")
                 for c in ET.parse(path).getroot().iter("testcase")]
    except (OSError, ET.ParseError):
        cases = []
    bad = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    if not cases:
        passed, failed = passed + (result == "PASSED"), failed + (result != "PASSED")
    else:
        passed += len(cases) - len(bad)
        failed += len(bad) if bad or result == "PASSED" else 1
print(passed, failed)
PY
}

bazel test //... "$@" 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count

if [ "${SPNAS_ASAN:-1}" != 0 ]; then
  # The suite again (but the GPU tests, which skip here anyway) under the sanitizers.
  echo "=== the tests under ASan + UBSan (--config=asan)"
  start=$SECONDS
  bazel test --config=asan --test_tag_filters=-gpu \
    --test_env=LSAN_OPTIONS="suppressions=$PWD/tools/sanitizers/lsan.supp:print_suppressions=0" //... "$@" 2>&1 |
    tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count
  echo "ASan + UBSan pass: $((SECONDS - start)) s"
fi

# The package graph against spnas/layers.bzl (Bazel query and includes): one more test case.
if tools/check_layers.py; then echo "1 0" >>"$counts"; else echo "0 1" >>"$counts"; status=1; fi

awk '{p += $1; f += $2} END {print p " passed, " f " failed"}' "$counts"
rm -f "$log" "$counts"
exit $status

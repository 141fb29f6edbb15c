#!/bin/bash
# Runs the whole test suite (bazel test //...) after the set-up, and prints
# "N passed, N failed" counted over the test cases of every test target.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

log=$(mktemp)
bazel test //... "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# The package graph against spnas/layers.bzl (Bazel query and includes): one more test case.
tools/check_layers.py
layers=$?
[ $layers -eq 0 ] || status=1

# Count the test cases of each target Bazel reported, from its JUnit XML; a target that did
# not build, timed out or has no status counts as one failure.
/usr/bin/python3 - "$log" "$layers" <<'PY'
import re, sys, xml.etree.ElementTree as ET
passed, failed = (1, 0) if sys.argv[2] == "0" else (0, 1)
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^(//\S+)\s+(?:\(cached\) )?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)", line)
    if not m:
        continue
    target, result = m.groups()
    if result not in ("PASSED", "FAILED", "FLAKY"):
        failed += 1
        continue
    package, name = target[2:].split(":")
    try:
        cases = list(ET.parse(f"bazel-testlogs/{package}/{name}/test.xml").getroot().iter("testcase"))
    except (OSError, ET.ParseError):
        cases = []
    bad = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    if not cases:
        passed, failed = passed + (result == "PASSED"), failed + (result != "PASSED")
    else:
        passed += len(cases) - len(bad)
        failed += len(bad) if bad or result == "PASSED" else 1
print(f"{passed} passed, {failed} failed")
PY
rm -f "$log"
exit $status

#!/bin/bash
# Renders a run's report.html in headless Chromium (Debian's package, installed if missing)
# and writes a PNG screenshot next to it; fails if the page did not render its plot.
#   tools/screenshot_report.sh runs/spnas_quickstart/output/report.html
set -euo pipefail
report=$(readlink -f "${1:?usage: $0 path/to/report.html}")
out="${report%.html}.png"
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
grep -q "<svg" "$report" || { echo "report has no plot: $report" >&2; exit 1; }
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1250,2200 --screenshot="$out" "file://$report" 2>/dev/null
rm -rf "$profile"
test -s "$out" || { echo "no screenshot written" >&2; exit 1; }
echo "$out"

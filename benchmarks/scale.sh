#!/bin/bash
# Scale: a search of 500 test candidates (each "trains" 100 ms), the framework's share of the
# wall time, then the time headless Chromium takes to render its report.html (page load
# to screenshot, minus the same for an empty page, best of 3).
#   benchmarks/scale.sh [candidates] [train_ms]
set -euo pipefail
cd "$(dirname "$0")/.."
candidates=${1:-500}
train_ms=${2:-100}
out=$(mktemp -d)/scale
bazel build //benchmarks:scale_benchmark >/dev/null 2>&1 || { echo "build failed"; exit 1; }
bazel-bin/benchmarks/scale_benchmark --candidates="$candidates" --train_ms="$train_ms" --out="$out"
report="$out/output/report.html"
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
render() {
  local best=999999 profile t0 t1
  for _ in 1 2 3; do
    profile=$(mktemp -d)
    t0=$(date +%s%N)
    chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
      --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1250,2200 \
      --screenshot="$profile/shot.png" "$1" >/dev/null 2>&1
    t1=$(date +%s%N)
    rm -rf "$profile"
    best=$(((t1 - t0) / 1000000 < best ? (t1 - t0) / 1000000 : best))
  done
  echo "$best"
}
page=$(render "file://$report")
blank=$(render "about:blank")
echo "report.html: $(wc -c <"$report") bytes, $(grep -o "<tr" "$report" | wc -l) table rows;" \
  "rendered in $((page - blank)) ms ($page ms with Chromium's start, $blank ms for an empty page)"

#!/bin/bash
# Serves a run's TensorBoard files on loopback with the pinned tensorboard and captures its
# scalars page in headless Chromium.
#   tools/screenshot_tensorboard.sh runs/spnas_quickstart/output [out.png]
set -euo pipefail
logdir=$(readlink -f "${1:?usage: $0 <output folder> [out.png]}")
out=$(readlink -f "${2:-$logdir/tensorboard.png}")
venv="${SPNAS_VENV:-$HOME/.cache/spnas/venv}"
port=$((20000 + RANDOM % 20000))
"$venv/bin/tensorboard" --logdir "$logdir" --host 127.0.0.1 --port "$port" >/tmp/tensorboard.$port.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 1
done
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1400,1000 --virtual-time-budget=15000 --screenshot="$out" \
  "http://127.0.0.1:$port/#timeseries" >/dev/null 2>&1
rm -rf "$profile"
echo "$out"

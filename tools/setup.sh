#!/bin/bash
# Installs everything spnas needs on Debian 12. Idempotent: does nothing when all is present.
#  - Debian's packages: the build tools and the libraries other than LibTorch.
#  - One Python environment from tools/requirements.lock (hash-locked): torch 2.11.0+cu130, whose
#    LibTorch (with CUDA) the whole build links against, torchvision and pycocotools (references
#    of the golden tests and benchmarks). It lives in $SPNAS_VENV (default ~/.cache/spnas/venv),
#    outside the checkout, so that every clone on the machine shares it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-cc bazel-platforms bazel-rules-java bazel-rules-proto bazel-skylib
  g++
  # libraries
  libgflags-dev libgoogle-glog-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev libstb-dev nlohmann-json3-dev zlib1g-dev
  libsimdjson-dev libtinyxml2-dev libisal-dev
  # the embedded dataset
  dataset-fashion-mnist
  # the Python environment below
  python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A second LibTorch (Debian's 1.13) would shadow the one from the lock file at link time.
stale=()
for p in libtorch-dev libtorch1.13 python3-torch python3-torchvision; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then stale+=("$p"); fi
done
if ((${#stale[@]} > 0)); then
  echo "setup: removing Debian's LibTorch (${stale[*]}): spnas uses the one of tools/requirements.lock"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -qq "${stale[@]}" >/dev/null
fi

venv="${SPNAS_VENV:-$HOME/.cache/spnas/venv}"
lock_hash=$(sha256sum tools/requirements.lock | cut -c1-16)
if [[ "$(cat "$venv/.spnas-lock" 2>/dev/null)" != "$lock_hash" ]]; then
  echo "setup: creating the Python environment $venv from tools/requirements.lock (about 2.6 GB)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
    --require-hashes -r tools/requirements.lock
  echo "$lock_hash" >"$venv/.spnas-lock"
fi

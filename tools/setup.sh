#!/bin/bash
# Installs every Debian package spnas needs (Debian 12). Idempotent: does nothing when all are
# present; otherwise runs apt-get update once and installs what is missing.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-cc bazel-platforms bazel-rules-java bazel-rules-proto bazel-skylib
  g++
  # libraries
  libtorch-dev libopenblas0-pthread libgflags-dev libgoogle-glog-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev libopencv-dev nlohmann-json3-dev zlib1g-dev
  libsimdjson-dev libtinyxml2-dev
  # the embedded dataset
  dataset-fashion-mnist
  # reference implementation for golden tests and benchmarks
  python3-torch python3-torchvision
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch must use OpenBLAS: the reference BLAS is about 15x slower.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
if [[ "$blas" != *openblas* ]]; then
  echo "setup: warning: libblas.so.3 is $blas, not OpenBLAS; LibTorch will be slow" >&2
fi

#!/bin/bash
# The GPU check, in two halves.
#
#   tools/gpu_check.sh [BUNDLE_DIR]      (here, with Bazel)  builds BUNDLE_DIR (default gpu_bundle/,
#                                        at most 64 MiB) to carry to a GPU machine
#   bash BUNDLE_DIR/run.sh               (there, without Bazel or network) runs the check against
#                                        that machine's own torch wheel (torch 2.11.0+cu130)
#
# The bundle holds the spnas binary, the CUDA test binaries and the benchmark, with every shared
# library they need except LibTorch, CUDA and the C library (those come from the GPU machine's
# torch wheel and driver), the tests' fixtures, a trimmed Fashion-MNIST for the quickstart, the
# torchvision sides (benchmarks/torchvision_cases.py, tools/gpu_sync_count.py) and run.sh
# (tools/gpu_check_run.sh, whose header lists the parts it checks). run.sh fails, it does not
# skip, where no CUDA device is usable, and exits non-zero when any part failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(realpath -m "${1:-gpu_bundle}")
tools/setup.sh
bazel build //spnas:spnas //tests:ops_cuda_test //tests:detector_cuda_test //benchmarks:spnas_benchmark

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data" "$bundle/configs"
for b in spnas/spnas tests/ops_cuda_test tests/detector_cuda_test benchmarks/spnas_benchmark; do
  cp "bazel-bin/$b" "$bundle/bin/"
  chmod u+w "$bundle/bin/$(basename "$b")"
  strip "$bundle/bin/$(basename "$b")"
done

# Shared libraries from Debian (glog, gflags, protobuf, OpenCV, ...): everything ldd resolves
# but LibTorch, CUDA and glibc, which the GPU machine has.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libutil\.so|libtorch|libc10|libcuda|libcudart|libcublas|libcudnn|libcufft|libcurand|libcusolver|libcusparse|libnccl|libnvshmem|libnvJitLink|libnvrtc|libcupti|libcufile|libgomp|libshm)'
for b in "$bundle"/bin/*; do
  ldd "$b" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ ^(libstdc\+\+|libgcc_s) ]]; then
    # Used there only if that machine's C++ runtime is older than Debian 12's (run.sh checks).
    mkdir -p "$bundle/lib/fallback"
    cp -L "$path" "$bundle/lib/fallback/$name"
  elif [[ ! "$name" =~ $skip ]]; then
    cp -L "$path" "$bundle/lib/$name"
  fi
done
strip --strip-unneeded "$bundle"/lib/*.so* "$bundle"/lib/fallback/* 2>/dev/null || true

# Fashion-MNIST, trimmed to what the quickstart draws from (FashionDet scenes and the
# reignition classifier): the first 20,000 training and 5,000 test images.
"${SPNAS_VENV:-$HOME/.cache/spnas/venv}/bin/python3" - "$bundle/data" <<'PY'
import gzip, struct, sys
src, out = "/usr/share/datasets/fashion-mnist", sys.argv[1]
for split, n in (("train", 20000), ("t10k", 5000)):
    for kind, item in (("images-idx3", 28 * 28), ("labels-idx1", 1)):
        data = gzip.open(f"{src}/{split}-{kind}-ubyte.gz").read()
        header = 16 if kind.startswith("images") else 8
        head = bytearray(data[:header])
        head[4:8] = struct.pack(">I", n)
        with gzip.open(f"{out}/{split}-{kind}-ubyte.gz", "wb") as f:
            f.write(bytes(head) + data[header:header + n * item])
PY
mkdir -p "$bundle/tests/fixtures"
# Made by the pinned torchvision.
cp bazel-bin/tests/fixtures/detector.pt bazel-bin/tests/fixtures/nms_large.pt "$bundle/tests/fixtures/"
cp configs/spnas_quickstart.textproto "$bundle/configs/"
cp benchmarks/torchvision_cases.py tools/gpu_sync_count.py "$bundle/"
cp tools/gpu_check_run.sh "$bundle/run.sh"

size=$(du -sb "$bundle" | cut -f1)
echo "bundle $bundle: $((size / 1024 / 1024)) MiB ($(ls "$bundle/lib" | wc -l) libraries)"
if ((size > 64 * 1024 * 1024)); then
  echo "error: the bundle is over 64 MiB" >&2
  exit 1
fi

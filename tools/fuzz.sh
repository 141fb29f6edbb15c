#!/bin/bash
# Builds the fuzz targets with clang, libFuzzer, ASan and UBSan (--config=fuzz) and runs each
# from its kept corpus (fuzz/corpus/<target>/) with the format's dictionary, for --seconds or
# --runs executions, whichever comes first.
#   tools/fuzz.sh [--seconds=600] [--runs=1000000] [--parallel=1] [target ...]   (default: all)
# Prints one line per target: executions, time, crashes (inputs kept in fuzz/crashes/).
# A crash is fixed, then its input is copied into fuzz/corpus/<target>/ as a regression case.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=600
runs=1000000
parallel=1
targets=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds="${arg#*=}" ;;
    --runs=*) runs="${arg#*=}" ;;
    --parallel=*) parallel="${arg#*=}" ;;
    -*) echo "unknown flag $arg; usage: tools/fuzz.sh [--seconds=N] [--runs=N] [--parallel=N] [target ...]" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
all=(torch_save_fuzzer config_fuzzer coco_fuzzer voc_fuzzer image_fuzzer idx_fuzzer records_fuzzer)
((${#targets[@]} > 0)) || targets=("${all[@]}")

tools/setup.sh
for p in clang-14 libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
    break
  fi
done

# Its own output base: switching compilers in the main one would rebuild everything each time.
bazel --output_base="$HOME/.cache/spnas-fuzz-output" build --config=fuzz "${targets[@]/#/\/\/fuzz:}" || exit 1
bin="$(bazel --output_base="$HOME/.cache/spnas-fuzz-output" info --config=fuzz bazel-bin 2>/dev/null)/fuzz"

dict_of() {
  case "$1" in
    config_fuzzer) echo fuzz/dict/textproto.dict ;;
    coco_fuzzer | records_fuzzer) echo fuzz/dict/json.dict ;;
    voc_fuzzer) echo fuzz/dict/xml.dict ;;
  esac
}

mkdir -p fuzz/crashes
work_root="${FUZZ_WORK:-/tmp/spnas-fuzz}"
fuzz_one() {
  local t="$1" work="$work_root/$1" log="$work_root/$1.log" dict
  mkdir -p "$work"
  dict=$(dict_of "$t")
  # 2 GiB of memory and 1 s per input: above either is a bug (an allocation a file claimed, a hang).
  local start=$SECONDS
  "$bin/$t" -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=1 -print_final_stats=1 \
    -artifact_prefix="fuzz/crashes/$t-" ${dict:+-dict=$dict} "$work" "fuzz/corpus/$t" >"$log" 2>&1
  local rc=$? execs crashes
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  crashes=$(ls fuzz/crashes/ | grep -c "^$t-")
  echo "$t: ${execs:-?} executions in $((SECONDS - start)) s, corpus $(ls "$work" | wc -l) inputs," \
    "$crashes crash/timeout/oom inputs (exit $rc; log $log)"
  ((rc == 0 && crashes == 0))
}
# The leaks LibTorch itself has on corrupt files (tools/sanitizers/lsan.supp) are not ours.
export LSAN_OPTIONS="suppressions=$PWD/tools/sanitizers/lsan.supp:print_suppressions=0"
# Undefined behaviour stops the target, as an ASan report does.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export -f fuzz_one dict_of
export bin seconds runs work_root
printf '%s\n' "${targets[@]}" | xargs -P "$parallel" -I{} bash -c 'fuzz_one {}'

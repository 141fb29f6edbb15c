# Sourced by the shell tests: `check <description> <command...>` records whether the command
# succeeded; `finish` prints the count and exits non-zero when any check failed.
failures=0
check() {
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
finish() {
  echo "$failures failures"
  exit $((failures > 0))
}

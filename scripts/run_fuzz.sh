#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, starting from its seed
# corpus (tests/fuzz/seeds/<target>/) and a scratch corpus that is thrown away afterwards.
# Exits non-zero on the first crash, leak, timeout or OOM (libFuzzer writes the reproducer).
set -euo pipefail
build_dir=${1:?usage: run_fuzz.sh BUILD_DIR SECONDS}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
found=0
for bin in "$build_dir"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  found=1
  mkdir -p "$scratch/$name"
  seeds="$root/tests/fuzz/seeds/$name"
  [ -d "$seeds" ] || seeds=""
  echo "fuzz: $name for ${secs}s"
  rc=0
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$scratch/$name-" -print_final_stats=1 "$scratch/$name" $seeds \
    >"$scratch/$name.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::average_exec_per_sec)" \
    "$scratch/$name.log" || true
  if [ "$rc" -ne 0 ] || ls "$scratch/$name-"* >/dev/null 2>&1; then
    echo "fuzz: $name failed (exit $rc):" >&2
    tail -n 40 "$scratch/$name.log" >&2
    ls "$scratch/$name-"* >&2
    cp "$scratch/$name-"* "$root/" 2>/dev/null || true
    exit 1
  fi
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets in $build_dir/tests/fuzz" >&2; exit 1; }
echo "fuzz: all targets ran clean"

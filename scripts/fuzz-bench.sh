#!/usr/bin/env bash
# The long fuzz run (bench, not CI): every target for RUNS executions (default 10 million)
# from the committed corpus, printing the count and time per target. Needs nightly and
# cargo-fuzz (scripts/install.sh). Usage: bash scripts/fuzz-bench.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs="${1:-10000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode netstack http_response apps filter)
features() { case "$1" in filter) echo "--features relay" ;; http_response | apps) echo "--features wasm" ;; *) echo "" ;; esac; }
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  work=$(mktemp -d)
  cp -r "corpus/$target/." "$work/" 2>/dev/null || true
  log="/tmp/fuzz-$target.log"
  start=$(date +%s)
  # shellcheck disable=SC2046
  if cargo +nightly fuzz run $(features "$target") "$target" "$work" -- -runs="$runs" -max_len=4096 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result="0 crashes"
  else
    result="FAILED (see $log)"
    failed=1
  fi
  execs=$(grep -oE "^stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  rss=$(grep -oE "^stat::peak_rss_mb: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  echo "fuzz $target: $execs executions in $(( $(date +%s) - start )) s, peak RSS ${rss} MiB, $result"
  rm -rf "$work"
done
exit "$failed"

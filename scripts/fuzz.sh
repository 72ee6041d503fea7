#!/usr/bin/env bash
# Replays the committed corpus through the decode fuzz target, then fuzzes it for N seconds
# (what CI runs). `--check` instead checks that every fuzz target still compiles against
# today's API: CI runs only `decode`, and the others would otherwise rot unnoticed (about a
# minute and a half on a 2-core machine, which CI's time budget does not have).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if [ "${1:-}" = "--check" ]; then
  exec env RUSTFLAGS="--cfg fuzzing" CARGO_TARGET_DIR=target/check cargo check --locked --features relay,wasm --bins
fi
seconds="${1:-30}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp corpus/decode/* "$work/"
cargo +nightly fuzz run decode corpus/decode -- -runs=0
cargo +nightly fuzz run decode "$work" corpus/decode -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024

#!/usr/bin/env bash
# Checks that every fuzz target still compiles against today's API (only `decode` is run here,
# so the others would otherwise rot unnoticed), replays the committed corpus through the decode
# fuzz target, then fuzzes it for N seconds.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
RUSTFLAGS="--cfg fuzzing" CARGO_TARGET_DIR=target/check cargo check --locked --features relay,wasm --bins
cp corpus/decode/* "$work/"
cargo +nightly fuzz run decode corpus/decode -- -runs=0
cargo +nightly fuzz run decode "$work" corpus/decode -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024

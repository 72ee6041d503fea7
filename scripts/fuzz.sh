#!/usr/bin/env bash
# Replays the committed corpus through the decode fuzz target, then fuzzes for N seconds.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp corpus/decode/* "$work/"
cargo +nightly fuzz run decode corpus/decode -- -runs=0
cargo +nightly fuzz run decode "$work" corpus/decode -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024

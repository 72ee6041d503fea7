#!/usr/bin/env bash
# Sums the gzip -9 size of every file the page can load (www/dist, built by
# scripts/build-page.sh; this script builds nothing) and prints a per-file table.
# Exits non-zero when the total is over the budget (600 KB = 600 * 1024 bytes gzip,
# or the number of bytes given as the first argument).
set -euo pipefail
dist="$(cd "$(dirname "$0")/../www" && pwd)/dist"
budget="${1:-$((600 * 1024))}"
[ -f "$dist/index.html" ] || { echo "page-size: $dist is not built (scripts/build-page.sh)" >&2; exit 2; }
total=0
printf '%10s %10s  %s\n' raw gzip file
while IFS= read -r f; do
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  total=$((total + gz))
  printf '%10d %10d  %s\n' "$raw" "$gz" "${f#"$dist"/}"
done < <(find "$dist" -type f | LC_ALL=C sort)
printf '%10s %10d  total (budget %d)\n' '' "$total" "$budget"
if [ "$total" -gt "$budget" ]; then
  echo "page-size: the page is $total bytes gzip, over the budget of $budget" >&2
  exit 1
fi

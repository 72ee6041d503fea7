#!/usr/bin/env bash
# The churn scenario at bench size: 1,000 devices connecting and disconnecting for 10 minutes
# while 4 stay connected with byte-checked flows; prints the relay's RSS and descriptors at each
# eighth (root: it builds its own network namespaces; the test profile is optimized).
# Usage: scripts/churn-bench.sh [clients] [secs]
set -euo pipefail
cd "$(dirname "$0")/.."
HOMETUN_CHURN_CLIENTS="${1:-1000}" HOMETUN_CHURN_SECS="${2:-600}" \
  cargo test -p hometun-tests --test churn -- --nocapture

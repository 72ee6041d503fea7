#!/usr/bin/env bash
# Runs every hometun test: installs what is missing, then the page build, lints, the protocol
# core and browser client in headless Chromium (wasm), one build of every native crate, the
# native tests with the end-to-end tests in network namespaces (root, including the .deb) and,
# beside them, six-minute downloads, uploads and reading through a home web app and a frozen app
# page's WebSocket, a smoke run of the bench, and a bounded fuzz run over the committed corpus. Exits non-zero when any part fails.
set -uo pipefail
cd "$(dirname "$0")/.."

export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
export CARGO_TERM_COLOR=never
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"

passed=0 failed=0 failures=() culprits=()
phase_log=$(mktemp) long_log=$(mktemp)
trap 'rm -f "$phase_log" "$long_log"' EXIT
phase() { # name command...
  local name=$1; shift
  printf '\n==== %s\n' "$name"
  local start=$SECONDS
  if "$@" 2>&1 | tee "$phase_log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    passed=$((passed + 1)); printf '==== %s: ok (%ss)\n' "$name" $((SECONDS - start))
  else
    failed=$((failed + 1)); failures+=("$name"); printf '==== %s: FAILED (%ss)\n' "$name" $((SECONDS - start))
    # The failing tests and their panic lines, repeated in the summary: a long phase's output
    # (the fuzz run's above all) would otherwise push them out of a log's tail.
    mapfile -t -O "${#culprits[@]}" culprits < <(
      { grep -E -- '^test .* FAILED$|^error(\[|:)' "$phase_log"
        grep -A2 -- 'panicked at' "$phase_log" | grep -v -- '^--$'; } | head -n 40)
    return 1
  fi
}

# The path of the end-to-end test binary `name` that the build phase made (cargo's selection
# is the same as the build's, so nothing is compiled again).
test_binary() { # name
  cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == sys.argv[1]:
        print(m["executable"]); sys.exit(0)
sys.exit(1)' "$1"
}
# Shows the output of a test run that ran in the background, and passes on its exit status.
show_background() { # status log
  cat "$2"
  return "$1"
}

bash scripts/install.sh || { echo "install failed"; exit 1; }
cargo fetch --quiet || { echo "cargo fetch failed"; exit 1; }

# The page first: the relay embeds www/dist when it is compiled, so every relay binary built
# below (the unit tests, the end-to-end harness's, the .deb's) carries the page.
phase "style: cargo fmt --check" cargo fmt --all -- --check
phase "page build (trunk)" bash scripts/build-page.sh
phase "page size: gzip total within its ceiling (scripts/page-size.sh)" bash scripts/page-size.sh
phase "lints: cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
# The crates that run in the page, as the page runs them (their `web` modules exist only there).
phase "lints (wasm32): cargo clippy -D warnings" cargo clippy -p hometun-shared -p hometun-wasm \
  -p hometun-ssh -p hometun-tls --target wasm32-unknown-unknown --all-targets -- -D warnings
# The wasm32 tests: both crates in one build, so their shared dependencies compile once.
phase "protocol core and browser client in headless Chromium (wasm32)" \
  cargo test -p hometun-shared -p hometun-wasm --target wasm32-unknown-unknown
# Every native crate, test and binary in one build with one package selection (the whole
# workspace), so cargo resolves one feature set and compiles each dependency once: selecting
# the end-to-end crates apart from the rest resolved different features and compiled some 80
# crates twice (about seven minutes on a 2-core machine). The tests then run the relay and lab
# binaries this build made (test profile, the page inside) instead of building their own.
if phase "build: every native crate, test and binary" cargo build --workspace --all-targets --profile test; then
  export HOMETUN_RELAY_BIN="${HOMETUN_RELAY_BIN:-$PWD/target/debug/hometun-relay}"
  export HOMETUN_LABHOST_BIN="${HOMETUN_LABHOST_BIN:-$PWD/target/debug/hometun-labhost}"
fi
# Downloads and uploads through a home web app that outlast the browsers' limits on a service
# worker, an app read for six minutes with the launcher hidden, and a frozen page's WebSocket
# closed at home after a minute and more: minutes of mostly waiting, so the seven (downloads in
# Chromium, Firefox, WebKit; uploads in Chromium, Firefox; the reading and the frozen page in
# Chromium) run at once in the background beside the tests below, from the binary the build
# made, and are collected after them.
long_pid=
if [ -n "${HOMETUN_RELAY_BIN:-}" ] && long_bin=$(test_binary long_transfers); then
  (cd tests && HOMETUN_LABS=7 exec "$long_bin" --ignored --test-threads=7) >"$long_log" 2>&1 &
  long_pid=$!
fi
phase "native unit, scenario and doc tests; end-to-end in network namespaces (root)" \
  cargo test --workspace -- --test-threads=2
# Waited for here, in this shell: `phase` runs its command in a subshell, where the run is not a
# child to wait for.
long_status=1
if [ -n "$long_pid" ]; then
  wait "$long_pid"
  long_status=$?
else
  echo "not started: the build failed" >"$long_log"
fi
phase "six-minute downloads, uploads and reading through a home web app in Chromium, Firefox and WebKit, and a frozen page (run beside the above)" \
  show_background "$long_status" "$long_log"
# The bench's harness, so it cannot rot: one round of 1 MiB, a few echoes and tunnels, with the
# binaries built above; it fails when a case fails and asserts no speed.
phase "bench smoke: direct, the transport alone, native client, relay scale, echoes during a download on an 8 Mbit/s link (figures not asserted)" \
  target/debug/hometun-bench --smoke --cases direct,wss-native,hometun-native,hometun-scale --link-mbit 8 --loaded-echoes 20
phase "fuzz: corpus replay and ${FUZZ_SECONDS}s of new inputs" bash scripts/fuzz.sh "$FUZZ_SECONDS"

printf '\n==== summary\n'
for f in "${failures[@]}"; do echo "failed phase: $f"; done
for c in "${culprits[@]}"; do echo "  $c"; done
echo "phases: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Builds the page (www/ -> www/dist) with trunk, offline (see www/Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/../www"
trunk build

# The SSH module (ssh/, docs/ssh.md) is a wasm of its own, loaded only when a terminal opens,
# built small (the ssh-wasm profile); xterm.js from www/node_modules goes next to it.
target_dir="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
(cd .. && cargo build -p hometun-ssh --target wasm32-unknown-unknown --profile ssh-wasm)
# No wasm-opt: binaryen 108 breaks wasm-bindgen's reference-type tables, and lto with
# opt-level "z" already leaves it nothing to gain; the names section is dropped instead.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir dist/ssh "$target_dir/wasm32-unknown-unknown/ssh-wasm/hometun_ssh.wasm"
cp node_modules/@xterm/xterm/lib/xterm.js node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.js dist/ssh/
ls -l dist dist/ssh

#!/usr/bin/env bash
# From a fresh clone to a running relay with its page, on Debian 12 or Raspberry Pi OS (as root):
#
#   sudo bash scripts/relay.sh serve [FLAGS]   install and build what is missing, then run
#                                              `hometun-relay serve FLAGS` (default DIR /etc/hometun)
#   sudo bash scripts/relay.sh build           install and build only (target/release/hometun-relay)
#   sudo bash scripts/relay.sh deb             also package it: target/debian/hometun-relay_*.deb
#   sudo bash scripts/relay.sh install         also install (or upgrade to) that package, and restart
#                                              the service when it runs
#
# Every step is skipped when its result is already there: the apt packages (a C compiler,
# nftables, iproute2, curl, clang, nodejs and npm), Rust (rustup, when no cargo is found), the
# wasm32 target, wasm-bindgen-cli and trunk at the versions pinned in scripts/install.sh, the
# page (www/dist, rebuilt when its sources are newer), and the release build (cargo's own
# check). The page ends up inside the binary, so target/release/hometun-relay alone is a
# complete relay.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '== relay.sh: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
# A version pinned in scripts/install.sh (the one list of tool versions).
pinned() { sed -n "s/^$1=\"\([^\"]*\)\".*/\1/p" scripts/install.sh; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "relay.sh: $1 needs root: run it with sudo" >&2
    exit 1
  fi
}

apt_packages() {
  local pkgs=()
  have cc      || pkgs+=(gcc libc6-dev)
  have nft     || pkgs+=(nftables)
  have ip      || pkgs+=(iproute2)
  have curl    || pkgs+=(curl ca-certificates)
  have clang   || pkgs+=(clang)       # ring (the page's SSH and TLS modules) builds for wasm32 with it
  have npm     || pkgs+=(nodejs npm)   # the page bundles xterm.js and noVNC (www/package.json)
  have brotli  || pkgs+=(brotli)       # the page's brotli forms (scripts/build-page.sh)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    need_root "installing ${pkgs[*]}"
    step "apt: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
  fi
}

rust_toolchain() {
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  if ! have cargo; then
    step "Rust (rustup, stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

cargo_tool() { # binary version crate [extra args]
  local bin=$1 version=$2 crate=$3; shift 3
  if have "$bin" && "$bin" --version 2>/dev/null | grep -q "$version"; then return 0; fi
  step "cargo install $crate $version"
  cargo install "$crate" --version "$version" "$@"
}

page_tools() {
  # --locked fails for wasm-bindgen-cli (see scripts/install.sh).
  cargo_tool wasm-bindgen "$(pinned WASM_BINDGEN_VERSION)" wasm-bindgen-cli
  cargo_tool trunk "$(pinned TRUNK_VERSION)" trunk --locked
}

# The page is stale when any of its sources (the page, the browser client, the protocol core,
# the lock file) is newer than the built index.html.
page_is_fresh() {
  [ -f www/dist/index.html ] || return 1
  [ -z "$(find www wasm-client shared Cargo.lock -path www/dist -prune -o -type f -newer www/dist/index.html -print -quit)" ]
}

build() {
  apt_packages
  rust_toolchain
  if page_is_fresh; then
    step "page: www/dist is up to date"
  else
    page_tools
    step "page: cargo fetch, then trunk (offline)"
    cargo fetch --quiet
    bash scripts/build-page.sh >/dev/null
  fi
  step "relay: cargo build --release -p hometun-relay"
  cargo build --release -p hometun-relay
}

deb() {
  build
  cargo_tool cargo-deb "$(pinned CARGO_DEB_VERSION)" cargo-deb --locked
  step "package: cargo deb --no-build --strip"
  cargo deb -p hometun-relay --no-build --strip
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  serve)
    need_root "serve (tun device, nftables, port 443)"
    build
    step "run: hometun-relay serve $*"
    exec target/release/hometun-relay serve "$@"
    ;;
  build) build ;;
  deb) deb ;;
  install)
    need_root install
    deb
    package=$(ls -t target/debian/hometun-relay_*.deb | head -n 1)
    # Every build is version 0.1.0-1, so plain `apt-get install` of a newer build over an
    # installed one may keep the old files; --reinstall unpacks this build either way (and
    # installs it where none is).
    step "apt install --reinstall ./$package"
    apt-get install -y -qq --reinstall "./$package"
    if [ -d /run/systemd/system ]; then
      # The package has no maintainer scripts: a changed unit file is read here.
      systemctl daemon-reload
      if systemctl is-active --quiet hometun-relay; then
        step "systemctl restart hometun-relay (it was running: the new build takes over)"
        systemctl restart hometun-relay
        echo "Upgraded; the service runs the new build (\`systemctl status hometun-relay\`)." >&2
        exit 0
      fi
    fi
    if [ -f /etc/hometun/relay.toml ]; then
      echo "Installed. Start the service with \`sudo systemctl enable --now hometun-relay\`." >&2
    else
      echo "Installed. Run \`sudo hometun-relay serve\` once (it prints the page URL and a first invite)," >&2
      echo "stop it with Ctrl-C, then \`sudo systemctl enable --now hometun-relay\`." >&2
    fi
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

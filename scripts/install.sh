#!/usr/bin/env bash
# Installs everything the tests and the page build need on a fresh Debian 12 machine.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

WASM_BINDGEN_VERSION="0.2.130"   # must equal wasm-bindgen in Cargo.lock
TRUNK_VERSION="0.21.14"          # 0.22 needs a newer rustc than this machine's
CARGO_FUZZ_VERSION="0.13.2"
CARGO_DEB_VERSION="3.8.0"

step() { printf '== install: %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    step "rust component $component"
    rustup component add "$component"
  fi
done

# The tools are built for this machine only: without trunk's fat LTO and single codegen unit
# (7 of the 11 minutes a brand-new machine spent installing), in parallel units. They run for
# seconds per build, so the small loss of speed does not show. Compiling them keeps both cores
# busy for minutes while apt, npm and pip below mostly wait on the network and the disk, so they
# are built in the background meanwhile, their output kept and shown once they are done.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo_tool() { # binary version crate [extra args]
  local bin=$1 version=$2 crate=$3; shift 3
  if have "$bin" && "$bin" --version 2>/dev/null | grep -q "$version"; then return 0; fi
  step "cargo install $crate $version"
  cargo install "$crate" --version "$version" "$@"
}
build_tools() {
  # --locked fails for wasm-bindgen-cli here (a locked dependency is missing from the registry).
  cargo_tool wasm-bindgen "$WASM_BINDGEN_VERSION" wasm-bindgen-cli
  cargo_tool trunk "$TRUNK_VERSION" trunk --locked
  if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    step "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
  # The .deb (tests/tests/deb.rs, `scripts/relay.sh deb`).
  cargo_tool cargo-deb "$CARGO_DEB_VERSION" cargo-deb --locked
}
tools_log=$(mktemp)
# In a process group of its own (job control on for the moment it starts), so that whatever ends
# this script early ends the whole build with it: cargo, rustc and build scripts.
set -m
build_tools > "$tools_log" 2>&1 &
tools_pid=$!
set +m
# While apt installs, a policy that starts no services (see below); the machine's own, if it had
# one, kept in policy_saved and put back.
policy_saved=
restore_policy() {
  [ -n "$policy_saved" ] || return 0
  if [ -e "$policy_saved" ]; then mv -f "$policy_saved" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
  policy_saved=
}
cleanup() {
  if [ -n "$tools_pid" ]; then kill -TERM -- "-$tools_pid" 2>/dev/null || true; fi
  rm -f "$tools_log"
  restore_policy
}
trap cleanup EXIT

apt_pkgs=()
have chromium      || apt_pkgs+=(chromium)
have chromedriver  || apt_pkgs+=(chromium-driver)
have wasm-opt      || apt_pkgs+=(binaryen)
have brotli        || apt_pkgs+=(brotli)          # the page's brotli forms (scripts/build-page.sh)
have nft           || apt_pkgs+=(nftables)
have ethtool       || apt_pkgs+=(ethtool)         # a LAN host that sums its own packets (tunnel test)
have ip            || apt_pkgs+=(iproute2)
have tcpdump       || apt_pkgs+=(tcpdump)
have python3       || apt_pkgs+=(python3)
have pebble        || apt_pkgs+=(pebble)          # ACME test server (trusted-TLS tests)
have certutil      || apt_pkgs+=(libnss3-tools)   # NSS trust store for Chromium in those tests
have WebKitWebDriver || apt_pkgs+=(webkit2gtk-driver)  # WebKit, Safari's engine, for the page scenario in it
have xvfb-run      || apt_pkgs+=(xvfb)            # the X display WebKitGTK needs
have firefox-esr   || apt_pkgs+=(firefox-esr)     # Firefox (Gecko) for the page scenarios in it, driven over WebDriver BiDi
# Real home web apps on the lab's LAN hosts (tests/src/apps, tests/tests/web_apps.rs).
have jupyter-notebook || apt_pkgs+=(jupyter-notebook)
/usr/bin/python3 -c 'import ipykernel' 2>/dev/null || apt_pkgs+=(python3-ipykernel)
have syncthing     || apt_pkgs+=(syncthing)
[ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx-light)
[ -x /usr/sbin/lighttpd ] || apt_pkgs+=(lighttpd)  # an IP camera's pages behind HTTP Digest authentication
have qbittorrent-nox || apt_pkgs+=(qbittorrent-nox)  # a NAS's download manager (its Web UI's CSRF checks)
# A home server's web console (tests/src/apps/cockpit.rs): Cockpit's web server, bridge and pages.
[ -x /usr/lib/cockpit/cockpit-ws ] || apt_pkgs+=(cockpit-ws)
have cockpit-bridge || apt_pkgs+=(cockpit-bridge)
[ -f /usr/share/cockpit/systemd/manifest.json ] || apt_pkgs+=(cockpit-system)
have npm           || apt_pkgs+=(nodejs npm)      # the page's browser libraries (www/package.json)
# A VNC desktop on a lab LAN host (tests/src/apps/vnc.rs): TigerVNC's Xvnc, its password tool,
# xsetroot to paint it, xev to record the keys it gets, xclip for its clipboard.
have Xvnc          || apt_pkgs+=(tigervnc-standalone-server)
have vncpasswd     || apt_pkgs+=(tigervnc-tools)
have xsetroot      || apt_pkgs+=(x11-xserver-utils)
have xev           || apt_pkgs+=(x11-utils)
have xclip         || apt_pkgs+=(xclip)
# SSH in the page: ring (in the SSH module's wasm) needs clang to build for wasm32; the lab's
# LAN host runs a real OpenSSH server (tests/src/apps/sshd.rs; never started on this machine).
have clang         || apt_pkgs+=(clang)
[ -x /usr/sbin/sshd ] || apt_pkgs+=(openssh-server)
# Discovery tests: an mDNS responder and a DNS server with reverse names only (tests/src/apps/mdns.rs)
/usr/bin/python3 -c 'import zeroconf' 2>/dev/null || apt_pkgs+=(python3-zeroconf)
[ -x /usr/sbin/dnsmasq ] || apt_pkgs+=(dnsmasq-base)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  step "apt: ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The lab starts its own app servers inside its namespaces: packages must not start system
  # services on the host (Debian's nginx would listen on the host's port 80). A policy the
  # machine had is put back afterwards.
  policy_saved=$(mktemp)
  if [ -e /usr/sbin/policy-rc.d ]; then cp -p /usr/sbin/policy-rc.d "$policy_saved"; else rm -f "$policy_saved"; fi
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}"
  restore_policy
fi

# openssl shows certificate fingerprints the way a browser does (tests/tests/first_run.rs).
if ! have openssl || ! have dpkg-deb; then
  step "apt: openssl dpkg"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl dpkg
fi
# The page bundles xterm.js and noVNC from npm (versions pinned in www/package-lock.json), the
# remote desktop viewer with esbuild (scripts/build-page.sh).
www="$(dirname "$0")/../www"
if ! cmp -s "$www/package-lock.json" "$www/node_modules/.hometun-lock"; then
  step "npm ci (www)"
  (cd "$www" && npm ci --no-audit --no-fund --ignore-scripts && cp package-lock.json node_modules/.hometun-lock)
fi
# Home Assistant on a lab LAN host (tests/src/apps/home_assistant.rs), from PyPI in a venv of its
# own: 2025.4 is the newest release for this machine's Python 3.13.0 (pyenv's; Debian 12 has 3.11).
HA_VERSION="2025.4.4"
HA_FRONTEND_VERSION="20250411.0"   # what its frontend integration's manifest pins
HA_VENV=/opt/hometun-lab/home-assistant
if ! "$HA_VENV/bin/python" -c "import homeassistant.const as c, hass_frontend; assert c.__version__ == '$HA_VERSION'" 2>/dev/null; then
  step "pip: homeassistant $HA_VERSION (venv $HA_VENV)"
  py313=
  for candidate in /root/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 "$(command -v python3.13 || true)"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      py313=$candidate; break
    fi
  done
  if [ -z "$py313" ]; then
    echo "install: Home Assistant $HA_VERSION needs Python 3.13 (none found under /root/.pyenv, /usr/bin or on PATH)" >&2
    exit 1
  fi
  rm -rf "$HA_VENV"
  "$py313" -m venv "$HA_VENV"
  "$HA_VENV/bin/pip" install -q --disable-pip-version-check "homeassistant==$HA_VERSION" "home-assistant-frontend==$HA_FRONTEND_VERSION"
fi
if kill -0 "$tools_pid" 2>/dev/null; then
  step "waiting for the tools' build (its output follows when it is done)"
fi
built=0
wait "$tools_pid" || built=$?
tools_pid=
cat "$tools_log"
if [ "$built" -ne 0 ]; then
  echo "install: building the tools failed (above)" >&2
  exit 1
fi
step "done"

#!/usr/bin/env bash
# Builds the page (www/ -> www/dist) with trunk, offline (see www/Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/../www"
trunk build
# The remote desktop viewer (www/vnc + noVNC from npm, ES modules) as one ES module that the page
# imports only when a desktop is opened (js/desktop.js). esbuild is pinned in package.json.
[ -x node_modules/.bin/esbuild ] || { echo "www/node_modules is missing: run scripts/install.sh" >&2; exit 1; }
node_modules/.bin/esbuild vnc/viewer.js --bundle --format=esm --minify --target=es2022 \
  --legal-comments=none --log-level=warning --outfile=dist/vnc/viewer.js
ls -l dist

#!/usr/bin/env bash
# Builds the page (www/ -> www/dist) with trunk, offline (see www/Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/../www"
trunk build
# The remote desktop viewer (www/vnc + noVNC from npm, ES modules) as one ES module that the page
# imports only when a desktop is opened (js/desktop.js). esbuild is pinned in package.json; the
# npm packages are installed here too when missing or stale (as scripts/install.sh does).
if ! cmp -s package-lock.json node_modules/.hometun-lock; then
  command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm (or run scripts/install.sh)" >&2; exit 1; }
  npm ci --no-audit --no-fund --ignore-scripts >&2
  cp package-lock.json node_modules/.hometun-lock
fi
novnc=$(node -p 'require("./node_modules/@novnc/novnc/package.json").version')
node_modules/.bin/esbuild vnc/viewer.js --bundle --format=esm --minify --target=es2022 \
  --legal-comments=none --log-level=warning --outfile=dist/vnc/viewer.js \
  --banner:js="/* noVNC $novnc (MPL-2.0, source: https://github.com/novnc/noVNC), bundled unmodified with hometun's viewer */"

ls -l dist

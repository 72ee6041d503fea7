#!/usr/bin/env bash
# Builds the page (www/ -> www/dist) with trunk, offline (see www/Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/../www"
trunk build
ls -l dist

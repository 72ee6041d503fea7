#!/usr/bin/env bash
# Builds the page (www/ -> www/dist) with trunk, offline (see www/Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/../www"
# Checked first: the compressed forms come at the end, after minutes of building.
command -v brotli >/dev/null || { echo "brotli is missing: apt-get install brotli (or run scripts/install.sh)" >&2; exit 1; }
trunk build
# index.html without its indentation and without what trunk leaves in it that browsers ignore
# (the rust link, as it injects no scripts here; data-integrity): ~220 bytes gzip. A line break
# stays wherever one was, so text renders the same; only a <pre> or <textarea> holding lines
# would change, and the page has none.
if grep -q '<\(pre\|textarea\)[^>]*>[^<]*$' dist/index.html; then
  echo "build-page: index.html has a <pre> or <textarea> spanning lines; its indentation cannot go" >&2
  exit 1
fi
sed -i -e 's/^[[:space:]]*//' -e '/^<link data-trunk rel="rust"/d' -e '/^$/d' -e 's/ data-integrity="none"//' \
  dist/index.html
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

# The SSH module (ssh/, docs/ssh.md) is a wasm of its own, loaded only when a terminal opens,
# built small (the page-wasm profile, as the main wasm); xterm.js from www/node_modules goes next
# to it.
target_dir="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
(cd .. && cargo build -p hometun-ssh --target wasm32-unknown-unknown --profile page-wasm)
# No wasm-opt: binaryen 108 breaks wasm-bindgen's reference-type tables, and after lto with
# opt-level "z" its output is bigger gzipped (measured: -Oz 404 KB, -Os 403 KB vs 400 KB).
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir dist/ssh "$target_dir/wasm32-unknown-unknown/page-wasm/hometun_ssh.wasm"
cp node_modules/@xterm/xterm/lib/xterm.js node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.js dist/ssh/

# The TLS module (tls/) for home apps served over https with self-signed certificates is a wasm
# of its own too, loaded only when such an app opens; built the same way (page-wasm, no wasm-opt).
(cd .. && cargo build -p hometun-tls --target wasm32-unknown-unknown --profile page-wasm)
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir dist/tls "$target_dir/wasm32-unknown-unknown/page-wasm/hometun_tls.wasm"

# The page's own scripts and the wasm-bindgen glue, minified in place (file by file, no
# bundling: module paths, top-level names and the service worker's shim stay as they are);
# xterm.js and the noVNC bundle come minified already. About 20 KB gzip of the page budget
# (scripts/page-size.sh).
find dist -name '*.js' ! -path dist/ssh/xterm.js ! -path dist/ssh/addon-fit.js ! -path dist/vnc/viewer.js \
  -print0 | while IFS= read -r -d '' js; do
  node_modules/.bin/esbuild "$js" --minify --target=es2022 --legal-comments=none --log-level=warning \
    --outfile="$js" --allow-overwrite
done

# The stylesheets likewise (index.html links style.css without an integrity hash, so it may
# change after trunk; the page and its stylesheet come from the same relay anyway).
for css in dist/style.css dist/ssh/xterm.css dist/ssh/terminal.css; do
  node_modules/.bin/esbuild "$css" --minify --log-level=warning --outfile="$css" --allow-overwrite
done

# Each file that shrinks by an eighth or more gets its compressed forms beside it: NAME.br
# (brotli -q 11) and NAME.gz (gzip -9, no name or time inside). The relay sends the brotli form
# to browsers that take it (all current ones, over HTTPS), else the gzip one
# (relay/src/web/encoding.rs): the wire carries about a third of the page, and the relay
# compresses nothing at run time.
find dist \( -name '*.gz' -o -name '*.br' \) -delete
find dist -type f -size +1k \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' \
  -o -name '*.svg' -o -name '*.json' \) -print0 | while IFS= read -r -d '' f; do
  gzip -9 -n -c "$f" >"$f.gz"
  brotli -q 11 -c "$f" >"$f.br"
  for form in "$f.gz" "$f.br"; do
    [ $(($(stat -c %s "$form") * 8)) -le $(($(stat -c %s "$f") * 7)) ] || rm "$form"
  done
done
ls -l dist dist/ssh dist/tls

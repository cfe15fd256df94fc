#!/usr/bin/env bash
# End-to-end tests of the web player in Debian's Chromium (playwright-core drives it; no browser
# is downloaded). Installs what is missing on a fresh Debian machine, then runs `node --test`.
#   LEGATO_BIN   the server binary (default: <repo>/target/debug/legato; build it with cargo first)
#   CHROMIUM_BIN the browser (default: /usr/bin/chromium)
set -euo pipefail

UI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$UI_DIR"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "run-tests.sh: need root to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "run-tests.sh: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

# npm ci when node_modules is missing or older than the lock file (or misses a package).
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] \
  || [ ! -f node_modules/hls.js/package.json ] || [ ! -f node_modules/playwright-core/package.json ] \
  || [ ! -f node_modules/video.js/package.json ] || [ ! -f node_modules/axe-core/axe.min.js ]; then
  echo "run-tests.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

args=(--test)
# One test file at a time: each starts a server and a browser, and the timing test wants a quiet machine.
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
  args+=(--test-concurrency=1)
fi
mkdir -p "$UI_DIR/../test-output/ui"

set +e
node "${args[@]}" tests/
code=$?
set -e
exit "$code"

#!/usr/bin/env bash
# Every test of the project, from a fresh machine: installs what is missing, starts the
# servers the tests need on loopback, runs Rust, Python and browser tests, stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# Installed tools (FerretDB, Python venvs) are cached outside the clone, so a fresh clone
# (CI) reuses them instead of rebuilding.
export LEGATO_TOOLS="${LEGATO_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/legato-tools}"
mkdir -p "$LEGATO_TOOLS"

step() { printf '\n==> %s\n' "$*"; }

apt_ready=0
need_apt() {
  # need_apt COMMAND PACKAGE: installs PACKAGE from Debian when COMMAND is missing.
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$apt_ready" = 0 ]; then
      step "apt-get update"
      apt-get update -qq
      apt_ready=1
    fi
    step "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

need_apt ffmpeg ffmpeg
need_apt python3 python3
need_apt curl curl
# An independent ISO BMFF parser for the fMP4 tests (the other, mp4box.js 0.5.4 from npm, is
# installed by those tests into $LEGATO_TOOLS/mp4box-0.5.4 when node is there).
need_apt mediainfo mediainfo

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

cleanup() {
  if [ -n "${ferret_dir:-}" ]; then bash scripts/ferretdb.sh stop "$ferret_dir" >/dev/null 2>&1 || true; fi
  if [ -n "${seaweed_dir:-}" ]; then bash scripts/seaweedfs.sh stop "$seaweed_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -f scripts/ferretdb.sh ]; then
  step "FerretDB (a MongoDB-protocol server) on loopback"
  bash scripts/ferretdb.sh install
  ferret_dir=$(mktemp -d)
  ferret_port=$(bash scripts/ferretdb.sh free-port)
  export LEGATO_TEST_MONGODB_URI
  LEGATO_TEST_MONGODB_URI=$(bash scripts/ferretdb.sh start "$ferret_port" "$ferret_dir" | tail -n 1)
fi

step "SeaweedFS (an object store with an S3 gateway) on loopback"
# Built from the Go module proxy once (about 3 minutes), cached in $LEGATO_TOOLS.
bash scripts/seaweedfs.sh install
seaweed_dir=$(mktemp -d)
export LEGATO_TEST_BLOBS LEGATO_TEST_BLOBS_KEYS="$seaweed_dir"
LEGATO_TEST_BLOBS="s3://legato-test?endpoint=$(bash scripts/seaweedfs.sh start "$seaweed_dir" legato-test | tail -n 1)"

step "Rust tests"
cargo test --workspace --locked

step "building the legato binary for the client and browser tests"
cargo build -p legato --locked
export LEGATO_BIN="$root/target/debug/legato"
# Fills a store with a large library through the store API (the 100,000-track page test).
cargo build -p legato-store-mongo --example library --locked
export LEGATO_LIBRARY_BIN="$root/target/debug/examples/library"

step "soak test, short form (30 s of mixed traffic; bench/soak.py --seconds 600 is the long one)"
python3 bench/soak.py --seconds "${LEGATO_SOAK_SECONDS:-30}" --bin "$LEGATO_BIN"

step "the functions behind the real of-watchdog, and faas-cli's build context"
python3 deploy/openfaas/test_watchdog.py

step "fuzzing, short run (scripts/fuzz.sh 3600 is the long one)"
bash scripts/fuzz.sh "${LEGATO_FUZZ_SECONDS:-30}"

step "API contract: schemathesis against the OpenAPI document"
bash scripts/schemathesis.sh 100

if [ -x clients/python/run-tests.sh ]; then
  step "Python client tests"
  bash clients/python/run-tests.sh
fi

if [ -x tests/subsonic/run-tests.sh ]; then
  step "OpenSubsonic (/rest) tests: py-opensonic and the spec's schema against legato serve"
  bash tests/subsonic/run-tests.sh
fi

if [ -x ui/run-tests.sh ]; then
  step "web player tests in Chromium"
  bash ui/run-tests.sh
fi

step "all tests passed"

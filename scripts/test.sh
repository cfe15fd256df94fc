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

# Each step's time and each runner's counts, printed at the end (also when a step fails).
logs=$(mktemp -d)
started_at=$(date +%s)
step_name=""
step_started=0
declare -a step_times=()
end_step() {
  if [ -n "$step_name" ]; then
    step_times+=("$(printf '%6ss  %s' "$(($(date +%s) - step_started))" "$step_name")")
  fi
  step_name=""
}
step() {
  end_step
  step_name="$*"
  step_started=$(date +%s)
  printf '\n==> %s\n' "$*"
}
# logged NAME COMMAND...: runs COMMAND with its output shown and kept in $logs/NAME.log.
logged() {
  local name=$1
  shift
  "$@" 2>&1 | tee "$logs/$name.log"
}

# The counts a runner printed: "P F S" (passed, failed, skipped) from its log, or nothing.
counts() {
  local log="$logs/$1.log"
  [ -f "$log" ] || return 0
  case "$1" in
    rust)
      awk '/^test result: /{for(i=1;i<=NF;i++){if($(i+1)~/^passed/)p+=$i; if($(i+1)~/^failed/)f+=$i; if($(i+1)~/^ignored/)s+=$i}} END{if(NR)print p+0, f+0, s+0}' "$log" ;;
    pytest-*)
      # pytest -q's last line: "59 passed, 1 skipped in 12.34s" (or "N failed, M passed ...").
      grep -E '^[=[:space:]]*[0-9]+ (passed|failed|error)' "$log" | tail -n 1 |
        awk '{for(i=1;i<=NF;i++){if($(i+1)~/^passed/)p=$i; if($(i+1)~/^(failed|errors?)/)f+=$i; if($(i+1)~/^skipped/)s=$i}} END{if(NR)print p+0, f+0, s+0}' ;;
    chromium)
      awk '/^# pass /{p=$3} /^# fail /{f=$3} /^# skipped /{s=$3} END{if(p!="")print p+0, f+0, s+0}' "$log" ;;
    fuzz)
      # One line per target in fuzz.sh's summary: "ok" passes, "CRASH" fails.
      awk '/ execs .* exec\/s /{if($0~/ ok$/)p++; else f++} END{if(p+f)print p+0, f+0, 0}' "$log" ;;
    schemathesis)
      # schemathesis 4's summary: "Test cases:" then "1792 generated, 1790 passed, 2 failed".
      grep -E '^ *[0-9]+ generated, ' "$log" | tail -n 1 |
        awk '{for(i=1;i<=NF;i++){if($(i+1)~/^passed/)p=$i; if($(i+1)~/^failed/)f=$i; if($(i+1)~/^skipped/)s=$i}} END{if(NR)print p+0, f+0, s+0}' ;;
    soak)
      awk '/^result +PASS/{print 1, 0, 0} /^result +FAIL/{print 0, 1, 0}' "$log" ;;
    watchdog)
      if grep -q '^watchdog suite skipped' "$log"; then echo 0 0 1; fi ;;
  esac
}

summary() {
  local status=$1 failing=$step_name
  end_step
  printf '\n==> times\n'
  printf '%s\n' "${step_times[@]}"
  printf '%6ss  total\n' "$(($(date +%s) - started_at))"
  printf '\n==> counts (passed, failed, skipped)\n'
  local name label tp=0 tf=0 ts=0 p f s
  for name in rust soak watchdog fuzz schemathesis pytest-client pytest-subsonic chromium; do
    case "$name" in
      rust) label="Rust tests (cargo test)" ;;
      soak) label="soak" ;;
      watchdog) label="of-watchdog suite" ;;
      fuzz) label="fuzz targets" ;;
      schemathesis) label="schemathesis test cases" ;;
      pytest-client) label="pytest: Python client" ;;
      pytest-subsonic) label="pytest: OpenSubsonic" ;;
      chromium) label="Chromium: web player" ;;
    esac
    read -r p f s < <(counts "$name"; echo)
    if [ -z "${p:-}" ]; then
      printf '  %-28s not run\n' "$label"
      continue
    fi
    printf '  %-28s %5s passed, %s failed, %s skipped\n' "$label" "$p" "$f" "$s"
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
  done
  if [ "${all_passed:-0}" = 1 ] && [ "$status" = 0 ]; then
    printf '\n==> all tests passed\n'
  else
    printf '\n==> FAILED (exit %s) in: %s\n' "$status" "${failing:-see above}"
  fi
  echo "total: $tp passed, $tf failed, $ts skipped"
}

cleanup() {
  local status=$?
  if [ -n "${tools_pid:-}" ]; then kill "$tools_pid" 2>/dev/null || true; fi
  if [ -n "${fuzz_build_pid:-}" ]; then kill -- "-$fuzz_build_pid" 2>/dev/null || kill "$fuzz_build_pid" 2>/dev/null || true; fi
  if [ -n "${ferret_dir:-}" ]; then bash scripts/ferretdb.sh stop "$ferret_dir" >/dev/null 2>&1 || true; fi
  if [ -n "${seaweed_dir:-}" ]; then bash scripts/seaweedfs.sh stop "$seaweed_dir" >/dev/null 2>&1 || true; fi
  summary "$status"
  rm -rf "$logs"
}
trap cleanup EXIT

# await_build PID_VARIABLE LOG WHAT: waits for a build started in the background (whose pid
# PID_VARIABLE holds, for the cleanup to stop it); on failure shows its log and stops.
await_build() {
  local -n build_pid=$1
  if ! wait "$build_pid"; then
    build_pid=""
    cat "$2" >&2
    echo "test.sh: building $3 failed (the log is above)" >&2
    exit 1
  fi
  build_pid=""
}

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
# libopus (Opus uploads) is built from the source bundled in the opusic-sys crate, with CMake.
need_apt cmake cmake
need_apt python3 python3
need_apt curl curl
# An independent ISO BMFF parser for the fMP4 tests (the other, mp4box.js 0.5.4 from npm, is
# installed by those tests into $LEGATO_TOOLS/mp4box-0.5.4 when node is there).
need_apt mediainfo mediainfo

# CI builds a fresh clone each time. Its Cargo target folders live in $LEGATO_TOOLS, so the
# dependencies (and the C of LAME, FDK AAC and SQLite) are compiled once per machine; the
# workspace's own crates are rebuilt on every run, since a fresh clone's files are newer than
# anything built before. Incremental compilation only adds work to such a build. A developer's
# checkout keeps ./target (two checkouts sharing one target folder would trust each other's
# builds of the same crate).
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LEGATO_TOOLS/ci-target}"
  export LEGATO_FUZZ_TARGET_DIR="${LEGATO_FUZZ_TARGET_DIR:-$LEGATO_TOOLS/ci-fuzz-target}"
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# FerretDB and SeaweedFS are built from the Go module proxy once (minutes on a fresh machine,
# mostly downloads), cached in $LEGATO_TOOLS: built beside the lints rather than after them.
step "FerretDB and SeaweedFS builds started in the background (cached in \$LEGATO_TOOLS)"
(bash scripts/ferretdb.sh install && bash scripts/seaweedfs.sh install) >"$logs/tools.log" 2>&1 &
tools_pid=$!

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# No module of any crate imports one that imports it back (floors, not circles).
python3 scripts/structure.py --check crates/*/src

step "waiting for the FerretDB and SeaweedFS builds"
await_build tools_pid "$logs/tools.log" "FerretDB or SeaweedFS"

if [ -f scripts/ferretdb.sh ]; then
  step "FerretDB (a MongoDB-protocol server) on loopback"
  ferret_dir=$(mktemp -d)
  ferret_port=$(bash scripts/ferretdb.sh free-port)
  export LEGATO_TEST_MONGODB_URI
  LEGATO_TEST_MONGODB_URI=$(bash scripts/ferretdb.sh start "$ferret_port" "$ferret_dir" | tail -n 1)
fi

step "SeaweedFS (an object store with an S3 gateway) on loopback"
seaweed_dir=$(mktemp -d)
export LEGATO_TEST_BLOBS LEGATO_TEST_BLOBS_KEYS="$seaweed_dir"
LEGATO_TEST_BLOBS="s3://legato-test?endpoint=$(bash scripts/seaweedfs.sh start "$seaweed_dir" legato-test | tail -n 1)"

step "Rust tests"
# Compiled first, with every core. Then, while they run (much of their time is spent waiting
# on servers, ffmpeg and timeouts, not on the CPU), the fuzz targets are built in the
# background on one core at a low priority, for the fuzz step below (which finishes that build
# with every core if it is not done by then).
logged rust-build cargo test --workspace --locked --no-run
# (Its own process group, so that a failing run stops the whole build.)
CARGO_BUILD_JOBS=1 LEGATO_FUZZ_BUILD_ONLY=1 setsid nice -n 10 bash scripts/fuzz.sh >"$logs/fuzz-build.log" 2>&1 &
fuzz_build_pid=$!
logged rust cargo test --workspace --locked

# `cargo test` has built the binary (for the tests that run it) and the examples: the
# client, browser and soak tests use those builds rather than building other variants.
export LEGATO_BIN="$target_dir/debug/legato"
# Fills a store with a large library through the store API (the 100,000-track page test).
export LEGATO_LIBRARY_BIN="$target_dir/debug/examples/library"
for built in "$LEGATO_BIN" "$LEGATO_LIBRARY_BIN"; do
  [ -x "$built" ] || { echo "test.sh: cargo test did not leave $built" >&2; exit 1; }
done

step "soak test, short form (30 s of mixed traffic; bench/soak.py --seconds 600 is the long one)"
logged soak python3 bench/soak.py --seconds "${LEGATO_SOAK_SECONDS:-30}" --bin "$LEGATO_BIN"

step "the functions behind the real of-watchdog, and faas-cli's build context"
logged watchdog python3 deploy/openfaas/test_watchdog.py

step "fuzzing, short run (scripts/fuzz.sh 3600 is the long one)"
if kill -0 "$fuzz_build_pid" 2>/dev/null; then
  # Still building on one core (a fresh machine compiles every dependency): stopped, and
  # finished here with every core; what it compiled is kept.
  kill -- "-$fuzz_build_pid" 2>/dev/null || kill "$fuzz_build_pid" 2>/dev/null || true
  wait "$fuzz_build_pid" 2>/dev/null || true
  fuzz_build_pid=""
  logged fuzz bash scripts/fuzz.sh "${LEGATO_FUZZ_SECONDS:-30}"
else
  await_build fuzz_build_pid "$logs/fuzz-build.log" "the fuzz targets"
  tail -n 3 "$logs/fuzz-build.log"
  logged fuzz env LEGATO_FUZZ_NO_BUILD=1 bash scripts/fuzz.sh "${LEGATO_FUZZ_SECONDS:-30}"
fi

step "API contract: schemathesis against the OpenAPI document"
logged schemathesis bash scripts/schemathesis.sh 100

if [ -x clients/python/run-tests.sh ]; then
  step "Python client tests"
  logged pytest-client bash clients/python/run-tests.sh
fi

if [ -x tests/subsonic/run-tests.sh ]; then
  step "OpenSubsonic (/rest) tests: py-opensonic and the spec's schema against legato serve"
  logged pytest-subsonic bash tests/subsonic/run-tests.sh
fi

if [ -x ui/run-tests.sh ]; then
  step "web player tests in Chromium"
  logged chromium bash ui/run-tests.sh
fi

end_step
all_passed=1

#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30) and prints, per target,
# the executions, the time and whether it crashed. Exits non-zero if any target crashed (the
# reproducer is then in fuzz/artifacts/<target>/), if a build fails, or if no nightly
# toolchain is available (cargo fuzz needs one for the sanitizer flags).
#
#   scripts/fuzz.sh                  # 30 s per target: the short run of scripts/test.sh
#   scripts/fuzz.sh 3600             # an hour per target: the long run (docs/fuzzing.md)
#   scripts/fuzz.sh 120 package      # some targets only
#
# Each run reads the committed seed corpus (fuzz/corpus/<target>, read-only) and writes what
# it discovers to a scratch directory, removed at the end unless LEGATO_FUZZ_KEEP=1, so the
# committed corpus stays small. Environment: LEGATO_FUZZ_TOOLCHAIN (default nightly),
# LEGATO_FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=2 -workers=2"), LEGATO_FUZZ_NO_BUILD=1
# (run the targets as last built), LEGATO_FUZZ_KEEP=1 (keep the scratch corpora and logs),
# LEGATO_FUZZ_TARGET_DIR (where they are built; default fuzz/target), LEGATO_FUZZ_BUILD_ONLY=1
# (build them and stop: scripts/test.sh builds them while the Rust tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds="${1:-30}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi

toolchain="${LEGATO_FUZZ_TOOLCHAIN:-nightly}"
if ! command -v rustup >/dev/null 2>&1 ||
  ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: FAILED: no '$toolchain' Rust toolchain; cargo fuzz needs nightly" >&2
  echo "         (install it with: rustup toolchain install nightly)" >&2
  exit 3
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The fuzz project is its own workspace with its own target dir, whatever CARGO_TARGET_DIR says.
fuzz_cargo=(cargo "+$toolchain" fuzz)
target_dir="${LEGATO_FUZZ_TARGET_DIR:-$root/fuzz/target}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz_cargo[@]}" list --fuzz-dir fuzz)
fi

if [ "${LEGATO_FUZZ_NO_BUILD:-0}" = 1 ]; then
  echo "==> LEGATO_FUZZ_NO_BUILD=1: running the fuzz targets built before"
else
  echo "==> building the fuzz targets (nightly, address sanitizer, debug assertions)"
  if ! "${fuzz_cargo[@]}" build --fuzz-dir fuzz --target-dir "$target_dir"; then
    echo "fuzz.sh: FAILED: the fuzz targets do not build" >&2
    exit 1
  fi
fi
if [ "${LEGATO_FUZZ_BUILD_ONLY:-0}" = 1 ]; then
  echo "==> LEGATO_FUZZ_BUILD_ONLY=1: the fuzz targets are built"
  exit 0
fi

# Longest input per target: a header is 4 bytes; the rest need room for a few frames and for
# bodies over the 4 KiB upload limit of the upload target.
max_len() {
  case "$1" in
    mpeg_header) echo 8 ;;
    *) echo 8192 ;;
  esac
}

scratch_root=$(mktemp -d "${TMPDIR:-/tmp}/legato-fuzz.XXXXXX")
cleanup() {
  if [ "${LEGATO_FUZZ_KEEP:-0}" = 1 ]; then
    echo "scratch corpora kept in $scratch_root"
  else
    rm -rf "$scratch_root"
  fi
}
trap cleanup EXIT

# Run the binaries just built rather than `cargo fuzz run`, which rebuilds first: a source
# edited meanwhile must not change (or break) the code under test half way through.
host=$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')
bin_dir="$target_dir/$host/release"
# What cargo fuzz sets too: Rust's global symbols trip ASan's ODR check.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

# Targets run side by side, one per core (LEGATO_FUZZ_PARALLEL, default nproc): each still
# gets its whole time on a core of its own, and the run takes a fraction of the wall time.
parallel="${LEGATO_FUZZ_PARALLEL:-$(nproc)}"
run_target() {
  local target=$1 scratch="$scratch_root/$1" log="$scratch_root/$1.log" start status=0
  mkdir -p "$scratch" "fuzz/corpus/$target" "fuzz/artifacts/$target"
  start=$(date +%s)
  # shellcheck disable=SC2086 # LEGATO_FUZZ_ARGS is a list of flags
  "$bin_dir/$target" "$scratch" "fuzz/corpus/$target" \
    -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -print_final_stats=1 ${LEGATO_FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
  echo "$status $(($(date +%s) - start))" >"$scratch_root/$target.result"
}

declare -a running=()
for target in "${targets[@]}"; do
  while [ "${#running[@]}" -ge "$parallel" ]; do
    wait -n || true
    still=()
    for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && still+=("$pid"); done
    running=("${still[@]}")
  done
  echo "==> fuzzing $target for ${seconds}s"
  run_target "$target" &
  running+=("$!")
done
wait

declare -a summary
failed=0
for target in "${targets[@]}"; do
  log="$scratch_root/$target.log"
  read -r status elapsed <"$scratch_root/$target.result"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$( (grep -oE 'cov: [0-9]+' "$log" || true) | tail -n 1 | cut -d' ' -f2)
  if [ "$status" = 0 ]; then
    result="ok"
  else
    failed=1
    artifact=$( (grep -oE 'Test unit written to [^ ]+' "$log" || true) | tail -n 1 | cut -d' ' -f5)
    result="CRASH (exit $status) ${artifact:-see the log above}"
    echo "---- $target: last lines of the libFuzzer log ----" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-14s %12s execs %6ss %8s exec/s  cov %6s  %s' \
    "$target" "${execs:-?}" "$elapsed" "${rate:-?}" "${cov:-?}" "$result")")
done

echo
echo "==> fuzz summary (${seconds}s per target, $parallel at a time, $(rustup run "$toolchain" rustc --version))"
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
  echo "fuzz.sh: FAILED: a target crashed; reproduce with"
  echo "  cargo +$toolchain fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>"
  echo "and minimise with"
  echo "  cargo +$toolchain fuzz tmin --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>"
  exit 1
fi

#!/usr/bin/env bash
# Runs the black-box OpenSubsonic (/rest) suite against the real server binary.
#   tests/subsonic/run-tests.sh [pytest args...]
# Uses the venv $LEGATO_TOOLS/subsonic-venv (default <repo>/.tools/subsonic-venv), created when
# missing, with py-opensonic (the independent client, imported as libopensonic), jsonschema,
# pytest, requests and Pillow. The server binary is $LEGATO_BIN, default
# <repo>/target/debug/legato (build it first); ffmpeg and ffprobe must be on the PATH. The
# OpenSubsonic spec is read from $OPENSUBSONIC_SPEC, default <repo>/../shared/opensubsonic.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${LEGATO_TOOLS:-$repo/.tools}/subsonic-venv"
py="$venv/bin/python"

if ! "$py" -I -m pip --version >/dev/null 2>&1; then
    # Missing, or half-made by an earlier failed attempt.
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv"; then
        rm -rf "$venv"
        echo "run-tests.sh: python3 cannot create a venv (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi

if ! "$py" -I -c 'import libopensonic, jsonschema, referencing, pytest, requests, PIL' >/dev/null 2>&1; then
    "$py" -m pip install --quiet --disable-pip-version-check \
        'py-opensonic>=10,<11' 'jsonschema>=4.18' 'referencing>=0.30' pytest requests pillow
fi

for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null 2>&1 || { echo "run-tests.sh: $tool is needed (apt-get install ffmpeg)" >&2; exit 1; }
done


# Test files or folders among the arguments choose what runs; without any, the whole suite.
has_path=0
for arg in "$@"; do
    if [ -e "${arg%%::*}" ]; then has_path=1; fi
done
if [ "$has_path" = 0 ]; then set -- "$@" "$here"; fi
exec "$py" -m pytest -q -p no:cacheprovider --rootdir "$here" "$@"

#!/usr/bin/env bash
# Runs the Python client's tests against the real server binary.
#   clients/python/run-tests.sh [pytest args...]
# Uses the venv at <repo>/.tools/venv (created when missing); installs the package, its
# dependencies and pytest only when missing or when the package's sources changed.
# The server binary is $LEGATO_BIN, default <repo>/target/debug/legato (build it first).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${LEGATO_TOOLS:-$repo/.tools}/venv"
py="$venv/bin/python"

if ! "$py" -I -m pip --version >/dev/null 2>&1; then
    # Missing, or half-made by an earlier failed attempt.
    rm -rf "$venv"
    mkdir -p "${LEGATO_TOOLS:-$repo/.tools}"
    if ! python3 -m venv "$venv"; then
        rm -rf "$venv"
        echo "run-tests.sh: python3 cannot create a venv (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi

pip_install() {
    "$py" -m pip install --quiet --disable-pip-version-check "$@"
}

# Fingerprint of what gets installed: reinstall when a source file changed.
stamp_file="$venv/.legato-client.stamp"
stamp="$(cd "$here" && find pyproject.toml README.md src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
    ! -path '*.egg-info*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"

if ! "$py" -I -c 'import pytest' >/dev/null 2>&1; then
    pip_install pytest
fi
if [ "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp" ] \
    || ! "$py" -I -c 'import legato, requests, requests_toolbelt' >/dev/null 2>&1; then
    # A non-editable install, as users get it; src/ layout keeps tests off the source tree.
    "$py" -m pip uninstall --quiet --yes legato-client >/dev/null 2>&1 || true
    pip_install "$here"
    # setuptools leaves its build directory next to the sources.
    rm -rf "$here/build" "$here"/src/*.egg-info
    echo "$stamp" >"$stamp_file"
fi

cd "$here"
exec "$py" -m pytest -q "$here/tests" "$@"

#!/usr/bin/env bash
# SeaweedFS, a distributed object store with an S3 gateway, for running the object-store
# tests (and Legato itself) locally: `weed mini` is master, volume, filer and S3 in one process.
#
#   scripts/seaweedfs.sh install              build weed into $LEGATO_TOOLS/bin once (cached)
#   scripts/seaweedfs.sh start <dir> <bucket> start it with its data in <dir> on free loopback
#                                             ports, wait until S3 answers, print its endpoint
#   scripts/seaweedfs.sh stop <dir>           stop the one started with that <dir>, and wait
#   scripts/seaweedfs.sh path                 print the binary's path (installing it if needed)
#
# The S3 gateway takes one identity, written to <dir>/s3.json: access key `legato`, secret
# in <dir>/secret_key (also <dir>/access_key), so presigned URLs are really checked.
# Environment: LEGATO_TOOLS (default <repo>/.tools) holds the built binary in bin/.
set -euo pipefail
# shellcheck source=servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${LEGATO_TOOLS:-$REPO/.tools}"
BIN_DIR="$TOOLS/bin"
WEED="$BIN_DIR/weed"
# A pseudo-version of the module: `go install …/weed@…` is refused (its go.mod has a replace
# directive), so the module is downloaded through the Go proxy and built in a copy.
VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
MODULE="github.com/seaweedfs/seaweedfs"

die() {
    echo "seaweedfs.sh: $*" >&2
    exit 1
}

works() {
    [ -x "$1" ] && "$1" version >/dev/null 2>&1
}

install() {
    if works "$WEED" && [ "$(cat "$WEED.version" 2>/dev/null)" = "$VERSION" ]; then
        return 0
    fi
    command -v go >/dev/null || die "Go is needed to build SeaweedFS (install golang)"
    mkdir -p "$BIN_DIR"
    echo "seaweedfs.sh: building SeaweedFS $VERSION (about 3 minutes, once)..." >&2
    local src work
    src="$(go mod download -json "$MODULE@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    [ -d "$src" ] || die "go mod download $MODULE@$VERSION failed"
    work="$(mktemp -d)"
    cp -r "$src/." "$work/"
    chmod -R u+w "$work"
    if ! (cd "$work" && GOFLAGS=-buildvcs=false go build -trimpath -o "$WEED.$$.tmp" ./weed); then
        rm -rf "$work" "$WEED.$$.tmp"
        die "go build of SeaweedFS failed"
    fi
    rm -rf "$work"
    mv "$WEED.$$.tmp" "$WEED"
    echo "$VERSION" >"$WEED.version"
    works "$WEED" || die "the built $WEED does not start"
}



start() {
    local dir="${1:-}" bucket="${2:-}"
    [ -n "$dir" ] && [ -n "$bucket" ] || die "usage: $0 start <dir> <bucket>"
    install
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/weed.pid" ] && alive "$(cat "$dir/weed.pid")"; then
        die "a SeaweedFS already runs with $dir (pid $(cat "$dir/weed.pid"))"
    fi
    local secret
    if [ -f "$dir/secret_key" ]; then
        secret="$(cat "$dir/secret_key")"
    else
        secret="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
        echo legato >"$dir/access_key"
        echo "$secret" >"$dir/secret_key"
    fi
    cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "legato",
  "credentials": [{"accessKey": "legato", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
    # Every port it would open, picked free (several may run at once); the S3 port is kept
    # across restarts of one <dir>, so a client configured once finds it again.
    local s3_port
    s3_port="$(cat "$dir/s3.port" 2>/dev/null || free_port)"
    echo "$s3_port" >"$dir/s3.port"
    local ports=()
    for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port \
        filer.port.grpc s3.port.grpc admin.port admin.port.grpc webdav.port debug.port; do
        ports+=("-$flag=$(free_port)")
    done
    setsid "$WEED" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -bucket="$bucket" -s3.port="$s3_port" -s3.config="$dir/s3.json" \
        -admin.port.legacy=0 -master.telemetry=false "${ports[@]}" \
        </dev/null >>"$dir/weed.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/weed.pid"
    local deadline=$((SECONDS + 90))
    # Up once the S3 gateway answers a request for the bucket (403 without credentials).
    until python3 - "$s3_port" "$bucket" <<'PY' 2>/dev/null; do
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/{sys.argv[2]}/", timeout=1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code in (403, 404) else 1)
except Exception:
    sys.exit(1)
PY
        if ! alive "$pid"; then
            tail -n 20 "$dir/weed.log" >&2 || true
            rm -f "$dir/weed.pid"
            die "SeaweedFS exited at start-up (log: $dir/weed.log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill "$pid" 2>/dev/null || true
            rm -f "$dir/weed.pid"
            die "SeaweedFS's S3 gateway did not answer on port $s3_port within 90 s (log: $dir/weed.log)"
        fi
        sleep 0.2
    done
    echo "http://127.0.0.1:$s3_port"
}

stop() {
    local dir="${1:-}"
    [ -n "$dir" ] || die "usage: $0 stop <dir>"
    stop_pidfile "$dir/weed.pid" 15
}

case "${1:-}" in
install) install ;;
path)
    install
    echo "$WEED"
    ;;
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 install | path | start <dir> <bucket> | stop <dir>" ;;
esac

#!/usr/bin/env bash
# Checks the OpenAPI document against the running server: schemathesis sends generated
# requests to every operation; no 5xx and every response matching the schema.
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]   (LEGATO_BIN: the binary, default target/debug/legato)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="${LEGATO_BIN:-$root/target/debug/legato}"
examples="${1:-100}"
venv="${LEGATO_TOOLS:-$root/.tools}/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/schemathesis" --version >/dev/null 2>&1 || "$venv/bin/pip" install -q 'schemathesis>=4,<5'
[ -x "$bin" ] || { echo "schemathesis.sh: $bin is missing: cargo build -p legato" >&2; exit 1; }

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --data "$data" 2>"$data/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# A few real tracks, so that reads of existing ids are exercised too.
ffmpeg -hide_banner -loglevel error -f lavfi -i sine=frequency=440:duration=4 -c:a libmp3lame -b:a 64k "$data/seed.mp3"
for i in 1 2 3; do
  curl -sf -o /dev/null -H 'content-type: audio/mpeg' --data-binary "@$data/seed.mp3" \
    "http://127.0.0.1:$port/function/crud?name=seed$i&author=schemathesis"
done

"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --max-examples "$examples" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,use_after_free,ensure_resource_availability \
  --generation-database none \
  --no-color
if grep -q " ERROR \| panicked" "$data/server.log"; then
  echo "schemathesis.sh: the server logged errors:" >&2
  grep " ERROR \| panicked" "$data/server.log" | head -20 >&2
  exit 1
fi

#!/usr/bin/env bash
# Legato's own benchmark, each figure side by side with its anchor in the same run:
#   1. ingest of a 4-minute 128 kbps MP3 through the HTTP API, passthrough only
#        vs `ffmpeg -c:a copy -f segment -segment_format mpegts` (and the seed's re-encode)
#  1b. upload -> 201 (playable) at the default settings, a 4-minute and a 62-minute MP3,
#        vs ffmpeg's copy-mode HLS segmenting of the same file
#   2. segment GETs under load (wrk, 64 connections) from `legato serve`
#        vs nginx serving the same segments as static files
#   3. peak server memory while ingesting a 62-minute MP3 (about 60 MB)
#   4. cold start and idle memory vs Flask + waitress, direct and behind of-watchdog (OF_WATCHDOG)
# Usage: bash bench/run.sh   (installs ffmpeg, nginx-light and wrk from Debian when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/bench/out"
rm -rf "$out" && mkdir -p "$out"
runs=${BENCH_RUNS:-10}
duration=${BENCH_SECONDS:-10}

for tool in ffmpeg:ffmpeg nginx:nginx-light wrk:wrk curl:curl; do
  command -v "${tool%%:*}" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }
done
cargo build --release -p legato --locked -q
bin="$root/target/release/legato"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# copy_of SRC DST N: SRC with an ID3v1 tag of its own at the end, another file of the same song
# (the server answers a file it has already with that track, without storing anything).
copy_of() {
  python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); t=bytearray(128); t[:3]=b"TAG"; c=("copy "+sys.argv[3]).encode(); t[97:97+len(c)]=c; t[127]=255; open(sys.argv[2],"wb").write(d+bytes(t))' "$1" "$2" "$3"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
ffmpeg -hide_banner -loglevel error -f lavfi -i "anoisesrc=d=240:c=pink:a=0.2:r=44100" -ac 2 -c:a libmp3lame -b:a 128k "$out/song.mp3"
ffmpeg -hide_banner -loglevel error -f lavfi -i "anoisesrc=d=3720:c=pink:a=0.2:r=44100" -ac 2 -c:a libmp3lame -b:a 128k "$out/hour.mp3"
echo "inputs: 4-minute song $(stat -c %s "$out/song.mp3") bytes, 62-minute file $(stat -c %s "$out/hour.mp3") bytes"

port=$(free_port)
# Sections 1-3 measure the passthrough path (issue 2's figures): no ladder.
"$bin" serve --listen "127.0.0.1:$port" --data "$out/data" --ladder none --aac-ladder none --lossless false 2>"$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true; [ -n "${nginx_pid:-}" ] && kill $nginx_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

echo
echo "== 1. ingest of a 4-minute 128 kbps MP3 (median of $runs runs)"
for i in $(seq "$runs"); do
  copy_of "$out/song.mp3" "$out/copy.mp3" "$i"
  curl -sf -o "$out/track.json" -w '%{time_total}\n' -H 'content-type: audio/mpeg' \
    --data-binary "@$out/copy.mp3" "http://127.0.0.1:$port/function/crud?name=bench&author=bench"
done | median > "$out/legato-ingest"
for _ in $(seq "$runs"); do
  rm -rf "$out/ff" && mkdir -p "$out/ff"
  start=$(now)
  (cd "$out/ff" && ffmpeg -hide_banner -loglevel error -i ../song.mp3 -c:a copy -map 0:a -f segment \
     -segment_time 10 -segment_list out.m3u8 -segment_format mpegts out%03d.ts)
  echo "$(now) - $start" | bc -l
done | median > "$out/ffmpeg-copy"
rm -rf "$out/seed" && mkdir -p "$out/seed"
start=$(now)
(cd "$out/seed" && ffmpeg -hide_banner -loglevel error -i ../song.mp3 -c:a libmp3lame -b:a 128k -map 0:0 \
   -f segment -segment_time 10 -segment_list outputlist.m3u8 -segment_format mpegts output%03d.ts)
seed_s=$(echo "$(now) - $start" | bc -l)
legato_ms=$(echo "$(cat "$out/legato-ingest") * 1000" | bc -l)
ffmpeg_ms=$(echo "$(cat "$out/ffmpeg-copy") * 1000" | bc -l)
printf 'legato POST /function/crud (HTTP, store included): %8.1f ms\n' "$legato_ms"
printf 'ffmpeg -c:a copy -f segment (anchor, files only):  %8.1f ms   (legato is %.1fx faster)\n' "$ffmpeg_ms" "$(echo "$ffmpeg_ms / $legato_ms" | bc -l)"
printf "seed's ffmpeg re-encode (one run):                 %8.1f ms\n" "$(echo "$seed_s * 1000" | bc -l)"
frames=$(ffmpeg -hide_banner -loglevel error -i "$out/song.mp3" -c copy -f mp3 -id3v2_version 0 -write_xing 0 - | wc -c)
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$out/track.json")
segments=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["segments"])' "$out/track.json")
mkdir -p "$out/www/$id"
ts_total=0
for i in $(seq 0 $((segments - 1))); do
  name=$(printf 'seg%03d.ts' "$i")
  curl -sf -o "$out/www/$id/$name" "http://127.0.0.1:$port/function/streaming/$id/$name"
  ts_total=$((ts_total + $(stat -c %s "$out/www/$id/$name")))
done
seed_ts=$(cat "$out"/seed/*.ts | wc -c)
printf 'container overhead over the MP3 frames: legato %+.1f %%, seed ffmpeg %+.1f %%\n' \
  "$(echo "($ts_total - $frames) * 100 / $frames" | bc -l)" "$(echo "($seed_ts - $frames) * 100 / $frames" | bc -l)"

echo
echo "== 1b. upload -> 201 (playable) at the default settings vs ffmpeg copy-mode HLS segmenting"
port_d=$(free_port)
"$bin" serve --listen "127.0.0.1:$port_d" --data "$out/data-default" 2>>"$out/server.log" &
server_d=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port_d/healthz" >/dev/null && break; sleep 0.1; done
for input in song hour; do
  n=$([ "$input" = song ] && echo "$runs" || echo "${BENCH_LONG_RUNS:-3}")
  for i in $(seq "$n"); do
    copy_of "$out/$input.mp3" "$out/copy.mp3" "d$i"
    curl -sf -o "$out/default.json" -w '%{http_code} %{time_total}\n' -H 'content-type: audio/mpeg' \
      --data-binary "@$out/copy.mp3" "http://127.0.0.1:$port_d/function/crud?name=default&author=bench" \
      >> "$out/default-$input.codes"
  done
  awk '{print $2}' "$out/default-$input.codes" | median > "$out/default-$input"
  for _ in $(seq "$n"); do
    rm -rf "$out/ffh" && mkdir -p "$out/ffh"
    start=$(now)
    (cd "$out/ffh" && ffmpeg -hide_banner -loglevel error -i "../$input.mp3" -c:a copy -map 0:a -f hls \
       -hls_time 10 -hls_playlist_type vod -hls_segment_filename 'seg%03d.ts' index.m3u8)
    echo "$(now) - $start" | bc -l
  done | median > "$out/ffmpeg-hls-$input"
  l=$(echo "$(cat "$out/default-$input") * 1000" | bc -l); f=$(echo "$(cat "$out/ffmpeg-hls-$input") * 1000" | bc -l)
  printf '%-6s legato upload -> %s %8.1f ms; ffmpeg -c copy -f hls %8.1f ms (legato is %.1fx faster; goal >= 10x)\n' \
    "$input" "$(awk '{print $1}' "$out/default-$input.codes" | sort -u | tr '\n' ' ')" "$l" "$f" "$(echo "$f / $l" | bc -l)"
done
echo "   (the 201 carries the bit-exact rendition; the AAC and MP3-ladder renditions follow in a job)"
kill $server_d; wait $server_d 2>/dev/null || true

echo
echo "== 2. segment GETs, wrk -t2 -c64 -d${duration}s over the $segments segments of one track"
cat > "$out/segments.lua" <<LUA
local n = $segments
local i = 0
request = function()
  i = (i + 1) % n
  return wrk.format("GET", string.format("%s/seg%03d.ts", prefix, i))
end
LUA
nginx_port=$(free_port)
cat > "$out/nginx.conf" <<NGINX
worker_processes auto;
pid $out/nginx.pid;
error_log $out/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { video/mp2t ts; application/vnd.apple.mpegurl m3u8; }
  server {
    listen 127.0.0.1:$nginx_port;
    location /function/streaming/ { alias $out/www/; }
  }
}
NGINX
nginx -c "$out/nginx.conf" -p "$out" &
nginx_pid=$!
sleep 0.5
run_wrk() { # url-prefix label
  sed "1i prefix = \"$1\"" "$out/segments.lua" > "$out/wrk-$2.lua"
  wrk -t2 -c64 -d"${duration}s" --latency -s "$out/wrk-$2.lua" "$1/seg000.ts" > "$out/wrk-$2.txt"
  printf '%-8s %10s req/s  %10s/s  p50 %8s  p99 %8s\n' "$2" \
    "$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$2.txt")" "$(awk '/Transfer\/sec/ {print $2}' "$out/wrk-$2.txt")" \
    "$(awk '$1=="50%" {print $2}' "$out/wrk-$2.txt")" "$(awk '$1=="99%" {print $2}' "$out/wrk-$2.txt")"
}
# Warm both (legato's segment cache, nginx's page cache) before measuring.
wrk -t1 -c4 -d1s -s <(sed "1i prefix = \"http://127.0.0.1:$port/function/streaming/$id\"" "$out/segments.lua") "http://127.0.0.1:$port/" >/dev/null
run_wrk "http://127.0.0.1:$port/function/streaming/$id" legato
run_wrk "http://127.0.0.1:$nginx_port/function/streaming/$id" nginx
kill $nginx_pid 2>/dev/null || true; nginx_pid=

echo
echo "== 3. peak memory while ingesting a 62-minute MP3"
kill $server; wait $server 2>/dev/null || true
port=$(free_port)
"$bin" serve --listen "127.0.0.1:$port" --data "$out/data-hour" --ladder none --aac-ladder none --lossless false 2>>"$out/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
idle_kb=$(awk '/VmRSS/ {print $2}' /proc/$server/status)
hour_s=$(curl -sf -o /dev/null -w '%{time_total}' -H 'content-type: audio/mpeg' --data-binary "@$out/hour.mp3" \
  "http://127.0.0.1:$port/function/crud?name=hour&author=bench")
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
printf 'idle RSS %.1f MB; 62-minute ingest took %.2f s; peak RSS %.1f MB (target < 150 MB)\n' \
  "$(echo "$idle_kb/1024" | bc -l)" "$hour_s" "$(echo "$peak_kb/1024" | bc -l)"

echo
echo "== 4. cold start and idle memory of the streaming function vs the seed's Flask + waitress"
echo "   (directly, and behind of-watchdog when OF_WATCHDOG names a hand-built binary and we are root)"
venv="$root/.tools/bench-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import flask, waitress' 2>/dev/null || "$venv/bin/pip" install -q 'flask>=3,<4' waitress
kill $server 2>/dev/null; wait $server 2>/dev/null || true
"$venv/bin/python" bench/coldstart.py "$bin" "$out/data/legato.sqlite3" "$id" "${BENCH_COLDSTART_RUNS:-10}"

echo
echo "== 5. WAV to the 3-rung ladder (64k, 128k, 192k MP3), median of ${BENCH_LADDER_RUNS:-3} runs"
ffmpeg -hide_banner -loglevel error -f lavfi -i "anoisesrc=d=240:c=pink:a=0.2:r=44100" -ac 2 -c:a pcm_s16le "$out/song.wav"
cargo build --release -p legato-transcode --example ladder_bench --locked -q
ladder_runs=${BENCH_LADDER_RUNS:-3}
for _ in $(seq "$ladder_runs"); do
  start=$(now); "$root/target/release/examples/ladder_bench" "$out/song.wav" >/dev/null; echo "$(now) - $start" | bc -l
done | median > "$out/legato-ladder"
for _ in $(seq "$ladder_runs"); do
  rm -rf "$out/ffl" && mkdir -p "$out/ffl"
  start=$(now)
  ffmpeg -hide_banner -loglevel error -i "$out/song.wav" -map 0 -c:a libmp3lame -b:a 64k "$out/ffl/a.mp3" \
    -map 0 -c:a libmp3lame -b:a 128k "$out/ffl/b.mp3" -map 0 -c:a libmp3lame -b:a 192k "$out/ffl/c.mp3"
  echo "$(now) - $start" | bc -l
done | median > "$out/ffmpeg-ladder"
port=$(free_port)
"$bin" serve --listen "127.0.0.1:$port" --data "$out/data-ladder" --sync-ingest-seconds 600 2>>"$out/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq "$ladder_runs"); do
  curl -sf -o /dev/null -w '%{time_total}\n' -H 'content-type: audio/wav' --data-binary "@$out/song.wav" \
    "http://127.0.0.1:$port/function/crud?name=ladder&author=bench"
done | median > "$out/legato-ladder-http"
mp3_ladder=$(curl -sf -o /dev/null -w '%{time_total}' -H 'content-type: audio/mpeg' --data-binary "@$out/song.mp3" \
    "http://127.0.0.1:$port/function/crud?name=mp3-ladder&author=bench")
kill $server; wait $server 2>/dev/null || true
l=$(cat "$out/legato-ladder"); f=$(cat "$out/ffmpeg-ladder"); h=$(cat "$out/legato-ladder-http")
printf 'legato-transcode (decode once, rungs in parallel): %7.2f s   (%.2fx of ffmpeg; target <= 0.7x)\n' "$l" "$(echo "$l / $f" | bc -l)"
printf 'ffmpeg, one decode, three libmp3lame outputs:     %7.2f s\n' "$f"
printf 'legato POST of the WAV (ladder + package + store): %7.2f s\n' "$h"
printf 'legato POST of the 128k MP3 with the default ladder (original kept, 64k encoded): %.2f s\n' "$mp3_ladder"

echo
echo "== 6. store backends: segment reads and inserts, MongoDB protocol (FerretDB) vs SQLite, same data"
bash scripts/ferretdb.sh install >/dev/null
ferret_dir=$(mktemp -d)
ferret_port=$(bash scripts/ferretdb.sh free-port)
ferret_uri=$(bash scripts/ferretdb.sh start "$ferret_port" "$ferret_dir" | tail -n 1)
cargo run --release -q --locked -p legato-store-mongo --example bench -- "$ferret_uri" 20 10 2000 || true
bash scripts/ferretdb.sh stop "$ferret_dir" >/dev/null

#!/usr/bin/env bash
# The fMP4 rungs, each figure beside its anchor in the same run:
#   1. the AAC-LC ladder (64/128/256 kbit/s: one decode, libfdk-aac on one thread per rung)
#        vs ffmpeg's native `aac` encoder making the same three rungs from one decode
#        (target: at most 0.7x ffmpeg's wall time on 2 cores)
#   2. fMP4 container overhead (init + 10 s media segments) over the raw AAC access units
#      and FLAC frames (target: under 1.5 %)
# Usage: bash bench/fmp4.sh [SECONDS_OF_AUDIO] [RUNS]   (defaults: 240 s, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
out="bench/out" && mkdir -p "$out"
seconds=${1:-240}
runs=${2:-3}
command -v ffmpeg >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }
cargo build --release -p legato-transcode --example fmp4_bench --locked -q
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
# Music-like input: pink noise under two tones, stereo 16-bit 44.1 kHz.
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "anoisesrc=d=$seconds:c=pink:a=0.15:r=44100" \
  -f lavfi -i "aevalsrc=0.3*sin(2*PI*440*t)|0.3*sin(2*PI*554*t):s=44100:d=$seconds" \
  -filter_complex "[0][1]amerge=inputs=2,pan=stereo|c0=c0+c2|c1=c1+c3" -c:a pcm_s16le "$out/fmp4-source.wav"
target/release/examples/fmp4_bench "$out/fmp4-source.wav" "$runs"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

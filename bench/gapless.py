#!/usr/bin/env python3
"""Gapless playback across the renditions: two consecutive album tracks, cut from one source
at a sample, uploaded to a real `legato serve`, each rendition decoded from its HTTP playlist
by ffmpeg and the two joined. At the joint, a gapless rendition neither drops nor repeats
audio: the error is (where track B's first source sample lands in the joined stream) minus
(where it should land, given where A's content landed). Target: at most one sample.

    cargo build -p legato     # or --release
    python3 bench/gapless.py [--bin target/debug/legato] [--seconds 20]

Two figures for the fMP4 renditions: as ffmpeg 5.1 decodes them (it ignores edit lists in
fragmented MP4, skips the AAC priming from the iTunSMPB comment, keeps the last frame's
padding), and as a player honouring the edit list presents them (each track cut to the
length its playlist declares, which is the edit list's). The MP3 renditions (MPEG-TS, no
gapless signalling) are the anchor. Standard library and ffmpeg only.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library import REPO, free_port  # noqa: E402

RATE = 44_100


def ffmpeg(*args: str) -> bytes:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                          check=True, stdout=subprocess.PIPE).stdout


def mono(path_or_url: str) -> array.array:
    """Decoded samples (mono, 44.1 kHz, s16) of a file or playlist URL."""
    pcm = array.array("h")
    pcm.frombytes(ffmpeg("-i", path_or_url, "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"))
    return pcm


def lag(decoded: array.array, source: array.array, at: int, search: int, window: int = 2048) -> int:
    """Offset d maximising the correlation of decoded[at+d:] with source[at:] over `window`."""
    ref = source[at:at + window]
    best, best_d = None, 0
    for d in range(-min(search, at), search + 1):
        seg = decoded[at + d:at + d + window]
        if len(seg) < len(ref):
            continue
        score = sum(a * b for a, b in zip(seg, ref))
        if best is None or score > best:
            best, best_d = score, d
    return best_d


def declared_samples(playlist_url: str) -> int:
    text = urllib.request.urlopen(playlist_url).read().decode()
    seconds = sum(float(line[8:].split(",")[0]) for line in text.splitlines() if line.startswith("#EXTINF:"))
    return round(seconds * RATE)


def upload(base: str, path: Path, name: str) -> dict:
    req = urllib.request.Request(f"{base}/function/crud?name={name}&author=Gapless",
                                 data=path.read_bytes(), headers={"Content-Type": "audio/wav"}, method="POST")
    track = json.load(urllib.request.urlopen(req))
    deadline = time.time() + 300
    while track["status"] != "ready":
        if track["status"] == "failed" or time.time() > deadline:
            raise SystemExit(f"{name}: {track}")
        time.sleep(0.5)
        track = json.load(urllib.request.urlopen(f"{base}/function/crud/{track['id']}"))
    return track


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(REPO / "target" / "debug" / "legato"))
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="legato-gapless-"))
    # Noise under a tone: correlation finds one sharp peak (a pure tone would be periodic).
    source_wav = work / "album.wav"
    ffmpeg("-f", "lavfi", "-i", f"anoisesrc=d={args.seconds}:c=pink:a=0.2:r={RATE}:s=7",
           "-f", "lavfi", "-i", f"sine=f=330:r={RATE}:d={args.seconds}",
           "-filter_complex", "[0][1]amix=inputs=2,pan=stereo|c0=c0|c1=c0", "-c:a", "pcm_s16le", "-y", str(source_wav))
    cut = int(RATE * args.seconds * 0.517)  # not on any frame or segment boundary
    a_wav, b_wav = work / "a.wav", work / "b.wav"
    ffmpeg("-i", str(source_wav), "-af", f"atrim=end_sample={cut}", "-c:a", "pcm_s16le", "-y", str(a_wav))
    ffmpeg("-i", str(source_wav), "-af", f"atrim=start_sample={cut}", "-c:a", "pcm_s16le", "-y", str(b_wav))
    source = mono(str(source_wav))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--data", str(work / "data")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        track_a, track_b = upload(base, a_wav, "A"), upload(base, b_wav, "B")
        print(f"source {len(source)} samples at {RATE} Hz, cut after sample {cut}")
        print(f"{'rendition':<12} {'A decoded':>10} {'B decoded':>10} {'joint error (ffmpeg)':>22} {'joint error (edit list)':>24}")
        results = {}
        for variant in track_a["variants"]:
            name = variant["name"]
            url_a = base + variant["playlist"]
            url_b = base + next(v for v in track_b["variants"] if v["name"] == name)["playlist"]
            dec_a, dec_b = mono(url_a), mono(url_b)
            lag_a = lag(dec_a, source, RATE // 2, 3000)
            lag_b = lag(dec_b, source[cut:], RATE // 2, 3000)
            # Where B's first sample lands in A+B, against where it belongs.
            as_decoded = len(dec_a) + lag_b - (cut + lag_a)
            row = f"{name:<12} {len(dec_a):>10} {len(dec_b):>10} {as_decoded:>+22}"
            if variant["container"] == "fmp4":
                trimmed = min(len(dec_a), declared_samples(url_a))
                with_edit_list = trimmed + lag_b - (cut + lag_a)
                row += f" {with_edit_list:>+24}"
                results[name] = (as_decoded, with_edit_list)
            else:
                row += f" {'(no edit list)':>24}"
                results[name] = (as_decoded, None)
            print(row)
        flac = results.get("flac")
        if flac is not None:
            pcm = lambda url: ffmpeg("-i", url, "-f", "s16le", "-")  # noqa: E731
            exact = pcm(base + next(v for v in track_a["variants"] if v["name"] == "flac")["playlist"]) == pcm(str(a_wav))
            print(f"FLAC rung of A decodes to A's PCM exactly: {exact}")
        gapless = [n for n, (d, e) in results.items() if abs(e if e is not None else d) <= 1]
        print(f"within one sample at the joint: {', '.join(gapless) or 'none'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    os.environ.setdefault("LEGATO_LOG", "warn")
    main()

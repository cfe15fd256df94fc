#!/usr/bin/env python3
"""Playable first, side by side: uploads at the default settings to two `legato serve` builds
(this one and an older one, e.g. before the follow-up jobs) and ffmpeg's copy-mode HLS
segmenting of the same MP3s, in one run.

    cargo build --release -p legato
    python3 bench/ingest.py --bin target/release/legato --old-bin /tmp/legato-old [--runs 5]

For each build: upload of a 4-minute and a 62-minute 128 kbit/s MP3 (each run a distinct file:
the same file again would be answered with its existing track) until the answer (201 playable,
or 202) and until every rendition is published (no job left); a 4-minute WAV the same way; and
the first Subsonic `stream` request of a 10-minute MP3 (all its bytes). Anchor:
`ffmpeg -c copy -f hls` of the same MP3s. Medians; the machine's load before and after.
Standard library only (and ffmpeg).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library import REPO, free_port  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_inputs(work: Path) -> dict:
    noise = "anoisesrc=d=%d:c=pink:a=0.2:r=44100"
    files = {
        "mp3-4min": (work / "song.mp3", ["-f", "lavfi", "-i", noise % 240, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"]),
        "mp3-62min": (work / "long.mp3", ["-f", "lavfi", "-i", noise % 3720, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"]),
        "mp3-10min": (work / "ten.mp3", ["-f", "lavfi", "-i", noise % 600, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"]),
        "wav-4min": (work / "song.wav", ["-f", "lavfi", "-i", noise % 240, "-ac", "2", "-c:a", "pcm_s16le"]),
    }
    for path, args in files.values():
        if not path.exists():
            ffmpeg(*args, str(path))
    return {name: path for name, (path, _) in files.items()}


def copy_of(path: Path, n: str) -> bytes:
    """The file with bytes of its own at its end (an ID3v1 tag for an MP3, a RIFF pad chunk
    for a WAV): another file of the same song."""
    data = path.read_bytes()
    if path.suffix == ".mp3":
        tag = bytearray(128)
        tag[:3] = b"TAG"
        comment = ("copy " + n).encode()[:30]
        tag[97:97 + len(comment)] = comment
        tag[127] = 255
        return data + bytes(tag)
    # WAV: one more sample frame of silence, with the RIFF and data sizes grown to match.
    marker = data.find(b"data")
    size = int.from_bytes(data[marker + 4:marker + 8], "little")
    grown = bytearray(data)
    grown[4:8] = (int.from_bytes(data[4:8], "little") + 4 * (1 + int(n[1:] or 0))).to_bytes(4, "little")
    grown[marker + 4:marker + 8] = (size + 4 * (1 + int(n[1:] or 0))).to_bytes(4, "little")
    return bytes(grown) + b"\0" * (4 * (1 + int(n[1:] or 0)))


class Server:
    def __init__(self, binary: str, work: Path, label: str):
        self.data = work / ("data-" + label)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
        pw = work / "password"
        pw.write_text(PASSWORD + "\n")
        subprocess.run([binary, "user", "add", USER, "--password-file", str(pw), "--data", str(self.data)],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log = open(work / ("server-" + label + ".log"), "w")
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data", str(self.data)],
                                     env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def get(self, path: str):
        return self.request("GET", path)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def upload(server: Server, body: bytes, content_type: str) -> tuple:
    """(status, seconds to the answer, seconds until no job is left, track JSON)."""
    t0 = time.perf_counter()
    status, data = server.request("POST", "/function/crud?name=bench&author=bench", body, {"Content-Type": content_type})
    answered = time.perf_counter() - t0
    if status not in (201, 202):
        raise RuntimeError("upload answered %d: %s" % (status, data[:300]))
    track = json.loads(data)
    while True:
        s, data = server.get("/function/crud/%s" % track["id"])
        now = json.loads(data)
        if now.get("status") == "failed" or (now.get("job") or {}).get("state") == "failed":
            raise RuntimeError("processing failed: %s" % data[:500])
        if now.get("status") == "ready" and "job" not in now:
            return status, answered, time.perf_counter() - t0, now
        time.sleep(0.05)


def stream_first(server: Server, track_id: str) -> float:
    salt = "s4ltsalt"
    q = urllib.parse.urlencode({"u": USER, "s": salt, "t": hashlib.md5((PASSWORD + salt).encode()).hexdigest(),
                                "v": "1.16.1", "c": "bench", "id": track_id, "maxBitRate": "0"})
    t0 = time.perf_counter()
    status, data = server.get("/rest/stream?" + q)
    if status != 200 or len(data) < 1000:
        raise RuntimeError("stream answered %d (%d bytes)" % (status, len(data)))
    return time.perf_counter() - t0


def ffmpeg_hls(path: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-c:a", "copy", "-map", "0:a",
                    "-f", "hls", "-hls_time", "10", "-hls_playlist_type", "vod",
                    "-hls_segment_filename", str(out / "seg%03d.ts"), str(out / "index.m3u8")], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target/release/legato"))
    ap.add_argument("--old-bin", help="an older build to compare with, side by side")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--long-runs", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="legato-ingest-bench-"))
    inputs = make_inputs(Path(tempfile.gettempdir()))
    print("machine: %d cores, load %s" % (os.cpu_count(), open("/proc/loadavg").read().split()[:3]))
    builds = [("new", args.bin)] + ([("old", args.old_bin)] if args.old_bin else [])
    rows = []
    anchor = {name: statistics.median(ffmpeg_hls(inputs[name], work / "ff") for _ in range(args.runs if name == "mp3-4min" else args.long_runs))
              for name in ("mp3-4min", "mp3-62min")}
    for label, binary in builds:
        server = Server(binary, work, label)
        try:
            for name, content_type in (("mp3-4min", "audio/mpeg"), ("mp3-62min", "audio/mpeg"), ("wav-4min", "audio/wav")):
                runs = args.runs if name.endswith("4min") else args.long_runs
                results = [upload(server, copy_of(inputs[name], "%s%d" % (label[0], i)), content_type) for i in range(runs)]
                statuses = sorted({r[0] for r in results})
                answer = statistics.median(r[1] for r in results)
                whole = statistics.median(r[2] for r in results)
                variants = len(results[-1][3].get("variants") or [])
                rows.append((label, name, statuses, answer, whole, variants))
                print("%s %s: %s, answered in %.1f ms, every rendition in %.1f ms, %d variants"
                      % (label, name, statuses, answer * 1000, whole * 1000, variants), flush=True)
            status, _, _, ten = upload(server, copy_of(inputs["mp3-10min"], label), "audio/mpeg")
            first = stream_first(server, ten["id"])
            second = stream_first(server, ten["id"])
            rows.append((label, "subsonic stream, 10-min MP3", [status], first, second, None))
        finally:
            server.stop()
    print()
    print("%-4s %-28s %-10s %14s %16s %s" % ("", "upload", "answer", "to the answer", "every rendition", "variants"))
    for label, name, statuses, answer, whole, variants in rows:
        if variants is None:
            print("%-4s %-28s %-10s %12.1f ms %14.1f ms   (first request, then a second one)" % (label, name, statuses, answer * 1000, whole * 1000))
        else:
            print("%-4s %-28s %-10s %12.1f ms %14.1f ms %s" % (label, name, statuses, answer * 1000, whole * 1000, variants))
    for name, seconds in anchor.items():
        print("ffmpeg -c copy -f hls of %-11s %9.1f ms" % (name, seconds * 1000), end="")
        for label, n, _, answer, _, _ in rows:
            if n == name:
                print("   %s: %.1fx faster to playable" % (label, seconds / answer), end="")
        print()
    print("load after: %s" % open("/proc/loadavg").read().split()[:3])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

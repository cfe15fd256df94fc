#!/usr/bin/env python3
"""Upload-to-202 latency: how long a client waits for `Prefer: respond-async` uploads to be
accepted, for one or more `legato` binaries side by side in one run.

Since "accepted means kept", the 202 is answered only once the upload is stored durably in the
store with its job (before, it was answered once the upload was spooled and probed, and kept
only in the process's memory). This measures what that costs the client: for each binary, a
fresh `legato serve` over SQLite, then each file uploaded `--runs` times (the server idle in
between: each upload is waited for until it is processed), timing from the first byte sent to
the status line read.

    python3 bench/accept_latency.py --bin target/release/legato --bin /tmp/old/legato

Needs ffmpeg; standard library only. Files are made once and cached (see bench/abuse.py).
"""

import argparse
import http.client
import json
import pathlib
import socket
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from abuse import Server, tone  # noqa: E402

FILES = [
    ("4-min MP3 (3.8 MB)", 240, "mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], "audio/mpeg"),
    ("4-min WAV (42 MB)", 240, "wav", ["-c:a", "pcm_s16le"], "audio/wav"),
    ("20-min WAV (212 MB)", 1200, "wav", ["-c:a", "pcm_s16le"], "audio/wav"),
]


def accept(server, path, content_type):
    """Seconds from the first byte sent to the status line; the track's id."""
    size = path.stat().st_size
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=600)
    head = (
        "POST /function/crud?name=latency HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: {content_type}\r\nPrefer: respond-async\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    started = time.perf_counter()
    sock.sendall(head.encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sock.sendall(chunk)
    answer = sock.recv(65536)
    elapsed = time.perf_counter() - started
    while data := sock.recv(65536):
        answer += data
    sock.close()
    status = int(answer.split(b" ", 2)[1])
    body = answer.split(b"\r\n\r\n", 1)[1]
    if b"\r\nTransfer-Encoding: chunked" in answer.split(b"\r\n\r\n", 1)[0]:
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, elapsed, json.loads(body).get("id")


def wait_processed(server, track_id):
    deadline = time.time() + 900
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        c.request("GET", f"/function/crud/{track_id}")
        r = c.getresponse()
        track = json.loads(r.read())
        c.close()
        if track.get("status") != "processing":
            return track.get("status")
        time.sleep(0.5)
    sys.exit("a track was not processed in 15 minutes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", action="append", required=True, help="a legato binary")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    files = [(label, tone(seconds, ext, codec), ctype) for label, seconds, ext, codec, ctype in FILES]
    results = {}
    for binary in args.bin:
        server = Server(binary)
        try:
            for label, path, ctype in files:
                times = []
                for _ in range(args.runs):
                    status, elapsed, track_id = accept(server, path, ctype)
                    if status not in (201, 202):
                        sys.exit(f"{binary}: {label} answered {status}")
                    times.append(elapsed)
                    wait_processed(server, track_id)
                results[(binary, label)] = statistics.median(times)
        finally:
            server.stop()
    width = max(len(b) for b in args.bin)
    print(f"== upload-to-202 latency, median of {args.runs} (Prefer: respond-async, SQLite)")
    print(" " * 22 + "  ".join(b.rjust(width) for b in args.bin))
    for label, _, _ in files:
        row = "  ".join(f"{results[(b, label)] * 1000:>{width - 3}.0f} ms" for b in args.bin)
        print(f"{label:<22}{row}")


if __name__ == "__main__":
    main()

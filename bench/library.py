#!/usr/bin/env python3
"""Lists, searches and sorts over a large library: times HTTP requests against a real
`legato serve` whose store was filled through the store API (no audio).

    cargo build --release -p legato
    cargo run --release -p legato-store-mongo --example library -- /tmp/lib 100000
    python3 bench/library.py --data /tmp/lib [--tracks 100000] [--runs 50]
    # MongoDB (FerretDB): fill the URI's database instead, then
    python3 bench/library.py --store mongodb://127.0.0.1:27017/libbench --tracks 1000 --runs 3   # FerretDB scans: see README

For each order (created_at, name, author, duration) a page of 50 at offset 0 and at
offset TRACKS-50; searches matching 1, 100 and TRACKS/10 tracks (the names the `library`
example writes); one track's GET, its playlist's and a segment's GET, of a real 30-second
MP3 uploaded first (made by ffmpeg, which must be on PATH; served as a player gets them,
through the server's segment cache); the server's CPU while idle for --idle seconds (the background loops: retirement
sweep, job claims); then the whole list without `limit`: time, bytes, and the server's peak
RSS (VmHWM), which covers everything it did since it started. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm(pid: int, field: str) -> int:
    """A /proc/PID/status field in KiB."""
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, dict, bytes]:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


class Client:
    """One keep-alive connection, made again after the server drops it."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def get(self, path: str) -> tuple[int, dict, bytes]:
        try:
            return get(self.conn, path)
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            return 0, {}, str(e).encode()


def timed(client: Client, path: str, runs: int, expect_total: int | None = None, check_json: bool = True) -> dict:
    """p50/p99/max of `runs` GETs after 3 warm-ups; failures (an error status, a dropped
    connection, a wrong count) are counted, not fatal: how a store that cannot keep up shows."""
    times, failed, total, body = [], 0, -1, b""
    for i in range(runs + 3):
        t0 = time.perf_counter()
        status, headers, answer = client.get(path)
        dt = (time.perf_counter() - t0) * 1000
        ok = status == 200
        if ok:
            body = answer
            if check_json:
                total = int(headers.get("x-total-count", "-1"))
                ok = expect_total is None or total == expect_total
        if i >= 3:
            times.append(dt)
            failed += 0 if ok else 1
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    entries = len(json.loads(body)) if (check_json and body) else 1
    return {"path": path, "p50_ms": statistics.median(times), "p99_ms": p99, "max_ms": times[-1],
            "matches": total, "entries": entries, "bytes": len(body), "failed": failed, "runs": runs}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, in seconds."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload_tone(conn: http.client.HTTPConnection, work: str) -> tuple[str | None, str]:
    """Uploads a 30-second MP3 made by ffmpeg (three tries); returns the new track's id (None
    when the server refused it every time) and what happened."""
    mp3 = Path(work) / "tone.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=30",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)], check=True)
    answers = []
    for _ in range(3):
        t0 = time.perf_counter()
        conn.request("POST", "/function/crud?name=Bench%20Tone&author=Bench", body=mp3.read_bytes(),
                     headers={"content-type": "audio/mpeg"})
        r = conn.getresponse()
        body = r.read()
        answers.append("%d in %.1f s" % (r.status, time.perf_counter() - t0))
        if r.status in (200, 201, 202):
            break
    else:
        return None, "upload refused: " + ", ".join(answers)
    track = json.loads(body)
    for _ in range(1200):
        status, _, body = get(conn, "/function/crud/%s" % track["id"])
        if status == 200 and json.loads(body).get("status", "ready") == "ready":
            return track["id"], "upload: " + ", ".join(answers)
        time.sleep(0.1)
    return None, "the uploaded tone never became ready"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="SQLite data folder (filled by the library example)")
    ap.add_argument("--store", help="a mongodb:// URI (filled by the library example)")
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--bin", default=os.environ.get("LEGATO_BIN", str(REPO / "target/release/legato")))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured (0: skip)")
    ap.add_argument("--single-runs", type=int, default=200, help="GETs of the one track, its playlist and segment")
    ap.add_argument("--store-pid", type=int, help="the database server's pid: its CPU while Legato idles is reported too")
    args = ap.parse_args()
    if not (args.data or args.store):
        ap.error("--data or --store")

    port = free_port()
    work = tempfile.mkdtemp(prefix="legato-library-bench-")
    cmd = [args.bin, "serve", "--listen", "127.0.0.1:%d" % port, "--data", args.data or work]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    if args.store:
        env["LEGATO_STORE"] = args.store
    log = open(Path(work) / "server.log", "wb")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(conn, "/healthz")[0] == 200:
                    break
            except OSError:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start; see %s/server.log" % work)
            time.sleep(0.2)
        client = Client(port)
        n = args.tracks
        results = {"tracks": n, "store": args.store or "sqlite", "pages": [], "searches": [], "single": []}
        rss_start = vm(server.pid, "VmRSS")
        tone, results["upload"] = upload_tone(conn, work)
        # The tone is a track too (and an earlier run may have left its own).
        for _ in range(10):
            status, headers, _ = client.get("/function/crud?limit=1")
            if status == 200:
                n = int(headers["x-total-count"])
                break
        if tone:
            results["single"].append(timed(client, "/function/crud/%s" % tone, args.single_runs, check_json=False))
            results["single"].append(timed(client, "/function/streaming/%s/index.m3u8" % tone, args.single_runs, check_json=False))
            status, _, playlist = client.get("/function/streaming/%s/index.m3u8" % tone)
            first_uri = next(l for l in playlist.decode().splitlines() if l and not l.startswith("#"))
            if first_uri.endswith(".m3u8"):  # a master playlist: the first variant's first segment
                base = first_uri.rsplit("/", 1)[0] + "/" if "/" in first_uri else ""
                _, _, media = client.get("/function/streaming/%s/%s" % (tone, first_uri))
                first_uri = base + next(l for l in media.decode().splitlines() if l and not l.startswith("#"))
            results["single"].append(timed(client, "/function/streaming/%s/%s" % (tone, first_uri), args.single_runs, check_json=False))
        if args.idle > 0:
            time.sleep(2)
            before = cpu_seconds(server.pid)
            store_before = cpu_seconds(args.store_pid) if args.store_pid else 0.0
            time.sleep(args.idle)
            results["idle_cpu_s_per_min"] = (cpu_seconds(server.pid) - before) * 60.0 / args.idle
            if args.store_pid:
                results["idle_store_cpu_s_per_min"] = (cpu_seconds(args.store_pid) - store_before) * 60.0 / args.idle
        for sort in ["created_at", "name", "author", "duration"]:
            for offset in [0, max(0, n - 50)]:
                r = timed(client, "/function/crud?sort=%s&limit=50&offset=%d" % (sort, offset), args.runs, n)
                results["pages"].append(r)
        searches = [("n%06d" % (n // 2), 1), ("chlo%C3%A9%20dubois", None), ("echos", n // 10)]
        for q, expected in searches:
            r = timed(client, "/function/crud?q=%s&limit=50" % q, args.runs, expected)
            results["searches"].append(r)
        rss_before_full = vm(server.pid, "VmRSS")
        full_times, size, full_failed = [], 0, 0
        for _ in range(3):
            t0 = time.perf_counter()
            status, headers, body = client.get("/function/crud")
            full_times.append(time.perf_counter() - t0)
            if status != 200 or len(json.loads(body)) != n:
                full_failed += 1
            else:
                size = len(body)
            del body
        results["full"] = {"seconds": min(full_times), "failed": full_failed, "seconds_all": full_times, "bytes": size,
                           "rss_start_kib": rss_start, "rss_before_full_kib": rss_before_full,
                           "peak_rss_kib": vm(server.pid, "VmHWM"), "rss_after_kib": vm(server.pid, "VmRSS")}
        if tone:  # leave the library as it was (bench/subsonic.py counts its artists)
            client.conn.request("DELETE", "/function/crud/%s" % tone)
            client.conn.getresponse().read()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print("library of %d tracks, store %s" % (n, results["store"]))
    print("%-52s %9s %9s %9s %8s %9s %7s" % ("request", "p50 ms", "p99 ms", "max ms", "matches", "bytes", "failed"))
    for r in results["pages"] + results["searches"] + results["single"]:
        print("%-52s %9.2f %9.2f %9.2f %8d %9d %3d/%-3d" % (r["path"][:52], r["p50_ms"], r["p99_ms"], r["max_ms"], r["matches"], r["bytes"], r["failed"], r["runs"]))
    print(results["upload"])
    if "idle_cpu_s_per_min" in results:
        print("idle: %.3f CPU seconds per minute" % results["idle_cpu_s_per_min"])
    if "idle_store_cpu_s_per_min" in results:
        print("idle, the database server: %.3f CPU seconds per minute" % results["idle_store_cpu_s_per_min"])
    f = results["full"]
    print("full list without limit (%d of 3 failed): %.2f s (runs: %s), %.1f MB, peak RSS %.1f MB (RSS at start %.1f MB, before the full lists %.1f MB)"
          % (f["failed"], f["seconds"], ", ".join("%.2f" % t for t in f["seconds_all"]), f["bytes"] / 1e6, f["peak_rss_kib"] / 1024,
             f["rss_start_kib"] / 1024, f["rss_before_full_kib"] / 1024))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

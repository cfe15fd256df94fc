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
example writes); then the whole list without `limit`: time, bytes, and the server's peak RSS
(VmHWM), which covers everything it did since it started. Standard library only.
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


def timed(conn, path: str, runs: int, expect_total: int | None = None) -> dict:
    times = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        status, headers, body = get(conn, path)
        dt = (time.perf_counter() - t0) * 1000
        if status != 200:
            sys.exit("%s answered %d: %s" % (path, status, body[:300]))
        if i >= 3:  # the first few warm the caches
            times.append(dt)
    total = int(headers.get("x-total-count", "-1"))
    if expect_total is not None and total != expect_total:
        sys.exit("%s: X-Total-Count %d, expected %d" % (path, total, expect_total))
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return {"path": path, "p50_ms": statistics.median(times), "p99_ms": p99, "max_ms": times[-1],
            "matches": total, "entries": len(json.loads(body)), "bytes": len(body)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="SQLite data folder (filled by the library example)")
    ap.add_argument("--store", help="a mongodb:// URI (filled by the library example)")
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--bin", default=os.environ.get("LEGATO_BIN", str(REPO / "target/release/legato")))
    ap.add_argument("--json", help="also write the results here")
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
        n = args.tracks
        results = {"tracks": n, "store": args.store or "sqlite", "pages": [], "searches": []}
        rss_start = vm(server.pid, "VmRSS")
        for sort in ["created_at", "name", "author", "duration"]:
            for offset in [0, max(0, n - 50)]:
                r = timed(conn, "/function/crud?sort=%s&limit=50&offset=%d" % (sort, offset), args.runs, n)
                assert r["entries"] == min(50, n - offset), r
                results["pages"].append(r)
        searches = [("n%06d" % (n // 2), 1), ("chlo%C3%A9%20dubois", None), ("echos", n // 10)]
        for q, expected in searches:
            r = timed(conn, "/function/crud?q=%s&limit=50" % q, args.runs, expected)
            results["searches"].append(r)
        rss_before_full = vm(server.pid, "VmRSS")
        full_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            status, headers, body = get(conn, "/function/crud")
            full_times.append(time.perf_counter() - t0)
            if status != 200:
                sys.exit("full list answered %d" % status)
            entries = json.loads(body)
            if len(entries) != n:
                sys.exit("full list: %d entries, expected %d" % (len(entries), n))
            size = len(body)
            del body, entries
        results["full"] = {"seconds": min(full_times), "seconds_all": full_times, "bytes": size,
                           "rss_start_kib": rss_start, "rss_before_full_kib": rss_before_full,
                           "peak_rss_kib": vm(server.pid, "VmHWM"), "rss_after_kib": vm(server.pid, "VmRSS")}
    finally:
        server.terminate()
        server.wait(timeout=30)

    print("library of %d tracks, store %s" % (n, results["store"]))
    print("%-52s %9s %9s %9s %8s %9s" % ("request", "p50 ms", "p99 ms", "max ms", "matches", "bytes"))
    for r in results["pages"] + results["searches"]:
        print("%-52s %9.2f %9.2f %9.2f %8d %9d" % (r["path"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["matches"], r["bytes"]))
    f = results["full"]
    print("full list without limit: %.2f s (runs: %s), %.1f MB, peak RSS %.1f MB (RSS at start %.1f MB, before the full lists %.1f MB)"
          % (f["seconds"], ", ".join("%.2f" % t for t in f["seconds_all"]), f["bytes"] / 1e6, f["peak_rss_kib"] / 1024,
             f["rss_start_kib"] / 1024, f["rss_before_full_kib"] / 1024))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

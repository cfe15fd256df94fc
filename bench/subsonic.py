#!/usr/bin/env python3
"""The OpenSubsonic API (/rest) over a large library under concurrent load: times search3,
getAlbumList2, getArtists and getAlbum against a real `legato serve` whose store was filled
through the store API (no audio) by the `library` example.

    cargo build --release -p legato
    cargo run --release -p legato-store-mongo --example library -- /tmp/lib 100000
    python3 bench/subsonic.py --data /tmp/lib [--tracks 100000] [--threads 8] [--requests 400]
    # MongoDB (FerretDB): fill the URI's database instead, then
    python3 bench/subsonic.py --store mongodb://127.0.0.1:27017/libbench --tracks 1000

The `library` example makes 10 tracks per album (10,000 albums and 1,000 album artists with
100,000 tracks). A user is made with `legato user add` on the same store. Each kind of request
is warmed up, checked once (counts), then sent --requests times by --threads client threads at
once, each on its own keep-alive connection; reported: p50/p95/p99/max in ms, requests per
second, and the server's peak RSS (VmHWM). Targets (SQLite, 100,000 tracks): p99 under 20 ms
for search3 and getAlbumList2, under 100 ms for getArtists. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library import REPO, free_port, vm  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
TARGETS_MS = {"search3": 20.0, "getAlbumList2": 20.0, "getArtists": 100.0}


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


class Api:
    def __init__(self, port: int):
        self.port = port
        salt = "benchsalt42"
        self.auth = {"u": USER, "s": salt, "t": hashlib.md5((PASSWORD + salt).encode()).hexdigest(),
                     "v": "1.16.1", "c": "legato-bench", "f": "json"}

    def path(self, endpoint: str, params: dict) -> str:
        return "/rest/%s?%s" % (endpoint, urllib.parse.urlencode({**self.auth, **params}))

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    @staticmethod
    def get(conn: http.client.HTTPConnection, path: str) -> bytes:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("%s answered HTTP %d: %s" % (path, r.status, body[:300]))
        return body

    def call(self, conn, endpoint: str, params: dict) -> dict:
        body = json.loads(self.get(conn, self.path(endpoint, params)))["subsonic-response"]
        if body.get("status") != "ok":
            raise RuntimeError("%s %s failed: %s" % (endpoint, params, body.get("error")))
        return body


def load(api: Api, name: str, paths: list, total: int, threads: int) -> dict:
    """Sends ``total`` GETs drawn round-robin from ``paths`` over ``threads`` connections at once."""
    per_thread = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    times: list = []
    lock = threading.Lock()
    errors: list = []
    start = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        conn = api.connect()
        mine = []
        try:
            Api.get(conn, paths[k % len(paths)])  # the connection is open before the clock starts
            start.wait()
            for j in range(per_thread[k]):
                p = paths[(k + j * threads) % len(paths)]
                t0 = time.perf_counter()
                body = Api.get(conn, p)
                mine.append((time.perf_counter() - t0) * 1000)
                if b'"status":"ok"' not in body.replace(b" ", b""):
                    raise RuntimeError("%s: %s" % (p, body[:300]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
            try:
                start.abort()
            except threading.BrokenBarrierError:
                pass
        finally:
            conn.close()
            with lock:
                times.extend(mine)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    times.sort()
    return {"name": name, "requests": len(times), "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95),
            "p99_ms": percentile(times, 0.99), "max_ms": times[-1], "rps": len(times) / wall}


def cli(binary: str, env: dict, data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args, "--data", data], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="SQLite data folder (filled by the library example)")
    ap.add_argument("--store", help="a mongodb:// URI (filled by the library example)")
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400, help="timed requests per kind, all threads together")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests per kind first")
    ap.add_argument("--bin", default=os.environ.get("LEGATO_BIN", str(REPO / "target/release/legato")))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not (args.data or args.store):
        ap.error("--data or --store")
    n = args.tracks
    if n % 10 or n < 500:
        ap.error("--tracks: a multiple of 10, at least 500 (the library example's albums and artists)")

    work = tempfile.mkdtemp(prefix="legato-subsonic-bench-")
    data = args.data or work
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    if args.store:
        env["LEGATO_STORE"] = args.store
    pw = Path(work) / "password"
    pw.write_text(PASSWORD + "\n")
    made = cli(args.bin, env, data, "user", "add", USER, "--password-file", str(pw))
    if made.returncode != 0:
        # Already there from an earlier run: set its password instead.
        again = cli(args.bin, env, data, "user", "passwd", USER, "--password-file", str(pw))
        if again.returncode != 0:
            sys.exit("legato user add failed: %s%s\nand user passwd: %s" % (made.stdout, made.stderr, again.stderr))

    port = free_port()
    log = open(Path(work) / "server.log", "wb")
    server = subprocess.Popen([args.bin, "serve", "--listen", "127.0.0.1:%d" % port, "--data", data],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    api = Api(port)
    results = {"tracks": n, "store": args.store or "sqlite", "threads": args.threads, "kinds": []}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = api.connect()
                if api.call(conn, "ping", {}):
                    break
            except (OSError, RuntimeError, ValueError):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start or /rest/ping failed; see %s/server.log" % work)
            time.sleep(0.2)
        rss_start = vm(server.pid, "VmRSS")

        # The first call loads the library: a slow store (FerretDB) may take longer than its
        # operation timeout the first time(s); give it a few minutes.
        first = time.monotonic()
        while True:
            try:
                api.call(conn, "getAlbumList2", {"type": "newest", "size": 1})
                break
            except RuntimeError as e:
                if "unavailable" not in str(e) or time.monotonic() - first > 300:
                    raise
                print("  the library is not loaded yet (%s); trying again" % e, file=sys.stderr)
        results["first_call_seconds"] = time.monotonic() - first
        print("  first getAlbumList2 after %.1f s" % results["first_call_seconds"], file=sys.stderr)
        # Albums to fetch: a spread of ids from a few pages of the alphabetical list.
        album_ids = []
        for offset in range(0, n // 10, max(500, n // 10 // 8)):
            page = api.call(conn, "getAlbumList2", {"type": "alphabeticalByName", "size": 500, "offset": offset})
            album_ids += [a["id"] for a in page["albumList2"].get("album", [])]
        random.Random(1).shuffle(album_ids)
        album_ids = album_ids[:200]
        if not album_ids:
            sys.exit("getAlbumList2 returned no albums: was the store filled by the library example (with albums)?")

        n_albums = n // 10
        # Pages of 50 albums at the start, near it, in the middle and at the end.
        album_offsets = (0, min(100, n_albums - 50), n_albums // 2, n_albums - 50)
        mid = n // 2
        # Chloé Dubois is artist 2 + 40 * 3 = 122: albums 122, 1122, ... (100 songs at 100,000).
        chloe_songs = 10 * len(range(122, n_albums, 1000))
        # (name, endpoint, list of params, check(body) -> error message or None)
        s3 = {"artistCount": 20, "albumCount": 20, "songCount": 20}
        kinds = [
            ("search3 1 song", "search3", [dict(s3, query="n%06d" % mid)],
             lambda b: None if len(b["searchResult3"].get("song", [])) == 1 else "expected 1 song"),
            ("search3 ~100 songs", "search3", [dict(s3, query="Chloé Dubois")],
             lambda b: None if len(b["searchResult3"].get("song", [])) == min(20, chloe_songs)
             else "expected %d songs" % min(20, chloe_songs)),
            ("search3 ~10,000 songs", "search3", [dict(s3, query="Échos")],
             lambda b: None if len(b["searchResult3"].get("song", [])) == 20 else "expected a full page of 20"),
            ("search3 '' songCount=50", "search3",
             [{"query": "", "songCount": 50, "songOffset": o, "albumCount": 0, "artistCount": 0} for o in (0, mid, n - 50)],
             lambda b: None if len(b["searchResult3"].get("song", [])) == 50 else "expected 50 songs"),
            ("getAlbumList2 newest", "getAlbumList2",
             [{"type": "newest", "size": 50, "offset": o} for o in album_offsets],
             lambda b: None if len(b["albumList2"].get("album", [])) == 50 else "expected 50 albums"),
            ("getAlbumList2 alphabeticalByName", "getAlbumList2",
             [{"type": "alphabeticalByName", "size": 50, "offset": o} for o in album_offsets],
             lambda b: None if len(b["albumList2"].get("album", [])) == 50 else "expected 50 albums"),
            ("getArtists", "getArtists", [{}],
             lambda b: None if sum(len(i.get("artist", [])) for i in b["artists"].get("index", [])) == min(1000, n // 10)
             else "expected %d artists" % min(1000, n // 10)),
            ("getAlbum", "getAlbum", [{"id": a} for a in album_ids],
             lambda b: None if len(b["album"].get("song", [])) == 10 else "expected 10 songs"),
        ]
        for name, endpoint, params_list, check in kinds:
            # A new connection: the last one sat idle through the previous load, longer than
            # the server keeps an idle keep-alive connection.
            conn.close()
            conn = api.connect()
            paths = [api.path(endpoint, p) for p in params_list]
            for p, params in zip(paths, params_list):
                body = api.call(conn, endpoint, params)
                problem = check(body)
                if problem:
                    sys.exit("%s %s: %s; got %s" % (endpoint, params, problem, json.dumps(body)[:500]))
            for i in range(args.warmup):
                Api.get(conn, paths[i % len(paths)])
            r = load(api, name, paths, args.requests, args.threads)
            r["endpoint"] = endpoint
            results["kinds"].append(r)
            print("  %-34s p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f ms  %6.0f req/s" % (
                name, r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"], r["rps"]), file=sys.stderr)
        results["rss_start_kib"] = rss_start
        results["peak_rss_kib"] = vm(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)

    print("OpenSubsonic over %d tracks (%d albums), store %s, %d client threads, %d requests per kind"
          % (n, n // 10, results["store"], args.threads, args.requests))
    print("%-34s %8s %8s %8s %8s %8s  %s" % ("request", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/s", "target p99"))
    for r in results["kinds"]:
        target = TARGETS_MS.get(r["endpoint"])
        verdict = "" if target is None else ("%s < %g ms" % ("ok" if r["p99_ms"] < target else "MISSED", target))
        print("%-34s %8.2f %8.2f %8.2f %8.2f %8.0f  %s" % (r["name"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"],
                                                          r["rps"], verdict))
    print("server peak RSS %.1f MB (RSS at start %.1f MB); load average %s" % (
        results["peak_rss_kib"] / 1024, results["rss_start_kib"] / 1024, " ".join(map(str, os.getloadavg()))))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

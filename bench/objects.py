#!/usr/bin/env python3
"""Segments in an object store, side by side in one run: what serving them through Legato
costs against the object store itself and a plain web server, and what keeping them there
costs an ingest.

    cargo build --release -p legato --locked
    python3 bench/objects.py [--requests 300] [--concurrency 4] [--runs 3] [--bin target/release/legato]

1. Segment GETs: one MPEG-TS segment (the middle one of the highest-bitrate MP3 rendition
   of a 4-minute MP3) fetched --requests times by --concurrency threads, each on keep-alive
   connections, five ways:
     proxy      `legato serve --blobs … --segments proxy`: Legato answers, from its segment
                cache after the first read (the default --cache-mb)
     proxy, no cache  the same library with --cache-mb 0: every GET reads the object
     redirect   `--segments redirect`: Legato answers 302 to a presigned URL, the client
                follows it (its own connection to S3); the time is both requests
     direct S3  the presigned URL of one 302, fetched again and again
     nginx      the same bytes as a file served by nginx (one worker, sendfile on)
   Each: requests/s, median and p95 latency. Every body is checked against the segment.
2. Ingest: the same 4-minute MP3 (distinct bytes each time: a trailing ID3v1 tag names the
   run, as the server deduplicates uploads by SHA-256) posted --runs times with
   `Prefer: respond-async` to a server over SQLite only and to one over SQLite + SeaweedFS
   (the runs alternate), each timed from the first byte sent until GET /function/crud/<id>
   says `ready` (polled every 50 ms). Median seconds of each and their ratio.

SeaweedFS comes from scripts/seaweedfs.sh (LEGATO_TOOLS, default ~/.cache/legato-tools);
nginx is installed with apt-get when missing. Every server (Legato, SeaweedFS, nginx) is
started here on free loopback ports over a temporary folder and stopped at the end. Needs
ffmpeg; standard library only. The figures are also written to bench/out/objects.json.
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
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library import REPO, free_port  # noqa: E402

SECONDS = 240
BUCKET = "legato-bench"
CACHE = Path(os.environ.get("LEGATO_BENCH_AUDIO", tempfile.gettempdir())) / "legato-bench"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def source_mp3() -> Path:
    """A music-like 4-minute MP3 at 192 kbit/s (pink noise under two tones), made once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"objects-{SECONDS}.mp3"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp3")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
             "-f", "lavfi", "-i", f"anoisesrc=d={SECONDS}:c=pink:a=0.15:r=44100",
             "-f", "lavfi", "-i", f"aevalsrc=0.3*sin(2*PI*440*t)|0.3*sin(2*PI*554*t):s=44100:d={SECONDS}",
             "-filter_complex", "[0][1]amerge=inputs=2,pan=stereo|c0=c0+c2|c1=c1+c3",
             "-c:a", "libmp3lame", "-b:a", "192k", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path


def tagged(mp3: bytes, label: str) -> bytes:
    """The MP3 with an ID3v1 tag naming `label`: distinct bytes, the same audio."""
    field = lambda s, n: s.encode()[:n].ljust(n, b"\0")  # noqa: E731
    tag = b"TAG" + field(label, 30) + field("objects bench", 30) + field("", 30) + b"2025" + field("", 30) + b"\xff"
    assert len(tag) == 128
    return mp3 + tag


class Legato:
    """`legato serve` on a free loopback port over its own data folder."""

    def __init__(self, binary: str, work: Path, name: str, flags: list[str], data: Path | None = None):
        self.name = name
        self.port = free_port()
        self.log_path = work / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
        env["LEGATO_LOG"] = "warn"
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(data or work / f"{name}-data"), *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"), env=env)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{name}: legato exited at start-up:\n{self.log()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"{name}: legato did not answer /healthz in 60 s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get_ok(self, path: str) -> bytes:
        status, _, body = self.request("GET", path)
        if status != 200:
            sys.exit(f"{self.name}: GET {path} answered {status}: {body[:300]!r}")
        return body

    def ingest(self, mp3: bytes) -> tuple[float, dict]:
        """Seconds from the upload's first byte until the track is `ready`; the track."""
        started = time.perf_counter()
        status, _, body = self.request("POST", "/function/crud", body=mp3, timeout=600,
                                       headers={"Content-Type": "audio/mpeg", "Prefer": "respond-async"})
        if status not in (201, 202):
            sys.exit(f"{self.name}: upload answered {status} (200 means a duplicate): {body[:300]!r}")
        track = json.loads(body)
        deadline = time.time() + 900
        while track["status"] != "ready":
            if track["status"] == "failed" or time.time() > deadline:
                sys.exit(f"{self.name}: ingest {track.get('status')}: {track}\n{self.log()}")
            time.sleep(0.05)
            track = json.loads(self.get_ok(f"/function/crud/{track['id']}"))
        return time.perf_counter() - started, track

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pick_segment(server: Legato, track_id: str) -> str:
    """Path of the middle .ts segment of the highest-bitrate MP3 rendition."""
    master_path = f"/function/streaming/{track_id}/mp3.m3u8"
    master = server.get_ok(master_path).decode()
    best, uri, lines = -1, None, master.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(a.split("=", 1) for a in line.split(":", 1)[1].split(",") if "=" in a)
            bandwidth = int(attrs.get("BANDWIDTH", "0"))
            nxt = next((l for l in lines[i + 1:] if l and not l.startswith("#")), None)
            if nxt and bandwidth > best:
                best, uri = bandwidth, nxt
    if uri is None:
        sys.exit(f"{server.name}: no variant in {master_path}:\n{master}")
    media_path = urllib.parse.urljoin(master_path, uri)
    media = server.get_ok(media_path).decode()
    segments = [l for l in media.splitlines() if l and not l.startswith("#")]
    ts = [s for s in segments if s.split("?")[0].endswith(".ts")]
    if not ts:
        sys.exit(f"{server.name}: no .ts segment in {media_path}:\n{media}")
    return urllib.parse.urljoin(media_path, ts[len(ts) // 2])


def hostport(url: str) -> tuple[str, int, str]:
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        sys.exit(f"not a plain http URL: {url}")
    return u.hostname, u.port or 80, u.path + ("?" + u.query if u.query else "")


def fetch(conn: http.client.HTTPConnection, path: str, expect: int) -> tuple[bytes, dict]:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != expect:
        raise RuntimeError(f"GET {path} answered {r.status}, not {expect}: {body[:200]!r}")
    return body, {k.lower(): v for k, v in r.getheaders()}


def load(make_client, requests: int, concurrency: int, expected: bytes, warmup: int = 3) -> dict:
    """`requests` GETs over `concurrency` threads; each thread's `make_client()` gives a
    function that performs one GET (on that thread's keep-alive connections) and returns the body."""
    lock = threading.Lock()
    remaining = [requests]
    times: list[float] = []
    errors: list[str] = []
    ready = threading.Barrier(concurrency + 1)

    def worker():
        try:
            one = make_client()
            for _ in range(warmup):
                if one() != expected:
                    raise RuntimeError("the body differs from the segment")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            ready.wait()
            return
        ready.wait()
        mine = []
        while True:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                body = one()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                break
            mine.append(time.perf_counter() - t0)
            if len(body) != len(expected):
                errors.append(f"body of {len(body)} bytes, expected {len(expected)}")
                break
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])
    times.sort()
    p95 = times[min(len(times) - 1, max(0, int(round(0.95 * len(times))) - 1))]
    return {"requests": len(times), "requests_per_s": len(times) / wall,
            "median_ms": statistics.median(times) * 1000, "p95_ms": p95 * 1000}


def ensure_nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    print("installing nginx (apt-get)...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, **quiet)
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        sys.exit("nginx is not installed and apt-get did not install it")
    return found


def start_nginx(work: Path, body: bytes) -> tuple[subprocess.Popen, int]:
    binary = ensure_nginx()
    root = work / "nginx"
    (root / "www").mkdir(parents=True)
    (root / "www" / "segment.ts").write_bytes(body)
    # The worker runs as `nobody`: let it through the temporary folders.
    for d in (work, root, root / "www"):
        d.chmod(0o755)
    (root / "www" / "segment.ts").chmod(0o644)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n"
        "events {}\n"
        f"http {{ access_log off; sendfile on; types {{ video/mp2t ts; }}\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}/www; }} }}\n")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(root), "-e", f"{root}/error.log"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        if proc.poll() is not None:
            err = (root / "error.log").read_text(errors="replace") if (root / "error.log").exists() else ""
            sys.exit(f"nginx exited at start-up:\n{err[-2000:]}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if fetch(c, "/segment.ts", 200)[0] == body:
                c.close()
                return proc, port
        except (OSError, RuntimeError):
            pass
        if time.time() > deadline:
            sys.exit("nginx did not answer in 20 s")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="GETs per mode")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--runs", type=int, default=3, help="ingests per store")
    parser.add_argument("--bin", default=str(REPO / "target" / "release" / "legato"))
    args = parser.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} is not there: cargo build --release -p legato --locked")

    load_start = loadavg()
    print(f"machine: {os.cpu_count()} cores (nproc {os.sched_getaffinity(0).__len__()}), "
          f"load average {load_start} at the start", flush=True)
    mp3 = source_mp3().read_bytes()

    work = Path(tempfile.mkdtemp(prefix="legato-objects-"))
    weed_dir = work / "weed"
    env = dict(os.environ)
    env.setdefault("LEGATO_TOOLS", str(Path.home() / ".cache" / "legato-tools"))
    servers: list[Legato] = []
    nginx = None
    weed_started = False
    ok = False
    try:
        out = subprocess.run(["bash", str(REPO / "scripts" / "seaweedfs.sh"), "start", str(weed_dir), BUCKET],
                             check=True, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO).stdout
        weed_started = True
        endpoint = out.strip().splitlines()[-1].strip()
        keys = ["--blobs-access-key-file", str(weed_dir / "access_key"),
                "--blobs-secret-key-file", str(weed_dir / "secret_key")]

        def blobs(prefix: str) -> list[str]:
            return ["--blobs", f"s3://{BUCKET}/{prefix}/?endpoint={endpoint}", *keys]

        sqlite = Legato(args.bin, work, "sqlite", [])
        servers.append(sqlite)
        proxy = Legato(args.bin, work, "proxy", [*blobs("proxy"), "--segments", "proxy"])
        servers.append(proxy)

        # 2. Ingest, alternating the stores so that a change of load hits both.
        ingest = {"sqlite": [], "sqlite+seaweedfs": []}
        for run in range(args.runs):
            for key, server in (("sqlite", sqlite), ("sqlite+seaweedfs", proxy)):
                seconds, track = server.ingest(tagged(mp3, f"{key} run {run}"))
                ingest[key].append(seconds)
                print(f"  ingest {key} run {run + 1}: {seconds:.2f} s", file=sys.stderr, flush=True)
        sqlite.stop()
        proxy_track = track  # the last ingest on the object store, served in proxy mode
        last_bytes = tagged(mp3, f"sqlite+seaweedfs run {args.runs - 1}")

        # 1. Segment GETs: the same bytes in the redirect server's own prefix.
        redirect = Legato(args.bin, work, "redirect",
                          [*blobs("redirect"), "--segments", "redirect", "--segment-redirect-seconds", "3600"])
        servers.append(redirect)
        _, redirect_track = redirect.ingest(last_bytes)
        proxy_path = pick_segment(proxy, proxy_track["id"])
        redirect_path = pick_segment(redirect, redirect_track["id"])
        segment = proxy.get_ok(proxy_path)
        status, headers, _ = redirect.request("GET", redirect_path)
        if status != 302 or "location" not in headers:
            sys.exit(f"redirect: GET {redirect_path} answered {status}, not a 302 with a Location")
        presigned = headers["location"]
        s3_host, s3_port, s3_path = hostport(presigned)
        c = http.client.HTTPConnection(s3_host, s3_port, timeout=30)
        if fetch(c, s3_path, 200)[0] != segment:
            sys.exit("the segment behind the redirect differs from the proxied one (transcoding not deterministic?)")
        c.close()
        nginx, nginx_port = start_nginx(work, segment)
        # The same library and bucket with the segment cache off: every GET reads the object.
        uncached = Legato(args.bin, work, "proxy-uncached",
                          [*blobs("proxy"), "--segments", "proxy", "--cache-mb", "0"], data=work / "proxy-data")
        servers.append(uncached)

        def client(host, port):
            return http.client.HTTPConnection(host, port, timeout=30)

        def via_proxy():
            c = client("127.0.0.1", proxy.port)
            return lambda: fetch(c, proxy_path, 200)[0]

        def via_proxy_uncached():
            c = client("127.0.0.1", uncached.port)
            return lambda: fetch(c, proxy_path, 200)[0]

        def via_redirect():
            fn, s3 = client("127.0.0.1", redirect.port), client(s3_host, s3_port)

            def one():
                _, h = fetch(fn, redirect_path, 302)
                host, port, path = hostport(h["location"])
                if (host, port) != (s3_host, s3_port):
                    raise RuntimeError(f"redirected to another host: {h['location']}")
                return fetch(s3, path, 200)[0]
            return one

        def direct():
            c = client(s3_host, s3_port)
            return lambda: fetch(c, s3_path, 200)[0]

        def via_nginx():
            c = client("127.0.0.1", nginx_port)
            return lambda: fetch(c, "/segment.ts", 200)[0]

        get = {}
        for name, make in (("proxy", via_proxy), ("proxy, no cache", via_proxy_uncached), ("redirect", via_redirect),
                           ("direct S3", direct), ("nginx", via_nginx)):
            get[name] = load(make, args.requests, args.concurrency, segment)
            print(f"  GET {name}: {get[name]['requests_per_s']:.0f}/s", file=sys.stderr, flush=True)
        ok = True
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            try:
                nginx.wait(15)
            except subprocess.TimeoutExpired:
                nginx.kill()
        for s in servers:
            s.stop()
        if weed_started:
            subprocess.run(["bash", str(REPO / "scripts" / "seaweedfs.sh"), "stop", str(weed_dir)], env=env, cwd=REPO)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(logs kept in {work})", file=sys.stderr)

    load_end = loadavg()
    name = proxy_path.rsplit("/", 2)
    seg_label = f"{name[-2]}/{name[-1]}"
    print(f"== segment GET: {args.requests} requests per mode, {args.concurrency} threads, keep-alive; "
          f"segment {seg_label} ({len(segment):,} bytes)")
    print(f"{'mode':<17}{'req/s':>9}{'median ms':>12}{'p95 ms':>10}")
    for mode, r in get.items():
        print(f"{mode:<17}{r['requests_per_s']:>9.0f}{r['median_ms']:>12.2f}{r['p95_ms']:>10.2f}")
    med = {k: statistics.median(v) for k, v in ingest.items()}
    print(f"== ingest of a {SECONDS // 60}-min MP3 ({len(mp3) / 1e6:.1f} MB, 192 kbit/s), median of {args.runs}; "
          "POST respond-async until ready")
    print(f"{'store':<20}{'median s':>10}  runs (s)")
    for k, v in ingest.items():
        print(f"{k:<20}{med[k]:>10.2f}  " + " ".join(f"{x:.2f}" for x in v))
    ratio = med["sqlite+seaweedfs"] / med["sqlite"]
    print(f"{'ratio (S3 / SQLite)':<20}{ratio:>10.2f}")
    print(f"load average at the end: {load_end}")

    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "objects.json").write_text(json.dumps({
        "machine": {"nproc": len(os.sched_getaffinity(0)), "cpus": os.cpu_count(),
                    "loadavg_start": load_start, "loadavg_end": load_end},
        "args": vars(args),
        "segment": {"name": seg_label, "bytes": len(segment), "sha256": hashlib.sha256(segment).hexdigest()},
        "get": get,
        "ingest": {"mp3_bytes": len(mp3), "seconds": ingest, "median_s": med, "ratio": ratio},
    }, indent=2) + "\n")
    print(f"(also in {out / 'objects.json'})")


if __name__ == "__main__":
    main()

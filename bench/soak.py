#!/usr/bin/env python3
"""Soak test: mixed traffic against a real `legato serve` on loopback.

Starts `legato serve` on a free loopback port over a fresh data folder, seeds a few tracks
made by ffmpeg, then for --seconds runs at once:

* --listeners simulated listeners (default 200): each picks a ready track, GETs its playlist
  (following a master playlist to one variant) and then each segment at real-time pace (sleeping the segment's EXTINF duration times
  --pace, with +-10 % jitter), then picks another; a 404 (the track was deleted meanwhile)
  just makes it pick another track;
* --uploaders uploaders: a POST every few seconds (multipart mostly, some raw and seed JSON);
* --listers listers: GET /function/crud with q, limit, offset, sort and order;
* --deleters deleters: delete tracks (half the time one that someone is listening to) while
  the catalogue holds more than --keep-tracks.

Then it stops the traffic and checks: no 5xx and no connection error at any time; memory
flat (RSS of the server at the end <= max(1.5 x RSS after warm-up, RSS after warm-up +
64 MB)); no orphaned chunk in the SQLite file; every remaining track's playlist and segments
served. Exits 0 when all hold, 1 otherwise, and prints a summary block to paste in a note.

    python3 bench/soak.py --seconds 30              # the short form in scripts/test.sh
    python3 bench/soak.py --seconds 600             # the 10-minute soak (bench/soak.md)

The binary is --bin, else $LEGATO_BIN, else target/release/legato, else target/debug/legato.
Needs ffmpeg and aiohttp; without aiohttp the script makes its own virtualenv in
$LEGATO_TOOLS/soak-venv (default .tools/soak-venv), installs aiohttp there and reruns itself.
"""

import argparse
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def ensure_aiohttp():
    """Reruns this script in a virtualenv holding aiohttp, made on first use."""
    try:
        import aiohttp  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LEGATO_SOAK_VENV_TRIED"):
        sys.exit("soak: aiohttp is still missing in the virtualenv; giving up")
    tools = pathlib.Path(os.environ.get("LEGATO_TOOLS", ROOT / ".tools"))
    venv = tools / "soak-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"soak: creating {venv} with aiohttp", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "aiohttp>=3.9,<4"], check=True)
    os.environ["LEGATO_SOAK_VENV_TRIED"] = "1"
    os.execv(str(python), [str(python), str(pathlib.Path(__file__).resolve()), *sys.argv[1:]])


ensure_aiohttp()

import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from urllib.parse import urljoin  # noqa: E402

import aiohttp  # noqa: E402

MB = 1024 * 1024
# Seed tracks: (seconds, sine frequency). 128 kbit/s CBR, 44.1 kHz stereo.
TRACKS = [(20, 220), (30, 330), (45, 440), (60, 550)]
NAMES = ["Adagio", "Bolero", "Canon", "Nocturne", "Prelude", "Rondo", "Sonata", "Toccata"]
AUTHORS = ["Albinoni", "Bach", "Chopin", "Debussy", "Elgar", "Faure"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="traffic duration (600)")
    parser.add_argument("--listeners", type=int, default=200, help="simulated listeners (200)")
    parser.add_argument("--uploaders", type=int, default=2, help="concurrent uploaders (2)")
    parser.add_argument("--upload-every", type=float, default=4.0,
                        help="mean seconds between an uploader's POSTs (4)")
    parser.add_argument("--listers", type=int, default=2, help="concurrent listers (2)")
    parser.add_argument("--deleters", type=int, default=1, help="concurrent deleters (1)")
    parser.add_argument("--keep-tracks", type=int, default=12,
                        help="deleters stop while the catalogue holds this few tracks (12)")
    parser.add_argument("--seed-tracks", type=int, default=8, help="tracks uploaded first (8)")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="listener sleep = EXTINF x pace; 1.0 is real time (1.0)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the memory baseline (min(60, seconds/3))")
    parser.add_argument("--cache-mb", type=int, default=16,
                        help="server segment cache; small so it fills during warm-up (16)")
    parser.add_argument("--bin", default=None, help="legato binary")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and log")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    args = parser.parse_args()
    if args.seconds <= 0 or args.listeners < 0 or args.pace <= 0:
        parser.error("--seconds and --pace must be > 0, --listeners >= 0")
    if args.warmup is None:
        args.warmup = min(60.0, args.seconds / 3)
    return args


def find_binary(arg):
    candidates = [arg, os.environ.get("LEGATO_BIN"),
                  ROOT / "target" / "release" / "legato", ROOT / "target" / "debug" / "legato"]
    for candidate in candidates:
        if candidate and pathlib.Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return pathlib.Path(candidate)
    sys.exit("soak: no legato binary: build one (cargo build --release -p legato) or give --bin")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_mp3s(folder):
    """A few 128 kbit/s MP3s of 20 to 60 s; returns [(path, seconds)]."""
    files = []
    for seconds, frequency in TRACKS:
        path = folder / f"tone_{seconds}s.mp3"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}",
             "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k",
             "-metadata", f"title=Tone {frequency} Hz", str(path)],
            check=True,
        )
        files.append((path.read_bytes(), seconds))
    return files


def rss_bytes(pid, field="VmRSS"):
    """A memory figure of /proc/<pid>/status in bytes (VmRSS, RssAnon, RssFile...)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Stats:
    """Requests, statuses and latencies by kind; failures with a few examples."""

    def __init__(self):
        self.latency = {}  # kind -> [seconds]
        self.statuses = {}  # (kind, status) -> count
        self.failures = []  # (kind, what)
        self.failure_count = 0

    def record(self, kind, status, seconds):
        self.latency.setdefault(kind, []).append(seconds)
        key = (kind, status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if isinstance(status, str) or status >= 500:
            self.failure_count += 1
            if len(self.failures) < 20:
                self.failures.append((kind, status))

    def fail(self, kind, what):
        self.failure_count += 1
        if len(self.failures) < 20:
            self.failures.append((kind, what))


class Soak:
    def __init__(self, args, base, data_dir, mp3s, pid):
        self.args = args
        self.base = base
        self.data_dir = data_dir
        self.mp3s = mp3s
        self.pid = pid
        self.stats = Stats()
        self.tracks = {}  # id -> track JSON: the catalogue as clients know it
        self.listening = {}  # id -> listeners on it now
        self.deleted = set()
        self.uploaded = 0
        self.rng = random.Random(args.seed)
        self.deadline = 0.0
        self.session = None

    async def request(self, kind, method, path, **kwargs):
        """One request; returns (status, headers, body) or None on a connection error."""
        started = time.monotonic()
        try:
            async with self.session.request(method, self.base + path, **kwargs) as response:
                body = await response.read()
                self.stats.record(kind, response.status, time.monotonic() - started)
                return response.status, response.headers, body
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            self.stats.record(kind, f"connection error: {type(error).__name__}: {error}",
                              time.monotonic() - started)
            return None

    def running(self):
        return time.monotonic() < self.deadline

    async def sleep(self, seconds):
        """Sleeps, but never past the deadline."""
        await asyncio.sleep(max(0.0, min(seconds, self.deadline - time.monotonic())))

    def ready_tracks(self):
        return [track_id for track_id, track in self.tracks.items()
                if track.get("status", "ready") == "ready" and track.get("segments", 0) > 0]

    async def upload(self, kind="upload"):
        audio, seconds = self.rng.choice(self.mp3s)
        # Numbered before the first await: uploads run at once, and two with one number would
        # send one file twice.
        number = self.uploaded
        self.uploaded += 1
        # Each upload another file (an ID3v1 tag of its own at the end): the server answers a
        # file it has already with that track, and the soak wants real ingests.
        audio = audio + b"TAG" + b"\0" * 94 + f"soak {number}".encode().ljust(30, b"\0") + b"\xff"
        name = f"{self.rng.choice(NAMES)} {number}"
        author = self.rng.choice(AUTHORS)
        form = self.rng.random()
        if form < 0.7:
            data = aiohttp.FormData()
            data.add_field("name", name)
            data.add_field("author", author)
            data.add_field("song", audio, filename=f"{seconds}s.mp3", content_type="audio/mpeg")
            result = await self.request(kind, "POST", "/function/crud", data=data)
        elif form < 0.85:
            result = await self.request(
                kind, "POST", "/function/crud", data=audio,
                params={"name": name, "author": author}, headers={"Content-Type": "audio/mpeg"})
        else:
            import base64
            body = json.dumps({"name": name, "author": author,
                               "song_base64": base64.b64encode(audio).decode()})
            result = await self.request(kind, "POST", "/function/crud", data=body,
                                        headers={"Content-Type": "application/json"})
        if result is None:
            return None
        status, _, body = result
        if status in (201, 202):  # 202: accepted, processed in the background
            track = json.loads(body)
            self.tracks[track["id"]] = track
            return track
        if status < 500 and status != 429:  # 429: too many ingests at once, documented
            self.stats.fail(kind, f"upload answered {status}: {body[:200]!r}")
        return None

    async def listener(self, number):
        # Spread the first playlist requests over one segment's time.
        await self.sleep(self.rng.uniform(0, 10 * self.args.pace))
        while self.running():
            ready = self.ready_tracks()
            if not ready:
                await self.sleep(1)
                continue
            track_id = self.rng.choice(ready)
            self.listening[track_id] = self.listening.get(track_id, 0) + 1
            try:
                await self.listen(track_id)
            finally:
                self.listening[track_id] -= 1
                if self.listening[track_id] == 0:
                    del self.listening[track_id]

    async def listen(self, track_id):
        """Plays one track like an HLS player: playlist (and variant), then segments."""
        path = f"/function/streaming/{track_id}/index.m3u8"
        text = await self.get_playlist(track_id, path)
        if text is None:
            return
        variants = parse_master(text)
        if variants:
            # A master playlist: pick a variant, as a player does for its bandwidth.
            path = urljoin(path, self.rng.choice(variants))
            text = await self.get_playlist(track_id, path)
            if text is None:
                return
        entries = parse_playlist(text)
        if not entries:
            self.stats.fail("playlist", f"{path} lists no segment")
            await self.sleep(1)
            return
        init = init_uri(text)
        if init is not None:
            # An fMP4 rendition: the player loads its init segment first.
            result = await self.request("segment", "GET", urljoin(path, init))
            if result is None:
                await self.sleep(1)
                return
            status, _, body = result
            if status == 404:
                self.tracks.pop(track_id, None)
                return
            if status < 500 and (status != 200 or body[4:8] != b"ftyp"):
                self.stats.fail("segment", f"init {track_id}/{init}: {status}, {len(body)} B")
        for duration, uri in entries:
            if not self.running():
                return
            started = time.monotonic()
            result = await self.request("segment", "GET", urljoin(path, uri))
            if result is None:
                await self.sleep(1)
                return
            status, headers, body = result
            if status == 404:
                self.tracks.pop(track_id, None)
                return
            if status < 500 and (status != 200 or not segment_ok(body)):
                self.stats.fail("segment", f"segment {track_id}/{uri}: {status}, {len(body)} B")
            pause = duration * self.args.pace * self.rng.uniform(0.9, 1.1)
            await self.sleep(pause - (time.monotonic() - started))

    async def get_playlist(self, track_id, path):
        """The playlist's text; None (after a pause unless the track is gone) otherwise."""
        result = await self.request("playlist", "GET", path)
        if result is None:
            await self.sleep(1)
            return None
        status, _, body = result
        if status == 404:
            self.tracks.pop(track_id, None)
            return None
        if status != 200:
            if status < 500:  # a 5xx is counted already
                self.stats.fail("playlist", f"{path} answered {status}")
            await self.sleep(1)
            return None
        return body.decode("utf-8", "replace")

    async def uploader(self):
        while self.running():
            await self.sleep(self.rng.uniform(0.5, 1.5) * self.args.upload_every)
            if self.running():
                await self.upload()

    async def lister(self):
        while self.running():
            params = {"limit": str(self.rng.choice([5, 20, 100, 1000])),
                      "offset": str(self.rng.choice([0, 0, 0, 3, 10])),
                      "sort": self.rng.choice(["created_at", "name", "author", "duration"]),
                      "order": self.rng.choice(["asc", "desc"])}
            if self.rng.random() < 0.5:
                params["q"] = self.rng.choice(NAMES + AUTHORS + ["no such thing"])[:4].lower()
            result = await self.request("list", "GET", "/function/crud", params=params)
            if result is not None:
                status, headers, body = result
                if status != 200:
                    if status < 500:
                        self.stats.fail("list", f"list {params} answered {status}")
                else:
                    listed = json.loads(body)
                    if not isinstance(listed, list) or "X-Total-Count" not in headers:
                        self.stats.fail("list", "list without an array or X-Total-Count")
                    elif "q" not in params and params["offset"] == "0" \
                            and params["limit"] == "1000":
                        # The full catalogue: what listeners choose from.
                        self.tracks = {track["id"]: track for track in listed}
            await self.sleep(self.rng.uniform(0.5, 1.5))

    async def deleter(self):
        while self.running():
            await self.sleep(self.rng.uniform(0.5, 1.5) * self.args.upload_every
                             * self.args.deleters / max(1, self.args.uploaders))
            if not self.running() or len(self.tracks) <= self.args.keep_tracks:
                continue
            playing = [track_id for track_id in self.listening if track_id in self.tracks]
            pool = playing if playing and self.rng.random() < 0.5 else list(self.tracks)
            track_id = self.rng.choice(pool)
            result = await self.request("delete", "DELETE", f"/function/crud/{track_id}")
            self.tracks.pop(track_id, None)
            if result is None:
                continue
            status, _, body = result
            if status == 200:
                self.deleted.add(track_id)
            elif status < 500 and status != 404:  # 404: another deleter was first
                self.stats.fail("delete", f"delete {track_id} answered {status}: {body[:200]!r}")

    async def sample_rss(self, series):
        started = time.monotonic()
        while self.running():
            rss = rss_bytes(self.pid)
            if rss is None:
                self.stats.fail("server", "the server process is gone")
                return
            anon = rss_bytes(self.pid, "RssAnon") or 0
            series.append((time.monotonic() - started, rss, anon))
            await asyncio.sleep(1)

    async def verify_end(self):
        """After the traffic: every remaining track is served whole; deleted ones are gone."""
        result = await self.request("verify", "GET", "/function/crud",
                                    params={"limit": "1000"})
        if result is None or result[0] != 200:
            self.stats.fail("verify", "the final list failed")
            return []
        tracks = json.loads(result[2])
        for track in tracks:
            if track.get("status", "ready") != "ready":
                continue
            track_id = track["id"]
            path = f"/function/streaming/{track_id}/index.m3u8"
            result = await self.request("verify", "GET", path)
            if result is None or result[0] != 200:
                self.stats.fail("verify", f"playlist of {track_id}: {result and result[0]}")
                continue
            text = result[2].decode("utf-8", "replace")
            variants = parse_master(text)
            playlists = [(urljoin(path, uri), None) for uri in variants]
            if not variants:
                playlists = [(path, text)]
            for playlist_path, text in playlists:
                if text is None:
                    result = await self.request("verify", "GET", playlist_path)
                    if result is None or result[0] != 200:
                        self.stats.fail("verify", f"{playlist_path}: {result and result[0]}")
                        continue
                    text = result[2].decode("utf-8", "replace")
                entries = parse_playlist(text)
                # Every rendition is cut at the same times as the original.
                if len(entries) != track.get("segments"):
                    self.stats.fail("verify", f"{playlist_path}: {len(entries)} segments "
                                              f"listed, the track says {track.get('segments')}")
                init = init_uri(text)
                if init is not None:
                    result = await self.request("verify", "GET", urljoin(playlist_path, init))
                    if result is None or result[0] != 200 or result[2][4:8] != b"ftyp":
                        self.stats.fail("verify", f"init {playlist_path} {init}: "
                                                  f"{result and result[0]}")
                for _, uri in entries:
                    result = await self.request("verify", "GET", urljoin(playlist_path, uri))
                    if result is None or result[0] != 200 or not segment_ok(result[2]):
                        self.stats.fail("verify", f"segment {playlist_path} {uri}: "
                                                  f"{result and result[0]}")
        for track_id in sorted(self.deleted)[:50]:
            result = await self.request("verify", "GET", f"/function/crud/{track_id}")
            if result is None or result[0] != 404:
                self.stats.fail("verify", f"deleted {track_id} answered {result and result[0]}")
        return tracks


def parse_master(text):
    """The variant URIs of a master playlist; [] for a media playlist."""
    lines = [line.strip() for line in text.splitlines()]
    return [uri for tag, uri in zip(lines, lines[1:])
            if tag.startswith("#EXT-X-STREAM-INF") and uri and not uri.startswith("#")]


def init_uri(text):
    """The init segment (EXT-X-MAP) of an fMP4 media playlist; None for MPEG-TS."""
    match = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    return match.group(1) if match else None


def segment_ok(body):
    """An MPEG-TS segment (whole 188-byte packets) or an fMP4 one (styp, moof, mdat)."""
    if body[4:8] == b"styp":
        return b"moof" in body[:4096] and b"mdat" in body
    return len(body) % 188 == 0 and body[:1] == b"\x47"


def parse_playlist(text):
    """[(EXTINF seconds, uri)] of a media playlist."""
    entries, duration = [], None
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"#EXTINF:([0-9.]+)", line)
        if match:
            duration = float(match.group(1))
        elif line and not line.startswith("#") and duration is not None:
            entries.append((duration, line))
            duration = None
    return entries


def orphan_check(database):
    """(orphaned chunks, tracks, chunks, ready tracks without chunks) in the SQLite file."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        orphans = connection.execute(
            "SELECT COUNT(*) FROM chunks WHERE track_id NOT IN (SELECT id FROM tracks)"
        ).fetchone()[0]
        tracks = connection.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
        chunks = connection.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        columns = {row[1] for row in connection.execute("PRAGMA table_info(tracks)")}
        # A track still being processed (asynchronous ingest) may have no chunks yet.
        ready = "status = 'ready' AND " if "status" in columns else ""
        empty = connection.execute(
            f"SELECT COUNT(*) FROM tracks WHERE {ready}"
            "id NOT IN (SELECT track_id FROM chunks)"
        ).fetchone()[0]
        return orphans, tracks, chunks, empty
    finally:
        connection.close()


async def wait_ready(base, process, timeout=60):
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    return False


def mb(value):
    return f"{value / MB:.1f}"


async def run(args):
    binary = find_binary(args.bin)
    if shutil.which("ffmpeg") is None:
        sys.exit("soak: ffmpeg is needed to make the test tracks")
    work = pathlib.Path(tempfile.mkdtemp(prefix="legato-soak."))
    data_dir = work / "data"
    data_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"soak: {binary} on {base}, data in {data_dir}", flush=True)
    mp3s = make_mp3s(work)

    log = open(work / "server.log", "wb")
    env = dict(os.environ, LEGATO_LOG=os.environ.get("LEGATO_LOG", "warn"))
    process = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data", str(data_dir),
         "--cache-mb", str(args.cache_mb)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    ok, lines = False, []
    try:
        if not await wait_ready(base, process):
            print((work / "server.log").read_text(errors="replace")[-4000:])
            print("soak: FAILED: the server did not become ready")
            return False
        ok, lines = await traffic(args, base, data_dir, mp3s, process)
    finally:
        died = process.poll() is not None
        if not died:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print("soak: the server did not stop within 15 s of SIGTERM; killed")
                process.kill()
                process.wait()
        log.close()
        panicked = b"panicked" in (work / "server.log").read_bytes()
        if panicked:
            print("soak: the server log holds a panic:")
            print((work / "server.log").read_text(errors="replace")[-4000:])
        clean = not died and process.returncode == 0 and not panicked
        if lines:
            how = "died during the test" if died else "after SIGTERM"
            lines.append(f"server       exit status {process.returncode} {how}"
                         f"{', a panic in its log' if panicked else ''}")
            ok = ok and clean
            lines.append(f"result       {'PASS' if ok else 'FAIL'}")
            print("\n".join(lines), flush=True)
        ok = ok and clean
        if args.keep or not ok:
            print(f"soak: data and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return ok


async def traffic(args, base, data_dir, mp3s, process):
    """Seeds, runs the traffic, checks; returns (passed, summary lines)."""
    connector = aiohttp.TCPConnector(limit=args.listeners + 64)
    timeout = aiohttp.ClientTimeout(total=60)
    soak = Soak(args, base, data_dir, mp3s, process.pid)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        soak.session = session
        soak.deadline = time.monotonic() + 3600
        for _ in range(args.seed_tracks):
            await soak.upload(kind="seed upload")
        if not soak.ready_tracks():
            print("soak: FAILED: no seed track could be uploaded")
            for kind, what in soak.stats.failures[:10]:
                print(f"  {kind}: {what}")
            return False, []
        rss_start = rss_bytes(process.pid)
        print(f"soak: {len(soak.tracks)} tracks seeded, RSS {mb(rss_start)} MB; "
              f"{args.seconds:.0f} s of traffic", flush=True)

        started = time.monotonic()
        soak.deadline = started + args.seconds
        series = []
        tasks = [asyncio.create_task(soak.sample_rss(series))]
        tasks += [asyncio.create_task(soak.listener(i)) for i in range(args.listeners)]
        tasks += [asyncio.create_task(soak.uploader()) for _ in range(args.uploaders)]
        tasks += [asyncio.create_task(soak.lister()) for _ in range(args.listers)]
        tasks += [asyncio.create_task(soak.deleter()) for _ in range(args.deleters)]
        progress = asyncio.create_task(report_progress(soak, series, started))
        await asyncio.gather(*tasks)
        progress.cancel()
        traffic_seconds = time.monotonic() - started
        rss_end = rss_bytes(process.pid) or 0
        # Anonymous memory (heap) apart from file pages (SQLite's memory-mapped reads).
        rss_anon = rss_bytes(process.pid, "RssAnon") or 0
        rss_file = rss_bytes(process.pid, "RssFile") or 0

        remaining = await soak.verify_end()
    orphans, db_tracks, db_chunks, empty = orphan_check(data_dir / "legato.sqlite3")

    # Memory: baseline after warm-up, end, max.
    warm = [rss for t, rss, _ in series if t >= args.warmup]
    rss_warm = warm[0] if warm else (series[-1][1] if series else rss_start)
    rss_max = max([rss for _, rss, _ in series] + [rss_end, rss_start])
    limit = max(1.5 * rss_warm, rss_warm + 64 * MB)
    memory_flat = rss_end <= limit

    stats = soak.stats
    lines = ["", "=== legato soak summary ===",
             f"traffic      {traffic_seconds:.0f} s, {args.listeners} listeners at pace "
             f"{args.pace}, {args.uploaders} uploaders, {args.listers} listers, "
             f"{args.deleters} deleters; server cache {args.cache_mb} MB",
             f"binary       {find_binary(args.bin)}"]
    kinds = ["playlist", "segment", "upload", "list", "delete", "seed upload", "verify"]
    total = 0
    for kind in kinds:
        latencies = stats.latency.get(kind, [])
        if not latencies:
            continue
        total += len(latencies) if kind not in ("seed upload", "verify") else 0
        by_status = sorted(((str(s), n) for (k, s), n in stats.statuses.items() if k == kind))
        statuses = " ".join(f"{s}:{n}" for s, n in by_status)
        p50, p99 = percentile(latencies, .5) * 1000, percentile(latencies, .99) * 1000
        lines.append(f"{kind:<12} {len(latencies):>7} req  p50 {p50:7.1f} ms"
                     f"  p99 {p99:7.1f} ms  [{statuses}]")
    segments = len(stats.latency.get("segment", []))
    lines.append(f"rate         {total / max(traffic_seconds, 1e-9):.1f} req/s during traffic "
                 f"({segments / max(traffic_seconds, 1e-9):.1f} segments/s)")
    every = max(1, int(round(max(10.0, args.seconds / 60))))
    compact = " ".join(mb(rss) for _, rss, _ in series[::every])
    compact_anon = " ".join(mb(anon) for _, _, anon in series[::every])
    lines.append(f"RSS MB       start {mb(rss_start)}  after warm-up ({args.warmup:.0f} s) "
                 f"{mb(rss_warm)}  end {mb(rss_end)}  max {mb(rss_max)}  limit {mb(limit)}"
                 f"  -> {'flat' if memory_flat else 'NOT FLAT'}")
    lines.append(f"RSS every {every} s: {compact}")
    lines.append(f"  anonymous: {compact_anon}")
    lines.append(f"RSS at end   {mb(rss_anon)} MB anonymous + {mb(rss_file)} MB file-backed")
    lines.append(f"catalogue    {soak.uploaded} uploads ({args.seed_tracks} seeds), "
                 f"{len(soak.deleted)} deletes; at the end {len(remaining)} tracks listed, "
                 f"{db_tracks} in SQLite with {db_chunks} chunks")
    lines.append(f"orphans      {orphans} chunks without a track, {empty} tracks without chunks")
    failures = stats.failure_count
    lines.append(f"failures     {failures} (5xx, connection errors, wrong answers)")
    for kind, what in stats.failures[:10]:
        lines.append(f"  {kind}: {what}")
    ok = failures == 0 and orphans == 0 and empty == 0 and memory_flat
    return ok, lines


async def report_progress(soak, series, started):
    while True:
        await asyncio.sleep(30)
        segments = len(soak.stats.latency.get("segment", []))
        rss = series[-1][1] if series else 0
        print(f"soak: {time.monotonic() - started:5.0f} s  {segments} segments  "
              f"{len(soak.tracks)} tracks  {soak.stats.failure_count} failures  "
              f"RSS {mb(rss)} MB", flush=True)


def main():
    args = parse_args()
    ok = asyncio.run(run(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

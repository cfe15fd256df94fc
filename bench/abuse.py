#!/usr/bin/env python3
"""Full-size forms of the hostile cases of issue 12, against a real `legato serve`.

The test suite (crates/legato/tests/hardening.rs) runs each case scaled down; this script runs
them at the sizes the hostile run used, and prints one summary block per case:

* ``wav``: 8 uploads of a 20-minute WAV at once, each with ``Prefer: respond-async``, at
  default settings. Reports the server's peak RSS (VmHWM), the wall time until every upload
  is ``ready``/``failed`` or was refused, and the statuses. Target: peak RSS < 400 MB, no 5xx,
  every upload processed or refused with 429/413/507.
* ``json``: one seed-style JSON upload of ~680 MB (a ~48-minute WAV as base64), streamed
  from disk by this script. Reports peak RSS. Target: < 150 MB, no 5xx.
* ``mp3``: a 232 MiB MP3 (97 minutes at 320 kbit/s), then a 4-minute MP3 with a 50 MB cover,
  each at default settings until every rendition and the analysis are done. Reports peak
  RSS. Target: < 150 MB each.
* ``connections``: 20,000 idle connections (the client raises its own open-file limit), then
  checks that ``/healthz`` and a streaming playlist answer while they are held, and after the
  header timeout; reports refusals and whether the log loops on "Too many open files".

    python3 bench/abuse.py wav          # or json, mp3, connections, all
    python3 bench/abuse.py json --bin target/release/legato

The binary is --bin, else $LEGATO_BIN, else target/release/legato. Needs ffmpeg. Standard
library only. Each case starts its own server on a free loopback port over a fresh folder.
"""

import argparse
import base64
import http.client
import json
import os
import pathlib
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("LEGATO_BENCH_AUDIO", tempfile.gettempdir())) / "legato-bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tone(seconds, ext, args):
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"tone-{seconds}.{ext}"
    if not path.exists():
        tmp = path.with_suffix(".tmp." + ext)
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
             "-i", f"sine=frequency=440:duration={seconds}:sample_rate=44100", "-ac", "2",
             *args, str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path


class Server:
    def __init__(self, binary, flags=()):
        self.dir = tempfile.TemporaryDirectory(prefix="legato-abuse-")
        self.port = free_port()
        self.log_path = pathlib.Path(self.dir.name) / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
        env["LEGATO_LOG"] = "info"
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data",
             str(pathlib.Path(self.dir.name) / "data"), *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"), env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server exited: {self.log()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit("server did not start")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def conn(self, timeout=600):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, timeout=5):
        c = self.conn(timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def peak_rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def upload_file(server, path, headers, results, index):
    """POSTs a file from disk; a server that answers before the body is sent (429/413/507
    refused before reading) is heard, not reported as a broken pipe. One byte of audio deep in
    the first megabyte differs by `index`: the server answers a file it has already with that
    track (200), and these uploads are meant to be new ones."""
    size = path.stat().st_size
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=600)
    head = "POST /function/crud?name=bench HTTP/1.1\r\nHost: x\r\n"
    for k, v in {**headers, "Content-Length": str(size), "Connection": "close"}.items():
        head += f"{k}: {v}\r\n"
    try:
        sock.sendall((head + "\r\n").encode())
        with open(path, "rb") as f:
            first = bytearray(f.read(1 << 20))
            first[len(first) // 2] ^= index + 1
            f.seek(len(first))
            chunk = bytes(first)
            while chunk:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(chunk)
                chunk = f.read(1 << 20)
    except OSError:
        pass
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except OSError:
        pass
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        status = int(head.split()[1])
    except (IndexError, ValueError):
        results[index] = ("error", answer[:200])
        return
    try:
        results[index] = (status, json.loads(body))
    except ValueError:
        results[index] = (status, None)


def wait_terminal(server, ids, limit=3600):
    deadline = time.time() + limit
    states = {}
    while time.time() < deadline:
        for i in ids:
            if states.get(i) in ("ready", "failed"):
                continue
            status, body = server.get(f"/function/crud/{i}")
            if status == 200:
                states[i] = json.loads(body)["status"]
        if all(states.get(i) in ("ready", "failed") for i in ids):
            return states
        time.sleep(1)
    return states


def case_wav(args):
    wav = tone(20 * 60, "wav", ["-c:a", "pcm_s16le"])
    server = Server(args.bin)
    started = time.time()
    results = [None] * 8
    threads = [
        threading.Thread(target=upload_file, args=(
            server, wav, {"Content-Type": "audio/wav", "Prefer": "respond-async"}, results, i))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r[1]["id"] for r in results if r[0] in (201, 202)]
    states = wait_terminal(server, ids)
    wall = time.time() - started
    statuses = [r[0] for r in results]
    peak = server.peak_rss_mb()
    five = [s for s in statuses if isinstance(s, int) and s >= 500]
    refused_ok = all(s in (201, 202, 429, 413, 507) for s in statuses)
    server.stop()
    print("== 8 x 20-min WAV, Prefer: respond-async, default settings")
    print(f"statuses: {statuses}")
    print(f"final states: {sorted(states.values())}")
    print(f"peak RSS: {peak:.0f} MB (target < 400)")
    print(f"wall time: {wall:.1f} s")
    print(f"5xx: {len(five)}; every upload processed or refused with 429/413/507: {refused_ok}")
    return peak is not None and peak < 400 and not five and refused_ok


def case_json(args):
    # 680 MB of JSON is ~510 MB of audio: a 48-minute stereo 16-bit WAV.
    wav = tone(48 * 60, "wav", ["-c:a", "pcm_s16le"])
    size = wav.stat().st_size
    prefix = b'{"name":"bench","author":"abuse","song_base64":"'
    suffix = b'"}'
    encoded_len = (size + 2) // 3 * 4
    server = Server(args.bin)
    c = server.conn(3600)
    started = time.time()
    c.putrequest("POST", "/function/crud")
    c.putheader("Content-Type", "application/json")
    c.putheader("Prefer", "respond-async")
    c.putheader("Content-Length", str(len(prefix) + encoded_len + len(suffix)))
    c.endheaders()
    c.send(prefix)
    with open(wav, "rb") as f:
        while chunk := f.read(3 << 20):
            c.send(base64.b64encode(chunk))
    c.send(suffix)
    r = c.getresponse()
    body = r.read()
    status = r.status
    track = json.loads(body) if body else {}
    states = wait_terminal(server, [track["id"]]) if status in (201, 202) else {}
    peak = server.peak_rss_mb()
    server.stop()
    print(f"== seed JSON upload of {(len(prefix) + encoded_len + len(suffix)) / 1e6:.0f} MB")
    print(f"status: {status}; final state: {list(states.values())}")
    print(f"peak RSS: {peak:.0f} MB (target < 150)")
    print(f"wall time: {time.time() - started:.1f} s")
    return status < 500 and peak < 150


def id3v2_with_picture(picture_len):
    """An ID3v2.3 tag holding one PNG-signed picture of `picture_len` bytes."""
    body = b"\0image/png\0\x03\0\x89PNG\r\n\x1a\n" + bytes(picture_len - 8)
    frame = b"APIC" + len(body).to_bytes(4, "big") + b"\0\0" + body
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame


def built_mp3(name, minutes, picture_len=0):
    """`minutes` of 320 kbit/s frames (a minute repeated: no Info frame, no tags, so the
    copies are one stream), behind a tag with a picture when `picture_len` is given."""
    path = CACHE / name
    if not path.exists():
        minute = tone(60, "320k.mp3", ["-c:a", "libmp3lame", "-b:a", "320k", "-write_xing", "0",
                                       "-id3v2_version", "0"]).read_bytes()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            if picture_len:
                f.write(id3v2_with_picture(picture_len))
            for _ in range(minutes):
                f.write(minute)
        tmp.rename(path)
    return path


def case_mp3(args):
    """A 232 MiB MP3 and a 4-minute MP3 with a 50 MB cover, each to a fresh server at default
    settings, until its follow-up job (the MP3 ladder, AAC) and the analysis are done."""
    ok = True
    for label, path in (("232 MiB MP3 (97 min at 320 kbit/s)", built_mp3("long-97min.mp3", 97)),
                        ("4-min MP3 with a 50 MB cover",
                         built_mp3("cover-50mb.mp3", 4, picture_len=50 << 20))):
        server = Server(args.bin)
        started = time.time()
        results = [None]
        upload_file(server, path, {"Content-Type": "audio/mpeg"}, results, 0)
        status, track = results[0]
        answered = time.time() - started
        done = False
        deadline = time.time() + 3600
        while status in (200, 201, 202) and time.time() < deadline:
            code, body = server.get(f"/function/crud/{track['id']}")
            now = json.loads(body) if code == 200 else {}
            if now.get("status") == "failed":
                break
            if not now.get("coming") and now.get("loudness") is not None:
                done = True
                break
            time.sleep(1)
        peak = server.peak_rss_mb()
        server.stop()
        print(f"== {label}: {path.stat().st_size / 2**20:.0f} MiB, default settings")
        print(f"status: {status} after {answered:.1f} s; every rendition and the analysis done: "
              f"{done} after {time.time() - started:.0f} s")
        print(f"peak RSS: {peak:.0f} MB (target < 150)")
        ok = ok and done and peak < 150
    return ok


def case_connections(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 25_000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    song = tone(12, "mp3", ["-c:a", "libmp3lame", "-b:a", "128k"])
    server = Server(args.bin, ["--ladder", "none"])
    c = server.conn()
    c.request("POST", "/function/crud", body=song.read_bytes(), headers={"Content-Type": "audio/mpeg"})
    track = json.loads(c.getresponse().read())
    c.close()
    # The client needs descriptors of its own besides the held sockets.
    count = min(args.connections, want - 500)
    held, failed = [], 0
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        except OSError:
            failed += 1
    time.sleep(1)
    during = []
    for path in ("/healthz", track["playlist"]):
        try:
            during.append(server.get(path)[0])
        except OSError as e:
            during.append(str(e))
    # The idle ones are dropped at the header timeout (10 s by default).
    time.sleep(12)
    after = []
    for path in ("/healthz", track["playlist"]):
        try:
            after.append(server.get(path)[0])
        except OSError as e:
            after.append(str(e))
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            data = s.recv(4096)
            if data == b"" or b"503" in data:
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    log = server.log()
    loops = log.count("Too many open files")
    server.stop()
    print(f"== {count} idle connections (client open-file limit {want})")
    print(f"opened: {len(held)}, failed to open: {failed}; closed or refused by the server: {closed}")
    print(f"/healthz and playlist while held: {during}; after the header timeout: {after}")
    print(f"'Too many open files' in the log: {loops}")
    return after == [200, 200] and loops < 10


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=["wav", "json", "mp3", "connections", "all"])
    default_bin = os.environ.get("LEGATO_BIN", str(ROOT / "target" / "release" / "legato"))
    parser.add_argument("--bin", default=default_bin)
    parser.add_argument("--connections", type=int, default=20_000)
    args = parser.parse_args()
    cases = {"wav": case_wav, "json": case_json, "mp3": case_mp3, "connections": case_connections}
    names = list(cases) if args.case == "all" else [args.case]
    ok = True
    for name in names:
        ok = cases[name](args) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

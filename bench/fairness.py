#!/usr/bin/env python3
"""Honest listeners under hostile load (issue #27), side by side for two builds.

For each binary and each attack, a fresh `legato serve` at default settings holds one short
track; 50 honest listeners on 127.0.0.1 fetch its playlist and segments over new connections
(the worst case: a player whose keep-alive was closed) while the attack runs, and the
script reports their success rate and latency (p50/p99). The attacks come from other
loopback addresses, as they would from other hosts:

* ``slow``: 4,200 connections spread over 42 addresses, each sending a Subsonic form POST
  one byte every 5 s (about 820 bytes/s in all), reopened as soon as the server closes one.
* ``one``: one address opening 5,000 sockets and reopening each one the server closes.
* ``idle``: 20,000 idle connections over 200 addresses (two attacking processes: one
  process may hold 20,000 descriptors here).

Goal for the listeners in each: at least 99.9 % answered 200, p99 under 100 ms.

    python3 bench/fairness.py --bin target/release/legato --old /tmp/old/release/legato
    python3 bench/fairness.py --attacks slow,one --seconds 20

Needs ffmpeg. Standard library only. The attackers are child processes of this script.
"""

import argparse
import http.client
import json
import os
import pathlib
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LISTENERS = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def song():
    path = pathlib.Path(tempfile.gettempdir()) / "legato-bench" / "fair-12s.mp3"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.mp3")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
             "-i", "sine=frequency=440:duration=12:sample_rate=44100", "-ac", "2",
             "-c:a", "libmp3lame", "-b:a", "128k", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path.read_bytes()


class Server:
    def __init__(self, binary):
        self.dir = tempfile.TemporaryDirectory(prefix="legato-fair-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data",
             str(pathlib.Path(self.dir.name) / "data"), "--ladder", "none",
             "--aac-ladder", "none", "--lossless", "false"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(pathlib.Path(self.dir.name) / "server.log", "wb"), env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("the server did not start")
        status, body = self.request("POST", "/function/crud?name=fair", song(),
                                    {"Content-Type": "audio/mpeg"})
        track = json.loads(body)
        if status not in (200, 201):
            sys.exit(f"upload: {status} {body[:200]!r}")
        playlist = track["playlist"]
        text = self.request("GET", playlist)[1].decode()
        segment = next(line for line in text.splitlines() if line and not line.startswith("#"))
        base = playlist.rsplit("/", 1)[0]
        self.paths = [playlist, segment if segment.startswith("/") else f"{base}/{segment}"]

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def listen(server, stop, results):
    """One honest listener: playlist, segment, playlist… each over a new connection."""
    i = 0
    while not stop.is_set():
        path = server.paths[i % 2]
        i += 1
        started = time.monotonic()
        try:
            status = server.request("GET", path, timeout=10)[0]
        except OSError as e:
            status = type(e).__name__
        results.append((status, time.monotonic() - started))


# ---- attackers (child processes) ----

def attack(kind, port, count, first_address, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    addresses = {"slow": 42, "one": 1, "idle": 100}[kind]
    held = {}

    def open_one(slot):
        source = f"127.{first_address}.{slot % addresses // 250}.{slot % addresses % 250 + 1}"
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2,
                                         source_address=(source, 0))
            if kind == "slow":
                s.sendall(b"POST /rest/ping.view HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: 1000\r\n\r\n")
            s.setblocking(False)
            held[slot] = s
        except OSError:
            held.pop(slot, None)

    for slot in range(count):
        open_one(slot)
    print(f"attack {kind}: {len(held)} of {count} open", file=sys.stderr, flush=True)
    end = time.time() + seconds
    reopened = 0
    while time.time() < end:
        time.sleep(1 if kind != "slow" else 5)
        for slot in range(count):
            s = held.get(slot)
            alive = s is not None
            if alive:
                try:
                    if kind == "slow":
                        s.send(b"a")
                    elif s.recv(4096) == b"":
                        alive = False
                except BlockingIOError:
                    pass
                except OSError:
                    alive = False
            if not alive:
                if s is not None:
                    s.close()
                reopened += 1
                open_one(slot)
    print(f"attack {kind}: reopened {reopened}", file=sys.stderr, flush=True)


ATTACKS = {
    # kind: [(connections, first address octet) per attacking process]
    "slow": [(4200, 1)],
    "one": [(5000, 2)],
    "idle": [(10_000, 3), (10_000, 4)],
}


def run(binary, kind, seconds):
    server = Server(binary)
    children = []
    if kind != "none":
        for count, octet in ATTACKS[kind]:
            children.append(subprocess.Popen(
                [sys.executable, __file__, "--attacker", kind, "--port", str(server.port),
                 "--count", str(count), "--octet", str(octet),
                 "--seconds", str(seconds + 60)],
                stderr=subprocess.DEVNULL))
        # Until the attack is in place (every connection opened).
        time.sleep(8 if kind != "idle" else 20)
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=listen, args=(server, stop, results), daemon=True)
               for _ in range(LISTENERS)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(15)
    for child in children:
        child.kill()
        child.wait()
    server.stop()
    latencies = sorted(d for _, d in results)
    ok = sum(1 for s, _ in results if s == 200)
    failures = {}
    for s, _ in results:
        if s != 200:
            failures[s] = failures.get(s, 0) + 1

    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0

    return {
        "requests": len(results), "ok": ok,
        "rate": 100.0 * ok / len(results) if results else 0.0,
        "p50": pct(0.50), "p99": pct(0.99), "failures": failures,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("LEGATO_BIN",
                                                        str(ROOT / "target/release/legato")))
    parser.add_argument("--old", help="a build to compare with, side by side")
    parser.add_argument("--attacks", default="none,slow,one,idle")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--attacker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--octet", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:
        attack(args.attacker, args.port, args.count, args.octet, args.seconds)
        return
    builds = [("new", args.bin)] + ([("old", args.old)] if args.old else [])
    print(f"{LISTENERS} honest listeners for {args.seconds} s per attack; new connection per request")
    print(f"{'attack':<6} {'build':<5} {'requests':>9} {'ok %':>8} {'p50 ms':>8} {'p99 ms':>8}  failures")
    passed = True
    for kind in args.attacks.split(","):
        for name, binary in builds:
            r = run(binary, kind, args.seconds)
            print(f"{kind:<6} {name:<5} {r['requests']:>9} {r['rate']:>8.2f} {r['p50']:>8.1f} "
                  f"{r['p99']:>8.1f}  {r['failures'] or ''}", flush=True)
            if name == "new" and (r["rate"] < 99.9 or r["p99"] >= 100):
                passed = False
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()

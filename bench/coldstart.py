"""Cold start and idle memory: exec to the first served segment, legato against the seed's stack.

Rows, each the median of RUNS runs on the same SQLite file and the same segment:
  direct:   `legato function streaming` vs bench/flask_streaming.py (Flask 3 + waitress), the
            function process alone on a loopback port;
  watchdog: the real of-watchdog forking `legato function streaming`, vs the same watchdog
            forking the seed's python3-http stack (bench/python3_http: the template's index.py
            shape and a handler), the time from exec of the watchdog to the first segment
            through the watchdog's port; RSS of the function alone and with the watchdog.
The watchdog rows need OF_WATCHDOG (a binary built by hand, see deploy/openfaas/README.md)
and root: each run gets its own network namespace, as every watchdog binds port 8081.
The segment is the first one of the track's first variant, read from its playlists.
Usage: python3 bench/coldstart.py LEGATO_BIN SQLITE_FILE TRACK_ID [RUNS]
"""
import contextlib
import ctypes
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pids):
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def get(port, path, timeout=1):
    """(status, body) of one GET on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def first_segment_path(legato, sqlite_file, track):
    """Asks a legato for the track's playlist (and its first variant's) for a segment name."""
    port = free_port()
    env = dict(os.environ, LEGATO_LISTEN=f"127.0.0.1:{port}", LEGATO_STORE=f"sqlite:{sqlite_file}", LEGATO_LOG="warn")
    proc = subprocess.Popen([legato, "function", "streaming"], env=env, stderr=subprocess.DEVNULL)
    try:
        playlist = f"/{track}/index.m3u8"
        for _ in range(3):
            body = poll(lambda: get(port, playlist), 10)
            uri = next(line for line in body.decode().splitlines() if line and not line.startswith("#"))
            path = f"/{track}/{uri.split('?')[0]}"
            if not uri.endswith(".m3u8"):
                return path
            playlist = path
        raise RuntimeError("no segment found in the playlists")
    finally:
        proc.terminate()
        proc.wait()


def poll(attempt, seconds):
    end = time.perf_counter() + seconds
    while True:
        try:
            status, body = attempt()
            if status == 200:
                return body
        except OSError:
            pass
        if time.perf_counter() > end:
            raise RuntimeError(f"nothing served within {seconds} s")
        time.sleep(0.0005)


@contextlib.contextmanager
def netns():
    """A fresh network namespace with loopback up, entered by this thread (and so by the
    processes it starts) for the duration of the block."""
    name = f"legato-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        yield
    finally:
        _libc.setns(home, _CLONE_NEWNET)
        os.close(fd)
        os.close(home)
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_once(cmd, env, port, path, cwd=None):
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: get(port, path), 30)
        elapsed = time.perf_counter() - started
        # Idle memory after the first request: what a scaled-to-one replica costs.
        time.sleep(1.0)
        kids = children(proc.pid)
        # The function alone (the watchdog's child when there is one), and everything.
        return elapsed, rss_mb(kids or [proc.pid]), rss_mb([proc.pid, *kids])
    finally:
        kids = children(proc.pid)
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        proc.kill()
        proc.wait()
        for kid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, 9)


def main():
    legato, sqlite_file, track = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    path = first_segment_path(legato, sqlite_file, track)
    print(f"segment: {path}")
    base = dict(os.environ, LEGATO_LOG="warn", BENCH_SQLITE=sqlite_file)
    stacks = {}

    def legato_direct():
        port = free_port()
        return [legato, "function", "streaming"], dict(base, LEGATO_LISTEN=f"127.0.0.1:{port}", LEGATO_STORE=f"sqlite:{sqlite_file}"), port, None

    def flask_direct():
        port = free_port()
        return [sys.executable, os.path.join(HERE, "flask_streaming.py"), str(port)], base, port, None

    stacks["direct: legato function streaming"] = legato_direct
    stacks["direct: flask_streaming.py (Flask+waitress)"] = flask_direct

    watchdog = os.environ.get("OF_WATCHDOG", "")
    if watchdog and os.geteuid() == 0:
        # The watchdog's own settings, as stack.yml and the python3-http template give them.
        common = dict(base, mode="http", healthcheck_interval="1s", prefix_logs="false")

        def legato_watchdog():
            env = dict(common, fprocess=f"{legato} function streaming", upstream_url="http://127.0.0.1:8082",
                       LEGATO_LISTEN="127.0.0.1:8082", LEGATO_STORE=f"sqlite:{sqlite_file}", ready_path="/healthz")
            return [watchdog], env, 8080, None

        def python3_http_watchdog():
            env = dict(common, fprocess=f"{sys.executable} index.py", upstream_url="http://127.0.0.1:5000")
            return [watchdog], env, 8080, os.path.join(HERE, "python3_http")

        stacks["of-watchdog 0.11.6 + legato function streaming"] = legato_watchdog
        stacks["of-watchdog 0.11.6 + python3-http (index.py, Flask+waitress)"] = python3_http_watchdog
    else:
        print("watchdog rows skipped: set OF_WATCHDOG to an of-watchdog binary and run as root")

    results = {}
    for label, make in stacks.items():
        times, rss, total = [], [], []
        for _ in range(runs):
            cmd, env, port, cwd = make()
            with netns() if cmd[0] == watchdog else contextlib.nullcontext():
                t, m, everything = run_once(cmd, env, port, path, cwd)
            times.append(t * 1000)
            rss.append(m)
            total.append(everything)
        results[label] = (statistics.median(times), statistics.median(rss), statistics.median(total))
    width = max(len(label) for label in results)
    print(f"{'stack':{width}s}  exec to 1st segment (median of {runs})  idle RSS: function  with watchdog")
    for label, (t, m, everything) in results.items():
        print(f"{label:{width}s}  {t:10.1f} ms                   {m:8.1f} MB  {everything:8.1f} MB")
    pairs = [("direct: legato function streaming", "direct: flask_streaming.py (Flask+waitress)"),
             ("of-watchdog 0.11.6 + legato function streaming", "of-watchdog 0.11.6 + python3-http (index.py, Flask+waitress)")]
    for ours, theirs in pairs:
        if ours in results and theirs in results:
            (lt, lm, _), (ft, fm, _) = results[ours], results[theirs]
            print(f"{ours.split(':')[0].split(' +')[0]}: legato starts {ft / lt:.0f}x faster and uses {lm / fm * 100:.0f} % of the memory (targets: >= 25x, <= 25 %)")


if __name__ == "__main__":
    main()

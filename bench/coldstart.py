"""Cold start and idle memory: exec of the function process to the first served segment.

Runs `legato function streaming` and the seed's stack (Flask 3 + waitress, as its
python3-http template) side by side on the same SQLite file, several times each, and prints
the median time to the first segment and the RSS after start.
Usage: python3 bench/coldstart.py LEGATO_BIN SQLITE_FILE TRACK_ID [RUNS]
"""
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def first_segment(cmd, env, port, path):
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                    head = sock.recv(64)
                    if head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"):
                        while sock.recv(65536):
                            pass
                        elapsed = time.perf_counter() - started
                        break
            except OSError:
                pass
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"{cmd[0]} did not serve within 30 s")
            time.sleep(0.0005)
        time.sleep(1.0)
        # Idle memory after the first request: what a scaled-to-one replica costs.
        return elapsed, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main():
    legato, sqlite_file, track, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4] if len(sys.argv) > 4 else 10)
    here = os.path.dirname(os.path.abspath(__file__))
    results = {}
    for label in ("legato", "flask+waitress"):
        times, rss = [], []
        for _ in range(runs):
            port = free_port()
            env = dict(os.environ)
            if label == "legato":
                env.update(LEGATO_LISTEN=f"127.0.0.1:{port}", LEGATO_STORE=f"sqlite:{sqlite_file}", LEGATO_LOG="warn")
                cmd = [legato, "function", "streaming"]
            else:
                env.update(BENCH_SQLITE=sqlite_file)
                cmd = [sys.executable, os.path.join(here, "flask_streaming.py"), str(port)]
            t, m = first_segment(cmd, env, port, f"/{track}/seg000.ts")
            times.append(t * 1000)
            rss.append(m)
        results[label] = (statistics.median(times), statistics.median(rss))
        print(f"{label:15s} exec to first segment: median {results[label][0]:8.1f} ms over {runs} runs; idle RSS {results[label][1]:6.1f} MB")
    (lt, lm), (ft, fm) = results["legato"], results["flask+waitress"]
    print(f"legato starts {ft / lt:.0f}x faster and uses {lm / fm * 100:.0f} % of the memory (targets: >= 25x, <= 25 %)")


if __name__ == "__main__":
    main()

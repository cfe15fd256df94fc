"""Helpers shared by the tests: starting the real server, ids, ffmpeg."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence

import pytest
import requests

REPO = Path(__file__).resolve().parents[3]
READY_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary() -> str:
    binary = os.environ.get("LEGATO_BIN") or str(REPO / "target" / "debug" / "legato")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(
            "Legato server binary not found or not executable: %s\n"
            "Build it with `cargo build` at the repo root, or point LEGATO_BIN at it." % binary,
            pytrace=False,
        )
    return binary


@dataclass
class Server:
    base_url: str  # gateway root, e.g. http://127.0.0.1:41234
    data_dir: Path
    log_path: Path
    process: "subprocess.Popen[bytes]"

    @property
    def crud_url(self) -> str:
        return self.base_url + "/function/crud"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def run_server(work_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[Server]:
    """Start ``legato serve`` on a free port with an empty data dir under ``work_dir``."""
    binary = server_binary()
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    failures: List[str] = []
    # The server reads LEGATO_* settings from the environment (LEGATO_STORE would override
    # --data); start it from a clean slate so the tests see an empty store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    for attempt in range(3):  # another process may grab the port between probe and bind
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        log_path = work_dir / ("server-%d.log" % attempt)
        cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data", str(data_dir), *extra_args]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        server = Server(base, data_dir, log_path, process)
        last = "no answer"
        deadline = time.monotonic() + READY_TIMEOUT
        ready = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                r = requests.get(server.crud_url, timeout=2)
                if r.status_code == 200:
                    ready = True
                    break
                last = "GET %s answered %d: %s" % (server.crud_url, r.status_code, r.text[:300])
            except requests.RequestException as e:
                last = "GET %s: %s" % (server.crud_url, e)
            time.sleep(0.1)
        if ready:
            try:
                yield server
            finally:
                _stop(process)
            return
        _stop(process)
        failures.append(
            "attempt %d: `%s` %s (last: %s)\n--- server log ---\n%s"
            % (
                attempt + 1,
                " ".join(cmd),
                "exited with %s" % process.returncode if process.returncode is not None else "not ready",
                last,
                server.log_tail(),
            )
        )
        if process.returncode is None or "in use" not in server.log_tail().lower():
            break  # not a port clash: retrying will not help
    pytest.fail("the Legato server did not become ready within %.0fs:\n%s" % (READY_TIMEOUT, "\n".join(failures)),
                pytrace=False)


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg") or ("/usr/bin/ffmpeg" if os.path.exists("/usr/bin/ffmpeg") else None)
    if not found:
        pytest.fail("ffmpeg is needed to generate test MP3s (apt-get install ffmpeg)", pytrace=False)
    return found


def random_id() -> str:
    """A well-formed (24 hex) id that no track has."""
    return uuid.uuid4().hex[:24]


class Stub:
    """A tiny local HTTP server answering what the test tells it, recording every request.

    Used for what the real server cannot be made to do on demand (429, 5xx, slow answers)
    and to inspect the exact bytes the client sends.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        stub = self
        self.requests: List[dict] = []
        self.handler = None  # callable(request dict) -> (status, headers dict, body bytes)
        self.delay = 0.0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                stub.requests.append(req)
                if stub.delay:
                    time.sleep(stub.delay)
                status, headers, payload = stub.handler(req) if stub.handler else (200, {}, b"[]")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


#: What the server fills in after the upload: the analysis, and the renditions the follow-up
#: job of an MP3 publishes (the MP3 plays at once; its AAC rungs come after).
AFTER_UPLOAD = ("loudness", "true_peak", "peaks", "job", "coming", "playlist", "variants")


def settled_dict(track: dict) -> dict:
    """A track's JSON without the fields the server fills in after the upload."""
    return {k: v for k, v in track.items() if k not in AFTER_UPLOAD}

"""The OpenSubsonic (/rest) suite's fixtures: a real `legato serve` on a temporary store with
two users and a small tagged library, and clients that validate every JSON answer against the
OpenSubsonic schema.

The server binary is $LEGATO_BIN (default <repo>/target/debug/legato); nothing is built here.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import media  # noqa: E402
import spec as spec_mod  # noqa: E402

REPO = HERE.parents[1]
API_VERSION = "1.16.1"
CLIENT = "legato-subsonic-tests"

ADMIN, ADMIN_PASSWORD = "admin", "admin-pässword 1"
ALICE, ALICE_PASSWORD = "alice", "alice-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def salt() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(12))


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from a chosen loopback address (127.0.0.0/8 is all ours on Linux)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


_next_source = [0]


def fresh_source() -> str:
    """A loopback address no request came from yet: the server bounds failed sign-ins per
    client address, so requests meant to fail come from their own address and do not lock
    the rest of the suite out."""
    _next_source[0] += 1
    n = _next_source[0]
    return "127.0.%d.%d" % (10 + n // 250, 1 + n % 250)


class SubsonicError(AssertionError):
    def __init__(self, endpoint: str, error: Dict[str, Any]):
        super().__init__("%s answered error %s: %s" % (endpoint, error.get("code"), error.get("message")))
        self.code = error.get("code")
        self.error = error


class Server:
    """A running `legato serve` and the ways to call its /rest API."""

    def __init__(self, binary: str, work: Path):
        self.binary = binary
        self.work = work
        self.data = work / "data"
        self.data.mkdir()
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
        self.env["LEGATO_LOG"] = os.environ.get("LEGATO_TEST_SERVER_LOG", "info")
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = work / "server.log"
        self.http = requests.Session()
        self.passwords = {ADMIN: ADMIN_PASSWORD, ALICE: ALICE_PASSWORD}
        self.api_keys: Dict[str, str] = {}
        self.tracks: List[media.TrackSpec] = []
        self.spec = spec_mod.spec()
        self.validated = 0
        self.sessions: Dict[str, requests.Session] = {}

    # ------------------------------------------------------------ process

    def cli(self, *args: str, stdin: Optional[str] = None) -> str:
        cmd = [self.binary, *args, "--data", str(self.data)]
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=self.env, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("`%s` failed (exit %d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def add_user(self, name: str, password: str, admin: bool = False) -> None:
        pw = self.work / ("%s.password" % name)
        pw.write_text(password + "\n")
        pw.chmod(0o600)
        self.cli("user", "add", name, *(["--admin"] if admin else []), "--password-file", str(pw))

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data", str(self.data), "--listen", "127.0.0.1:%d" % self.port],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + self.log_tail())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # ------------------------------------------------------------ library

    def upload(self, t: media.TrackSpec) -> None:
        with open(t.path, "rb") as f:
            r = self.http.post(self.base + "/function/crud", data=f, headers={"Content-Type": t.content_type},
                               timeout=120)
        assert r.status_code in (201, 202), "upload of %s: %d %s" % (t.file, r.status_code, r.text[:500])
        t.legato_id = r.json()["id"]

    def wait_ready(self, t: media.TrackSpec, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            body = self.http.get(self.base + "/function/crud/%s" % t.legato_id, timeout=30).json()
            # Ready is playable; the follow-up job of an MP3 adds its other renditions.
            if body.get("status") == "ready" and "job" not in body:
                return
            assert body.get("status") != "failed", "%s failed to process: %s" % (t.file, body)
            assert time.monotonic() < deadline, "%s still %s after %ss" % (t.file, body.get("status"), timeout)
            time.sleep(0.2)

    def track(self, title: str) -> media.TrackSpec:
        return next(t for t in self.tracks if t.title == title)

    # ------------------------------------------------------------ /rest

    def auth(self, user: Optional[str] = ADMIN, how: str = "token") -> Dict[str, str]:
        """Query parameters authenticating ``user``: ``token`` (t+s), ``plain`` (p), ``enc``
        (p=enc:hex), ``apikey`` (the user's API key, no u), or ``none``."""
        if how == "none":
            return {}
        if how == "apikey":
            return {"apiKey": self.api_keys[user]}
        pw = self.passwords[user]
        if how == "token":
            s = salt()
            return {"u": user, "s": s, "t": hashlib.md5((pw + s).encode()).hexdigest()}
        if how == "plain":
            return {"u": user, "p": pw}
        if how == "enc":
            return {"u": user, "p": "enc:" + pw.encode().hex()}
        raise ValueError(how)

    def request(self, endpoint: str, params: Any = None, *, user: Optional[str] = ADMIN, how: str = "token",
                method: str = "GET", fmt: Optional[str] = "json", view: bool = False, headers=None,
                extra: Optional[Dict[str, str]] = None, stream: bool = False,
                source: Optional[str] = None) -> requests.Response:
        """A raw /rest request. ``params`` is a dict or a list of pairs (repeated keys). JSON
        answers are validated against the endpoint's schema on the way (``response.subsonic``
        then holds the inner object); XML answers are parsed (``response.xml``). ``source``:
        the loopback address to connect from (default 127.0.0.1)."""
        pairs: List = []
        base = {"v": API_VERSION, "c": CLIENT}
        if fmt:
            base["f"] = fmt
        base.update(self.auth(user, how))
        if extra:
            base.update(extra)
        pairs += list(base.items())
        if isinstance(params, dict):
            pairs += [(k, v) for k, v in params.items() if v is not None]
        elif params:
            pairs += list(params)
        url = "%s/rest/%s%s" % (self.base, endpoint, ".view" if view else "")
        http = self.http if source is None else self.session_from(source)
        if method == "GET":
            r = http.get(url, params=pairs, headers=headers, timeout=60, stream=stream)
        else:
            r = http.post(url, data=pairs, headers=headers, timeout=60, stream=stream)
        self.check_envelope(endpoint, r)
        return r

    def session_from(self, source: str) -> requests.Session:
        if source not in self.sessions:
            sess = requests.Session()
            sess.mount("http://", SourceAdapter(source))
            self.sessions[source] = sess
        return self.sessions[source]

    def check_envelope(self, endpoint: str, r: requests.Response) -> None:
        ctype = r.headers.get("Content-Type", "")
        r.subsonic = None  # type: ignore[attr-defined]
        r.xml = None  # type: ignore[attr-defined]
        if "json" in ctype:
            body = r.json()
            self.spec.validate(endpoint, body)
            self.validated += 1
            r.subsonic = body["subsonic-response"]  # type: ignore[attr-defined]
        elif "xml" in ctype:
            root = spec_mod.xml_to_tree(r.content)
            r.xml = root  # type: ignore[attr-defined]

    def call(self, endpoint: str, params: Any = None, **kw) -> Dict[str, Any]:
        """A JSON /rest call that must succeed: the inner ``subsonic-response`` object."""
        r = self.request(endpoint, params, **kw)
        assert r.status_code == 200, "%s: HTTP %d %s" % (endpoint, r.status_code, r.text[:500])
        assert r.subsonic is not None, "%s: not a JSON answer (%s): %r" % (
            endpoint, r.headers.get("Content-Type"), r.content[:300])
        if r.subsonic["status"] != "ok":
            raise SubsonicError(endpoint, r.subsonic.get("error", {}))
        assert r.subsonic["version"] and r.subsonic["openSubsonic"] is True, r.subsonic
        return r.subsonic

    def error(self, endpoint: str, params: Any = None, **kw) -> Dict[str, Any]:
        """A JSON /rest call that must fail: HTTP 200 and the ``error`` object. Sent from a
        fresh client address unless ``source`` is given (see fresh_source)."""
        kw.setdefault("source", fresh_source())
        r = self.request(endpoint, params, **kw)
        assert r.status_code == 200, "%s: HTTP %d (a Subsonic error is HTTP 200): %s" % (
            endpoint, r.status_code, r.text[:300])
        assert r.subsonic is not None, "%s: not a JSON answer: %r" % (endpoint, r.content[:300])
        assert r.subsonic["status"] == "failed", "%s succeeded: %s" % (endpoint, r.subsonic)
        return r.subsonic["error"]

    def connection(self, user: str = ADMIN, *, api_key: bool = False, legacy: bool = False, use_get: bool = False):
        import libopensonic

        if api_key:
            c = libopensonic.Connection("http://127.0.0.1", api_key=self.api_keys[user], port=self.port,
                                        server_path="", app_name=CLIENT, use_get=use_get)
        else:
            c = libopensonic.Connection("http://127.0.0.1", username=user, password=self.passwords[user],
                                        port=self.port, server_path="", app_name=CLIENT,
                                        legacy_auth=legacy, use_get=use_get)
        return c


def _install_validation_hook(server: Server) -> None:
    """Every JSON answer libopensonic reads is validated against the endpoint's schema."""
    from libopensonic._async import connection as aconn

    if getattr(aconn.AsyncConnection, "_legato_hooked", False):
        return
    orig_info = aconn.AsyncConnection._handle_info_res
    orig_bin = aconn.AsyncConnection._handle_bin_res

    async def info(self, res):
        data = await res.json()  # aiohttp keeps the body: the original reads it again
        server.spec.validate(spec_mod.endpoint_name(res.url.path), data)
        server.validated += 1
        return await orig_info(self, res)

    async def binary(self, res):
        ctype = res.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            data = await res.json()
            server.spec.validate(spec_mod.endpoint_name(res.url.path), data)
            server.validated += 1
        return await orig_bin(self, res)

    aconn.AsyncConnection._handle_info_res = info
    aconn.AsyncConnection._handle_bin_res = binary
    aconn.AsyncConnection._legato_hooked = True


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("LEGATO_BIN", str(REPO / "target/debug/legato"))
    if not os.access(binary, os.X_OK):
        pytest.exit("no server binary at %s: build it (cargo build -p legato) or set LEGATO_BIN" % binary, 2)
    work = Path(tempfile.mkdtemp(prefix="legato-subsonic-tests-"))
    srv = Server(binary, work)
    _servers.append(srv)
    keep = os.environ.get("LEGATO_KEEP_TEST_DATA") == "1"
    try:
        # Users before the server starts (the CLI on the same store)...
        srv.add_user(ADMIN, ADMIN_PASSWORD, admin=True)
        srv.start()
        # ... and while it runs.
        srv.add_user(ALICE, ALICE_PASSWORD)
        srv.api_keys[ALICE] = srv.cli("user", "key", ALICE, "--label", "tests").strip()
        srv.api_keys[ADMIN] = srv.cli("user", "key", ADMIN, "--label", "tests").strip()
        assert srv.api_keys[ALICE] and "\n" not in srv.api_keys[ALICE], srv.api_keys
        audio = work / "audio"
        audio.mkdir()
        srv.tracks = [media.make(t, audio) for t in media.library()]
        for t in srv.tracks:
            srv.upload(t)
            # Distinct creation times, so "newest" has one right order.
            time.sleep(0.05)
        for t in srv.tracks:
            srv.wait_ready(t)
        _install_validation_hook(srv)
        yield srv
    except BaseException:
        sys.stderr.write("\n--- server log (%s) ---\n%s\n" % (srv.log_path, srv.log_tail(80)))
        raise
    finally:
        srv.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def songs(server) -> Dict[str, Dict[str, Any]]:
    """title -> the Subsonic song (Child) of each uploaded track, found with an empty search3;
    also fills each TrackSpec's song_id."""
    body = server.call("search3", {"query": "", "songCount": 500, "artistCount": 0, "albumCount": 0})
    found = {s["title"]: s for s in body["searchResult3"].get("song", [])}
    missing = [t.title for t in server.tracks if t.title not in found]
    assert not missing, "search3 query='' did not return %s (got %s)" % (missing, sorted(found))
    for t in server.tracks:
        t.song_id = found[t.title]["id"]
    return found


@pytest.fixture(scope="session")
def albums(server, songs) -> Dict[str, Dict[str, Any]]:
    """album name -> AlbumID3 (getAlbumList2 alphabeticalByName, all of them)."""
    body = server.call("getAlbumList2", {"type": "alphabeticalByName", "size": 500})
    return {a["name"]: a for a in body["albumList2"].get("album", [])}


@pytest.fixture(scope="session")
def admin_conn(server):
    c = server.connection(ADMIN)
    yield c
    c.cleanup()


@pytest.fixture(scope="session")
def alice_conn(server):
    c = server.connection(ALICE)
    yield c
    c.cleanup()


_servers: List[Server] = []


def pytest_terminal_summary(terminalreporter):
    for srv in _servers:
        terminalreporter.write_line("OpenSubsonic schema: %d JSON answers validated" % srv.validated)

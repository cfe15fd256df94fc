"""Legato's functions behind the real of-watchdog, and the layout faas-cli builds.

Needs the two OpenFaaS binaries, built by hand from their public sources (the Go module
proxy does not serve them; see deploy/openfaas/README.md):
    OF_WATCHDOG=/path/to/of-watchdog FAAS_CLI=/path/to/faas-cli python3 deploy/openfaas/test_watchdog.py
and root (network namespaces), ffmpeg, and the legato binary (LEGATO_BIN, default
target/debug/legato). Without OF_WATCHDOG and FAAS_CLI it prints one line and exits 0.

Every of-watchdog binds its metrics port 8081 on all interfaces, so each watchdog+function
pair runs in its own network namespace; the client side enters that namespace too (setns on
the calling thread), so all traffic stays on that namespace's loopback.
"""

import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WATCHDOG = os.environ.get("OF_WATCHDOG", "")
FAAS_CLI = os.environ.get("FAAS_CLI", "")
LEGATO = os.environ.get("LEGATO_BIN", os.path.join(ROOT, "target", "debug", "legato"))
API_KEY = "watchdog-suite-key"
SUBSONIC_KEY = "5e" * 32
MB = 1024 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_HOME_NS = None


def skip_reason():
    """Why the suite cannot run here, or None."""
    if not WATCHDOG or not FAAS_CLI:
        return "OF_WATCHDOG and FAAS_CLI are not set (build of-watchdog and faas-cli by hand, see deploy/openfaas/README.md)"
    for path in (WATCHDOG, FAAS_CLI, LEGATO):
        if not os.access(path, os.X_OK):
            return f"{path} is not an executable"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ffmpeg"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextlib.contextmanager
def netns(name):
    """Runs the block on this thread inside the network namespace `name`."""
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
        yield
    finally:
        _libc.setns(_HOME_NS, _CLONE_NEWNET)
        os.close(fd)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers.get('content-type')} {self.body[:200]!r}>"


def request(ns, method, path, body=None, headers=None, port=8080, timeout=120, chunked=False):
    """One request on a fresh connection made inside `ns`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    with netns(ns):
        conn.connect()
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        headers = dict(headers or {})
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        elif body is not None and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        send_error = None
        try:
            if chunked:
                for piece in body:
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            elif isinstance(body, (bytes, bytearray)):
                conn.send(body)
            elif body is not None:
                for piece in body:
                    conn.send(piece)
        except OSError as err:  # the answer may still be readable
            send_error = err
        try:
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise ConnectionError(f"no response (send error: {send_error}): {err}") from err
        data = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def zeros(total, piece=MB):
    sent = 0
    block = bytes(piece)
    while sent < total:
        n = min(piece, total - sent)
        yield block[:n]
        sent += n


def multipart(fields, file_bytes, boundary="legato-watchdog-suite"):
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="song"; filename="song.mp3"\r\n'
        "Content-Type: audio/mpeg\r\n\r\n".encode()
    )
    return b"".join(parts) + file_bytes + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def copy_of(song, label):
    """The same song as another file (an ID3v1 tag of its own at the end): the crud function
    answers an upload of a file it has with that track, so tests wanting several tracks send
    several files."""
    title = label.encode()[:30].ljust(30, b"\0")
    return song + b"TAG" + title + bytes(30 + 30 + 4 + 30) + b"\xff"


def mp3(seconds, frequency=440):
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}",
         "-ac", "2", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-"],
        check=True, capture_output=True,
    )
    return out.stdout


class Pair:
    """One of-watchdog and the function it forks, in a network namespace of their own."""

    def __init__(self, suite_dir, function, store, extra_env=None, healthcheck="2s", ns=None):
        # A namespace given by the caller (one FerretDB listens in) is the caller's to delete.
        self.owns_ns = ns is None
        self.ns = ns or new_netns()
        self.function = function
        # The watchdog's lock file lives in TMPDIR: one per pair, or one pair's SIGTERM
        # would mark the others unhealthy.
        self.tmp = tempfile.mkdtemp(prefix="pair-", dir=suite_dir)
        secrets = os.path.join(self.tmp, "secrets")
        os.mkdir(secrets)
        with open(os.path.join(secrets, "legato-api-key"), "w") as f:
            f.write(API_KEY + "\n")
        with open(os.path.join(secrets, "legato-store-uri"), "w") as f:
            f.write(store + "\n")
        self.subsonic_key = os.path.join(secrets, "legato-subsonic-key")
        with open(self.subsonic_key, "w") as f:
            f.write(SUBSONIC_KEY + "\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TMPDIR": self.tmp,
            "fprocess": f"{LEGATO} function {function}",
            "mode": "http",
            "upstream_url": "http://127.0.0.1:8082",
            "LEGATO_LISTEN": "127.0.0.1:8082",
            "LEGATO_SECRETS_DIR": secrets,
            "LEGATO_LOG": "info",
            "ready_path": "/healthz",
            "healthcheck_interval": healthcheck,
            "read_timeout": "120s",
            "write_timeout": "125s",
            "exec_timeout": "125s",
            "prefix_logs": "false",
        }
        env.update(extra_env or {})
        self.log_path = os.path.join(self.tmp, "watchdog.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, WATCHDOG], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.wait_ready()
        self.function_pid = self._function_pid()

    def _function_pid(self):
        # `ip netns exec` execs the watchdog in place, so the watchdog is self.proc.
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            children = f.read().split()
        return int(children[0]) if children else None

    def wait_ready(self, deadline=20):
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the watchdog exited: {self.logs()}")
            try:
                last = request(self.ns, "GET", "/_/ready", timeout=5)
                if last.status == 200:
                    return
            except (OSError, ConnectionError) as err:
                last = err
            time.sleep(0.05)
        raise AssertionError(f"not ready after {deadline} s ({last}): {self.logs()}")

    def get(self, path, **kw):
        return request(self.ns, "GET", path, **kw)

    def post(self, path, body, headers=None, **kw):
        headers = dict(headers or {})
        headers.setdefault("Authorization", f"Bearer {API_KEY}")
        return request(self.ns, "POST", path, body=body, headers=headers, **kw)

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.function_pid:
            wait_gone(self.function_pid, 15, kill=True)
        self.log.close()
        if self.owns_ns:
            subprocess.run(["ip", "netns", "del", self.ns], check=False)


def new_netns():
    name = f"legato-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    return name


def wait_gone(pid, seconds, kill=False):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
            return True
        time.sleep(0.05)
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return False


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)
    except FileNotFoundError:
        return True


class WatchdogSuite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="legato-watchdog-")
        cls.store = "sqlite:" + os.path.join(cls.dir, "legato.sqlite3")
        cls.song = mp3(12)
        cls.pairs = []

    @classmethod
    def tearDownClass(cls):
        for pair in cls.pairs:
            pair.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def pair(self, function, store=None, **kw):
        pair = Pair(self.dir, function, store or self.store, **kw)
        self.pairs.append(pair)
        return pair

    def until_ready(self, crud, track_id, seconds=60):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            track = crud.get(f"/{track_id}").json()
            if track["status"] != "processing":
                return track
            time.sleep(0.2)
        self.fail(f"{track_id} still processing after {seconds} s")

    def decoded_seconds(self, ns, url):
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "ffmpeg", "-v", "error", "-i", url, "-f", "s16le", "-ac", "2", "-ar", "44100", "-"],
            capture_output=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr.decode(errors="replace"))
        return len(out.stdout) / (44100 * 4)


class CrudAndStreaming(WatchdogSuite):
    """Every upload form through the crud watchdog, and playback through the streaming one."""

    def test_uploads_in_every_form_play_through_the_streaming_watchdog(self):
        crud, streaming = self.pair("crud"), self.pair("streaming")
        chunked = copy_of(self.song, "chunked")
        forms = {
            "raw": dict(body=copy_of(self.song, "raw"), headers={"Content-Type": "audio/mpeg"}),
            "chunked": dict(body=[chunked[i:i + 65536] for i in range(0, len(chunked), 65536)],
                            headers={"Content-Type": "audio/mpeg"}, chunked=True),
        }
        body, content_type = multipart({"name": "multipart", "author": "suite"}, copy_of(self.song, "multipart"))
        forms["multipart"] = dict(body=body, headers={"Content-Type": content_type})
        import base64
        seed = json.dumps({"name": "seed", "author": "suite", "song_base64": base64.b64encode(copy_of(self.song, "seed")).decode()})
        forms["seed JSON without Content-Type"] = dict(body=seed.encode(), headers={})
        for form, kw in forms.items():
            with self.subTest(form=form):
                response = crud.post(f"/?name={form.replace(' ', '%20')}&author=suite", **kw)
                self.assertIn(response.status, (201, 202), response)
                track = response.json()
                self.assertEqual(response.headers.get("content-type"), "application/json", response)
                ready = self.until_ready(crud, track["id"])
                self.assertEqual(ready["status"], "ready", ready)
                path = ready["playlist"].removeprefix("/function/streaming")
                playlist = streaming.get(path)
                self.assertEqual(playlist.status, 200, playlist)
                self.assertTrue(playlist.body.startswith(b"#EXTM3U"), playlist)
                seconds = self.decoded_seconds(streaming.ns, f"http://127.0.0.1:8080{path}")
                self.assertAlmostEqual(seconds, 12.0, delta=0.2, msg=form)
        listing = crud.get("/")
        self.assertEqual(listing.status, 200)
        self.assertGreaterEqual(len(listing.json()), len(forms))


class OversizedUploads(WatchdogSuite):
    """The watchdog forwards bodies chunked, without Content-Length: every size and framing
    must still get the function's 413 JSON, never the watchdog's empty 500."""

    def test_413_json_at_every_size_and_framing(self):
        crud = self.pair("crud", extra_env={"LEGATO_MAX_UPLOAD_MB": "8"})
        cases = [
            ("raw", 9 * MB), ("raw", 100 * MB), ("raw", 656 * MB),
            ("chunked", 9 * MB), ("chunked", 100 * MB), ("chunked", 700 * MB),
            ("multipart", 100 * MB), ("seed JSON", 40 * MB),
        ]
        for framing, size in cases:
            with self.subTest(framing=framing, mb=size // MB):
                if framing == "raw":
                    response = crud.post("/?name=big", zeros(size), {"Content-Type": "audio/mpeg", "Content-Length": str(size)})
                elif framing == "chunked":
                    response = crud.post("/?name=big", zeros(size), {"Content-Type": "audio/mpeg"}, chunked=True)
                elif framing == "multipart":
                    head = (b'--b\r\nContent-Disposition: form-data; name="song"; filename="a.mp3"\r\n'
                            b"Content-Type: audio/mpeg\r\n\r\n")
                    tail = b"\r\n--b--\r\n"
                    body = [head, *zeros(size), tail]
                    response = crud.post("/", body, {"Content-Type": "multipart/form-data; boundary=b",
                                                     "Content-Length": str(len(head) + size + len(tail))})
                else:
                    body = [b'{"name":"big","song_base64":"', *(b"A" * len(p) for p in zeros(size)), b'"}']
                    response = crud.post("/", body, {"Content-Length": str(size + 32)})
                self.assertEqual(response.status, 413, response)
                self.assertEqual(response.json()["error"]["code"], "payload-too-large", response)
        # The function is still there and answers.
        self.assertEqual(crud.get("/_/ready").status, 200)


class Sigterm(WatchdogSuite):
    """SIGTERM to the watchdog while uploads and reads go on."""

    def traffic_through_sigterm(self, pair):
        results, accepted, stop = [], [], threading.Event()
        small = mp3(2, 660)

        def upload_loop():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = pair.post("/?name=sigterm&author=suite", copy_of(small, f"sigterm {n}"),
                                  {"Content-Type": "audio/mpeg"}, timeout=30)
                except (OSError, ConnectionError) as err:
                    results.append(("upload", str(err), time.monotonic()))
                    time.sleep(0.02)
                    continue
                results.append(("upload", r.status, time.monotonic()))
                if r.status == 201:
                    accepted.append(r.json()["id"])

        def read_loop():
            while not stop.is_set():
                try:
                    r = pair.get("/?limit=5", timeout=30)
                    results.append(("list", r.status, time.monotonic()))
                except (OSError, ConnectionError) as err:
                    results.append(("list", str(err), time.monotonic()))
                    time.sleep(0.02)

        threads = [threading.Thread(target=f) for f in (upload_loop, upload_loop, read_loop)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        signalled = time.monotonic()
        pair.terminate()
        pair.proc.wait(60)
        stop.set()
        for t in threads:
            t.join(60)
        return results, accepted, signalled

    def test_no_5xx_in_the_sigterm_window_and_no_accepted_upload_lost(self):
        crud = self.pair("crud")
        results, accepted, signalled = self.traffic_through_sigterm(crud)
        after = [r for r in results if r[2] > signalled]
        served_after = [r for r in after if isinstance(r[1], int)]
        errors = [r for r in results if isinstance(r[1], int) and r[1] >= 500]
        print(f"\n  sigterm: {len(results)} requests, {len(served_after)} answered after the SIGTERM, "
              f"{len(accepted)} uploads answered 201, statuses {sorted(set(str(r[1])[:40] for r in results))}", file=sys.stderr)
        self.assertFalse(errors, f"5xx during shutdown: {errors[:5]}\n{crud.logs()}")
        # Requests kept being served in the window, then the watchdog closed its port.
        self.assertGreater(len(served_after), 5, crud.logs())
        self.assertTrue(accepted)
        self.assertTrue(wait_gone(crud.function_pid, 15), "the function did not exit after the window")
        # Every upload answered 201 is in the store, ready: ask a fresh pair on the same store.
        # (These uploads are short enough to be answered 201. One answered 202 would still be
        # processing in the background when the process exits: keeping it is the durable
        # ingest jobs' work, not this window's.)
        check = self.pair("crud")
        for track_id in accepted:
            track = check.get(f"/{track_id}")
            self.assertEqual(track.status, 200, (track_id, track))
            self.assertEqual(track.json()["status"], "ready", track)

    def test_control_without_the_window_the_watchdog_answers_5xx(self):
        # Shows the test above can fail: the function stopping at once leaves the
        # watchdog routing to nobody.
        crud = self.pair("crud", extra_env={"LEGATO_SHUTDOWN_DELAY_SECONDS": "0"})
        results, _, _ = self.traffic_through_sigterm(crud)
        errors = [r for r in results if isinstance(r[1], int) and r[1] >= 500]
        print(f"\n  control: {len(errors)} of {len(results)} requests answered 5xx", file=sys.stderr)
        self.assertTrue([r for r in results if isinstance(r[1], int) and r[1] >= 500], results[-10:])


class HealthAndReadiness(WatchdogSuite):
    """`/_/health` is the watchdog's own liveness; `/_/ready` asks the function's /healthz,
    which asks the store (FerretDB here, stopped and started again)."""

    def test_ready_follows_the_store(self):
        ferret_dir = os.path.join(self.dir, "ferret")
        ns = new_netns()
        self.addCleanup(subprocess.run, ["ip", "netns", "del", ns], check=False)
        script = os.path.join(ROOT, "scripts", "ferretdb.sh")
        port = "27017"

        # The FerretDB binary is cached where scripts/test.sh keeps it.
        env = dict(os.environ)
        env.setdefault("LEGATO_TOOLS", os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "legato-tools"))

        def ferret(action, *args):
            # FerretDB listens on the namespace's loopback, where the pair can reach it.
            out = subprocess.run(["ip", "netns", "exec", ns, "bash", script, action, *args], env=env, capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)

        ferret("start", port, ferret_dir)
        self.addCleanup(subprocess.run, ["bash", script, "stop", ferret_dir], env=env, check=False, capture_output=True)
        pair = self.pair("crud", store=f"mongodb://127.0.0.1:{port}/openfaas", ns=ns, healthcheck="1s")
        self.assertEqual(pair.get("/_/health").status, 200)
        self.assertEqual(pair.get("/_/ready").status, 200)
        ferret("stop", ferret_dir)
        started = time.monotonic()
        ready = pair.get("/_/ready", timeout=10)
        self.assertEqual(ready.status, 503, ready)
        self.assertEqual(ready.json()["error"]["code"], "store-unavailable", ready)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(pair.get("/_/health").status, 200, "liveness does not depend on the store")
        ferret("start", port, ferret_dir)
        end = time.monotonic() + 30
        while pair.get("/_/ready", timeout=10).status != 200:
            self.assertLess(time.monotonic(), end, "not ready again after the store came back")
            time.sleep(0.2)


class TwoPairsOneStore(WatchdogSuite):
    def test_two_crud_replicas_and_streaming_share_one_store(self):
        a, b, streaming = self.pair("crud"), self.pair("crud"), self.pair("streaming")
        created = a.post("/?name=shared&author=suite", self.song, {"Content-Type": "audio/mpeg"})
        self.assertEqual(created.status, 201, created)
        track = created.json()
        seen = b.get(f"/{track['id']}")
        self.assertEqual(seen.status, 200, seen)
        self.assertEqual(seen.json()["name"], "shared")
        path = track["playlist"].removeprefix("/function/streaming")
        self.assertAlmostEqual(self.decoded_seconds(streaming.ns, f"http://127.0.0.1:8080{path}"), 12.0, delta=0.2)
        deleted = request(b.ns, "DELETE", f"/{track['id']}", headers={"Authorization": f"Bearer {API_KEY}"})
        self.assertEqual(deleted.status, 200, deleted)
        self.assertEqual(a.get(f"/{track['id']}").status, 404)
        self.assertEqual(streaming.get(path).status, 404)


class Subsonic(WatchdogSuite):
    """The subsonic function behind its watchdog, over the store the crud function fills."""

    def test_a_subsonic_client_signs_in_browses_and_streams(self):
        crud, subsonic = self.pair("crud"), self.pair("subsonic")
        password = os.path.join(subsonic.tmp, "password")
        with open(password, "w") as f:
            f.write("sesame-watchdog\n")
        out = subprocess.run(
            [LEGATO, "user", "add", "ana", "--password-file", password, "--store", self.store,
             "--secret-key-file", subsonic.subsonic_key],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        response = crud.post("/?name=Watchdog%20Song&author=Ana", self.song, {"Content-Type": "audio/mpeg"})
        self.assertIn(response.status, (201, 202), response.body[:300])
        track = self.until_ready(crud, json.loads(response.body)["id"])
        salt = "abcdef12"
        token = hashlib.md5(f"sesame-watchdog{salt}".encode()).hexdigest()
        auth = f"u=ana&t={token}&s={salt}&v=1.16.1&c=suite&f=json"
        ping = json.loads(subsonic.get(f"/rest/ping.view?{auth}").body)["subsonic-response"]
        self.assertEqual(ping["status"], "ok", ping)
        wrong = json.loads(subsonic.get("/rest/ping?u=ana&p=nope&f=json").body)["subsonic-response"]
        self.assertEqual(wrong["error"]["code"], 40, wrong)
        deadline = time.monotonic() + 10
        while True:
            found = json.loads(subsonic.get(f"/rest/search3?{auth}&query=watchdog").body)["subsonic-response"]
            songs = found.get("searchResult3", {}).get("song", [])
            if songs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual([s["id"] for s in songs], [track["id"]], found)
        stream = subsonic.get(f"/rest/stream?{auth}&id={track['id']}&maxBitRate=64")
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.headers.get("content-type"), "audio/mpeg")
        self.assertEqual(int(stream.headers["content-length"]), len(stream.body))
        seconds = self.decoded_seconds(subsonic.ns, f"http://127.0.0.1:8080/rest/stream?{auth}&id={track['id']}")
        self.assertAlmostEqual(seconds, 12.0, delta=0.2)


class FaasCli(unittest.TestCase):
    """`faas-cli build --shrinkwrap` and `faas-cli generate` from deploy/openfaas, as the README says."""

    def test_shrinkwrap_context_holds_only_the_sources(self):
        build = os.path.join(HERE, "build")
        out = subprocess.run([FAAS_CLI, "build", "--shrinkwrap", "-f", "stack.yml"], cwd=HERE, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for function in ("crud", "streaming", "subsonic"):
            context = os.path.join(build, function)
            files = sorted(os.path.relpath(os.path.join(d, f), context) for d, _, fs in os.walk(context) for f in fs)
            size = sum(os.path.getsize(os.path.join(context, f)) for f in files)
            with self.subTest(function=function):
                for needed in ("Dockerfile", "function/Cargo.toml", "function/Cargo.lock",
                               "function/crates/legato/src/main.rs", "function/crates/legato-http/src/lib.rs",
                               "function/ui/static/index.html", "function/ui/static/vendor/hls.min.js"):
                    self.assertIn(needed, files)
                for f in files:
                    self.assertFalse(f.startswith(("function/target/", "function/build/", "function/data/", "function/deploy/")), f)
                    self.assertNotIn("node_modules", f)
                    self.assertFalse(f.endswith((".sqlite3", ".mp3", ".ts")), f)
                self.assertLess(size, 8 * MB, f"{len(files)} files, {size} bytes")
                print(f"\n  shrinkwrap {function}: {len(files)} files, {size / 1024:.0f} KiB", file=sys.stderr)
        with open(os.path.join(build, "crud", "Dockerfile")) as f:
            dockerfile = f.read()
        self.assertIn("ARG WATCHDOG_VERSION=0.11.6", dockerfile)

    def test_generate_names_every_function_with_readiness(self):
        out = subprocess.run([FAAS_CLI, "generate", "--yaml", "stack.yml"], cwd=HERE, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for name in ("name: crud", "name: streaming", "name: subsonic", "ready_path: /healthz",
                     "legato function crud", "legato function streaming", "legato function subsonic"):
            self.assertIn(name, out.stdout)
        self.assertNotIn("max_inflight: \"4\"", out.stdout)


def main():
    global _HOME_NS
    reason = skip_reason()
    if reason:
        print(f"watchdog suite skipped: {reason}")
        return 0
    _HOME_NS = os.open("/proc/self/ns/net", os.O_RDONLY)
    result = unittest.main(argv=[sys.argv[0], "-v", *sys.argv[1:]], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

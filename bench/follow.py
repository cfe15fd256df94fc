#!/usr/bin/env python3
"""How often Subsonic functions read the whole library while it grows: two `legato function
subsonic` processes answer getAlbumList2 and search3 continuously while the `library` example
adds TRACKS tracks through the store API (a bulk import); each function's log is then counted:
full reads ("Subsonic library indexed", read=all) and change reads ("Subsonic library
updated", read=changes). The goal is one full read per function, its first load.

    cargo build --release -p legato && cargo build --release -p legato-store-mongo --example library
    python3 bench/follow.py --store mongodb://127.0.0.1:27017/follow --tracks 2000

(The scale-out layout: functions over MongoDB. On one machine `legato serve` holds one
snapshot, followed the same way.)

The store must be empty (a fresh database or folder). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library import REPO, free_port  # noqa: E402
from subsonic import PASSWORD, USER, Api, cli  # noqa: E402


def last_songs(log_path: Path) -> str:
    """The song count of the newest snapshot a function logged."""
    last = ""
    for line in log_path.read_text(errors="replace").splitlines():
        if "Subsonic library" in line and "songs=" in line:
            last = line.split("songs=")[1].split()[0]
    return last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True, help="a mongodb:// URI of an empty database")
    ap.add_argument("--tracks", type=int, default=2000)
    ap.add_argument("--bin", default=os.environ.get("LEGATO_BIN", str(REPO / "target/release/legato")))
    ap.add_argument("--library-bin", default=str(REPO / "target/release/examples/library"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="legato-follow-bench-")
    data = work
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    env["LEGATO_STORE"] = args.store
    pw = Path(work) / "password"
    pw.write_text(PASSWORD + "\n")
    made = cli(args.bin, env, data, "user", "add", USER, "--password-file", str(pw))
    if made.returncode != 0:
        sys.exit("legato user add failed: %s%s" % (made.stdout, made.stderr))

    # The functions find the key that seals passwords among their secrets.
    secrets = Path(work) / "secrets"
    secrets.mkdir()
    (secrets / "legato-subsonic-key").write_bytes((Path(data) / "secret.key").read_bytes())
    functions, logs, apis = [], [], []
    for i in range(2):
        port = free_port()
        log_path = Path(work) / ("subsonic-%d.log" % i)
        logs.append(log_path)
        fenv = dict(env, LEGATO_LISTEN="127.0.0.1:%d" % port, LEGATO_SECRETS_DIR=str(secrets))
        functions.append(subprocess.Popen([args.bin, "function", "subsonic"], stdout=open(log_path, "wb"),
                                          stderr=subprocess.STDOUT, env=fenv))
        apis.append(Api(port))
    stop = threading.Event()
    calls, errors = [0, 0], [0, 0]

    def listen(i: int) -> None:
        conn = None
        while not stop.is_set():
            try:
                conn = conn or apis[i].connect()
                apis[i].call(conn, "getAlbumList2", {"type": "newest", "size": 20})
                apis[i].call(conn, "search3", {"query": "amber", "songCount": 20})
                calls[i] += 2
            except Exception:  # noqa: BLE001 - a function still starting, or a store hiccup
                errors[i] += 1
                conn = None
                time.sleep(0.2)

    try:
        deadline = time.monotonic() + 120
        for api in apis:
            while True:
                try:
                    if api.call(api.connect(), "ping", {}) is not None:
                        break
                except Exception:  # noqa: BLE001
                    pass
                if time.monotonic() > deadline:
                    sys.exit("a function did not start; see %s" % work)
                time.sleep(0.2)
        threads = [threading.Thread(target=listen, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)  # both have loaded the (empty) library
        t0 = time.monotonic()
        fill = subprocess.run([args.library_bin, args.store, str(args.tracks)], env=env,
                              capture_output=True, text=True)
        if fill.returncode != 0:
            sys.exit("the import failed: %s" % fill.stderr[-2000:])
        import_s = time.monotonic() - t0
        # Until both functions show every track (each follows at its own pace).
        settle_deadline = time.monotonic() + 180
        while time.monotonic() < settle_deadline and any(last_songs(p) != str(args.tracks) for p in logs):
            time.sleep(0.5)
        settled_s = time.monotonic() - t0 - import_s
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        for f in functions:
            f.terminate()
            f.wait(timeout=30)

    print("bulk import of %d tracks in %.1f s (store %s) while two Subsonic functions answered; "
          "both showed every track %.1f s after it ended" % (args.tracks, import_s, args.store, settled_s))
    for i, log_path in enumerate(logs):
        text = log_path.read_text(errors="replace")
        full = text.count("Subsonic library indexed")
        follows = text.count("Subsonic library updated")
        print("function %d: %d full library reads, %d change reads, %d calls answered, %d failed, songs at the end %s"
              % (i + 1, full, follows, calls[i], errors[i], last_songs(log_path)))


if __name__ == "__main__":
    main()

"""The seed README's MusicApi example, run unchanged (but for the import and the file paths)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

import requests
from helpers import run_server, settled_dict

# Copied verbatim from the seed's README (/work/shared/seed/README.md).
SEED_EXAMPLE = '''
    import json

    api = MusicApi()

    print("Adding musics...")
    print(api.insert("Madonna", "Like a Prayer", '/home/gustavo/Like_A_Prayer.mp3'))
    print(api.insert("Coldplay", "Sky Full of Stars", '/home/gustavo/SkyFullOfStars.mp3'))
    print(api.insert("Erasure", "A Little Respect", '/home/A_Little_Respect.mp3'))
    print(api.insert("a-ha", "Take on me", '/home/TakeOnMe.mp3'))

    print()
    print("Listing musics...")
    all_musics = json.loads(api.list())
    for music in all_musics:
        print(music)

    print()
    print("Printing specific music data...")
    for music in all_musics:
        print(api.get(music["id"]))

    print()
    print("Printing data which does not exist...")
    print(api.get("11111"))
    print(api.get("22222"))
    print(api.get("33333"))

    print()
    print("Deleting musics...")
    for music in all_musics:
        print(api.remove(music["id"]))

    print()
    print("Listing musics...")
    all_musics = json.loads(api.list())
    for music in all_musics:
        print(music)
'''

SONGS = [
    ("Madonna", "Like a Prayer", "/home/gustavo/Like_A_Prayer.mp3", 440, 14),
    ("Coldplay", "Sky Full of Stars", "/home/gustavo/SkyFullOfStars.mp3", 494, 21),
    ("Erasure", "A Little Respect", "/home/A_Little_Respect.mp3", 554, 9),
    ("a-ha", "Take on me", "/home/TakeOnMe.mp3", 587, 16),
]

HEADERS = [
    "Adding musics...",
    "Listing musics...",
    "Printing specific music data...",
    "Printing data which does not exist...",
    "Deleting musics...",
    "Listing musics...",
]


def split_sections(stdout: str) -> List[List[str]]:
    """The lines under each header, in order (blank separator lines dropped)."""
    sections: List[List[str]] = []
    expected = iter(HEADERS)
    for line in stdout.splitlines():
        if sections == [] or (len(sections) < len(HEADERS) and line == HEADERS[len(sections)]):
            assert line == next(expected), "unexpected line %r" % line
            sections.append([])
        elif line:
            sections[-1].append(line)
    assert len(sections) == len(HEADERS), stdout
    return sections


def test_seed_readme_example(tmp_path: Path, make_mp3) -> None:
    script = "from legato import MusicApi\n" + textwrap.dedent(SEED_EXAMPLE)
    for _, _, seed_path, freq, duration in SONGS:
        assert seed_path in script
        script = script.replace(repr(seed_path), repr(str(make_mp3(frequency=freq, duration=duration))))
    script_path = tmp_path / "seed_example.py"
    script_path.write_text(script)

    # A server of its own: the example lists and deletes everything in the database.
    with run_server(tmp_path / "server") as server:
        env = dict(os.environ, FUNCTION_URL=server.crud_url)
        env.pop("LEGATO_URL", None)
        done = subprocess.run([sys.executable, str(script_path)], env=env, capture_output=True, text=True,
                              timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (done.stdout, done.stderr)
    assert done.stderr == ""
    added, listed, shown, missing, deleted, listed_after = split_sections(done.stdout)

    # four inserts, each answering the new track
    assert len(added) == 4, added
    inserted = [json.loads(line) for line in added]
    assert [(t["author"], t["name"]) for t in inserted] == [(a, n) for a, n, *_ in SONGS]
    ids = [t["id"] for t in inserted]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids) and len(set(ids)) == 4
    for t, (*_, duration) in zip(inserted, SONGS):
        assert abs(t["duration"] - duration) < 0.5

    # the list shows the four (printed as Python dicts)
    assert len(listed) == 4, listed
    listed_dicts: List[Dict] = [ast.literal_eval(line) for line in listed]
    assert sorted(d["id"] for d in listed_dicts) == sorted(ids)
    by_id = {d["id"]: d for d in listed_dicts}
    for t in inserted:
        assert (by_id[t["id"]]["name"], by_id[t["id"]]["author"]) == (t["name"], t["author"])

    # each shown by id, in list order
    assert [json.loads(line)["id"] for line in shown] == [d["id"] for d in listed_dicts]
    for line in shown:
        # Loudness and waveform arrive asynchronously after upload: compare the rest.
            assert settled_dict(json.loads(line)) == settled_dict(by_id[json.loads(line)["id"]])

    # three unknown (malformed) ids
    assert missing == ["{}", "{}", "{}"]

    # four deletions, then nothing left
    assert [json.loads(line) for line in deleted] == [{"deleted": 1}] * 4
    assert listed_after == []


LARGE = 1_200  # more than the server's largest page (1,000)


def with_id3v1_comment(mp3: bytes, comment: str) -> bytes:
    """The MP3 with an ID3v1 tag holding ``comment`` at its end: the same song in another file
    (the server answers a file it has already with that track rather than a new one)."""
    fields = b"\0" * 30 * 3 + b"\0" * 4  # title, artist, album, year
    return mp3 + b"TAG" + fields + comment.encode()[:30].ljust(30, b"\0") + b"\xff"


def test_seed_example_sees_a_large_library(tmp_path: Path, make_mp3) -> None:
    """The seed's example, unchanged, on a library larger than any page: its list sees every
    track (the seed's list had no paging, and neither has its MusicApi)."""
    script = "from legato import MusicApi\n" + textwrap.dedent(SEED_EXAMPLE)
    for _, _, seed_path, freq, duration in SONGS:
        script = script.replace(repr(seed_path), repr(str(make_mp3(frequency=freq, duration=duration))))
    script_path = tmp_path / "seed_example.py"
    script_path.write_text(script)
    tiny = make_mp3(frequency=660, duration=1).read_bytes()

    # Passthrough only: a thousand tiny MP3s need no ladder.
    with run_server(tmp_path / "server", ["--ladder", "none"]) as server:
        def add(i: int) -> str:
            for _ in range(200):
                r = requests.post(server.crud_url, params={"name": "Filler %04d" % i, "author": "Bulk"},
                                  data=with_id3v1_comment(tiny, "filler %04d" % i),
                                  headers={"Content-Type": "audio/mpeg"}, timeout=60)
                if r.status_code != 429:  # the server bounds ingests in flight: back off, retry
                    break
                time.sleep(0.05)
            assert r.status_code == 201, r.text
            return r.json()["id"]

        with ThreadPoolExecutor(max_workers=4) as pool:
            filler = set(pool.map(add, range(LARGE)))
        assert len(filler) == LARGE

        env = dict(os.environ, FUNCTION_URL=server.crud_url)
        env.pop("LEGATO_URL", None)
        done = subprocess.run([sys.executable, str(script_path)], env=env, capture_output=True, text=True,
                              timeout=600, cwd=str(tmp_path))
        assert done.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (done.stdout[-3000:], done.stderr)
        # What the server says is left: nothing.
        left = requests.get(server.crud_url, timeout=60)
        assert left.status_code == 200 and left.json() == []
    added, listed, shown, missing, deleted, listed_after = split_sections(done.stdout)
    assert len(added) == 4
    inserted = {json.loads(line)["id"] for line in added}
    listed_ids = [ast.literal_eval(line)["id"] for line in listed]
    assert len(listed_ids) == LARGE + 4 and set(listed_ids) == filler | inserted
    assert len(shown) == LARGE + 4
    assert missing == ["{}", "{}", "{}"]
    assert len(deleted) == LARGE + 4 and all(json.loads(line) == {"deleted": 1} for line in deleted)
    assert listed_after == []

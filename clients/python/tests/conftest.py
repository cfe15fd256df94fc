"""Shared fixtures: the real Legato server, generated MP3s, clean-up helpers."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

import legato
from helpers import Server, Stub, ffmpeg_binary, run_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session, on an empty data dir."""
    with run_server(tmp_path_factory.mktemp("legato-server")) as s:
        yield s


@pytest.fixture
def client(server: Server) -> Iterator[legato.Client]:
    with legato.Client(server.base_url) as c:
        yield c


MakeMp3 = Callable[..., Path]


@pytest.fixture(scope="session")
def make_mp3(tmp_path_factory: pytest.TempPathFactory) -> MakeMp3:
    """``make_mp3(frequency=440, duration=12, bitrate="128k")`` -> path of a sine-wave MP3 (cached)."""
    out_dir = tmp_path_factory.mktemp("mp3")
    cache: Dict[Tuple[int, float, str], Path] = {}

    def make(frequency: int = 440, duration: float = 12, bitrate: str = "128k") -> Path:
        key = (frequency, duration, bitrate)
        if key not in cache:
            out = out_dir / ("sine-%d-%s-%s.mp3" % (frequency, duration, bitrate))
            subprocess.run(
                [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                 "-i", "sine=frequency=%d:duration=%s" % (frequency, duration),
                 "-c:a", "libmp3lame", "-b:a", bitrate, str(out)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def big_mp3(make_mp3: MakeMp3) -> Path:
    """5 minutes at 192 kbit/s, about 7 MB."""
    return make_mp3(frequency=330, duration=300, bitrate="192k")


@pytest.fixture
def tag() -> str:
    """A unique marker to put in names, so tests find only their own tracks."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def cleanup(server: Server) -> Iterator[List[str]]:
    """Append track ids to this list; they are deleted after the test (missing ones ignored)."""
    ids: List[str] = []
    yield ids
    with legato.Client(server.base_url) as c:
        for track_id in ids:
            with contextlib.suppress(legato.NotFound):
                c.delete(track_id)


@pytest.fixture
def stub() -> Iterator[Stub]:
    """A scripted local HTTP server (see helpers.Stub)."""
    s = Stub()
    yield s
    s.close()

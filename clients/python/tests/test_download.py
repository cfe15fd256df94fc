"""Client.download against the real server: the original file comes back byte for byte."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path
from typing import List

import pytest

import legato
from helpers import ffmpeg_binary


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_flac(path: Path, seconds: float = 5) -> Path:
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "sine=frequency=523:duration=%s" % seconds, str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def test_download_gives_back_the_exact_upload(
    client: legato.Client, make_mp3, tmp_path: Path, tag: str, cleanup: List[str]
) -> None:
    flac = make_flac(tmp_path / "Été à Paris.flac")
    mp3 = make_mp3(frequency=440, duration=12)
    for song in (flac, mp3):
        original = song.read_bytes()
        t = client.add(song, name="Download " + tag, author="Tester")
        cleanup.append(t.id)
        assert t.source is not None, t
        assert t.source.sha256 == sha256(original)
        assert t.source.size == len(original)

        # Into a folder: the uploaded file's name is kept (accents included).
        folder = tmp_path / ("out-" + t.id)
        folder.mkdir()
        got = client.download(t.id, folder)
        assert got.file_name == song.name
        assert got.path == str(folder / song.name)
        assert Path(got.path).read_bytes() == original
        assert (got.size, got.sha256) == (len(original), sha256(original))
        assert got.content_type in ("audio/flac", "audio/mpeg"), got.content_type

        # Into a file object.
        buffer = io.BytesIO()
        assert client.download(t.id, buffer).sha256 == sha256(original)
        assert buffer.getvalue() == original

        # An existing file is kept unless overwrite=True; nothing partial is left behind.
        with pytest.raises(FileExistsError):
            client.download(t.id, folder)
        client.download(t.id, folder, overwrite=True)
        assert sorted(p.name for p in folder.iterdir()) == [song.name]


def test_download_of_a_missing_track_is_not_found(client: legato.Client, tmp_path: Path) -> None:
    with pytest.raises(legato.NotFound):
        client.download("0123456789abcdef01234567", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reprocess_keeps_the_track_playable_and_queues_a_job(
    client: legato.Client, make_mp3, tag: str, cleanup: List[str]
) -> None:
    t = client.add(make_mp3(frequency=660, duration=5), name="Reprocess " + tag, author="Tester")
    cleanup.append(t.id)
    queued = client.reprocess(t.id)
    assert queued.status == "ready"
    assert queued.job is not None and queued.job["kind"] == "reprocess"
    with pytest.raises(legato.NotFound) as missing:
        client.reprocess("65a1f0c2e4b0a1b2c3d4e5f6")
    assert missing.value.code == "not-found"

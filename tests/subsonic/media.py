"""Test audio made with ffmpeg: tagged MP3s and FLACs with embedded covers, and measurements."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional


def run(cmd: List[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return p


@dataclass
class TrackSpec:
    file: str
    title: str
    artist: str
    seconds: float
    freq: int
    album: Optional[str] = None
    album_artist: Optional[str] = None
    track: Optional[int] = None
    disc: Optional[int] = None
    genre: Optional[str] = None
    year: Optional[int] = None
    cover: Optional[str] = None  # a key of COVERS
    # Filled in by make():
    path: Path = field(default=None)  # type: ignore[assignment]
    sha256: str = ""
    duration: float = 0.0
    cover_bytes: Optional[bytes] = None
    # Filled in by the fixture:
    legato_id: str = ""
    song_id: str = ""

    @property
    def suffix(self) -> str:
        return self.file.rsplit(".", 1)[-1]

    @property
    def content_type(self) -> str:
        return {"mp3": "audio/mpeg", "flac": "audio/flac", "wav": "audio/wav"}[self.suffix]


# name: (ffmpeg colour, width, height, extension)
COVERS = {
    "red": ("red", 300, 200, "png"),
    "blue": ("blue", 240, 320, "jpg"),
}

ALBUM_ARTIST = "The Testers"
VARIOUS = "Various Artists"


def library() -> List[TrackSpec]:
    """Two albums by one album artist (one with two discs), a compilation, a track with no album."""
    a = dict(album="Alpha Album", album_artist=ALBUM_ARTIST, genre="Rock", year=2001, cover="red")
    b = dict(album="Beta Album", album_artist=ALBUM_ARTIST, genre="Jazz", year=2010, cover="blue")
    g = dict(album="Gamma Hits", album_artist=VARIOUS, genre="Pop", year=1995)
    return [
        TrackSpec("alpha1.mp3", "Alpha One", ALBUM_ARTIST, 7, 440, track=1, disc=1, **a),
        TrackSpec("alpha2.mp3", "Alpha Two", ALBUM_ARTIST, 6, 494, track=2, disc=1, **a),
        TrackSpec("alpha3.flac", "Alpha Three", ALBUM_ARTIST, 9, 523, track=3, disc=1, **a),
        TrackSpec("alpha4.mp3", "Alpha Four", ALBUM_ARTIST, 5, 587, track=1, disc=2, **a),
        TrackSpec("beta1.flac", "Beta One", ALBUM_ARTIST, 8, 659, track=1, disc=1, **b),
        TrackSpec("beta2.mp3", "Beta Two", ALBUM_ARTIST, 6, 698, track=2, disc=1, **b),
        TrackSpec("gamma1.mp3", "Gamma Song A", "Artist A", 5, 784, track=1, disc=1, **g),
        TrackSpec("gamma2.mp3", "Gamma Song B", "Artist B", 6, 880, track=2, disc=1, **g),
        TrackSpec("lonely.mp3", "Lonely Track", "Solo Person", 5, 330, genre="Ambient", year=2020),
    ]


def make_cover(out_dir: Path, name: str) -> Path:
    colour, w, h, ext = COVERS[name]
    path = out_dir / ("cover-%s.%s" % (name, ext))
    if not path.exists():
        run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=%s:s=%dx%d" % (colour, w, h),
             "-frames:v", "1", str(path)])
    return path


def make(spec: TrackSpec, out_dir: Path) -> TrackSpec:
    out = out_dir / spec.file
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
           "-i", "sine=frequency=%d:duration=%s:sample_rate=44100" % (spec.freq, spec.seconds)]
    cover = make_cover(out_dir, spec.cover) if spec.cover else None
    if cover:
        cmd += ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic",
                "-metadata:s:v", "title=Album cover", "-metadata:s:v", "comment=Cover (front)"]
    cmd += ["-ac", "2"]
    if spec.suffix == "mp3":
        cmd += ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "4"]
    elif spec.suffix == "flac":
        cmd += ["-c:a", "flac"]
    tags = {"title": spec.title, "artist": spec.artist, "album": spec.album, "album_artist": spec.album_artist,
            "track": spec.track, "disc": spec.disc, "genre": spec.genre, "date": spec.year}
    for k, v in tags.items():
        if v is not None:
            cmd += ["-metadata", "%s=%s" % (k, v)]
    cmd.append(str(out))
    run(cmd)
    spec.path = out
    data = out.read_bytes()
    spec.sha256 = hashlib.sha256(data).hexdigest()
    spec.duration = decoded_seconds(out)
    if cover:
        spec.cover_bytes = embedded_cover(out)
    return spec


def decoded_seconds(path_or_bytes, rate: int = 8000) -> float:
    """The decoded length in seconds (ffmpeg decodes to mono 16-bit at ``rate`` and we count)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        p = run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"],
                input=bytes(path_or_bytes))
    else:
        p = run(["ffmpeg", "-v", "error", "-i", str(path_or_bytes), "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"])
    return len(p.stdout) / 2 / rate


def embedded_cover(path: Path) -> bytes:
    """The attached picture's bytes as stored in the file."""
    p = run(["ffmpeg", "-v", "error", "-i", str(path), "-an", "-map", "0:v", "-c:v", "copy", "-f", "image2pipe", "pipe:1"])
    return p.stdout


def probe(data: bytes) -> Dict:
    p = run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "pipe:0"], input=data)
    return json.loads(p.stdout)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

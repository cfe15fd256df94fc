"""Data classes returned by :class:`legato.Client`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional

__all__ = ["Track", "Source", "Download"]


def _opt_int(value: Any) -> Optional[int]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _opt_float(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _opt_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


@dataclass
class Source:
    """The original file of a track, as the server keeps it (see :meth:`Client.download`)."""

    #: ``mp3``, ``flac``, ``wav``, ``aiff``, ``ogg``, ``m4a``, ``aac``, ``opus``, ``webm``, ...
    format: Optional[str] = None
    #: bytes
    size: Optional[int] = None
    #: SHA-256 of the file, lowercase hex
    sha256: Optional[str] = None
    #: the name it was uploaded under, when it had one
    file_name: Optional[str] = None

    @classmethod
    def from_dict(cls, data: Any) -> Optional["Source"]:
        if not isinstance(data, Mapping):
            return None
        return cls(
            format=_opt_str(data.get("format")),
            size=_opt_int(data.get("size")),
            sha256=_opt_str(data.get("sha256")),
            file_name=_opt_str(data.get("file_name")),
        )


@dataclass
class Download:
    """What :meth:`Client.download` wrote."""

    #: the server's name for the file, safe to create in a folder
    file_name: str
    #: the file's media type, e.g. ``audio/flac``
    content_type: Optional[str]
    #: bytes written
    size: int
    #: SHA-256 of the bytes written, lowercase hex (checked against the server's)
    sha256: str
    #: where it was written, when the client wrote a file (``None`` for a file object)
    path: Optional[str] = None


@dataclass
class Track:
    """A track as the server describes it (see docs/api.md, "Track JSON").

    Fields a server does not send are ``None`` (the seed's server only sent ``id``, ``name``
    and ``author``). Fields this client does not know (from a newer server) are kept in
    ``extra`` rather than rejected.
    """

    id: str
    name: Optional[str] = None
    author: Optional[str] = None
    #: seconds
    duration: Optional[float] = None
    #: number of HLS segments
    segments: Optional[int] = None
    #: path of the HLS media playlist on the gateway, e.g. ``/function/streaming/<id>/index.m3u8``
    playlist: Optional[str] = None
    codec: Optional[str] = None
    #: kbit/s
    bitrate: Optional[int] = None
    #: Hz
    sample_rate: Optional[int] = None
    channels: Optional[int] = None
    #: bytes of audio kept
    size: Optional[int] = None
    #: RFC 3339 timestamp as sent, e.g. ``2026-11-28T20:30:00Z`` (see :attr:`created`)
    created_at: Optional[str] = None
    album: Optional[str] = None
    year: Optional[int] = None
    #: ``processing``, ``ready`` or ``failed`` (``None`` from servers that predate it: ready)
    status: Optional[str] = None
    #: why processing failed
    error: Optional[str] = None
    #: renditions, lowest bitrate first: dicts with ``name``, ``bitrate``, ``playlist``
    variants: List[Dict[str, Any]] = field(default_factory=list)
    #: path of the cover image, or ``None``
    cover: Optional[str] = None
    #: integrated loudness in LUFS, once analysed
    loudness: Optional[float] = None
    #: true peak in dBTP, once analysed
    true_peak: Optional[float] = None
    #: waveform peaks in 0..1, once analysed
    peaks: Optional[List[float]] = None
    #: the uploaded file, or ``None`` for tracks stored before the server kept originals
    source: Optional[Source] = None
    #: the track's processing job while it has one: a dict with ``kind`` (``ingest`` or
    #: ``reprocess``), ``state``, ``attempts`` and ``error``
    job: Optional[Dict[str, Any]] = None
    #: renditions a queued or running job will add to a ready track (``64k``, ``aac128k``,
    #: ``flac``): an MP3 plays when its upload returns, the rest follows
    coming: List[str] = field(default_factory=list)
    #: every field of the JSON this client does not know
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Track":
        """Build a Track from the server's JSON object."""
        if not isinstance(data, Mapping):
            raise TypeError("a track must be a JSON object, got %s" % type(data).__name__)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            id=str(data.get("id", "")),
            name=_opt_str(data.get("name")),
            author=_opt_str(data.get("author")),
            duration=_opt_float(data.get("duration")),
            segments=_opt_int(data.get("segments")),
            playlist=_opt_str(data.get("playlist")),
            codec=_opt_str(data.get("codec")),
            bitrate=_opt_int(data.get("bitrate")),
            sample_rate=_opt_int(data.get("sample_rate")),
            channels=_opt_int(data.get("channels")),
            size=_opt_int(data.get("size")),
            created_at=_opt_str(data.get("created_at")),
            album=_opt_str(data.get("album")),
            year=_opt_int(data.get("year")),
            status=_opt_str(data.get("status")),
            error=_opt_str(data.get("error")),
            variants=[dict(v) for v in data.get("variants") or [] if isinstance(v, Mapping)],
            cover=_opt_str(data.get("cover")),
            loudness=_opt_float(data.get("loudness")),
            true_peak=_opt_float(data.get("true_peak")),
            peaks=[float(p) for p in data["peaks"]] if isinstance(data.get("peaks"), list) else None,
            source=Source.from_dict(data.get("source")),
            job=dict(data["job"]) if isinstance(data.get("job"), Mapping) else None,
            coming=[str(c) for c in data.get("coming") or [] if isinstance(c, str)],
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object form (known fields that are set, plus ``extra``)."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Source):
                value = {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
            if value is not None and value != []:
                out[f.name] = value
        out.update(self.extra)
        return out

    @property
    def created(self) -> Optional[datetime]:
        """``created_at`` parsed as an aware datetime, or ``None`` when absent or unparsable."""
        if not self.created_at:
            return None
        text = self.created_at.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None

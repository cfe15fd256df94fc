"""Typed HTTP client of the Legato crud function (docs/api.md)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import mimetypes
import os
import re
import tempfile
import time
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote, unquote, urlsplit

import requests

from ._version import __version__
from .errors import ConnectionFailed, LegatoError, RequestTimeout, error_from_response
from .models import Download, Track

# Multipart uploads: requests' own ``files=`` builds the whole body in memory (it calls
# ``fp.read()`` on each file), so a large MP3 would be held in RAM once or twice.
# requests-toolbelt's MultipartEncoder (maintained by the requests team, pure Python) is a
# file-like body that requests streams from disk chunk by chunk, with an exact
# Content-Length. It is a declared dependency; the ``files=`` path is only a fallback for
# environments where it somehow is not importable.
try:
    from requests_toolbelt.multipart.encoder import MultipartEncoder  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - exercised only without requests-toolbelt
    MultipartEncoder = None

__all__ = ["Client", "DEFAULT_URL", "CRUD_PATH", "SongSource"]

#: Used when neither ``base_url`` nor ``LEGATO_URL`` is given.
DEFAULT_URL = "http://127.0.0.1:8080"
#: Where a gateway (or ``legato serve``) mounts the crud function.
CRUD_PATH = "/function/crud"

#: What :meth:`Client.add` accepts: a path, a binary file object, or the bytes themselves.
SongSource = Union[str, "os.PathLike[str]", IO[bytes], bytes, bytearray]


def _split_base(base_url: str, crud_path: str) -> Tuple[str, str]:
    """Return (gateway root, crud function URL) for a gateway root or a crud URL."""
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError("base_url has no host: %r" % base_url)
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query or fragment: %r" % base_url)
    crud_path = "/" + crud_path.strip("/") if crud_path.strip("/") else ""
    if crud_path and url.endswith(crud_path):
        root = url[: -len(crud_path)]
    else:
        root = url
    return root, root + crud_path


class Client:
    """Client of a Legato server's crud function.

    Args:
        base_url: the gateway root (``http://gw:8080``; the crud function is then at
            ``<root>/function/crud``) or the crud function URL itself
            (``http://gw:8080/function/crud``). Defaults to env ``LEGATO_URL``, then
            ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer <key>``. Defaults to env ``LEGATO_API_KEY``.
        timeout: seconds to wait to connect and between bytes of the answer.
        session: a ``requests.Session`` to use (the client makes its own otherwise).
        crud_path: where the crud function lives under the root; pass ``""`` for a
            stand-alone ``legato function crud`` that serves at ``/``.

    The client can be used as a context manager; it closes its own session at exit.
    Every method raises a :class:`~legato.LegatoError` subclass on failure.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 30.0,
        *,
        session: Optional[requests.Session] = None,
        crud_path: str = CRUD_PATH,
    ) -> None:
        if base_url is None:
            base_url = os.environ.get("LEGATO_URL") or DEFAULT_URL
        if api_key is None:
            api_key = os.environ.get("LEGATO_API_KEY") or None
        self.root_url, self.crud_url = _split_base(base_url, crud_path)
        self.api_key = api_key
        self.timeout = timeout
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._headers: Dict[str, str] = {
            "User-Agent": "legato-python/%s" % __version__,
            "Accept": "application/json",
        }
        if api_key:
            self._headers["Authorization"] = "Bearer %s" % api_key

    # ------------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return "Client(base_url=%r)" % self.crud_url

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session (only when the client created it)."""
        if self._own_session:
            self._session.close()

    def _track_url(self, track_id: str) -> str:
        if not isinstance(track_id, str):
            raise TypeError("a track id must be a str, got %s" % type(track_id).__name__)
        if not track_id:
            raise ValueError("a track id must not be empty")
        return "%s/%s" % (self.crud_url, quote(track_id, safe=""))

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; transport failures become ConnectionFailed. Never checks status."""
        all_headers = dict(self._headers)
        if headers:
            all_headers.update(headers)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            return self._session.request(
                method, url, params=clean_params or None, headers=all_headers, timeout=self.timeout, **kwargs
            )
        except requests.exceptions.Timeout as e:
            raise RequestTimeout("%s %s: no answer within %ss (%s)" % (method, url, self.timeout, e)) from e
        except requests.exceptions.ConnectionError as e:
            raise ConnectionFailed("%s %s: cannot reach the server (%s)" % (method, url, e)) from e
        except requests.exceptions.RequestException as e:
            raise LegatoError("%s %s: %s" % (method, url, e)) from e

    @staticmethod
    def _check(response: requests.Response) -> requests.Response:
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as e:
            raise LegatoError(
                "the server answered %d with a body that is not JSON: %r"
                % (response.status_code, (response.text or "")[:200]),
                status=response.status_code,
            ) from e

    def _tracks(self, response: requests.Response) -> List[Track]:
        body = self._json(response)
        if not isinstance(body, list):
            raise LegatoError("expected a JSON array of tracks", status=response.status_code)
        return [Track.from_dict(item) for item in body]

    def _upload(self, song: SongSource, name: Optional[str], author: Optional[str]) -> requests.Response:
        """POST ``song`` as multipart/form-data; returns the raw response (status unchecked)."""
        if isinstance(song, (bytes, bytearray)):
            return self._upload_file(io.BytesIO(bytes(song)), "song.mp3", name, author)
        if isinstance(song, (str, os.PathLike)):
            path = os.fspath(song)
            with open(path, "rb") as f:
                return self._upload_file(f, os.path.basename(path) or "song.mp3", name, author)
        if isinstance(song, io.TextIOBase):
            raise TypeError("open the song in binary mode ('rb'), not text mode")
        if not hasattr(song, "read"):
            raise TypeError("song must be a path, a binary file object or bytes, got %s" % type(song).__name__)
        file_name = getattr(song, "name", None)
        file_name = os.path.basename(file_name) if isinstance(file_name, str) and file_name else "song.mp3"
        return self._upload_file(song, file_name, name, author)

    def _upload_file(
        self, f: IO[bytes], file_name: str, name: Optional[str], author: Optional[str]
    ) -> requests.Response:
        content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        text_fields: List[Tuple[str, str]] = []
        if name is not None:
            text_fields.append(("name", name))
        if author is not None:
            text_fields.append(("author", author))
        if MultipartEncoder is not None:
            # Text fields first, so a server can read them before the (large) file part.
            encoder = MultipartEncoder(fields=text_fields + [("song", (file_name, f, content_type))])
            return self._send("POST", self.crud_url, data=encoder, headers={"Content-Type": encoder.content_type})
        return self._send(  # pragma: no cover - fallback, see the comment at the imports
            "POST", self.crud_url, data=text_fields, files=[("song", (file_name, f, content_type))]
        )

    # ------------------------------------------------------------------ API

    def add(
        self,
        path_or_file: SongSource,
        name: Optional[str] = None,
        author: Optional[str] = None,
        wait: Optional[float] = 600.0,
    ) -> Track:
        """Upload a song and return the new track, ready to play.

        The file is streamed as ``multipart/form-data`` (field ``song``; ``name`` and
        ``author`` fields are sent only when given). A server that has not finished preparing
        a long song answers at once with the track ``processing`` (HTTP 202); ``add`` then asks
        again every half second until it is ``ready`` (or ``failed``, with ``error`` saying
        why), for at most ``wait`` seconds, and returns the track as it is then.

        Args:
            path_or_file: a path (``str`` or ``os.PathLike``), a file object opened in binary
                mode (read from its current position; not closed), or the bytes of the song.
            name: the track's name.
            author: the track's author.
            wait: seconds to wait for a track still processing; ``None`` or ``0``: return it
                as answered.

        Raises:
            UnsupportedMedia: the file is not audio the server can read.
            PayloadTooLarge: the file exceeds the server's upload limit.
        """
        track = Track.from_dict(self._json(self._check(self._upload(path_or_file, name, author))))
        if wait and track.status == "processing":
            deadline = time.monotonic() + wait
            while track.status == "processing" and time.monotonic() < deadline:
                time.sleep(0.5)
                track = self.get(track.id)
        return track

    def list(
        self,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
    ) -> List[Track]:
        """Return the tracks matching ``q``: all of them, or one page with ``limit``.

        Args:
            q: words, each the start of a word of the name or the author (case and accents
                ignored).
            limit: page size (max 1000); ``None``: every matching track from ``offset`` on
                (the server streams them in one response).
            offset: tracks to skip.
            sort: ``created_at`` (default), ``name``, ``author`` or ``duration``.
            order: ``asc`` (default) or ``desc``.
        """
        return self.list_page(q=q, limit=limit, offset=offset, sort=sort, order=order)[0]

    def list_page(
        self,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
    ) -> Tuple[List[Track], int]:
        """Like :meth:`list`, and also return the number of tracks matching ``q`` before paging.

        The total comes from the ``X-Total-Count`` header (the page's length when absent).
        """
        response = self._check(
            self._send(
                "GET", self.crud_url, params={"q": q, "limit": limit, "offset": offset, "sort": sort, "order": order}
            )
        )
        tracks = self._tracks(response)
        total_header = response.headers.get("X-Total-Count")
        try:
            total = int(total_header) if total_header is not None else len(tracks)
        except ValueError:
            total = len(tracks)
        return tracks, total

    def iter_tracks(
        self,
        q: Optional[str] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
        page_size: int = 100,
    ) -> Iterator[Track]:
        """Yield every track matching ``q``, fetching ``page_size`` at a time."""
        offset = 0
        while True:
            tracks, total = self.list_page(q=q, limit=page_size, offset=offset, sort=sort, order=order)
            yield from tracks
            offset += len(tracks)
            if not tracks or offset >= total:
                return

    def get(self, id: str) -> Track:
        """Return the track ``id``.

        Raises:
            NotFound: no such track.
            BadRequest: ``id`` is not 24 hex characters.
        """
        return Track.from_dict(self._json(self._check(self._send("GET", self._track_url(id)))))

    def update(self, id: str, name: Optional[str] = None, author: Optional[str] = None) -> Track:
        """Change the name and/or the author of track ``id`` (PATCH); return the updated track."""
        body: Dict[str, str] = {}
        if name is not None:
            body["name"] = name
        if author is not None:
            body["author"] = author
        return Track.from_dict(self._json(self._check(self._send("PATCH", self._track_url(id), json=body))))

    def delete(self, id: str) -> int:
        """Delete track ``id`` with its playlist and segments; return the number deleted (1)."""
        body = self._json(self._check(self._send("DELETE", self._track_url(id))))
        if isinstance(body, dict) and isinstance(body.get("deleted"), int):
            return int(body["deleted"])
        return 1

    def reprocess(self, id: str) -> Track:
        """Ask the server to rebuild track ``id``'s renditions from its original file with its
        current settings (a new ``--ladder``, ...); return the track (still playable meanwhile).

        The job's progress is in ``track.extra["job"]`` (``kind``, ``state``, ``attempts``,
        ``error``); poll :meth:`get` to follow it. Asking again while it is pending changes
        nothing. Needs the API key when the server has keys.

        Raises:
            NotFound: no such track, or code ``source-unavailable``: it was stored before the
                server kept originals, so there is nothing to rebuild from.
            LegatoError: code ``still-processing`` (409), its first processing is not done.
        """
        url = self._track_url(id) + "/reprocess"
        return Track.from_dict(self._json(self._check(self._send("POST", url))))

    def download(
        self,
        id: str,
        dest: Union[str, "os.PathLike[str]", IO[bytes], None] = None,
        *,
        overwrite: bool = False,
        chunk_size: int = 1 << 16,
    ) -> Download:
        """Download the original file of track ``id``, exactly as it was uploaded.

        Args:
            dest: a file path, a folder (the server's file name is used inside it), a binary
                file object to write into (not closed), or ``None`` for the server's file
                name in the current folder.
            overwrite: replace an existing file at the destination (otherwise
                ``FileExistsError``).

        The body is streamed to disk and its SHA-256 checked against the server's (the
        ETag); a file is written under a temporary name and moved into place only when
        whole, so an interrupted download never leaves a truncated file behind.

        Raises:
            NotFound: no such track, or (code ``source-unavailable``) a track stored before
                the server kept originals.
            LegatoError: the bytes arrived altered.
        """
        response = self._check(
            self._send("GET", self._track_url(id) + "/file", headers={"Accept": "*/*"}, stream=True)
        )
        with response:
            file_name = _safe_file_name(_disposition_file_name(response.headers.get("Content-Disposition"))) or id
            content_type = response.headers.get("Content-Type")
            expected = _sha256_etag(response.headers.get("ETag"))
            if dest is not None and hasattr(dest, "write"):
                size, digest = _copy_body(response, dest, chunk_size)  # type: ignore[arg-type]
                path = None
            else:
                path = os.fspath(dest) if dest is not None else "."
                if os.path.isdir(path):
                    path = os.path.join(path, file_name)
                if os.path.exists(path) and not overwrite:
                    raise FileExistsError("%s exists already; pass overwrite=True to replace it" % path)
                folder = os.path.dirname(os.path.abspath(path))
                fd, partial = tempfile.mkstemp(prefix=".legato-get-", dir=folder)
                try:
                    with os.fdopen(fd, "wb") as out:
                        size, digest = _copy_body(response, out, chunk_size)
                    if expected is not None and digest != expected:
                        raise LegatoError(
                            "the file arrived altered: its SHA-256 is %s, the server's is %s" % (digest, expected)
                        )
                    os.chmod(partial, 0o644)
                    os.replace(partial, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(partial)
                    raise
        if expected is not None and digest != expected:
            raise LegatoError("the file arrived altered: its SHA-256 is %s, the server's is %s" % (digest, expected))
        return Download(file_name=file_name, content_type=content_type, size=size, sha256=digest, path=path)

    def playlist_url(self, id: Union[str, Track]) -> str:
        """Absolute URL of the track's HLS media playlist.

        The track's ``playlist`` path is joined to the gateway root (``base_url`` without
        ``/function/crud``). Given a :class:`Track`, no request is made; given an id, the
        track is fetched first (so an unknown id raises :class:`NotFound`).
        """
        track = id if isinstance(id, Track) else self.get(id)
        path = track.playlist or "/function/streaming/%s/index.m3u8" % quote(track.id, safe="")
        # A reprocessed track's playlist has a generation prefix (``g2-index.m3u8``) that the
        # next reprocessing retires; ``index.m3u8`` beside it always answers the current one.
        path = _STABLE_PLAYLIST.sub(r"\1index.m3u8", path)
        if "://" in path:
            return path
        return self.root_url + "/" + path.lstrip("/")


_STABLE_PLAYLIST = re.compile(r"(^|/)g[0-9]+-index\.m3u8(?=$|\?)")


def _copy_body(response: requests.Response, out: IO[bytes], chunk_size: int) -> Tuple[int, str]:
    """Stream the body into ``out``; return (bytes written, SHA-256 hex)."""
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=chunk_size):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    except requests.exceptions.RequestException as e:
        raise ConnectionFailed("the download broke off after %d bytes (%s)" % (size, e)) from e
    return size, digest.hexdigest()


def _disposition_file_name(value: Optional[str]) -> Optional[str]:
    """The file name of a Content-Disposition value: ``filename*`` (RFC 6266) first."""
    if not value:
        return None
    star = re.search(r"filename\*\s*=\s*UTF-8''([^;]+)", value, re.IGNORECASE)
    if star:
        return unquote(star.group(1).strip(), encoding="utf-8", errors="replace")
    plain = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)', value, re.IGNORECASE)
    if plain:
        return (plain.group(1) if plain.group(1) is not None else plain.group(2)).strip().replace('\\"', '"')
    return None


def _safe_file_name(name: Optional[str]) -> str:
    """The last path component, without control characters or leading dots, at most 200 bytes."""
    if not name:
        return ""
    last = re.split(r"[/\\]", name)[-1]
    cleaned = "".join(c for c in last if c.isprintable() and c not in ':*?"<>|')
    cleaned = cleaned.strip().lstrip(".").strip()
    while len(cleaned.encode("utf-8")) > 200:
        cleaned = cleaned[:-1]
    return cleaned


def _sha256_etag(etag: Optional[str]) -> Optional[str]:
    if not etag:
        return None
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    return tag.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", tag) else None


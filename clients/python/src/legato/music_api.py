"""Drop-in replacement of the seed project's ``MusicApi``.

Same class name, method names, arguments and return types (each method returns the
response text). Differences from the seed, all caused by the new server:

* ``insert`` streams the file as multipart/form-data instead of base64 JSON, and the
  text it returns is the new track as JSON (the seed's server answered
  ``Record inserted: <id>``).
* ``remove`` returns ``{"deleted": 1}`` (the seed: ``Total records deleted: 1``).
* ``list`` entries carry more fields than the seed's ``{id, name, author}`` (the
  waveform only when asked for, so the list stays compact).

Like the seed, HTTP error statuses do not raise: the error's text is returned, and
``get`` returns ``"{}"`` for a missing or malformed id. An unreachable server raises
:class:`legato.ConnectionFailed`; a missing file raises ``FileNotFoundError``.
"""

from __future__ import annotations

import json
import os
from typing import Any, List, Optional

from .client import CRUD_PATH, DEFAULT_URL, Client

__all__ = ["MusicApi"]

_PAGE = 1000  # the server's largest page, for servers that page lists without a limit

class MusicApi:
    """The seed's music API wrapper, on top of :class:`legato.Client`.

    Args:
        function_url: the crud function's URL (``<gateway>/function/crud``); a gateway
            root is accepted too. Defaults to env ``FUNCTION_URL``, then ``LEGATO_URL``,
            then ``http://127.0.0.1:8080/function/crud``.
        api_key: as for :class:`legato.Client` (defaults to env ``LEGATO_API_KEY``).
        timeout: as for :class:`legato.Client`.
    """

    def __init__(
        self, function_url: Optional[str] = None, *, api_key: Optional[str] = None, timeout: float = 30.0
    ) -> None:
        if function_url is None:
            function_url = (
                os.environ.get("FUNCTION_URL") or os.environ.get("LEGATO_URL") or DEFAULT_URL + CRUD_PATH
            )
        self.function_url = function_url
        self.client = Client(function_url, api_key=api_key, timeout=timeout)

    def insert(self, author: str, music_name: str, song_path: str) -> str:
        """Upload the song at ``song_path``; return the server's answer (the new track as JSON)."""
        return self.client._upload(song_path, music_name, author).text

    def remove(self, music_id: str) -> str:
        """Delete a song with its chunks; return the server's answer (``{"deleted": 1}``)."""
        if not music_id:
            return json.dumps({"error": {"code": "invalid-id", "message": "empty id"}})
        return self.client._send("DELETE", self.client._track_url(str(music_id))).text

    def get(self, music_id: str) -> str:
        """Return the song's JSON, or ``"{}"`` when the id is unknown or malformed."""
        if not music_id:
            return "{}"
        response = self.client._send("GET", self.client._track_url(str(music_id)))
        if response.status_code in (400, 404):
            return "{}"
        return response.text

    def list(self) -> str:
        """Return the JSON array of every song (``json.loads`` gives dicts with ``"id"``).

        As the seed's ``list``: one request without ``limit``, which the server answers with
        every track (streamed, so even a large library is one response). An older server that
        answers one page only (fewer tracks than its ``X-Total-Count``) is walked page by page.
        """
        client = self.client
        response = client._send("GET", client.crud_url)
        total_header = response.headers.get("X-Total-Count")
        if response.status_code != 200 or total_header is None:
            return response.text
        try:
            total = int(total_header)
            items: List[Any] = response.json()
        except ValueError:
            return response.text
        if not isinstance(items, list) or len(items) >= total:
            return response.text
        while len(items) < total:
            page = client._send("GET", client.crud_url, params={"limit": _PAGE, "offset": len(items)})
            if page.status_code != 200:
                return page.text
            try:
                more = page.json()
            except ValueError:
                return page.text
            if not isinstance(more, list) or not more:
                break
            items.extend(more)
        return json.dumps(items)

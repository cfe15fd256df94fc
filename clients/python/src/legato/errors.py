"""Exceptions raised by :class:`legato.Client`.

Every error the server reports is JSON of the form
``{"error": {"code": "not-found", "message": "..."}}``; the exception carries that
``code``, the ``message`` and the HTTP ``status``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

import requests

__all__ = [
    "LegatoError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "UnsupportedMedia",
    "RateLimited",
    "ServerError",
    "ConnectionFailed",
    "RequestTimeout",
    "error_from_response",
]


class LegatoError(Exception):
    """Base class of every error raised by the client.

    Attributes:
        message: human-readable description (the server's ``error.message`` when it sent one).
        code: the server's stable error code (``"not-found"``, ``"invalid-id"``, ...), or
            ``None`` when the server sent none (or no response was received).
        status: the HTTP status code, or ``None`` when no response was received.
    """

    def __init__(self, message: str, *, code: Optional[str] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        prefix = []
        if self.status is not None:
            prefix.append(str(self.status))
        if self.code:
            prefix.append(self.code)
        if prefix:
            return "[%s] %s" % (" ".join(prefix), self.message)
        return self.message

    def __repr__(self) -> str:
        return "%s(message=%r, code=%r, status=%r)" % (type(self).__name__, self.message, self.code, self.status)


class BadRequest(LegatoError):
    """400: malformed id, JSON, multipart body or query parameter."""


class Unauthorized(LegatoError):
    """401: a missing or wrong API key."""


class Forbidden(LegatoError):
    """403: the API key may not do this."""


class NotFound(LegatoError):
    """404: unknown track id (code ``not-found``) or unknown path (``no-route``)."""


class PayloadTooLarge(LegatoError):
    """413: the upload exceeds the server's ``--max-upload-mb``."""


class UnsupportedMedia(LegatoError):
    """415: the upload is not audio the server can read (``not-audio``, ``empty-file``, ``unsupported-format``)."""


class RateLimited(LegatoError):
    """429: too many requests. ``retry_after`` holds the ``Retry-After`` header in seconds, when sent."""

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class ServerError(LegatoError):
    """5xx: the server failed (``internal-error``) or its store is down (``store-unavailable``)."""


class ConnectionFailed(LegatoError):
    """The server could not be reached (refused, reset, DNS failure, ...). ``status`` is ``None``."""


class RequestTimeout(ConnectionFailed):
    """The server did not answer within the client's ``timeout``."""


_BY_STATUS: Dict[int, Type[LegatoError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    415: UnsupportedMedia,
    429: RateLimited,
}


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date; not worth parsing here


def error_from_response(response: requests.Response) -> LegatoError:
    """Build the exception matching an error ``response`` (status >= 400)."""
    status = response.status_code
    code: Optional[str] = None
    message: Optional[str] = None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            if isinstance(err.get("code"), str):
                code = err["code"]
            if err.get("message") is not None:
                message = str(err["message"])
        elif isinstance(err, str):
            message = err
    if message is None:
        text = (response.text or "").strip()
        message = text[:500] if text else (response.reason or "HTTP %d" % status)

    if status >= 500:
        return ServerError(message, code=code, status=status)
    cls = _BY_STATUS.get(status, LegatoError)
    if cls is RateLimited:
        return RateLimited(
            message, code=code, status=status, retry_after=_parse_retry_after(response.headers.get("Retry-After"))
        )
    return cls(message, code=code, status=status)

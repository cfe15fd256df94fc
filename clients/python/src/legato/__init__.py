"""Python client of Legato, serverless music streaming over HLS.

* :class:`Client` — typed client of the crud function (add, list, get, update, delete,
  download the original file).
* :class:`MusicApi` — drop-in replacement of the seed project's ``MusicApi``.
"""

from ._version import __version__
from .client import Client
from .errors import (
    BadRequest,
    ConnectionFailed,
    Forbidden,
    LegatoError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServerError,
    Unauthorized,
    UnsupportedMedia,
)
from .models import Download, Source, Track
from .music_api import MusicApi

__all__ = [
    "__version__",
    "Client",
    "MusicApi",
    "Track",
    "Source",
    "Download",
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
]

"""Client behaviour that needs no real server: URLs, env, Track, error mapping, wire format."""

from __future__ import annotations

import email.parser
import email.policy
import json

import pytest

import legato
from helpers import free_port
from legato import client as client_module


def json_error(status: int, code: str, message: str, headers: dict = None):  # type: ignore[assignment]
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return lambda req: (status, {"Content-Type": "application/json", **(headers or {})}, body)


# ---------------------------------------------------------------- URLs and env


@pytest.mark.parametrize(
    "base, root, crud",
    [
        ("http://gw:8080", "http://gw:8080", "http://gw:8080/function/crud"),
        ("http://gw:8080/", "http://gw:8080", "http://gw:8080/function/crud"),
        ("http://gw:8080/function/crud", "http://gw:8080", "http://gw:8080/function/crud"),
        ("http://gw:8080/function/crud/", "http://gw:8080", "http://gw:8080/function/crud"),
        ("https://example.org/prefix/function/crud", "https://example.org/prefix",
         "https://example.org/prefix/function/crud"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000", "http://127.0.0.1:9000/function/crud"),
    ],
)
def test_base_url_forms(base: str, root: str, crud: str) -> None:
    c = legato.Client(base)
    assert (c.root_url, c.crud_url) == (root, crud)


def test_standalone_crud_function_at_root() -> None:
    c = legato.Client("http://127.0.0.1:9000", crud_path="")
    assert c.crud_url == "http://127.0.0.1:9000"


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LEGATO_URL", "LEGATO_API_KEY", "FUNCTION_URL"):
        monkeypatch.delenv(var, raising=False)
    assert legato.Client().crud_url == "http://127.0.0.1:8080/function/crud"
    assert legato.MusicApi().client.crud_url == "http://127.0.0.1:8080/function/crud"

    monkeypatch.setenv("LEGATO_URL", "http://gw:1234")
    monkeypatch.setenv("LEGATO_API_KEY", "s3cret")
    c = legato.Client()
    assert c.crud_url == "http://gw:1234/function/crud"
    assert c.api_key == "s3cret"
    assert legato.MusicApi().client.crud_url == "http://gw:1234/function/crud"

    monkeypatch.setenv("FUNCTION_URL", "http://other:8080/function/crud")
    assert legato.MusicApi().client.crud_url == "http://other:8080/function/crud"
    assert legato.MusicApi("http://x:1/function/crud").client.crud_url == "http://x:1/function/crud"


def test_playlist_url_from_track_needs_no_request() -> None:
    t = legato.Track(id="a" * 24, playlist="/function/streaming/%s/index.m3u8" % ("a" * 24))
    url = "http://gw:8080/function/streaming/%s/index.m3u8" % ("a" * 24)
    assert legato.Client("http://gw:8080/function/crud").playlist_url(t) == url
    assert legato.Client("http://gw:8080").playlist_url(t) == url
    # A server that did not send "playlist": the documented path.
    assert legato.Client("http://gw:8080").playlist_url(legato.Track(id="a" * 24)) == url


# ---------------------------------------------------------------- Track


def test_track_keeps_unknown_fields() -> None:
    data = {
        "id": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Like a Prayer", "author": "Madonna",
        "duration": 240.013, "segments": 24, "playlist": "/function/streaming/x/index.m3u8",
        "codec": "mp3", "bitrate": 128, "sample_rate": 44100, "channels": 2, "size": 3840209,
        "created_at": "2026-11-28T20:30:00Z", "loudness": -14.2, "mood": "happy", "tags": ["pop"],
    }
    t = legato.Track.from_dict(data)
    assert t.id == data["id"] and t.duration == 240.013 and t.segments == 24 and t.channels == 2
    assert t.loudness == -14.2
    assert t.extra == {"mood": "happy", "tags": ["pop"]}
    # to_dict keeps every field but in the client's order: compare as dicts.
    assert t.to_dict() == data
    assert t.created is not None and t.created.year == 2026 and t.created.utcoffset().total_seconds() == 0


def test_track_from_seed_shape() -> None:
    t = legato.Track.from_dict({"id": "x", "name": "n", "author": "a"})
    assert (t.id, t.name, t.author, t.duration, t.extra, t.created) == ("x", "n", "a", None, {}, None)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "status, cls",
    [
        (400, legato.BadRequest), (401, legato.Unauthorized), (403, legato.Forbidden),
        (404, legato.NotFound), (413, legato.PayloadTooLarge), (415, legato.UnsupportedMedia),
        (429, legato.RateLimited), (500, legato.ServerError), (503, legato.ServerError),
        (405, legato.LegatoError), (416, legato.LegatoError),
    ],
)
def test_error_mapping(stub, status: int, cls: type) -> None:
    stub.handler = json_error(status, "some-code", "what went wrong")
    c = legato.Client(stub.url)
    with pytest.raises(cls) as info:
        c.get("65a1f0c2e4b0a1b2c3d4e5f6")
    e = info.value
    assert type(e) is cls
    assert isinstance(e, legato.LegatoError)
    assert (e.status, e.code, e.message) == (status, "some-code", "what went wrong")
    assert "some-code" in str(e) and str(status) in str(e)


def test_error_without_json_body(stub) -> None:
    stub.handler = lambda req: (502, {"Content-Type": "text/plain"}, b"Bad Gateway from the proxy")
    with pytest.raises(legato.ServerError) as info:
        legato.Client(stub.url).list()
    assert (info.value.status, info.value.code, info.value.message) == (502, None, "Bad Gateway from the proxy")


def test_rate_limited_retry_after(stub) -> None:
    stub.handler = json_error(429, "rate-limited", "slow down", {"Retry-After": "7"})
    with pytest.raises(legato.RateLimited) as info:
        legato.Client(stub.url).list()
    assert info.value.retry_after == 7.0


def test_connection_failed_on_closed_port() -> None:
    port = free_port()  # nothing listens there any more
    with pytest.raises(legato.ConnectionFailed) as info:
        legato.Client("http://127.0.0.1:%d" % port, timeout=5).list()
    assert info.value.status is None
    with pytest.raises(legato.ConnectionFailed):
        legato.MusicApi("http://127.0.0.1:%d/function/crud" % port).list()


def test_timeout(stub) -> None:
    stub.delay = 1.0
    with pytest.raises(legato.RequestTimeout) as info:
        legato.Client(stub.url, timeout=0.2).list()
    assert isinstance(info.value, legato.ConnectionFailed)


def test_body_that_is_not_json(stub) -> None:
    stub.handler = lambda req: (200, {"Content-Type": "text/html"}, b"<html>gateway</html>")
    with pytest.raises(legato.LegatoError):
        legato.Client(stub.url).list()


# ---------------------------------------------------------------- what goes on the wire


def test_api_key_sent_as_bearer(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_API_KEY", raising=False)
    legato.Client(stub.url, api_key="k-123").list()
    legato.Client(stub.url).list()
    assert stub.requests[0]["headers"].get("Authorization") == "Bearer k-123"
    assert "Authorization" not in stub.requests[1]["headers"]
    monkeypatch.setenv("LEGATO_API_KEY", "from-env")
    legato.MusicApi(stub.url + "/function/crud").list()
    assert stub.requests[2]["headers"].get("Authorization") == "Bearer from-env"


def test_list_query_parameters(stub) -> None:
    stub.handler = lambda req: (200, {"Content-Type": "application/json", "X-Total-Count": "42"}, b"[]")
    c = legato.Client(stub.url)
    assert c.list_page(q="mad onna", limit=5, offset=10, sort="name", order="desc") == ([], 42)
    assert stub.requests[-1]["path"] == "/function/crud?q=mad+onna&limit=5&offset=10&sort=name&order=desc"
    c.list()
    assert stub.requests[-1]["path"] == "/function/crud"


def test_ids_are_quoted_in_paths(stub) -> None:
    stub.handler = json_error(400, "invalid-id", "bad id")
    with pytest.raises(legato.BadRequest):
        legato.Client(stub.url).get("../x?y")
    assert stub.requests[-1]["path"] == "/function/crud/..%2Fx%3Fy"
    assert legato.MusicApi(stub.url).get("../x?y") == "{}"
    with pytest.raises(ValueError):
        legato.Client(stub.url).get("")
    assert legato.MusicApi(stub.url).get("") == "{}"


def test_update_sends_only_given_fields(stub) -> None:
    stub.handler = lambda req: (200, {"Content-Type": "application/json"}, b'{"id": "x", "name": "N", "author": "A"}')
    c = legato.Client(stub.url)
    c.update("x", name="N")
    c.update("x", author="A")
    assert [json.loads(r["body"]) for r in stub.requests] == [{"name": "N"}, {"author": "A"}]
    assert all(r["method"] == "PATCH" and r["headers"]["Content-Type"] == "application/json" for r in stub.requests)


def parse_multipart(req: dict) -> list:
    raw = b"Content-Type: " + req["headers"]["Content-Type"].encode() + b"\r\n\r\n" + req["body"]
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert msg.is_multipart()
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_content_type(),
         part.get_payload(decode=True))
        for part in msg.iter_parts()
    ]


def created(req: dict):
    return (201, {"Content-Type": "application/json", "Location": "/function/crud/x"},
            b'{"id": "%s", "name": "n", "author": "a"}' % (b"b" * 24))


def test_add_streams_multipart(stub, tmp_path) -> None:
    assert client_module.MultipartEncoder is not None, "requests-toolbelt should be installed"
    song = tmp_path / "Like_A_Prayer.mp3"
    payload = bytes(range(256)) * 1000
    song.write_bytes(payload)
    stub.handler = created
    track = legato.Client(stub.url).add(song, name="Like a Prayer", author="Madonna")
    assert track.id == "b" * 24
    req = stub.requests[-1]
    assert req["method"] == "POST" and req["path"] == "/function/crud"
    assert req["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(req["headers"]["Content-Length"]) == len(req["body"])  # sized, not chunked
    assert "Transfer-Encoding" not in req["headers"]
    assert parse_multipart(req) == [
        ("name", None, "text/plain", b"Like a Prayer"),
        ("author", None, "text/plain", b"Madonna"),
        ("song", "Like_A_Prayer.mp3", "audio/mpeg", payload),
    ]


def test_add_file_objects_and_bytes(stub, tmp_path) -> None:
    import io

    stub.handler = created
    c = legato.Client(stub.url)
    song = tmp_path / "a.mp3"
    song.write_bytes(b"ID3 fake")
    with open(song, "rb") as f:
        c.add(f)
        assert not f.closed
    c.add(io.BytesIO(b"raw bytes"), author="Only Author")
    c.add(b"just bytes", name="Only Name")
    c.add(str(song))
    parts = [parse_multipart(r) for r in stub.requests]
    assert parts[0] == [("song", "a.mp3", "audio/mpeg", b"ID3 fake")]
    assert parts[1] == [("author", None, "text/plain", b"Only Author"),
                        ("song", "song.mp3", "audio/mpeg", b"raw bytes")]
    assert parts[2] == [("name", None, "text/plain", b"Only Name"), ("song", "song.mp3", "audio/mpeg", b"just bytes")]
    assert parts[3] == parts[0]
    with pytest.raises(TypeError):
        with open(song, "r") as text_mode:
            c.add(text_mode)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        c.add(tmp_path / "missing.mp3")


def test_music_api_insert_is_multipart_not_base64(stub, tmp_path) -> None:
    song = tmp_path / "TakeOnMe.mp3"
    song.write_bytes(b"\xff\xfb" + b"\x00" * 5000)
    stub.handler = created
    text = legato.MusicApi(stub.url + "/function/crud").insert("a-ha", "Take on me", str(song))
    assert json.loads(text)["id"] == "b" * 24
    assert parse_multipart(stub.requests[-1]) == [
        ("name", None, "text/plain", b"Take on me"),
        ("author", None, "text/plain", b"a-ha"),
        ("song", "TakeOnMe.mp3", "audio/mpeg", song.read_bytes()),
    ]


def test_music_api_returns_error_text_like_the_seed(stub) -> None:
    stub.handler = json_error(404, "not-found", "no track")
    api = legato.MusicApi(stub.url)
    assert api.get("c" * 24) == "{}"
    assert json.loads(api.remove("c" * 24))["error"]["code"] == "not-found"
    stub.handler = json_error(500, "internal-error", "boom")
    assert json.loads(api.get("c" * 24))["error"]["code"] == "internal-error"


def test_music_api_list_walks_every_page(stub) -> None:
    from urllib.parse import parse_qs, urlsplit

    items = [{"id": "%024x" % i, "name": "n%d" % i, "author": "a"} for i in range(7)]

    def pages(req: dict):
        qs = parse_qs(urlsplit(req["path"]).query)
        offset = int(qs.get("offset", ["0"])[0])
        body = json.dumps(items[offset:offset + 3]).encode()  # a server that sends 3 at most
        return 200, {"Content-Type": "application/json", "X-Total-Count": str(len(items))}, body

    stub.handler = pages
    assert json.loads(legato.MusicApi(stub.url).list()) == items
    # One request without limit (the seed's list); a server that still pages is walked.
    assert [urlsplit(r["path"]).query for r in stub.requests] == [
        "", "limit=1000&offset=3", "limit=1000&offset=6"]
    assert [t.id for t in legato.Client(stub.url).iter_tracks(page_size=3)] == [i["id"] for i in items]


def test_music_api_list_is_one_request_to_a_server_that_sends_everything(stub) -> None:
    items = [{"id": "%024x" % i, "name": "n%d" % i, "author": "a"} for i in range(1500)]
    stub.handler = lambda req: (200, {"Content-Type": "application/json", "X-Total-Count": "1500"},
                                json.dumps(items).encode())
    assert json.loads(legato.MusicApi(stub.url).list()) == items
    assert len(stub.requests) == 1 and "?" not in stub.requests[0]["path"]

"""legato.Client against the real server."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import List
from urllib.parse import urljoin

import pytest
import requests

import legato
from helpers import Server, free_port, random_id, run_server

ID = re.compile(r"^[0-9a-f]{24}$")


def settled(t: legato.Track) -> legato.Track:
    """The track without what the server adds after the upload: loudness and waveform, and
    the renditions the follow-up job of an MP3 publishes (its playlist, variants and job)."""
    return dataclasses.replace(
        t, loudness=None, true_peak=None, peaks=None, playlist=None, variants=[], job=None, coming=[]
    )


def check_track(t: legato.Track, *, name: str, author: str, duration: float, bitrate: int) -> None:
    assert ID.match(t.id), t.id
    assert (t.name, t.author) == (name, author)
    assert t.duration is not None and abs(t.duration - duration) < 0.5, t.duration
    assert t.segments is not None and abs(t.segments - duration / 10) <= 1.01, t.segments
    # ``g2-index.m3u8`` once a follow-up job (the AAC renditions of an MP3) has published
    assert re.fullmatch(r"/function/streaming/%s/(g[0-9]+-)?index\.m3u8" % t.id, t.playlist or ""), t.playlist
    assert t.codec == "mp3"
    # api.md does not say whether the server keeps or re-encodes the MP3 (the seed re-encoded at 128k)
    assert t.bitrate in (bitrate, 128), t.bitrate
    assert t.sample_rate == 44100
    assert t.channels == 1  # lavfi's sine is mono
    assert t.size is not None and t.size > 0
    assert t.created is not None, t.created_at
    assert t.status == "ready"
    assert t.extra == {}, "fields api.md does not list: %r" % t.extra


def test_add_get_update_delete(client: legato.Client, make_mp3, tag: str, cleanup: List[str]) -> None:
    song = make_mp3(frequency=440, duration=12)
    t = client.add(song, name="Like a Prayer " + tag, author="Madonna")
    cleanup.append(t.id)
    check_track(t, name="Like a Prayer " + tag, author="Madonna", duration=12, bitrate=128)

    assert settled(client.get(t.id)) == settled(t)

    renamed = client.update(t.id, name="Like a Prayer (remix) " + tag)
    assert (renamed.id, renamed.name, renamed.author) == (t.id, "Like a Prayer (remix) " + tag, "Madonna")
    reauthored = client.update(t.id, author="Madonna Ciccone")
    assert (reauthored.name, reauthored.author) == ("Like a Prayer (remix) " + tag, "Madonna Ciccone")
    both = client.update(t.id, name="N " + tag, author="A " + tag)
    assert (both.name, both.author, both.duration, both.created_at) == ("N " + tag, "A " + tag, t.duration,
                                                                          t.created_at)
    assert settled(client.get(t.id)) == settled(both)

    assert client.delete(t.id) == 1
    with pytest.raises(legato.NotFound) as info:
        client.get(t.id)
    assert (info.value.status, info.value.code) == (404, "not-found")
    with pytest.raises(legato.NotFound):
        client.delete(t.id)
    r = requests.get(client.root_url + t.playlist, timeout=10)
    assert r.status_code == 404, "the playlist should be gone with the track"


def test_add_file_object_bytes_and_defaults(client: legato.Client, make_mp3, tag: str, cleanup: List[str]) -> None:
    # Four different songs: the server answers the same file twice with its existing track.
    songs = [make_mp3(frequency=523 + i, duration=5) for i in range(4)]
    with open(songs[0], "rb") as f:
        a = client.add(f, name="from file " + tag, author=tag)
    cleanup.append(a.id)
    b = client.add(io.BytesIO(songs[1].read_bytes()), name="from BytesIO " + tag, author=tag)
    cleanup.append(b.id)
    c = client.add(songs[2].read_bytes(), name="from bytes " + tag, author=tag)
    cleanup.append(c.id)
    for t in (a, b, c):
        assert ID.match(t.id) and abs(t.duration - 5) < 0.5
    assert len({a.id, b.id, c.id}) == 3
    # name and author are optional in the multipart form
    d = client.add(songs[3])
    cleanup.append(d.id)
    assert ID.match(d.id) and isinstance(d.name, str) and isinstance(d.author, str)


def test_large_upload(client: legato.Client, big_mp3: Path, tag: str, cleanup: List[str]) -> None:
    assert big_mp3.stat().st_size > 6_000_000
    t = client.add(big_mp3, name="big " + tag, author=tag)
    cleanup.append(t.id)
    check_track(t, name="big " + tag, author=tag, duration=300, bitrate=192)
    assert t.size > 4_000_000  # 300 s at 128 kbit/s or more
    assert client.get(t.id).segments == t.segments


def test_playlist_url_serves_hls(client: legato.Client, make_mp3, tag: str, cleanup: List[str]) -> None:
    t = client.add(make_mp3(frequency=660, duration=25), name="hls " + tag, author=tag)
    cleanup.append(t.id)
    url = client.playlist_url(t.id)
    assert url == "%s/function/streaming/%s/index.m3u8" % (client.root_url, t.id)
    assert client.playlist_url(t) == url
    # the crud URL form of base_url gives the same gateway root
    assert legato.Client(client.crud_url).playlist_url(t.id) == url

    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    assert r.text.startswith("#EXTM3U")
    if "#EXT-X-STREAM-INF" in r.text:
        # A master playlist (the ladder): follow its first variant.
        variants = [line for line in r.text.splitlines() if line and not line.startswith("#")]
        # The upload answered with the MP3 playable at once; its other renditions may have
        # been published since.
        assert len(variants) == len(client.get(t.id).variants)
        url = urljoin(url, variants[0])
        r = requests.get(url, timeout=10)
        assert r.status_code == 200
    segments = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    assert len(segments) == t.segments
    seg = requests.get(urljoin(url, segments[0]), timeout=10)
    assert seg.status_code == 200
    if "#EXT-X-MAP" in r.text:
        # An fMP4 rendition (AAC or FLAC), listed first for standards players.
        assert seg.headers["Content-Type"] == "audio/mp4"
        assert seg.content[4:8] == b"styp"
        # The seed's playlist name answers the MP3 renditions alone, in MPEG-TS.
        legacy = requests.get(urljoin(url, "outputlist.m3u8"), timeout=10)
        assert legacy.status_code == 200 and "#EXT-X-MAP" not in legacy.text
        first = [line for line in legacy.text.splitlines() if line and not line.startswith("#")][0]
        url = urljoin(url, first)
        r = requests.get(url, timeout=10)
        segments = [line for line in r.text.splitlines() if line and not line.startswith("#")]
        seg = requests.get(urljoin(url, segments[0]), timeout=10)
        assert seg.status_code == 200
    assert seg.headers["Content-Type"] == "video/mp2t"
    assert seg.content[:1] == b"\x47"  # MPEG-TS sync byte

    with pytest.raises(legato.NotFound):
        client.playlist_url(random_id())


def test_list_q_limit_offset_sort_total(client: legato.Client, make_mp3, tag: str, cleanup: List[str]) -> None:
    durations = [3, 7, 5, 9, 4]
    tracks = []
    for i, d in enumerate(durations):
        t = client.add(make_mp3(frequency=300 + 50 * i, duration=d), name="%s song %d" % (tag, i),
                       author="Band %d" % (4 - i))
        cleanup.append(t.id)
        tracks.append(t)
    ids = [t.id for t in tracks]

    found = client.list(q=tag)
    assert [t.id for t in found] == ids  # default: created_at ascending
    page, total = client.list_page(q=tag.upper(), limit=2)  # q is case-insensitive
    assert total == 5 and [t.id for t in page] == ids[:2]
    page, total = client.list_page(q=tag, limit=2, offset=2)
    assert total == 5 and [t.id for t in page] == ids[2:4]
    page, total = client.list_page(q=tag, limit=2, offset=4)
    assert total == 5 and [t.id for t in page] == ids[4:]
    page, total = client.list_page(q=tag, offset=10)
    assert (page, total) == ([], 5)

    assert [t.id for t in client.list(q=tag, sort="name", order="desc")] == ids[::-1]
    assert [t.id for t in client.list(q=tag, sort="author")] == ids[::-1]
    by_duration = [t.id for t in sorted(tracks, key=lambda t: t.duration)]
    assert [t.id for t in client.list(q=tag, sort="duration")] == by_duration
    assert [t.id for t in client.list(q=tag, sort="created_at", order="desc")] == ids[::-1]
    assert [t.id for t in client.iter_tracks(q=tag, page_size=2)] == ids

    # q matches the author too
    assert [t.id for t in client.list(q=tag)] == ids
    band = client.list(q="band 3")
    assert tracks[1].id in [t.id for t in band]

    # the unfiltered list contains them, with a total at least as large
    everything, total_all = client.list_page(limit=1000)
    assert set(ids) <= {t.id for t in everything} and total_all >= 5

    assert client.list(q="no such track " + tag) == []


def test_list_bad_parameters(client: legato.Client) -> None:
    with pytest.raises(legato.BadRequest) as info:
        client.list(sort="loudness")
    assert (info.value.status, info.value.code) == (400, "invalid-parameter")
    with pytest.raises(legato.BadRequest) as info:
        client.list(order="sideways")
    assert info.value.code == "invalid-parameter"
    with pytest.raises(legato.BadRequest) as info:
        client.list(limit=-1)
    assert info.value.code == "invalid-parameter"


def test_not_found(client: legato.Client) -> None:
    missing = random_id()
    for call in (lambda: client.get(missing), lambda: client.delete(missing),
                 lambda: client.update(missing, name="x")):
        with pytest.raises(legato.NotFound) as info:
            call()
        assert (info.value.status, info.value.code) == (404, "not-found")
        assert info.value.message


def test_malformed_id(client: legato.Client) -> None:
    for call in (lambda: client.get("11111"), lambda: client.delete("11111"),
                 lambda: client.update("11111", name="x"), lambda: client.get("Z" * 24)):
        with pytest.raises(legato.BadRequest) as info:
            call()
        assert (info.value.status, info.value.code) == (400, "invalid-id")


def test_text_file_is_unsupported_media(client: legato.Client, tmp_path: Path, tag: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("This is not a song.\n" * 200)
    with pytest.raises(legato.UnsupportedMedia) as info:
        client.add(notes, name="not a song " + tag, author=tag)
    assert info.value.status == 415
    assert info.value.code in ("not-audio", "unsupported-format", "empty-file")
    with pytest.raises(legato.UnsupportedMedia) as info:
        client.add(b"", name="empty " + tag, author=tag)
    assert info.value.status == 415
    assert client.list(q=tag) == []


def test_connection_failed_on_closed_port() -> None:
    with pytest.raises(legato.ConnectionFailed) as info:
        legato.Client("http://127.0.0.1:%d" % free_port(), timeout=5).get(random_id())
    assert info.value.status is None


def test_payload_too_large(tmp_path: Path, make_mp3) -> None:
    # ~1.4 MB: over the limit once read; ~4.3 MB: over it by its Content-Length alone.
    songs = [make_mp3(frequency=200, duration=60, bitrate="192k"), make_mp3(frequency=200, duration=180, bitrate="192k")]
    with run_server(tmp_path, ["--max-upload-mb", "1"]) as small:
        c = legato.Client(small.base_url)
        for song in songs:
            assert song.stat().st_size > 1_100_000
            with pytest.raises(legato.PayloadTooLarge) as info:
                c.add(song, name="too big", author="x")
            assert (info.value.status, info.value.code) == (413, "payload-too-large")
        assert c.list() == []
        # a song under the limit still goes in
        ok = c.add(make_mp3(frequency=200, duration=10, bitrate="64k"), name="small", author="x")
        assert [t.id for t in c.list()] == [ok.id]


def test_server_fixture_is_a_gateway_root(server: Server) -> None:
    # Both documented base_url forms reach the same function.
    a = legato.Client(server.base_url).list_page(limit=1)[1]
    b = legato.Client(server.crud_url).list_page(limit=1)[1]
    assert a == b

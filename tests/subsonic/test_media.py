"""Media retrieval: stream (bitrates, ranges, raw), download, getCoverArt, hls.m3u8."""

import io
import re
from urllib.parse import urljoin

import pytest
from PIL import Image

import media

TITLES = ["Alpha Three", "Alpha One"]  # a FLAC (transcoded) and an MP3 (kept as is)


def _stream(server, song_id, **params):
    r = server.request("stream", {"id": song_id, **params}, fmt=None)
    assert r.status_code == 200, (r.status_code, r.headers, r.content[:300])
    assert r.subsonic is None and r.xml is None, "stream answered a Subsonic document: %r" % r.content[:300]
    return r


@pytest.mark.parametrize("title", TITLES)
def test_stream_two_bitrates_decode_to_the_duration(server, songs, title):
    t = server.track(title)
    sizes = {}
    for rate in (64, 320):
        r = _stream(server, t.song_id, maxBitRate=rate)
        assert r.headers.get("Content-Type", "").startswith("audio/mpeg"), r.headers
        assert int(r.headers["Content-Length"]) == len(r.content), r.headers
        assert r.headers.get("Accept-Ranges") == "bytes", r.headers
        got = media.decoded_seconds(r.content)
        assert abs(got - t.duration) <= 0.1, "%s at %dk decodes to %.3f s, the source is %.3f s" % (title, rate, got, t.duration)
        sizes[rate] = len(r.content)
        info = media.probe(r.content)
        audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
        assert audio and audio[0]["codec_name"] == "mp3", info
        # The stream's bitrate respects the cap (a little slack for tags and the Xing frame).
        kbps = len(r.content) * 8 / t.duration / 1000
        assert kbps <= rate * 1.1 + 8, "%s: %.0f kbit/s with maxBitRate=%d" % (title, kbps, rate)
    assert sizes[64] < sizes[320], sizes


@pytest.mark.parametrize("title", TITLES)
def test_stream_range_in_the_middle(server, songs, title):
    t = server.track(title)
    full = _stream(server, t.song_id, maxBitRate=128).content
    start, end = len(full) // 3, len(full) // 3 + 9999
    r = server.request("stream", {"id": t.song_id, "maxBitRate": 128}, fmt=None,
                       headers={"Range": "bytes=%d-%d" % (start, end)})
    assert r.status_code == 206, (r.status_code, r.headers)
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (start, end, len(full)), r.headers
    assert int(r.headers["Content-Length"]) == end - start + 1
    assert r.content == full[start:end + 1]
    # An open-ended range to the end.
    r = server.request("stream", {"id": t.song_id, "maxBitRate": 128}, fmt=None,
                       headers={"Range": "bytes=%d-" % (len(full) - 100)})
    assert r.status_code == 206 and r.content == full[-100:], r.headers


def test_stream_libopensonic(server, songs, admin_conn):
    import asyncio

    t = server.track("Beta One")
    res = admin_conn.stream(t.song_id, max_bit_rate=128)
    data = asyncio.run_coroutine_threadsafe(res.read(), admin_conn._loop).result()
    assert abs(media.decoded_seconds(data) - t.duration) <= 0.1


@pytest.mark.parametrize("title", ["Alpha One", "Alpha Three", "Beta One"])
def test_raw_and_download_are_the_original_bytes(server, songs, title):
    t = server.track(title)
    raw = _stream(server, t.song_id, format="raw")
    assert media.sha256(raw.content) == t.sha256, "stream format=raw is not the uploaded file"
    dl = server.request("download", {"id": t.song_id}, fmt=None)
    assert dl.status_code == 200 and dl.subsonic is None, (dl.status_code, dl.content[:300])
    assert media.sha256(dl.content) == t.sha256, "download is not the uploaded file"
    assert int(dl.headers["Content-Length"]) == t.path.stat().st_size


def test_download_with_libopensonic(server, songs, alice_conn):
    import asyncio

    t = server.track("Beta Two")
    res = alice_conn.download(t.song_id)
    data = asyncio.run_coroutine_threadsafe(res.read(), alice_conn._loop).result()
    assert media.sha256(data) == t.sha256


def test_mp3_stream_without_cap_is_the_original(server, songs):
    # An MP3 under the cap needs no transcoding: Subsonic servers send the file itself.
    t = server.track("Alpha Two")
    r = _stream(server, t.song_id)
    assert abs(media.decoded_seconds(r.content) - t.duration) <= 0.1


def test_stream_unknown_id(server, songs):
    r = server.request("stream", {"id": "no-such-song"})
    assert r.status_code == 200 and r.subsonic is not None, (r.status_code, r.content[:200])
    assert r.subsonic["error"]["code"] == 70


def _image(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("title", ["Alpha One", "Beta One"])
def test_cover_art_original_and_sized(server, songs, title):
    t = server.track(title)
    song = server.call("getSong", {"id": t.song_id})["song"]
    cover = song["coverArt"]
    _, w, h, _ = media.COVERS[t.cover]
    r = server.request("getCoverArt", {"id": cover}, fmt=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/"), (r.status_code, r.headers)
    assert _image(r.content).size == (w, h)
    assert r.content == t.cover_bytes, "getCoverArt without size is not the embedded picture"
    r = server.request("getCoverArt", {"id": cover, "size": 64}, fmt=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/"), r.headers
    im = _image(r.content)
    assert max(im.size) == 64, im.size
    assert abs(im.size[0] / im.size[1] - w / h) < 0.05, "aspect ratio kept: %s for %dx%d" % (im.size, w, h)


def test_cover_art_of_album_and_libopensonic(server, songs, albums, admin_conn):
    import asyncio

    album = server.call("getAlbum", {"id": albums["Beta Album"]["id"]})["album"]
    res = admin_conn.get_cover_art(album["coverArt"], size=32)
    data = asyncio.run_coroutine_threadsafe(res.read(), admin_conn._loop).result()
    assert max(_image(data).size) == 32


def test_cover_art_missing(server, songs):
    t = server.track("Lonely Track")
    song = server.call("getSong", {"id": t.song_id})["song"]
    if "coverArt" in song:
        r = server.request("getCoverArt", {"id": song["coverArt"]}, fmt=None)
        assert r.status_code in (200, 404)
        if r.status_code == 200 and r.subsonic is not None:
            assert r.subsonic["error"]["code"] == 70
    r = server.request("getCoverArt", {"id": "no-such-cover"})
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.subsonic is not None and r.subsonic["error"]["code"] == 70


def _segment_kbps(server, playlist_url, text):
    """The average bitrate of a media playlist's segments (fetches them all)."""
    total_bytes, total_seconds = 0, 0.0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            secs = float(line[len("#EXTINF:"):].split(",")[0])
            uri = lines[i + 1].strip()
            r = server.http.get(urljoin(playlist_url, uri), timeout=30)
            assert r.status_code == 200, (uri, r.status_code)
            total_bytes += len(r.content)
            total_seconds += secs
    assert total_seconds > 0, text
    return total_bytes * 8 / total_seconds / 1000, total_seconds


def _media_playlist(server, r):
    """Follows a master playlist to its first variant; answers (url, text)."""
    text = r.text
    url = r.url
    if "#EXT-X-STREAM-INF" in text:
        uri = [l for l in text.splitlines() if l and not l.startswith("#")][0]
        url = urljoin(url, uri)
        r2 = server.http.get(url, timeout=30)
        assert r2.status_code == 200
        text = r2.text
    return url, text


def test_hls_playlist(server, songs):
    t = server.track("Alpha Three")
    r = server.request("hls.m3u8", {"id": t.song_id}, fmt=None)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    assert r.text.startswith("#EXTM3U"), r.text[:200]
    assert "mpegurl" in r.headers.get("Content-Type", "").lower(), r.headers
    url, text = _media_playlist(server, r)
    kbps, seconds = _segment_kbps(server, url, text)
    assert abs(seconds - t.duration) <= 0.5, (seconds, t.duration)


def test_hls_bitrate_picks_a_variant(server, songs):
    t = server.track("Alpha Three")
    rates = {}
    for rate in (64, 192):
        r = server.request("hls.m3u8", {"id": t.song_id, "bitRate": rate}, fmt=None)
        assert r.status_code == 200 and r.text.startswith("#EXTM3U"), (r.status_code, r.text[:200])
        if "#EXT-X-STREAM-INF" in r.text:
            bws = [int(m) for m in re.findall(r"BANDWIDTH=(\d+)", r.text)]
            assert bws and max(bws) <= rate * 1000 * 1.3, (rate, bws)
        url, text = _media_playlist(server, r)
        rates[rate], _ = _segment_kbps(server, url, text)
    # Segments carry container overhead: allow for it, but 64 must be well under 192.
    assert rates[64] <= 64 * 1.35, rates
    assert rates[64] < rates[192] * 0.6, rates


def test_hls_unknown_id(server, songs):
    r = server.request("hls.m3u8", {"id": "no-such-song"})
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.subsonic is not None and r.subsonic["error"]["code"] == 70, r.content[:300]

"""System endpoints, extensions, and the protocol itself: formPost, .view, f=xml/json/jsonp,
unknown endpoints; XML answers have the same shape as JSON ones."""

import json
import re

import pytest

import spec as spec_mod
from conftest import ADMIN, ALICE, fresh_source


def test_license(server, admin_conn):
    lic = server.call("getLicense")["license"]
    assert lic["valid"] is True
    assert admin_conn.get_license()


def test_extensions(server, admin_conn):
    body = server.call("getOpenSubsonicExtensions")
    exts = {e["name"]: e["versions"] for e in body["openSubsonicExtensions"]}
    assert "apiKeyAuthentication" in exts and "formPost" in exts, exts
    assert all(isinstance(v, list) and v for v in exts.values()), exts
    names = {e.name for e in admin_conn.get_open_subsonic_extensions()}
    assert {"apiKeyAuthentication", "formPost"} <= names


def test_scan_status_and_start_scan(server, admin_conn):
    st = admin_conn.get_scan_status()
    assert st.scanning in (True, False)
    body = server.call("getScanStatus")["scanStatus"]
    assert body.get("count", len(server.tracks)) >= len(server.tracks)
    started = server.call("startScan")["scanStatus"]
    assert "scanning" in started


def test_music_folders_raw(server):
    folders = server.call("getMusicFolders", method="POST")["musicFolders"]["musicFolder"]
    assert isinstance(folders, list) and folders and all("id" in f for f in folders)


def test_now_playing_answers(server, admin_conn):
    assert isinstance(admin_conn.get_now_playing(), list)


@pytest.mark.parametrize("endpoint", ["getPodcasts", "getShares", "doesNotExist", "getInternetRadioStations_x"])
def test_unknown_endpoint_is_a_subsonic_error(server, endpoint):
    r = server.request(endpoint)
    assert r.status_code == 200, "%s: HTTP %d (expected 200 with a Subsonic error)" % (endpoint, r.status_code)
    assert r.subsonic is not None, "%s: not a JSON subsonic-response: %r" % (endpoint, r.content[:200])
    # getPodcasts/getShares may be implemented (empty lists): then they succeed.
    if r.subsonic["status"] == "failed":
        assert r.subsonic["error"]["code"] in (0, 70), r.subsonic
    else:
        assert endpoint in ("getPodcasts", "getShares"), r.subsonic


def test_unknown_endpoint_xml(server):
    r = server.request("doesNotExist", fmt="xml")
    assert r.status_code == 200 and r.xml is not None, (r.status_code, r.content[:200])
    assert r.xml.get("status") == "failed"
    err = r.xml.find("{%s}error" % spec_mod.NS)
    assert err is not None and err.get("code") in ("0", "70")


def test_unknown_endpoint_needs_no_404_without_auth(server):
    r = server.request("doesNotExist", how="none", source=fresh_source())
    assert r.status_code == 200 and r.subsonic is not None and r.subsonic["status"] == "failed"


@pytest.mark.parametrize("view", [False, True])
def test_form_post_works_like_get(server, songs, view):
    sid = server.track("Alpha Three").song_id
    get = server.call("getSong", {"id": sid}, view=view)
    post = server.call("getSong", {"id": sid}, method="POST", view=view)
    assert get["song"] == post["song"]
    # Credentials in the form body too (request() posts everything as the form).
    assert server.call("ping", method="POST", how="apikey", user=ALICE)["status"] == "ok"
    assert server.error("ping", method="POST", how="none", extra={"u": ALICE, "p": "wrong"})["code"] == 40


def test_form_post_repeated_keys(server, songs):
    ids = [server.track(t).song_id for t in ("Alpha One", "Beta One")]
    pl = server.call("createPlaylist", [("name", "posted")] + [("songId", i) for i in ids], method="POST")["playlist"]
    assert [e["id"] for e in pl["entry"]] == ids
    server.call("deletePlaylist", {"id": pl["id"]}, method="POST")


def test_libopensonic_get_and_post(server, songs):
    for use_get in (False, True):
        c = server.connection(ADMIN, use_get=use_get)
        try:
            assert c.ping() is True
            assert c.get_song(server.track("Beta Two").song_id).title == "Beta Two"
        finally:
            c.cleanup()


def test_view_suffix(server, songs):
    assert server.call("ping", view=True)["status"] == "ok"
    assert server.call("getArtists", view=True)["artists"]


def test_jsonp(server):
    r = server.request("ping", fmt="jsonp", extra={"callback": "myCallback_1"})
    assert r.status_code == 200
    text = r.text.strip()
    m = re.fullmatch(r"myCallback_1\((.*)\);?", text, re.S)
    assert m, text[:300]
    body = json.loads(m.group(1))
    server.spec.validate("ping", body)
    assert body["subsonic-response"]["status"] == "ok"
    assert "javascript" in r.headers.get("Content-Type", ""), r.headers


def test_default_format_is_xml(server):
    r = server.request("ping", fmt=None)
    assert r.status_code == 200
    assert "xml" in r.headers.get("Content-Type", ""), r.headers
    assert r.xml is not None and r.xml.get("status") == "ok"
    assert r.xml.get("version") and r.xml.get("openSubsonic") == "true"


def _xml_vs_json(server, endpoint, params=None, user=ADMIN, ignore=frozenset()):
    j = server.request(endpoint, params, user=user, fmt="json")
    x = server.request(endpoint, params, user=user, fmt="xml")
    assert j.subsonic is not None and x.xml is not None, (j.headers, x.headers, x.content[:200])
    assert x.headers["Content-Type"].startswith(("text/xml", "application/xml")), x.headers
    diffs = spec_mod.compare_xml_json(x.xml, j.subsonic, ignore=frozenset(ignore))
    assert not diffs, "%s: XML and JSON differ:\n  %s" % (endpoint, "\n  ".join(diffs[:20]))
    return j.subsonic, x.xml


def test_xml_matches_json_ping(server):
    _xml_vs_json(server, "ping")


def test_xml_matches_json_get_artists(server, songs):
    _xml_vs_json(server, "getArtists")


def test_xml_matches_json_get_album(server, songs, albums):
    j, x = _xml_vs_json(server, "getAlbum", {"id": albums["Alpha Album"]["id"]})
    songs_xml = x.findall("{%s}album/{%s}song" % (spec_mod.NS, spec_mod.NS))
    assert [s.get("title") for s in songs_xml] == [s["title"] for s in j["album"]["song"]]


def test_xml_matches_json_search3(server, songs):
    _xml_vs_json(server, "search3", {"query": "", "songCount": 50})


def test_xml_matches_json_get_playlists(server, songs):
    pl = server.call("createPlaylist", [("name", "xml check"), ("songId", server.track("Alpha One").song_id)])["playlist"]
    try:
        _xml_vs_json(server, "getPlaylists")
        _xml_vs_json(server, "getPlaylist", {"id": pl["id"]})
    finally:
        server.call("deletePlaylist", {"id": pl["id"]})


def test_xml_matches_json_genres_and_user(server, songs):
    _xml_vs_json(server, "getGenres")
    _xml_vs_json(server, "getUser", {"username": ADMIN})
    _xml_vs_json(server, "getOpenSubsonicExtensions")


def test_xml_matches_json_errors(server):
    _xml_vs_json(server, "getAlbum", {"id": "no-such-album"})
    j = server.request("ping", how="none", extra={"u": ALICE, "p": "wrong"}, fmt="json", source=fresh_source())
    x = server.request("ping", how="none", extra={"u": ALICE, "p": "wrong"}, fmt="xml", source=fresh_source())
    assert not spec_mod.compare_xml_json(x.xml, j.subsonic)
    assert x.xml.find("{%s}error" % spec_mod.NS).get("code") == "40"


def test_every_json_answer_was_validated(server):
    # A guard on the harness itself: answers went through the schema.
    assert server.validated > 0

"""The harness's own checks, with no server: the schema validator and the XML/JSON comparison
on hand-written answers (so a broken helper cannot make the suite pass vacuously)."""

import xml.etree.ElementTree as ET

import pytest

import spec as spec_mod

BASE = {"status": "ok", "version": "1.16.1", "type": "legato", "serverVersion": "0.1.0", "openSubsonic": True}


def body(**inner):
    return {"subsonic-response": dict(BASE, **inner)}


def test_every_spec_endpoint_has_a_schema():
    s = spec_mod.spec()
    assert len(s.endpoints()) > 80
    for e in s.endpoints():
        s.validator(e)  # resolves


def test_valid_bodies_pass():
    s = spec_mod.spec()
    s.validate("ping", body())
    s.validate("getAlbum", body(album={
        "id": "al-1", "name": "Alpha Album", "songCount": 1, "duration": 7, "created": "2024-01-01T00:00:00Z",
        "artist": "The Testers", "artistId": "ar-1", "year": 2001, "genre": "Rock",
        "song": [{"id": "s-1", "isDir": False, "title": "Alpha One", "track": 1, "discNumber": 1,
                  "duration": 7, "bitRate": 128, "suffix": "mp3", "contentType": "audio/mpeg"}]}))
    s.validate("search3", body(searchResult3={"song": [], "album": [], "artist": []}))
    s.validate("getAlbum", body(status="failed", error={"code": 70, "message": "not found"}))
    s.validate("doesNotExist", body(status="failed", error={"code": 0, "message": "unknown"}))
    s.validate("/rest/getAlbumList2.view", body(albumList2={"album": []}))


@pytest.mark.parametrize("endpoint,bad", [
    ("getAlbum", body(album={"id": "x", "name": "n", "songCount": "one", "duration": 1, "created": "c", "song": []})),
    ("getAlbum", body()),  # no album
    ("ping", {"subsonic-response": {"status": "ok"}}),  # no version, type, serverVersion, openSubsonic
    ("getSong", body(song={"id": "s", "isDir": "no", "title": "t"})),
    ("ping", body(status="failed")),  # failed without error
    ("getLicense", body(license={})),
])
def test_invalid_bodies_fail(endpoint, bad):
    with pytest.raises(AssertionError):
        spec_mod.spec().validate(endpoint, bad)


def test_xml_json_comparison():
    ns = spec_mod.NS
    xml = ('<subsonic-response xmlns="%s" status="ok" version="1.16.1" type="legato" serverVersion="0.1.0" '
           'openSubsonic="true"><album id="a" name="A" songCount="2"><song id="1" title="x" track="1"/>'
           '<song id="2" title="y" track="2"/></album><genres><genre songCount="3">Rock</genre></genres>'
           '</subsonic-response>' % ns)
    root = spec_mod.xml_to_tree(xml.encode())
    j = dict(BASE, album={"id": "a", "name": "A", "songCount": 2, "song": [{"id": "1", "title": "x", "track": 1},
                                                                           {"id": "2", "title": "y", "track": 2}]},
             genres={"genre": [{"songCount": 3, "value": "Rock"}]})
    assert spec_mod.compare_xml_json(root, j) == []
    j["album"]["song"][1]["track"] = 3
    j["album"]["extra"] = "z"
    diffs = spec_mod.compare_xml_json(root, j)
    assert len(diffs) == 2, diffs
    with pytest.raises(AssertionError):
        spec_mod.xml_to_tree(b'<subsonic-response status="ok"/>')  # no namespace

"""legato.MusicApi (the seed's API) against the real server."""

from __future__ import annotations

import json
from typing import List

import pytest

import legato
from helpers import Server, random_id, settled_dict


@pytest.fixture
def api(server: Server, monkeypatch: pytest.MonkeyPatch) -> legato.MusicApi:
    monkeypatch.setenv("FUNCTION_URL", server.crud_url)
    return legato.MusicApi()


def test_insert_get_list_remove(api: legato.MusicApi, make_mp3, tag: str, cleanup: List[str]) -> None:
    text = api.insert("Coldplay " + tag, "Sky Full of Stars", str(make_mp3(frequency=880, duration=11)))
    assert isinstance(text, str)
    inserted = json.loads(text)
    cleanup.append(inserted["id"])
    assert (inserted["name"], inserted["author"]) == ("Sky Full of Stars", "Coldplay " + tag)

    listed = json.loads(api.list())
    assert isinstance(listed, list)
    mine = [m for m in listed if m["id"] == inserted["id"]]
    assert len(mine) == 1 and mine[0]["name"] == "Sky Full of Stars" and mine[0]["author"] == "Coldplay " + tag

    got = api.get(inserted["id"])
    assert isinstance(got, str)
    # Equal but for what the server fills in after the upload (the follow-up's renditions).
    assert settled_dict(json.loads(got)) == settled_dict(inserted)

    removed = api.remove(inserted["id"])
    assert isinstance(removed, str)
    assert json.loads(removed) == {"deleted": 1}
    assert api.get(inserted["id"]) == "{}"
    assert inserted["id"] not in [m["id"] for m in json.loads(api.list())]


def test_get_missing_or_malformed_is_empty_object(api: legato.MusicApi) -> None:
    assert api.get("11111") == "{}"
    assert api.get("22222") == "{}"
    assert api.get(random_id()) == "{}"
    assert api.get("not an id at all") == "{}"


def test_remove_missing_returns_error_text(api: legato.MusicApi) -> None:
    body = json.loads(api.remove(random_id()))
    assert body["error"]["code"] == "not-found"
    body = json.loads(api.remove("11111"))
    assert body["error"]["code"] == "invalid-id"


def test_insert_missing_file_raises(api: legato.MusicApi, tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        api.insert("x", "y", str(tmp_path / "nope.mp3"))


def test_function_url_forms(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTION_URL", raising=False)
    monkeypatch.setenv("LEGATO_URL", server.base_url)
    assert isinstance(json.loads(legato.MusicApi().list()), list)
    assert isinstance(json.loads(legato.MusicApi(server.crud_url).list()), list)
    assert isinstance(json.loads(legato.MusicApi(server.base_url).list()), list)

"""Playlists: create, list, read, update (rename, add, remove by index), delete, ownership."""

from conftest import ADMIN, ALICE


def _ids(server, *titles):
    return [server.track(t).song_id for t in titles]


def test_playlist_lifecycle_raw(server, songs):
    ids = _ids(server, "Beta Two", "Alpha One", "Gamma Song A")
    created = server.call("createPlaylist", [("name", "Road trip")] + [("songId", i) for i in ids], user=ALICE)
    # Since 1.14.0 createPlaylist answers the playlist.
    pl = created["playlist"]
    assert pl["name"] == "Road trip" and pl["owner"] == ALICE and pl["songCount"] == 3
    assert [e["id"] for e in pl["entry"]] == ids
    pid = pl["id"]

    lists = server.call("getPlaylists", user=ALICE)["playlists"]["playlist"]
    mine = [p for p in lists if p["id"] == pid]
    assert len(mine) == 1 and mine[0]["songCount"] == 3
    expected_duration = sum(server.track(t).duration for t in ("Beta Two", "Alpha One", "Gamma Song A"))
    assert abs(mine[0]["duration"] - expected_duration) <= 3

    got = server.call("getPlaylist", {"id": pid}, user=ALICE)["playlist"]
    assert [e["title"] for e in got["entry"]] == ["Beta Two", "Alpha One", "Gamma Song A"]

    server.call("updatePlaylist", [("playlistId", pid), ("name", "Road trip 2"), ("comment", "for the car"),
                                   ("songIdToAdd", server.track("Lonely Track").song_id),
                                   ("songIdToAdd", server.track("Alpha Three").song_id),
                                   ("songIndexToRemove", 0), ("songIndexToRemove", 2)], user=ALICE)
    got = server.call("getPlaylist", {"id": pid}, user=ALICE)["playlist"]
    assert got["name"] == "Road trip 2"
    assert got.get("comment") == "for the car"
    # Indexes refer to the list before the update; additions go to the end.
    assert [e["title"] for e in got["entry"]] == ["Alpha One", "Lonely Track", "Alpha Three"], got["entry"]
    assert got["songCount"] == 3

    server.call("deletePlaylist", {"id": pid}, user=ALICE)
    assert pid not in [p["id"] for p in server.call("getPlaylists", user=ALICE)["playlists"].get("playlist", [])]
    assert server.error("getPlaylist", {"id": pid}, user=ALICE)["code"] == 70


def test_playlist_with_libopensonic(server, songs, admin_conn):
    ids = _ids(server, "Alpha Two", "Alpha Four")
    assert admin_conn.create_playlist(name="Libopensonic list", song_ids=ids) is True
    pl = next(p for p in admin_conn.get_playlists() if p.name == "Libopensonic list")
    assert pl.song_count == 2 and pl.owner == ADMIN
    full = admin_conn.get_playlist(pl.id)
    assert [e.id for e in full.entry] == ids
    assert admin_conn.update_playlist(pl.id, name="Renamed", song_ids_to_add=_ids(server, "Beta One"),
                                      song_indices_to_remove=[1]) is True
    full = admin_conn.get_playlist(pl.id)
    assert full.name == "Renamed"
    assert [e.title for e in full.entry] == ["Alpha Two", "Beta One"]
    assert admin_conn.delete_playlist(pl.id) is True
    assert "Renamed" not in [p.name for p in admin_conn.get_playlists()]


def test_create_playlist_replaces_songs_when_given_an_id(server, songs):
    pl = server.call("createPlaylist", [("name", "Replace me"), ("songId", server.track("Alpha One").song_id)])["playlist"]
    replaced = server.call("createPlaylist", [("playlistId", pl["id"]), ("songId", server.track("Beta Two").song_id),
                                              ("songId", server.track("Beta One").song_id)])
    got = server.call("getPlaylist", {"id": pl["id"]})["playlist"]
    assert [e["title"] for e in got["entry"]] == ["Beta Two", "Beta One"], replaced
    server.call("deletePlaylist", {"id": pl["id"]})


def test_a_user_cannot_delete_or_change_another_users_playlist(server, songs):
    pl = server.call("createPlaylist", [("name", "Admin's"), ("songId", server.track("Alpha One").song_id)],
                     user=ADMIN)["playlist"]
    err = server.error("deletePlaylist", {"id": pl["id"]}, user=ALICE)
    assert err["code"] in (50, 70), err
    err = server.error("updatePlaylist", {"playlistId": pl["id"], "name": "Stolen"}, user=ALICE)
    assert err["code"] in (50, 70), err
    got = server.call("getPlaylist", {"id": pl["id"]}, user=ADMIN)["playlist"]
    assert got["name"] == "Admin's" and got["songCount"] == 1
    # Private playlists are not listed for others.
    assert pl["id"] not in [p["id"] for p in server.call("getPlaylists", user=ALICE)["playlists"].get("playlist", [])]
    server.call("deletePlaylist", {"id": pl["id"]}, user=ADMIN)


def test_playlist_errors(server, songs):
    assert server.error("createPlaylist", {})["code"] == 10
    assert server.error("getPlaylist", {})["code"] == 10
    assert server.error("getPlaylist", {"id": "no-such-playlist"})["code"] == 70
    assert server.error("deletePlaylist", {"id": "no-such-playlist"})["code"] == 70

"""Browsing by ID3 tags (getArtists, getArtist, getAlbum, getSong) and by folders
(getMusicFolders, getIndexes, getMusicDirectory)."""

from conftest import ALICE
from media import ALBUM_ARTIST, VARIOUS


def _all_artists(index_list):
    return [a for idx in index_list for a in (idx.artist or [])]


def test_browse_artists_to_songs_with_libopensonic(server, songs, admin_conn):
    artists = _all_artists(admin_conn.get_artists().index or [])
    by_name = {a.name: a for a in artists}
    assert ALBUM_ARTIST in by_name, [a.name for a in artists]
    assert VARIOUS in by_name, [a.name for a in artists]
    # The album artist groups, not the track artists of a compilation.
    assert "Artist A" not in by_name or by_name["Artist A"].album_count in (0, None)
    testers = by_name[ALBUM_ARTIST]
    assert testers.album_count == 2

    artist = admin_conn.get_artist(testers.id)
    assert artist.name == ALBUM_ARTIST
    names = sorted(a.name for a in artist.album)
    assert names == ["Alpha Album", "Beta Album"]
    alpha_id = next(a.id for a in artist.album if a.name == "Alpha Album")

    album = admin_conn.get_album(alpha_id)
    assert album.name == "Alpha Album"
    assert album.artist == ALBUM_ARTIST
    assert album.artist_id == testers.id
    assert album.song_count == 4
    assert album.year == 2001
    assert album.genre == "Rock"
    assert album.cover_art
    expected = [("Alpha One", 1, 1), ("Alpha Two", 1, 2), ("Alpha Three", 1, 3), ("Alpha Four", 2, 1)]
    got = [(s.title, s.disc_number, s.track) for s in album.song]
    assert got == expected, got
    assert abs(album.duration - sum(server.track(t).duration for t, _, _ in expected)) <= 2
    for s in album.song:
        t = server.track(s.title)
        assert abs(s.duration - t.duration) <= 1, (s.title, s.duration, t.duration)
        assert s.album == "Alpha Album" and s.album_id == alpha_id
        assert s.artist == ALBUM_ARTIST
        assert s.year == 2001 and s.genre == "Rock"
        assert s.suffix == t.suffix, (s.title, s.suffix)
        assert s.content_type == t.content_type or (t.suffix == "flac" and s.content_type in ("audio/x-flac", "audio/flac")), s.content_type
        assert s.bit_rate and s.bit_rate > 0
        if t.suffix == "mp3":
            assert abs(s.bit_rate - 128) <= 8, (s.title, s.bit_rate)
        assert s.cover_art, s.title
        assert s.size and s.size == t.path.stat().st_size, (s.title, s.size, t.path.stat().st_size)
        assert s.type in (None, "music")
        assert s.is_dir is False


def test_compilation_album(server, songs, albums):
    gamma = albums["Gamma Hits"]
    assert gamma["artist"] == VARIOUS
    album = server.call("getAlbum", {"id": gamma["id"]})["album"]
    assert [(s["title"], s["artist"]) for s in album["song"]] == [("Gamma Song A", "Artist A"), ("Gamma Song B", "Artist B")]
    assert album["songCount"] == 2
    assert album["year"] == 1995
    artist = server.call("getArtist", {"id": album["artistId"]})["artist"]
    assert artist["name"] == VARIOUS
    assert [a["name"] for a in artist["album"]] == ["Gamma Hits"]


def test_get_artists_raw(server, songs):
    body = server.call("getArtists")
    artists = body["artists"]
    assert "ignoredArticles" in artists
    letters = [i["name"] for i in artists.get("index", [])]
    assert letters == sorted(letters), letters
    for idx in artists["index"]:
        for a in idx["artist"]:
            assert a["name"][:1].upper() == idx["name"] or not a["name"][:1].isalpha() or idx["name"] == "#" \
                or a["name"].lower().startswith(("the ", "a ", "an ")), (idx["name"], a["name"])


def test_get_song(server, songs, admin_conn):
    t = server.track("Beta One")
    s = admin_conn.get_song(t.song_id)
    assert s.title == "Beta One" and s.track == 1 and s.year == 2010 and s.genre == "Jazz"
    assert s.album == "Beta Album"
    assert s.suffix == "flac"
    assert abs(s.duration - t.duration) <= 1


def test_song_without_album(server, songs):
    t = server.track("Lonely Track")
    s = server.call("getSong", {"id": t.song_id})["song"]
    assert s["title"] == "Lonely Track" and s["artist"] == "Solo Person"
    assert s["genre"] == "Ambient" and s["year"] == 2020
    assert abs(s["duration"] - t.duration) <= 1


def test_normal_user_browses_too(server, songs, alice_conn):
    t = server.track("Alpha Two")
    assert alice_conn.get_song(t.song_id).title == "Alpha Two"


def test_music_folders(server):
    # Raw, not libopensonic: py-opensonic 10.4.1's get_music_folders iterates the keys of the
    # musicFolders object (it fails on any server that follows the spec).
    folders = server.call("getMusicFolders")["musicFolders"]["musicFolder"]
    assert isinstance(folders, list) and len(folders) >= 1, folders
    assert all(isinstance(f, dict) and "id" in f for f in folders), folders


def test_indexes_and_music_directory(server, songs, admin_conn):
    indexes = admin_conn.get_indexes()
    artists = {a.name: a for idx in (indexes.index or []) for a in (idx.artist or [])}
    assert ALBUM_ARTIST in artists, sorted(artists)
    d = admin_conn.get_music_directory(artists[ALBUM_ARTIST].id)
    assert d.name == ALBUM_ARTIST
    children = {c.title: c for c in d.child}
    assert set(children) >= {"Alpha Album", "Beta Album"}, sorted(children)
    assert all(c.is_dir for c in children.values())
    alpha = admin_conn.get_music_directory(children["Alpha Album"].id)
    assert alpha.name == "Alpha Album"
    titles = [c.title for c in alpha.child]
    assert sorted(titles) == sorted(["Alpha One", "Alpha Two", "Alpha Three", "Alpha Four"])
    for c in alpha.child:
        assert c.is_dir is False
        assert c.id == server.track(c.title).song_id
        assert c.parent == children["Alpha Album"].id


def test_get_album_list_folder_based(server, songs):
    albums = server.call("getAlbumList", {"type": "alphabeticalByName", "size": 50})["albumList"]["album"]
    titles = [a.get("title") or a.get("name") for a in albums]
    assert {"Alpha Album", "Beta Album", "Gamma Hits"} <= set(titles), titles
    assert all(a["isDir"] for a in albums)


def test_alice_sees_the_same_library(server, songs):
    a = server.call("search3", {"query": "", "songCount": 100}, user=ALICE)["searchResult3"]["song"]
    assert {s["title"] for s in a} == set(songs)

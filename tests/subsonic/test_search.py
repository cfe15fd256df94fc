"""search2/search3 (counts, offsets, the empty query), genres, random songs and album lists."""

import pytest

from media import ALBUM_ARTIST

LIST_TYPES = ["random", "newest", "highest", "frequent", "recent", "alphabeticalByName",
              "alphabeticalByArtist", "starred"]


def test_empty_search3_returns_everything(server, songs, albums):
    r = server.call("search3", {"query": "", "songCount": 500, "albumCount": 500, "artistCount": 500})["searchResult3"]
    assert sorted(s["title"] for s in r["song"]) == sorted(t.title for t in server.tracks)
    assert {"Alpha Album", "Beta Album", "Gamma Hits"} <= {a["name"] for a in r["album"]}
    assert {ALBUM_ARTIST, "Various Artists"} <= {a["name"] for a in r["artist"]}


def test_search3_song_offsets_page_through_everything(server, songs):
    pages = []
    for offset in range(0, 12, 3):
        r = server.call("search3", {"query": "", "songCount": 3, "songOffset": offset,
                                    "albumCount": 0, "artistCount": 0})["searchResult3"]
        page = [s["id"] for s in r.get("song", [])]
        assert len(page) == min(3, max(0, len(server.tracks) - offset)), (offset, page)
        assert not r.get("album") and not r.get("artist"), "albumCount=0/artistCount=0 returned some: %s" % r
        pages += page
    assert sorted(pages) == sorted(t.song_id for t in server.tracks), "pages overlap or miss songs"


def test_search3_album_offsets(server, songs):
    first = server.call("search3", {"query": "", "albumCount": 1, "albumOffset": 0, "songCount": 0, "artistCount": 0})["searchResult3"]
    second = server.call("search3", {"query": "", "albumCount": 1, "albumOffset": 1, "songCount": 0, "artistCount": 0})["searchResult3"]
    assert len(first["album"]) == 1 and len(second["album"]) == 1
    assert first["album"][0]["id"] != second["album"][0]["id"]
    assert not first.get("song")


def test_search3_words_with_libopensonic(server, songs, admin_conn):
    r = admin_conn.search3("Alpha", artist_count=10, album_count=10, song_count=10)
    assert sorted(s.title for s in r.song) == sorted(["Alpha One", "Alpha Two", "Alpha Three", "Alpha Four"])
    assert [a.name for a in r.album] == ["Alpha Album"]
    r = admin_conn.search3("gamma song b")
    assert [s.title for s in (r.song or [])] == ["Gamma Song B"]
    r = admin_conn.search3("Testers", song_count=20)
    assert ALBUM_ARTIST in [a.name for a in (r.artist or [])]
    r = admin_conn.search3("zzzznothing")
    assert not r.song and not r.album and not r.artist


def test_search3_case_and_prefix(server, songs):
    r = server.call("search3", {"query": "lonel"})["searchResult3"]
    assert [s["title"] for s in r.get("song", [])] == ["Lonely Track"]
    r = server.call("search3", {"query": "BETA"})["searchResult3"]
    assert sorted(s["title"] for s in r.get("song", [])) == ["Beta One", "Beta Two"]


def test_search3_quoted_empty_query(server, songs):
    # Some clients (DSub, Symfonium) send query="" literally to sync the whole library.
    r = server.call("search3", {"query": '""', "songCount": 500})["searchResult3"]
    assert len(r.get("song", [])) == len(server.tracks)


def test_search2(server, songs, admin_conn):
    r = admin_conn.search2("Beta", song_count=10)
    assert sorted(s.title for s in r.song) == ["Beta One", "Beta Two"]
    assert "Beta Album" in [a.title or a.name for a in (r.album or [])]
    body = server.call("search2", {"query": "", "songCount": 2, "songOffset": 2})
    assert len(body["searchResult2"]["song"]) == 2


def test_genres(server, songs, admin_conn):
    genres = {g.value: g for g in admin_conn.get_genres()}
    assert {"Rock", "Jazz", "Pop", "Ambient"} <= set(genres), sorted(genres)
    assert genres["Rock"].song_count == 4 and genres["Rock"].album_count == 1
    assert genres["Jazz"].song_count == 2
    assert genres["Ambient"].song_count == 1


def test_songs_by_genre(server, songs, admin_conn):
    s = admin_conn.get_songs_by_genre("Rock", count=10)
    assert sorted(x.title for x in s) == sorted(["Alpha One", "Alpha Two", "Alpha Three", "Alpha Four"])
    page = server.call("getSongsByGenre", {"genre": "Rock", "count": 2, "offset": 2})["songsByGenre"]["song"]
    assert len(page) == 2
    assert not server.call("getSongsByGenre", {"genre": "Polka"})["songsByGenre"].get("song")


def test_random_songs(server, songs, admin_conn):
    s = admin_conn.get_random_songs(size=5)
    assert len(s) == 5 and len({x.id for x in s}) == 5
    s = admin_conn.get_random_songs(size=50, genre="Jazz")
    assert sorted(x.title for x in s) == ["Beta One", "Beta Two"]
    s = admin_conn.get_random_songs(size=50, from_year=2000, to_year=2005)
    assert {x.title for x in s} == {"Alpha One", "Alpha Two", "Alpha Three", "Alpha Four"}


@pytest.mark.parametrize("ltype", LIST_TYPES)
def test_album_list2_every_type_answers(server, songs, admin_conn, ltype):
    albums = admin_conn.get_album_list2(ltype, size=50)
    assert isinstance(albums, list)
    if ltype in ("random", "newest", "alphabeticalByName", "alphabeticalByArtist"):
        assert {"Alpha Album", "Beta Album", "Gamma Hits"} <= {a.name for a in albums}, [a.name for a in albums]
    for a in albums:
        assert a.id and a.name and a.song_count >= 1


def test_album_list2_newest_ordering(server, songs):
    albums = server.call("getAlbumList2", {"type": "newest", "size": 50})["albumList2"]["album"]
    created = [a["created"] for a in albums]
    assert created == sorted(created, reverse=True), created
    # The no-album track was uploaded last, Alpha first.
    names = [a["name"] for a in albums]
    assert names.index("Gamma Hits") < names.index("Beta Album") < names.index("Alpha Album"), names


def test_album_list2_alphabetical(server, songs):
    albums = server.call("getAlbumList2", {"type": "alphabeticalByName", "size": 50})["albumList2"]["album"]
    names = [a["name"] for a in albums]
    assert names == sorted(names, key=str.casefold), names
    by_artist = server.call("getAlbumList2", {"type": "alphabeticalByArtist", "size": 50})["albumList2"]["album"]
    artists = [a.get("artist", "") for a in by_artist]
    assert artists == sorted(artists, key=str.casefold), artists


def test_album_list2_size_and_offset(server, songs):
    full = server.call("getAlbumList2", {"type": "alphabeticalByName", "size": 50})["albumList2"]["album"]
    page = server.call("getAlbumList2", {"type": "alphabeticalByName", "size": 2, "offset": 1})["albumList2"]["album"]
    assert [a["id"] for a in page] == [a["id"] for a in full[1:3]]


def test_album_list2_by_year(server, songs):
    albums = server.call("getAlbumList2", {"type": "byYear", "fromYear": 2000, "toYear": 2005})["albumList2"]["album"]
    assert [a["name"] for a in albums] == ["Alpha Album"]
    albums = server.call("getAlbumList2", {"type": "byYear", "fromYear": 1990, "toYear": 2015})["albumList2"]["album"]
    assert [a["name"] for a in albums] == ["Gamma Hits", "Alpha Album", "Beta Album"], "ascending years"
    albums = server.call("getAlbumList2", {"type": "byYear", "fromYear": 2015, "toYear": 1990})["albumList2"]["album"]
    assert [a["name"] for a in albums] == ["Beta Album", "Alpha Album", "Gamma Hits"], "fromYear > toYear: descending"


def test_album_list2_by_genre(server, songs):
    albums = server.call("getAlbumList2", {"type": "byGenre", "genre": "Jazz"})["albumList2"]["album"]
    assert [a["name"] for a in albums] == ["Beta Album"]


@pytest.mark.parametrize("params,codes", [
    ({"type": "byYear"}, (10,)),
    ({"type": "byYear", "fromYear": 2000}, (10,)),
    ({"type": "byGenre"}, (10,)),
    ({}, (10,)),
    ({"type": "noSuchType"}, (0, 10)),
], ids=["byYear-without-years", "byYear-without-toYear", "byGenre-without-genre", "no-type", "unknown-type"])
def test_album_list2_errors(server, songs, params, codes):
    err = server.error("getAlbumList2", params)
    assert err["code"] in codes, err


@pytest.mark.parametrize("ltype", LIST_TYPES)
def test_album_list_folder_based_types(server, songs, ltype):
    # Raw, not libopensonic: py-opensonic 10.4.1 parses getAlbumList entries as AlbumID3 (it
    # requires name, songCount, created) where the spec has Child (id, isDir, title).
    albums = server.call("getAlbumList", {"type": ltype, "size": 50})["albumList"].get("album", [])
    if ltype in ("random", "newest", "alphabeticalByName", "alphabeticalByArtist"):
        assert {"Alpha Album", "Beta Album", "Gamma Hits"} <= {a["title"] for a in albums}
    assert all(a["isDir"] is True for a in albums)

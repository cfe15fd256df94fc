"""Stars, ratings, scrobbles and what they change: getStarred(2), userRating, playCount,
getAlbumList2 starred/highest/frequent/recent, getNowPlaying. Per user: alice annotates,
admin's view must stay unchanged."""

from conftest import ADMIN, ALICE


def test_star_and_unstar_songs_and_albums(server, songs, albums, alice_conn):
    s1, s2 = server.track("Alpha One").song_id, server.track("Gamma Song B").song_id
    beta = albums["Beta Album"]["id"]
    assert alice_conn.star(sids=[s1, s2], album_ids=[beta]) is True

    st2 = alice_conn.get_starred2()
    assert sorted(s.id for s in (st2.song or [])) == sorted([s1, s2])
    assert [a.id for a in (st2.album or [])] == [beta]
    assert all(s.starred for s in st2.song)
    st = server.call("getStarred", user=ALICE)["starred"]
    assert sorted(s["id"] for s in st.get("song", [])) == sorted([s1, s2])
    assert len(st.get("album", [])) == 1

    song = server.call("getSong", {"id": s1}, user=ALICE)["song"]
    assert "starred" in song, song
    album = server.call("getAlbum", {"id": beta}, user=ALICE)["album"]
    assert "starred" in album, album
    starred_list = server.call("getAlbumList2", {"type": "starred"}, user=ALICE)["albumList2"].get("album", [])
    assert [a["id"] for a in starred_list] == [beta]

    # Per user: admin sees nothing starred.
    assert not server.call("getStarred2", user=ADMIN)["starred2"].get("song")
    assert "starred" not in server.call("getSong", {"id": s1}, user=ADMIN)["song"]

    assert alice_conn.unstar(sids=[s2], album_ids=[beta]) is True
    st2 = alice_conn.get_starred2()
    assert [s.id for s in (st2.song or [])] == [s1]
    assert not st2.album
    assert "starred" not in server.call("getSong", {"id": s2}, user=ALICE)["song"]
    server.call("unstar", {"id": s1}, user=ALICE)
    assert not server.call("getStarred2", user=ALICE)["starred2"].get("song")


def test_star_artist(server, songs, alice_conn):
    artists = server.call("getArtists", user=ALICE)["artists"]["index"]
    testers = next(a for i in artists for a in i["artist"] if a["name"] == "The Testers")
    server.call("star", {"artistId": testers["id"]}, user=ALICE)
    st2 = server.call("getStarred2", user=ALICE)["starred2"]
    assert [a["id"] for a in st2.get("artist", [])] == [testers["id"]]
    server.call("unstar", {"artistId": testers["id"]}, user=ALICE)
    assert not server.call("getStarred2", user=ALICE)["starred2"].get("artist")


def test_set_rating(server, songs, albums, alice_conn):
    sid = server.track("Beta Two").song_id
    assert alice_conn.set_rating(sid, 4) is True
    assert alice_conn.get_song(sid).user_rating == 4
    assert server.call("getSong", {"id": sid}, user=ADMIN)["song"].get("userRating") in (None, 0)
    gamma = albums["Gamma Hits"]["id"]
    server.call("setRating", {"id": gamma, "rating": 5}, user=ALICE)
    assert server.call("getAlbum", {"id": gamma}, user=ALICE)["album"].get("userRating") == 5
    highest = server.call("getAlbumList2", {"type": "highest"}, user=ALICE)["albumList2"]["album"]
    assert highest[0]["id"] == gamma, [a["name"] for a in highest]
    # Rating 0 removes it.
    server.call("setRating", {"id": sid, "rating": 0}, user=ALICE)
    assert server.call("getSong", {"id": sid}, user=ALICE)["song"].get("userRating") in (None, 0)
    assert server.error("setRating", {"id": sid, "rating": 9}, user=ALICE)["code"] in (0, 10)
    assert server.error("setRating", {"id": sid}, user=ALICE)["code"] == 10


def test_scrobbles_count_plays_and_feed_frequent_and_recent(server, songs, albums, alice_conn):
    beta_two = server.track("Beta Two").song_id
    alpha_one = server.track("Alpha One").song_id
    before = server.call("getSong", {"id": beta_two}, user=ALICE)["song"].get("playCount", 0)
    for _ in range(3):
        assert alice_conn.scrobble(beta_two, submission=True) is True
    server.call("scrobble", {"id": alpha_one, "submission": "true"}, user=ALICE)
    song = server.call("getSong", {"id": beta_two}, user=ALICE)["song"]
    assert song.get("playCount") == before + 3, song
    assert "played" in song, song

    frequent = server.call("getAlbumList2", {"type": "frequent"}, user=ALICE)["albumList2"]["album"]
    names = [a["name"] for a in frequent]
    assert names[:2] == ["Beta Album", "Alpha Album"], names
    assert "Gamma Hits" not in names, "albums never played are not frequent: %s" % names
    recent = server.call("getAlbumList2", {"type": "recent"}, user=ALICE)["albumList2"]["album"]
    assert [a["name"] for a in recent][:2] == ["Alpha Album", "Beta Album"], [a["name"] for a in recent]

    # Several ids in one scrobble, with times (ms since the epoch).
    server.call("scrobble", [("id", beta_two), ("time", "1700000000000"), ("id", alpha_one), ("time", "1700000001000")],
                user=ALICE)
    assert server.call("getSong", {"id": alpha_one}, user=ALICE)["song"].get("playCount") == 2


def test_scrobble_now_playing(server, songs, alice_conn):
    sid = server.track("Gamma Song A").song_id
    server.call("scrobble", {"id": sid, "submission": "false"}, user=ALICE)
    entries = server.call("getNowPlaying", user=ADMIN)["nowPlaying"].get("entry", [])
    ours = [e for e in entries if e["id"] == sid]
    assert ours and ours[0]["username"] == ALICE, entries
    assert isinstance(alice_conn.get_now_playing(), list)
    assert server.error("scrobble", {}, user=ALICE)["code"] == 10
    assert server.error("scrobble", {"id": "no-such-song"}, user=ALICE)["code"] == 70

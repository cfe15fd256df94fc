//! Browsing and searching the library: artists, albums, songs, genres, album lists, stars.

use std::collections::HashMap;

use legato_store::ItemKind;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::call::{Call, Marks, Reply, iso_time, object};
use super::error::SubsonicError;
use super::library::{Album, Artist, Library, SearchPages, Song};

/// The one music folder: the whole library.
pub const MUSIC_FOLDER: u32 = 1;
use super::library::IGNORED_ARTICLES;

pub fn content_type(format: &str) -> &'static str {
    legato_ingest::source_content_type(format)
}

/// A song as the API's `Child`.
pub fn song_json(library: &Library, song: &Song, marks: &Marks) -> Value {
    let album = library.album_of(song);
    let id = song.id.to_string();
    let mut entry = Map::new();
    let mut put = |key: &str, value: Value| {
        entry.insert(key.to_owned(), value);
    };
    put("id", id.clone().into());
    put("parent", album.id.clone().into());
    put("isDir", false.into());
    put("title", song.title.clone().into());
    put("album", album.name.clone().into());
    put("artist", song.artist.clone().into());
    if let Some(n) = song.track_number {
        put("track", n.into());
    }
    if let Some(n) = song.disc_number {
        put("discNumber", n.into());
    }
    if let Some(year) = song.year {
        put("year", year.into());
    }
    if let Some(genre) = &song.genre {
        put("genre", genre.clone().into());
        put("genres", json!([{ "name": genre }]));
    } else {
        put("genres", json!([]));
    }
    if song.has_cover {
        put("coverArt", id.clone().into());
    }
    // The file described is the original when it was kept (that is what `download` and
    // `format=raw` give); `stream` sends MP3, said by the transcoded fields when they differ.
    let suffix = song.source_format.clone().unwrap_or_else(|| "mp3".into());
    put("suffix", suffix.clone().into());
    put("contentType", content_type(&suffix).into());
    if suffix != "mp3" {
        put("transcodedSuffix", "mp3".into());
        put("transcodedContentType", "audio/mpeg".into());
    }
    if let Some(size) = song.source_size {
        put("size", size.into());
    }
    put("duration", (song.duration.round() as u64).into());
    if let Some(bitrate) = song.bitrate {
        put("bitRate", bitrate.into());
    }
    if let Some(rate) = song.sample_rate {
        put("samplingRate", rate.into());
    }
    if let Some(channels) = song.channels {
        put("channelCount", channels.into());
    }
    put(
        "path",
        format!(
            "{}/{}/{}{}.{}",
            path_part(&album.artist),
            path_part(&album.name),
            song.track_number
                .map(|n| format!("{n:02} - "))
                .unwrap_or_default(),
            path_part(&song.title),
            suffix
        )
        .into(),
    );
    put("created", iso_time(song.created_at).into());
    put("albumId", album.id.clone().into());
    put("artistId", song.artist_id.clone().into());
    put("type", "music".into());
    put("mediaType", "song".into());
    put("isVideo", false.into());
    put(
        "artists",
        json!([{ "id": song.artist_id, "name": song.artist }]),
    );
    put("displayArtist", song.artist.clone().into());
    put(
        "albumArtists",
        json!([{ "id": album.artist_id, "name": album.artist }]),
    );
    put("displayAlbumArtist", album.artist.clone().into());
    if let Some(at) = marks.starred(ItemKind::Song, &id) {
        put("starred", iso_time(at).into());
    }
    if let Some(rating) = marks.rating(ItemKind::Song, &id) {
        put("userRating", rating.into());
    }
    let (plays, played) = marks.plays(&song.id).unwrap_or((0, 0));
    put("playCount", plays.into());
    if plays > 0 {
        put("played", iso_time(played).into());
    }
    Value::Object(entry)
}

fn path_part(text: &str) -> String {
    text.replace(['/', '\\'], "_")
}

/// Plays of an album's songs: how many, and the latest.
fn album_plays(album: &Album, library: &Library, marks: &Marks) -> (u64, i64) {
    album
        .songs
        .iter()
        .filter_map(|&i| marks.plays(&library.songs[i].id))
        .fold((0, 0), |(count, last), (c, l)| (count + c, last.max(l)))
}

/// An album as `AlbumID3`, with its songs when asked.
pub fn album_json(library: &Library, album: &Album, marks: &Marks, with_songs: bool) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), album.id.clone().into());
    entry.insert("name".into(), album.name.clone().into());
    entry.insert("artist".into(), album.artist.clone().into());
    entry.insert("artistId".into(), album.artist_id.clone().into());
    entry.insert(
        "artists".into(),
        json!([{ "id": album.artist_id, "name": album.artist }]),
    );
    entry.insert("displayArtist".into(), album.artist.clone().into());
    if album.cover_song.is_some() {
        entry.insert("coverArt".into(), album.id.clone().into());
    }
    entry.insert("songCount".into(), album.songs.len().into());
    entry.insert("duration".into(), (album.duration.round() as u64).into());
    entry.insert("created".into(), iso_time(album.created_at).into());
    if let Some(year) = album.year {
        entry.insert("year".into(), year.into());
    }
    match &album.genre {
        Some(genre) => {
            entry.insert("genre".into(), genre.clone().into());
            entry.insert("genres".into(), json!([{ "name": genre }]));
        }
        None => {
            entry.insert("genres".into(), json!([]));
        }
    }
    let (plays, played) = album_plays(album, library, marks);
    entry.insert("playCount".into(), plays.into());
    if plays > 0 {
        entry.insert("played".into(), iso_time(played).into());
    }
    if let Some(at) = marks.starred(ItemKind::Album, &album.id) {
        entry.insert("starred".into(), iso_time(at).into());
    }
    if let Some(rating) = marks.rating(ItemKind::Album, &album.id) {
        entry.insert("userRating".into(), rating.into());
    }
    entry.insert(
        "isCompilation".into(),
        album
            .songs
            .iter()
            .any(|&i| library.songs[i].artist != album.artist)
            .into(),
    );
    if with_songs {
        entry.insert(
            "song".into(),
            album
                .songs
                .iter()
                .map(|&i| song_json(library, &library.songs[i], marks))
                .collect(),
        );
    }
    Value::Object(entry)
}

/// An album as a folder (`Child` with `isDir`), for the folder-based endpoints.
fn album_dir_json(library: &Library, album: &Album, marks: &Marks) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), album.id.clone().into());
    entry.insert("parent".into(), album.artist_id.clone().into());
    entry.insert("isDir".into(), true.into());
    entry.insert("title".into(), album.name.clone().into());
    entry.insert("album".into(), album.name.clone().into());
    entry.insert("artist".into(), album.artist.clone().into());
    if let Some(year) = album.year {
        entry.insert("year".into(), year.into());
    }
    if let Some(genre) = &album.genre {
        entry.insert("genre".into(), genre.clone().into());
    }
    if album.cover_song.is_some() {
        entry.insert("coverArt".into(), album.id.clone().into());
    }
    entry.insert("duration".into(), (album.duration.round() as u64).into());
    entry.insert("created".into(), iso_time(album.created_at).into());
    let (plays, _) = album_plays(album, library, marks);
    entry.insert("playCount".into(), plays.into());
    if let Some(at) = marks.starred(ItemKind::Album, &album.id) {
        entry.insert("starred".into(), iso_time(at).into());
    }
    if let Some(rating) = marks.rating(ItemKind::Album, &album.id) {
        entry.insert("userRating".into(), rating.into());
    }
    Value::Object(entry)
}

/// An artist as `ArtistID3` (or `Artist` when `id3` is false).
pub fn artist_json(library: &Library, artist: &Artist, marks: &Marks, id3: bool) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), artist.id.clone().into());
    entry.insert("name".into(), artist.name.clone().into());
    if id3 {
        entry.insert("albumCount".into(), artist.albums.len().into());
        if let Some(&album) = artist
            .albums
            .iter()
            .find(|&&a| library.albums[a].cover_song.is_some())
        {
            entry.insert("coverArt".into(), library.albums[album].id.clone().into());
        }
    }
    if let Some(at) = marks.starred(ItemKind::Artist, &artist.id) {
        entry.insert("starred".into(), iso_time(at).into());
    }
    if let Some(rating) = marks.rating(ItemKind::Artist, &artist.id) {
        entry.insert("userRating".into(), rating.into());
    }
    Value::Object(entry)
}

/// Artists grouped by letter, in name order.
fn artist_index(library: &Library, marks: &Marks, id3: bool) -> Vec<Value> {
    library
        .artists_by_letter
        .iter()
        .map(|(letter, artists)| {
            let artists: Vec<Value> = artists
                .iter()
                .map(|&i| artist_json(library, &library.artists[i], marks, id3))
                .collect();
            object([("name", letter.as_str().into()), ("artist", artists.into())])
        })
        .collect()
}

pub async fn scan_status(call: &Call<'_>, start: bool) -> Result<Reply, SubsonicError> {
    // The library is filled by uploads, so there is nothing to scan: a scan only makes sure
    // the index is current.
    let library = if start {
        call.api.library.refresh().await?
    } else {
        call.api.library.get().await?
    };
    Ok(Reply::with(
        "scanStatus",
        json!({ "scanning": false, "count": library.songs.len() }),
    ))
}

pub async fn indexes(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    Ok(Reply::with(
        "indexes",
        object([
            ("ignoredArticles", IGNORED_ARTICLES.into()),
            // Milliseconds, as the API says, truncated to a whole second: clients that take
            // it as milliseconds and those (py-sonic2) that divide it into whole seconds then
            // read the same instant, with no fraction lost or left over.
            (
                "lastModified",
                (library.last_modified - library.last_modified.rem_euclid(1000)).into(),
            ),
            ("index", artist_index(&library, &marks, false).into()),
        ]),
    ))
}

pub async fn artists(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    Ok(Reply::with(
        "artists",
        object([
            ("ignoredArticles", IGNORED_ARTICLES.into()),
            ("index", artist_index(&library, &marks, true).into()),
        ]),
    ))
}

pub async fn artist(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let artist = library
        .artist(id)
        .ok_or_else(|| SubsonicError::not_found("Artist"))?;
    let Value::Object(mut entry) = artist_json(&library, artist, &marks, true) else {
        return Err(SubsonicError::generic("artist entry"));
    };
    entry.insert(
        "album".into(),
        artist
            .albums
            .iter()
            .chain(&artist.appears_on)
            .map(|&a| album_json(&library, &library.albums[a], &marks, false))
            .collect(),
    );
    Ok(Reply::with("artist", Value::Object(entry)))
}

pub async fn album(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let album = library
        .album(id)
        .ok_or_else(|| SubsonicError::not_found("Album"))?;
    Ok(Reply::with(
        "album",
        album_json(&library, album, &marks, true),
    ))
}

pub async fn song(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let song = library
        .song_by_text(id)
        .ok_or_else(|| SubsonicError::not_found("Song"))?;
    Ok(Reply::with("song", song_json(&library, song, &marks)))
}

pub async fn music_directory(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    if let Some(artist) = library.artist(id) {
        let children: Vec<Value> = artist
            .albums
            .iter()
            .chain(&artist.appears_on)
            .map(|&a| album_dir_json(&library, &library.albums[a], &marks))
            .collect();
        return Ok(Reply::with(
            "directory",
            object([
                ("id", artist.id.as_str().into()),
                ("name", artist.name.as_str().into()),
                ("child", children.into()),
            ]),
        ));
    }
    if let Some(album) = library.album(id) {
        let children: Vec<Value> = album
            .songs
            .iter()
            .map(|&i| song_json(&library, &library.songs[i], &marks))
            .collect();
        return Ok(Reply::with(
            "directory",
            object([
                ("id", album.id.as_str().into()),
                ("name", album.name.as_str().into()),
                ("parent", album.artist_id.as_str().into()),
                ("child", children.into()),
            ]),
        ));
    }
    Err(SubsonicError::not_found("Directory"))
}

pub async fn album_list(call: &Call<'_>, id3: bool) -> Result<Reply, SubsonicError> {
    let kind = call.params.required("type")?;
    let (size, offset) = call.params.page("size", "offset", 10, 500)?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let albums = &library.albums;
    let order: Vec<usize> = match kind {
        "random" => {
            let mut all: Vec<usize> = (0..albums.len()).collect();
            let (picked, _) = all.partial_shuffle(&mut rand::rng(), size);
            picked.to_vec()
        }
        "newest" => library.albums_newest.clone(),
        "alphabeticalByName" => library.albums_by_name.clone(),
        "alphabeticalByArtist" => library.albums_by_artist.clone(),
        "highest" => {
            let mut rated: Vec<(u8, usize)> = (0..albums.len())
                .filter_map(|i| Some((marks.rating(ItemKind::Album, &albums[i].id)?, i)))
                .collect();
            rated.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            rated.into_iter().map(|(_, i)| i).collect()
        }
        "frequent" | "recent" => {
            let mut played: HashMap<usize, (u64, i64)> = HashMap::new();
            for (song, &(count, last)) in library
                .songs
                .iter()
                .filter_map(|s| Some((s, marks.plays.get(&s.id)?)))
            {
                let entry = played.entry(song.album).or_default();
                entry.0 += count;
                entry.1 = entry.1.max(last);
            }
            let mut played: Vec<(usize, (u64, i64))> = played.into_iter().collect();
            if kind == "frequent" {
                played.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.1.1.cmp(&a.1.1)));
            } else {
                played.sort_by_key(|p| std::cmp::Reverse(p.1.1));
            }
            played.into_iter().map(|(i, _)| i).collect()
        }
        "starred" => {
            let mut starred: Vec<(i64, usize)> = (0..albums.len())
                .filter_map(|i| Some((marks.starred(ItemKind::Album, &albums[i].id)?, i)))
                .collect();
            starred.sort_by_key(|s| std::cmp::Reverse(s.0));
            starred.into_iter().map(|(_, i)| i).collect()
        }
        "byYear" => {
            let year = |name: &str| -> Result<i32, SubsonicError> {
                call.params
                    .required(name)?
                    .trim()
                    .parse()
                    .map_err(|_| SubsonicError::invalid(name, "not a year"))
            };
            let (from, to) = (year("fromYear")?, year("toYear")?);
            let (low, high) = (from.min(to), from.max(to));
            let mut dated: Vec<(i32, usize)> = (0..albums.len())
                .filter_map(|i| Some((albums[i].year?, i)))
                .filter(|(year, _)| (low..=high).contains(year))
                .collect();
            // From a later year to an earlier one lists newest first, as the API says.
            if from > to {
                dated.sort_by_key(|d| std::cmp::Reverse(d.0));
            } else {
                dated.sort_by_key(|d| d.0);
            }
            dated.into_iter().map(|(_, i)| i).collect()
        }
        "byGenre" => {
            let genre = legato_store::keys::fold(call.params.required("genre")?);
            library
                .albums_by_name
                .iter()
                .copied()
                .filter(|&i| {
                    albums[i].songs.iter().any(|&s| {
                        library.songs[s]
                            .genre
                            .as_deref()
                            .is_some_and(|g| legato_store::keys::fold(g) == genre)
                    })
                })
                .collect()
        }
        other => {
            return Err(SubsonicError::invalid(
                "type",
                &format!(
                    "'{}' is not a list type",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    let offset = if kind == "random" { 0 } else { offset };
    let page: Vec<Value> = order
        .into_iter()
        .skip(offset)
        .take(size)
        .map(|i| {
            if id3 {
                album_json(&library, &albums[i], &marks, false)
            } else {
                album_dir_json(&library, &albums[i], &marks)
            }
        })
        .collect();
    Ok(Reply::with(
        if id3 { "albumList2" } else { "albumList" },
        object([("album", page.into())]),
    ))
}

pub async fn random_songs(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let (size, _) = call.params.page("size", "offset", 10, 500)?;
    let genre = call.params.get("genre").map(legato_store::keys::fold);
    let from: i32 = call.params.number("fromYear", i32::MIN)?;
    let to: i32 = call.params.number("toYear", i32::MAX)?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let mut candidates: Vec<usize> = (0..library.songs.len())
        .filter(|&i| {
            let song = &library.songs[i];
            genre.as_deref().is_none_or(|g| {
                song.genre
                    .as_deref()
                    .is_some_and(|s| legato_store::keys::fold(s) == g)
            }) && (from == i32::MIN && to == i32::MAX
                || song.year.is_some_and(|y| (from..=to).contains(&y)))
        })
        .collect();
    let (picked, _) = candidates.partial_shuffle(&mut rand::rng(), size);
    let songs: Vec<Value> = picked
        .iter()
        .map(|&i| song_json(&library, &library.songs[i], &marks))
        .collect();
    Ok(Reply::with("randomSongs", object([("song", songs.into())])))
}

pub async fn genres(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let library = call.api.library.get().await?;
    let genres: Vec<Value> = library
        .genres
        .iter()
        .map(|g| json!({ "value": g.name, "songCount": g.songs, "albumCount": g.albums }))
        .collect();
    Ok(Reply::with("genres", object([("genre", genres.into())])))
}

pub async fn songs_by_genre(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let genre = legato_store::keys::fold(call.params.required("genre")?);
    let (count, offset) = call.params.page("count", "offset", 10, 500)?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let songs: Vec<Value> = library
        .albums_by_name
        .iter()
        .flat_map(|&a| library.albums[a].songs.iter().copied())
        .filter(|&i| {
            library.songs[i]
                .genre
                .as_deref()
                .is_some_and(|g| legato_store::keys::fold(g) == genre)
        })
        .skip(offset)
        .take(count)
        .map(|i| song_json(&library, &library.songs[i], &marks))
        .collect();
    Ok(Reply::with(
        "songsByGenre",
        object([("song", songs.into())]),
    ))
}

pub async fn search(call: &Call<'_>, id3: bool) -> Result<Reply, SubsonicError> {
    // Required, as the API says; an empty query (`query=` or `query=""`) lists everything, which
    // OpenSubsonic servers must support for offline sync.
    let query = call.params.required("query")?.to_owned();
    let (artist_count, artist_offset) = call.params.page("artistCount", "artistOffset", 20, 500)?;
    let (album_count, album_offset) = call.params.page("albumCount", "albumOffset", 20, 500)?;
    let (song_count, song_offset) = call.params.page("songCount", "songOffset", 20, 500)?;
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    // A common word matches many songs: off the async workers.
    let searched = library.clone();
    let pages = SearchPages {
        artists: (artist_offset, artist_count),
        albums: (album_offset, album_count),
        songs: (song_offset, song_count),
    };
    let hits = tokio::task::spawn_blocking(move || searched.search(&query, pages))
        .await
        .map_err(|e| SubsonicError::generic(format!("the search failed: {e}")))?;
    let artists: Vec<Value> = hits
        .artists
        .iter()
        .map(|&i| artist_json(&library, &library.artists[i], &marks, id3))
        .collect();
    let albums: Vec<Value> = hits
        .albums
        .iter()
        .map(|&i| {
            if id3 {
                album_json(&library, &library.albums[i], &marks, false)
            } else {
                album_dir_json(&library, &library.albums[i], &marks)
            }
        })
        .collect();
    let songs: Vec<Value> = hits
        .songs
        .iter()
        .map(|&i| song_json(&library, &library.songs[i], &marks))
        .collect();
    Ok(Reply::with(
        if id3 {
            "searchResult3"
        } else {
            "searchResult2"
        },
        object([
            ("artist", artists.into()),
            ("album", albums.into()),
            ("song", songs.into()),
        ]),
    ))
}

pub async fn starred(call: &Call<'_>, id3: bool) -> Result<Reply, SubsonicError> {
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    let mut stars: Vec<(ItemKind, &str, i64)> = marks.stars().collect();
    stars.sort_by_key(|star| std::cmp::Reverse(star.2));
    let (mut artists, mut albums, mut songs) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, id, _) in stars {
        match kind {
            ItemKind::Artist => {
                if let Some(artist) = library.artist(id) {
                    artists.push(artist_json(&library, artist, &marks, id3));
                }
            }
            ItemKind::Album => {
                if let Some(album) = library.album(id) {
                    albums.push(if id3 {
                        album_json(&library, album, &marks, false)
                    } else {
                        album_dir_json(&library, album, &marks)
                    });
                }
            }
            ItemKind::Song => {
                if let Some(song) = library.song_by_text(id) {
                    songs.push(song_json(&library, song, &marks));
                }
            }
        }
    }
    Ok(Reply::with(
        if id3 { "starred2" } else { "starred" },
        object([
            ("artist", artists.into()),
            ("album", albums.into()),
            ("song", songs.into()),
        ]),
    ))
}

//! What each user keeps: playlists, stars, ratings, plays, what they are playing now.

use std::time::Duration;

use legato_store::{ItemKind, ItemRef, Playlist, PlaylistPatch, TrackId};
use serde_json::{Map, Value, json};

use super::browse::song_json;
use super::call::{Call, Marks, Reply, iso_time, object};
use super::error::SubsonicError;
use super::library::Library;

/// How long a stream or a "now playing" scrobble is shown by `getNowPlaying`.
const NOW_PLAYING_FOR: Duration = Duration::from_secs(15 * 60);
/// Longest playlist name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest playlist comment, in characters: as long as any text a track keeps.
pub const MAX_COMMENT_CHARS: usize = legato_ingest::MAX_TEXT_CHARS;

fn now_ms() -> i64 {
    legato_ingest::now_millis()
}

fn song_ids(values: Vec<&str>) -> Result<Vec<TrackId>, SubsonicError> {
    values
        .into_iter()
        .map(|v| {
            v.parse()
                .map_err(|_| SubsonicError::not_found(format!("Song {v}")))
        })
        .collect()
}

fn playlist_json(library: &Library, playlist: &Playlist, marks: &Marks, with_songs: bool) -> Value {
    // Entries whose track is gone (deleted) or not ready are left out of what is shown.
    let songs: Vec<_> = playlist
        .tracks
        .iter()
        .filter_map(|id| library.song(id))
        .collect();
    let mut entry = Map::new();
    entry.insert("id".into(), playlist.id.clone().into());
    entry.insert("name".into(), playlist.name.clone().into());
    if let Some(comment) = &playlist.comment {
        entry.insert("comment".into(), comment.clone().into());
    }
    entry.insert("owner".into(), playlist.owner.clone().into());
    entry.insert("public".into(), playlist.public.into());
    entry.insert("songCount".into(), songs.len().into());
    entry.insert(
        "duration".into(),
        (songs.iter().map(|s| s.duration).sum::<f64>().round() as u64).into(),
    );
    entry.insert("created".into(), iso_time(playlist.created_at).into());
    entry.insert("changed".into(), iso_time(playlist.updated_at).into());
    if let Some(song) = songs.iter().find(|s| s.has_cover) {
        entry.insert("coverArt".into(), song.id.to_string().into());
    }
    if with_songs {
        entry.insert(
            "entry".into(),
            songs.iter().map(|s| song_json(library, s, marks)).collect(),
        );
    }
    Value::Object(entry)
}

fn may_read(call: &Call<'_>, playlist: &Playlist) -> bool {
    playlist.public || playlist.owner == call.user.name || call.user.admin
}

fn may_change(call: &Call<'_>, playlist: &Playlist) -> bool {
    playlist.owner == call.user.name || call.user.admin
}

pub async fn playlists(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let owner = call.params.get("username");
    if owner.is_some_and(|o| o != call.user.name) && !call.user.admin {
        return Err(SubsonicError::forbidden("see another user's playlists"));
    }
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    // A listener's listing reads their own and the public playlists only: its cost is
    // bounded by their quota and what others share, not by every user's playlists.
    let all = if call.user.admin {
        call.api.state.store.list_playlists().await?
    } else {
        call.api
            .state
            .store
            .visible_playlists(&call.user.name)
            .await?
    };
    let shown: Vec<Value> = all
        .iter()
        .filter(|p| match owner {
            Some(owner) => p.owner == owner,
            None => may_read(call, p),
        })
        .map(|p| playlist_json(&library, p, &marks, false))
        .collect();
    Ok(Reply::with(
        "playlists",
        object([("playlist", shown.into())]),
    ))
}

pub async fn playlist(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let found = call.api.state.store.get_playlist(id).await?;
    if !may_read(call, &found) {
        return Err(SubsonicError::not_found("Playlist"));
    }
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    Ok(Reply::with(
        "playlist",
        playlist_json(&library, &found, &marks, true),
    ))
}

/// Refuses a playlist of `after` entries (it had `before`) beyond the quota; a playlist
/// already longer (made under a higher limit) may still shrink or keep its length.
fn check_entries(call: &Call<'_>, before: usize, after: usize) -> Result<(), SubsonicError> {
    let max = call.api.state.config.quotas.max_playlist_entries;
    if after > max && after > before {
        return Err(SubsonicError::quota(format!(
            "Playlist too long: it would hold {after} songs, and this server keeps at most \
             {max} in a playlist. Split it into several playlists, or ask the server's admin \
             to raise --max-playlist-entries."
        )));
    }
    Ok(())
}

/// Refuses a new playlist to a user who has as many as the quota allows.
async fn check_playlist_count(call: &Call<'_>) -> Result<(), SubsonicError> {
    let max = call.api.state.config.quotas.max_playlists_per_user;
    let owned = call
        .api
        .state
        .store
        .count_playlists(&call.user.name)
        .await?;
    if owned >= max {
        return Err(SubsonicError::quota(format!(
            "Playlist limit reached: {} has {owned} playlists, the most this server keeps per \
             user ({max}). Delete one to create another, or ask the server's admin to raise \
             --max-playlists-per-user.",
            call.user.name
        )));
    }
    Ok(())
}

/// `createPlaylist`: a new playlist (`name`), or with `playlistId` the list of an existing one
/// replaced by the `songId`s.
pub async fn create_playlist(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let songs = song_ids(call.params.all("songId"))?;
    let store = &call.api.state.store;
    let saved = if let Some(id) = call.params.get("playlistId") {
        let existing = store.get_playlist(id).await?;
        if !may_change(call, &existing) {
            return Err(SubsonicError::forbidden("change this playlist"));
        }
        check_entries(call, existing.tracks.len(), songs.len())?;
        let patch = PlaylistPatch {
            name: call.params.get("name").map(clean_name).transpose()?,
            replace: Some(songs),
            ..PlaylistPatch::default()
        };
        store.update_playlist(id, &patch, now_ms()).await?
    } else {
        let name = clean_name(call.params.required("name")?)?;
        check_entries(call, 0, songs.len())?;
        let _counted = call.quota_lock(format!("user:{}", call.user.name)).await;
        check_playlist_count(call).await?;
        let now = now_ms();
        store
            .create_playlist(Playlist {
                id: TrackId::generate().to_string(),
                owner: call.user.name.clone(),
                name,
                comment: None,
                public: false,
                tracks: songs,
                created_at: now,
                updated_at: now,
            })
            .await?
    };
    let library = call.api.library.get().await?;
    let marks = call.marks().await?;
    Ok(Reply::with(
        "playlist",
        playlist_json(&library, &saved, &marks, true),
    ))
}

fn clean_name(name: &str) -> Result<String, SubsonicError> {
    let name = legato_ingest::clean_text(name);
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(SubsonicError::invalid(
            "name",
            &format!("a playlist name is 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

fn clean_comment(comment: &str) -> Result<String, SubsonicError> {
    // Counted before `clean_text`, which would cut it short without a word.
    let kept: String = comment.chars().filter(|c| !c.is_control()).collect();
    let kept = kept.trim();
    if kept.chars().count() > MAX_COMMENT_CHARS {
        return Err(SubsonicError::invalid(
            "comment",
            &format!("a playlist comment is at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    Ok(legato_ingest::clean_text(kept))
}

pub async fn update_playlist(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("playlistId")?;
    let store = &call.api.state.store;
    // Read, checked and written as one step (two additions at once cannot both pass).
    let _changing = call.quota_lock(format!("playlist:{id}")).await;
    let existing = store.get_playlist(id).await?;
    if !may_change(call, &existing) {
        return Err(SubsonicError::forbidden("change this playlist"));
    }
    let add = song_ids(call.params.all("songIdToAdd"))?;
    let remove_positions = call
        .params
        .all("songIndexToRemove")
        .into_iter()
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| SubsonicError::invalid("songIndexToRemove", "not a number"))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let patch = PlaylistPatch {
        name: call.params.get("name").map(clean_name).transpose()?,
        comment: call.params.get("comment").map(clean_comment).transpose()?,
        public: call.params.maybe_flag("public"),
        remove_positions,
        add,
        replace: None,
    };
    let now = now_ms();
    let before = existing.tracks.len();
    let after = legato_store::accounts::apply_playlist_patch(existing, &patch, now)
        .tracks
        .len();
    check_entries(call, before, after)?;
    store.update_playlist(id, &patch, now).await?;
    Ok(Reply::empty())
}

pub async fn delete_playlist(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let store = &call.api.state.store;
    let existing = store.get_playlist(id).await?;
    if !may_change(call, &existing) {
        return Err(SubsonicError::forbidden("delete this playlist"));
    }
    store.delete_playlist(id).await?;
    Ok(Reply::empty())
}

/// `star`/`unstar`: songs by `id`, albums by `albumId`, artists by `artistId`. An `id` may
/// also name an album or an artist (older clients star folders that way).
pub async fn star(call: &Call<'_>, starred: bool) -> Result<Reply, SubsonicError> {
    let library = call.api.library.get().await?;
    let mut items = Vec::new();
    for id in call.params.all("id") {
        items.push(item_of(&library, id)?);
    }
    for id in call.params.all("albumId") {
        library
            .album(id)
            .ok_or_else(|| SubsonicError::not_found(format!("Album {id}")))?;
        items.push(ItemRef {
            kind: ItemKind::Album,
            id: id.to_owned(),
        });
    }
    for id in call.params.all("artistId") {
        library
            .artist(id)
            .ok_or_else(|| SubsonicError::not_found(format!("Artist {id}")))?;
        items.push(ItemRef {
            kind: ItemKind::Artist,
            id: id.to_owned(),
        });
    }
    if items.is_empty() {
        return Err(SubsonicError::missing("id, albumId or artistId"));
    }
    let now = now_ms();
    for item in items {
        call.api
            .state
            .store
            .set_starred(&call.user.name, &item, starred, now)
            .await?;
    }
    call.marks_changed().await;
    Ok(Reply::empty())
}

fn item_of(library: &Library, id: &str) -> Result<ItemRef, SubsonicError> {
    let kind = if library.album(id).is_some() {
        ItemKind::Album
    } else if library.artist(id).is_some() {
        ItemKind::Artist
    } else if library.song_by_text(id).is_some() {
        ItemKind::Song
    } else {
        return Err(SubsonicError::not_found(format!(
            "Item {}",
            id.chars().take(64).collect::<String>()
        )));
    };
    Ok(ItemRef {
        kind,
        id: id.to_owned(),
    })
}

pub async fn set_rating(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let rating: u8 = call
        .params
        .required("rating")?
        .trim()
        .parse()
        .ok()
        .filter(|r| *r <= 5)
        .ok_or_else(|| SubsonicError::invalid("rating", "a rating is 0 (none) to 5"))?;
    let library = call.api.library.get().await?;
    let item = item_of(&library, id)?;
    call.api
        .state
        .store
        .set_rating(&call.user.name, &item, rating)
        .await?;
    call.marks_changed().await;
    Ok(Reply::empty())
}

/// `scrobble`: with `submission` (the default) counts plays at the given `time`s; without,
/// says what the user is playing now.
pub async fn scrobble(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let ids = song_ids(call.params.all("id"))?;
    if ids.is_empty() {
        return Err(SubsonicError::missing("id"));
    }
    let times = call.params.all("time");
    let submission = call.params.flag("submission", true);
    let library = call.api.library.get().await?;
    for (index, id) in ids.iter().enumerate() {
        if library.song(id).is_none() {
            return Err(SubsonicError::not_found(format!("Song {id}")));
        }
        if submission {
            let at = times
                .get(index)
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or_else(now_ms);
            call.api
                .state
                .store
                .record_play(&call.user.name, id, at)
                .await?;
            call.marks_changed().await;
        } else {
            call.note_playing(*id);
        }
    }
    Ok(Reply::empty())
}

pub async fn now_playing(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let playing: Vec<(String, super::call::NowPlaying)> = match call.api.now_playing.lock() {
        Ok(mut playing) => {
            playing.retain(|_, p| p.since.elapsed() < NOW_PLAYING_FOR);
            playing
                .iter()
                .map(|(u, p)| (u.clone(), p.clone()))
                .collect()
        }
        Err(_) => Vec::new(),
    };
    let library = call.api.library.get().await?;
    let marks = Marks::default();
    let entries: Vec<Value> = playing
        .into_iter()
        .filter_map(|(user, p)| {
            let song = library.song(&p.track)?;
            let Value::Object(mut entry) = song_json(&library, song, &marks) else {
                return None;
            };
            entry.insert("username".into(), user.into());
            entry.insert(
                "minutesAgo".into(),
                (p.since.elapsed().as_secs() / 60).into(),
            );
            entry.insert("playerId".into(), 0.into());
            if !p.player.is_empty() {
                entry.insert("playerName".into(), p.player.into());
            }
            Some(Value::Object(entry))
        })
        .collect();
    Ok(Reply::with(
        "nowPlaying",
        object([("entry", entries.into())]),
    ))
}

pub async fn user(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let name = call.params.get("username").unwrap_or(&call.user.name);
    if name != call.user.name && !call.user.admin {
        return Err(SubsonicError::forbidden("see another user"));
    }
    let user = call.api.state.store.get_user(name).await?;
    Ok(Reply::with(
        "user",
        json!({
            "username": user.name,
            "scrobblingEnabled": true,
            "adminRole": user.admin,
            "settingsRole": false,
            "downloadRole": true,
            "uploadRole": false,
            "playlistRole": true,
            "coverArtRole": false,
            "commentRole": false,
            "podcastRole": false,
            "streamRole": true,
            "jukeboxRole": false,
            "shareRole": false,
            "videoConversionRole": false,
            "folder": [super::browse::MUSIC_FOLDER],
        }),
    ))
}

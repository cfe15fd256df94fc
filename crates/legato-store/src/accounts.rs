//! Listeners and what they keep: users, their API keys, stars, ratings, plays and playlists
//! (the Subsonic API's per-user state). Every backend implements [`Accounts`]; it is a
//! supertrait of [`Catalog`](crate::Catalog), so a store answers both.
//!
//! The store keeps what it is given: a user's password arrives sealed by the server's key
//! and API keys arrive hashed; neither the clear password nor a clear key ever reaches it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Result, TrackId};

/// A person who signs in (Subsonic apps send a user name with every request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Unique, case-sensitive, 1 to 64 characters.
    pub name: String,
    pub admin: bool,
    /// The password sealed with the server's key (nonce and ciphertext); opaque to the store.
    pub sealed_password: Vec<u8>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// An API key of a user (OpenSubsonic `apiKeyAuthentication`), stored by its hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    /// SHA-256 of the key, lowercase hex: how a request's key is looked up.
    pub hash: String,
    pub user: String,
    /// What the owner called it (`phone`), to tell keys apart when revoking.
    pub label: String,
    pub created_at: i64,
}

/// What a star or a rating is about: Subsonic stars and rates songs, albums and artists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Song,
    Album,
    Artist,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Song => "song",
            Self::Album => "album",
            Self::Artist => "artist",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "song" => Self::Song,
            "album" => Self::Album,
            "artist" => Self::Artist,
            _ => return None,
        })
    }
}

/// One song, album or artist, by the id the API shows for it (a track id's hex for a song;
/// album and artist ids are the caller's, at most 128 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub kind: ItemKind,
    pub id: String,
}

/// What one user marked: stars (with when), ratings (1 to 5) and plays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMarks {
    /// Starred items and the time (ms) they were starred.
    pub stars: Vec<(ItemRef, i64)>,
    pub ratings: Vec<(ItemRef, u8)>,
    pub plays: Vec<PlayCount>,
}

/// How often and when a user last played a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayCount {
    pub track_id: TrackId,
    pub count: u64,
    /// Milliseconds since the epoch.
    pub last_played: i64,
}

/// A user's ordered list of tracks (a track may appear more than once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    /// Chosen by the caller when creating (a fresh [`TrackId`]'s hex is fine); unique.
    pub id: String,
    pub owner: String,
    pub name: String,
    pub comment: Option<String>,
    pub public: bool,
    pub tracks: Vec<TrackId>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A change to a playlist, applied in this order: fields, removals (by position in the list
/// before the change; positions past the end are ignored), then additions at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistPatch {
    pub name: Option<String>,
    pub comment: Option<String>,
    pub public: Option<bool>,
    pub remove_positions: Vec<u32>,
    pub add: Vec<TrackId>,
    /// When given, replaces the whole list (then `remove_positions` and `add` apply to it).
    pub replace: Option<Vec<TrackId>>,
}

/// Users, keys and per-user state. `NotFound` for a missing user or playlist; `Invalid`
/// for a user that exists already (`create_user`) or a rating above 5.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn create_user(&self, user: User) -> Result<User>;
    async fn get_user(&self, name: &str) -> Result<User>;
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn set_user_password(&self, name: &str, sealed_password: Vec<u8>) -> Result<()>;
    async fn set_user_admin(&self, name: &str, admin: bool) -> Result<()>;
    /// Removes the user with their keys, marks, plays and playlists.
    async fn delete_user(&self, name: &str) -> Result<()>;

    /// `NotFound` when the key's user does not exist.
    async fn add_user_key(&self, key: UserKey) -> Result<()>;
    async fn find_user_key(&self, hash: &str) -> Result<Option<UserKey>>;
    /// A user's keys, oldest first.
    async fn list_user_keys(&self, user: &str) -> Result<Vec<UserKey>>;
    /// Removes the user's keys with this label (or every key of theirs with `None`); how many.
    async fn revoke_user_keys(&self, user: &str, label: Option<&str>) -> Result<u64>;

    /// Stars or unstars an item (starring twice keeps the first time).
    async fn set_starred(
        &self,
        user: &str,
        item: &ItemRef,
        starred: bool,
        at_ms: i64,
    ) -> Result<()>;
    /// 1 to 5 rates the item; 0 removes its rating.
    async fn set_rating(&self, user: &str, item: &ItemRef, rating: u8) -> Result<()>;
    /// Adds one play of the track and sets its last play time (kept if later than `at_ms`).
    async fn record_play(&self, user: &str, track: &TrackId, at_ms: i64) -> Result<()>;
    /// Everything the user marked, in no particular order.
    async fn user_marks(&self, user: &str) -> Result<UserMarks>;

    async fn create_playlist(&self, playlist: Playlist) -> Result<Playlist>;
    async fn get_playlist(&self, id: &str) -> Result<Playlist>;
    /// Every playlist of every user, by name (the caller shows a user theirs and the public).
    async fn list_playlists(&self) -> Result<Vec<Playlist>>;
    /// The playlists `viewer` may see, by name: their own and every public one. The default
    /// reads every playlist; backends read only those (a user's listing then costs what
    /// they and the public playlists hold, not every user's).
    async fn visible_playlists(&self, viewer: &str) -> Result<Vec<Playlist>> {
        let mut all = self.list_playlists().await?;
        all.retain(|p| p.public || p.owner == viewer);
        Ok(all)
    }
    /// How many playlists `owner` has (what their quota counts). The default reads every
    /// playlist; backends answer it from their index of owners.
    async fn count_playlists(&self, owner: &str) -> Result<u64> {
        Ok(self
            .list_playlists()
            .await?
            .iter()
            .filter(|p| p.owner == owner)
            .count() as u64)
    }
    async fn update_playlist(
        &self,
        id: &str,
        patch: &PlaylistPatch,
        at_ms: i64,
    ) -> Result<Playlist>;
    async fn delete_playlist(&self, id: &str) -> Result<()>;
}

/// `playlist` changed by `patch` at `at_ms`, as [`PlaylistPatch`] describes: what every
/// backend applies, so they agree on the edge cases (duplicate tracks, repeated or
/// out-of-range positions).
pub fn apply_playlist_patch(mut playlist: Playlist, patch: &PlaylistPatch, at_ms: i64) -> Playlist {
    if let Some(name) = &patch.name {
        playlist.name = name.clone();
    }
    if let Some(comment) = &patch.comment {
        playlist.comment = Some(comment.clone());
    }
    if let Some(public) = patch.public {
        playlist.public = public;
    }
    let before = match &patch.replace {
        Some(tracks) => tracks.clone(),
        None => std::mem::take(&mut playlist.tracks),
    };
    let removed: std::collections::HashSet<usize> = patch
        .remove_positions
        .iter()
        .filter_map(|&p| usize::try_from(p).ok())
        .collect();
    playlist.tracks = before
        .into_iter()
        .enumerate()
        .filter(|(position, _)| !removed.contains(position))
        .map(|(_, track)| track)
        .chain(patch.add.iter().copied())
        .collect();
    playlist.updated_at = at_ms;
    playlist
}

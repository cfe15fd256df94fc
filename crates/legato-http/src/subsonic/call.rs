//! One signed-in request and what the router shares between requests: the user's marks,
//! the library snapshot, caches, and what an endpoint answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use legato_store::{ItemKind, TrackId, User, UserMarks};
use serde_json::{Map, Value};

use super::auth;
use super::error::SubsonicError;
use super::library;
use super::params::Params;
use crate::AppState;
use crate::secret_key::SecretKey;

/// How a request to `/rest` signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedIn {
    /// `u` with a token, a password or `apiKey`: a Subsonic app.
    Credentials,
    /// The web player's session cookie.
    Cookie,
    /// No credentials, on a server without users.
    Guest,
}

/// Where each segment's audio lies in the progressive file of one rendition (see
/// `media`).
pub struct Rendition {
    /// Segment chunk names and their audio payload lengths, in order.
    pub(super) segments: Vec<(String, u64)>,
    /// Each segment's duration in seconds (its `#EXTINF`), in the same order.
    pub(super) durations: Vec<f64>,
}

/// What a user marked, indexed for the listings.
#[derive(Default)]
pub struct Marks {
    /// By kind, then id: looked up with a borrowed id for every item of a page.
    pub(super) stars: HashMap<ItemKind, HashMap<String, i64>>,
    pub(super) ratings: HashMap<ItemKind, HashMap<String, u8>>,
    pub(super) plays: HashMap<TrackId, (u64, i64)>,
}

impl Marks {
    pub(super) fn from(marks: UserMarks) -> Self {
        let mut stars: HashMap<ItemKind, HashMap<String, i64>> = HashMap::new();
        for (item, at) in marks.stars {
            stars.entry(item.kind).or_default().insert(item.id, at);
        }
        let mut ratings: HashMap<ItemKind, HashMap<String, u8>> = HashMap::new();
        for (item, rating) in marks.ratings {
            ratings
                .entry(item.kind)
                .or_default()
                .insert(item.id, rating);
        }
        Self {
            stars,
            ratings,
            plays: marks
                .plays
                .into_iter()
                .map(|p| (p.track_id, (p.count, p.last_played)))
                .collect(),
        }
    }

    pub fn starred(&self, kind: ItemKind, id: &str) -> Option<i64> {
        self.stars.get(&kind)?.get(id).copied()
    }

    /// Every starred item: kind, id and when (ms).
    pub fn stars(&self) -> impl Iterator<Item = (ItemKind, &str, i64)> {
        self.stars
            .iter()
            .flat_map(|(&kind, ids)| ids.iter().map(move |(id, &at)| (kind, id.as_str(), at)))
    }

    pub fn rating(&self, kind: ItemKind, id: &str) -> Option<u8> {
        self.ratings.get(&kind)?.get(id).copied()
    }

    pub fn plays(&self, id: &TrackId) -> Option<(u64, i64)> {
        self.plays.get(id).copied()
    }
}

/// A track someone is playing, for `getNowPlaying`.
#[derive(Clone)]
pub(super) struct NowPlaying {
    pub(super) track: TrackId,
    pub(super) player: String,
    pub(super) since: std::time::Instant,
}

/// The router's shared state.
pub struct Api {
    pub(super) state: AppState,
    pub(super) secret: SecretKey,
    pub(super) library: Arc<library::LibraryCache>,
    pub(super) failures: auth::FailureLimiter,
    pub(super) now_playing: Mutex<HashMap<String, NowPlaying>>,
    pub(super) covers: moka::future::Cache<(TrackId, String, u32), Bytes>,
    /// Each user's marks, read at most once per [`MARKS_TTL`] under load; forgotten at once
    /// when this process changes them.
    pub(super) marks: moka::future::Cache<String, Arc<Marks>>,
    /// Byte lengths of each segment's audio in a rendition, by (track, playlist chunk).
    pub(super) renditions: moka::future::Cache<(TrackId, String), Arc<Rendition>>,
    /// One lock per user (new playlists) and per playlist (changes): a quota's check and the
    /// write it allows are one step for the requests this process answers.
    pub(super) quota_locks: moka::future::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// Whether any user exists (a guest may browse only while none does), asked of the
    /// store at most every 5 s.
    pub(super) users_exist: moka::future::Cache<(), bool>,
}

impl Api {
    pub(super) async fn has_users(&self) -> Result<bool, SubsonicError> {
        if let Some(known) = self.users_exist.get(&()).await {
            return Ok(known);
        }
        let exist = !self.state.store.list_users().await?.is_empty();
        self.users_exist.insert((), exist).await;
        Ok(exist)
    }
}

/// One request, signed in.
pub struct Call<'a> {
    pub(super) api: &'a Api,
    pub(super) user: &'a User,
    pub(super) signed_in: SignedIn,
    pub(super) params: &'a Params,
    pub(super) headers: &'a HeaderMap,
}

/// How long a user's stars, ratings and plays may be answered from memory: a listing under
/// load then costs one store read a second for them rather than one per request, and a
/// change made through another replica shows within this.
pub(super) const MARKS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Call<'_> {
    pub(super) async fn marks(&self) -> Result<Arc<Marks>, SubsonicError> {
        if self.signed_in == SignedIn::Guest {
            // A guest is no user of the store and keeps nothing.
            return Ok(Arc::new(Marks::default()));
        }
        if let Some(marks) = self.api.marks.get(&self.user.name).await {
            return Ok(marks);
        }
        let marks = Arc::new(Marks::from(
            self.api.state.store.user_marks(&self.user.name).await?,
        ));
        self.api
            .marks
            .insert(self.user.name.clone(), marks.clone())
            .await;
        Ok(marks)
    }

    /// Holds `key`'s quota lock (`user:NAME`, `playlist:ID`) until the guard is dropped.
    pub(super) async fn quota_lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .api
            .quota_locks
            .get_with(key, async { Arc::new(tokio::sync::Mutex::new(())) })
            .await;
        lock.lock_owned().await
    }

    /// After a star, a rating or a play: the next listing reads them again.
    pub(super) async fn marks_changed(&self) {
        self.api.marks.invalidate(&self.user.name).await;
    }

    /// Remembers what the user plays now (with the client's name), for `getNowPlaying`.
    pub(super) fn note_playing(&self, track: TrackId) {
        if let Ok(mut playing) = self.api.now_playing.lock() {
            playing.insert(
                self.user.name.clone(),
                NowPlaying {
                    track,
                    player: self
                        .params
                        .get("c")
                        .unwrap_or("")
                        .chars()
                        .take(64)
                        .collect(),
                    since: std::time::Instant::now(),
                },
            );
        }
    }
}

/// What an endpoint answers: fields of a `subsonic-response`, or media.
pub enum Reply {
    Fields(Map<String, Value>),
    Media(Response),
}

impl Reply {
    pub(super) fn empty() -> Self {
        Self::Fields(Map::new())
    }

    pub(super) fn with(name: &str, value: Value) -> Self {
        let mut fields = Map::new();
        fields.insert(name.to_owned(), value);
        Self::Fields(fields)
    }
}

/// A JSON object of these fields, each moved in (`json!` copies a value given by name, and
/// a page of songs is most of the work of an answer).
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// RFC 3339 time of milliseconds since the epoch, as the API writes dates.
pub fn iso_time(ms: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

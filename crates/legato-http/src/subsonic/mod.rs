//! The OpenSubsonic API (1.16.1) under `/rest`, so Subsonic apps can browse and play the
//! library: `/rest/<endpoint>` or `/rest/<endpoint>.view`, by GET or by POST with a form body
//! (the `formPost` extension), answering XML, JSON or JSONP.
//!
//! Subsonic clients expect every answer, errors included, as a `subsonic-response` with
//! HTTP 200 and one of the API's error codes; so this router maps its failures itself
//! ([`SubsonicError`]), apart from the crud and streaming functions' [`ApiError`]s.
//!
//! [`ApiError`]: crate::ApiError

mod auth;
mod browse;
mod library;
mod media;
mod render;
mod session;
mod user_state;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use legato_store::{ItemKind, StoreError, TrackId, User, UserMarks};
use serde_json::{Map, Value};

pub use auth::{SecretKey, check_new_user, hash_user_key, new_user_key};
use render::Format;
pub use session::{CSRF_HEADER, cookie_user};

use crate::AppState;

/// The Subsonic API version whose response shapes we give.
pub const API_VERSION: &str = "1.16.1";

/// A failure as Subsonic clients read it: a code of the API's list and a message.
#[derive(Debug, Clone)]
pub struct SubsonicError {
    pub code: u16,
    pub message: String,
}

impl SubsonicError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }

    pub fn missing(name: &str) -> Self {
        Self::new(10, format!("Required parameter is missing: {name}."))
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(70, format!("{what} not found."))
    }

    pub fn forbidden(what: &str) -> Self {
        Self::new(50, format!("User is not authorized to {what}."))
    }

    pub fn invalid(name: &str, why: &str) -> Self {
        Self::new(0, format!("Invalid parameter {name}: {why}."))
    }

    /// A listener's quota (`UserQuotas`) refuses what they asked to store. Error 0, as the
    /// API has no code for it; the message says which limit, what was asked and what to do.
    pub fn quota(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }
}

impl From<StoreError> for SubsonicError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::not_found(what),
            other => Self::generic(other.to_string()),
        }
    }
}

/// The query and form parameters of a request; names may repeat (`id=1&id=2`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>, form: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        pairs.extend(form_urlencoded::parse(form).into_owned());
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, SubsonicError> {
        self.get(name).ok_or_else(|| SubsonicError::missing(name))
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A number parameter: its default when absent, an error when not a number.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, SubsonicError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| SubsonicError::invalid(name, "not a number")),
        }
    }

    /// A boolean parameter: its default when absent or empty, else [`boolean`] of it.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.maybe_flag(name).unwrap_or(default)
    }

    /// A boolean parameter without a default: `None` when absent or empty.
    pub fn maybe_flag(&self, name: &str) -> Option<bool> {
        self.get(name)
            .filter(|text| !text.trim().is_empty())
            .map(boolean)
    }

    /// Paging: `size` (or the name given) within 0..=max, and `offset`.
    pub fn page(
        &self,
        size: &str,
        offset: &str,
        default: usize,
        max: usize,
    ) -> Result<(usize, usize), SubsonicError> {
        Ok((
            self.number(size, default)?.min(max),
            self.number(offset, 0usize)?,
        ))
    }
}

/// A boolean parameter's value as the reference servers read it: `true`, `on`, `yes` and
/// `1` in any case are true (Subsonic's Spring `getBooleanParameter`; Navidrome takes
/// `true`, `on` and `1`), anything else is false. Every boolean parameter is read through
/// this (by [`Params::flag`] and [`Params::maybe_flag`]).
pub fn boolean(text: &str) -> bool {
    let text = text.trim();
    ["true", "on", "yes", "1"]
        .iter()
        .any(|t| text.eq_ignore_ascii_case(t))
}

/// What a user marked, indexed for the listings.
#[derive(Default)]
pub struct Marks {
    /// By kind, then id: looked up with a borrowed id for every item of a page.
    stars: HashMap<ItemKind, HashMap<String, i64>>,
    ratings: HashMap<ItemKind, HashMap<String, u8>>,
    plays: HashMap<TrackId, (u64, i64)>,
}

impl Marks {
    fn from(marks: UserMarks) -> Self {
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
struct NowPlaying {
    track: TrackId,
    player: String,
    since: std::time::Instant,
}

/// The router's shared state.
pub struct Api {
    state: AppState,
    secret: SecretKey,
    library: Arc<library::LibraryCache>,
    failures: auth::FailureLimiter,
    now_playing: Mutex<HashMap<String, NowPlaying>>,
    covers: moka::future::Cache<(TrackId, String, u32), Bytes>,
    /// Each user's marks, read at most once per [`MARKS_TTL`] under load; forgotten at once
    /// when this process changes them.
    marks: moka::future::Cache<String, Arc<Marks>>,
    /// Byte lengths of each segment's audio in a rendition, by (track, playlist chunk).
    renditions: moka::future::Cache<(TrackId, String), Arc<media::Rendition>>,
    /// One lock per user (new playlists) and per playlist (changes): a quota's check and the
    /// write it allows are one step for the requests this process answers.
    quota_locks: moka::future::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// Whether any user exists (a guest may browse only while none does), asked of the
    /// store at most every 5 s.
    users_exist: moka::future::Cache<(), bool>,
}

impl Api {
    async fn has_users(&self) -> Result<bool, SubsonicError> {
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
    api: &'a Api,
    user: &'a User,
    signed_in: session::SignedIn,
    params: &'a Params,
    headers: &'a HeaderMap,
}

/// How long a user's stars, ratings and plays may be answered from memory: a listing under
/// load then costs one store read a second for them rather than one per request, and a
/// change made through another replica shows within this.
const MARKS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Call<'_> {
    async fn marks(&self) -> Result<Arc<Marks>, SubsonicError> {
        if self.signed_in == session::SignedIn::Guest {
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
    async fn quota_lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .api
            .quota_locks
            .get_with(key, async { Arc::new(tokio::sync::Mutex::new(())) })
            .await;
        lock.lock_owned().await
    }

    /// After a star, a rating or a play: the next listing reads them again.
    async fn marks_changed(&self) {
        self.api.marks.invalidate(&self.user.name).await;
    }

    /// Remembers what the user plays now (with the client's name), for `getNowPlaying`.
    fn note_playing(&self, track: TrackId) {
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
    fn empty() -> Self {
        Self::Fields(Map::new())
    }

    fn with(name: &str, value: Value) -> Self {
        let mut fields = Map::new();
        fields.insert(name.to_owned(), value);
        Self::Fields(fields)
    }
}

/// The `/rest` routes, relative to where they are mounted.
pub fn router(state: AppState, secret: SecretKey) -> Router {
    let api = Arc::new(Api {
        library: library::LibraryCache::new(state.store.clone()),
        state,
        secret,
        failures: auth::FailureLimiter::new(),
        now_playing: Mutex::new(HashMap::new()),
        covers: moka::future::Cache::builder()
            .max_capacity(64 * 1024 * 1024)
            .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build(),
        marks: moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(MARKS_TTL)
            .build(),
        renditions: moka::future::Cache::new(10_000),
        quota_locks: moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_idle(std::time::Duration::from_secs(60))
            .build(),
        users_exist: moka::future::Cache::builder()
            .max_capacity(1)
            .time_to_live(std::time::Duration::from_secs(5))
            .build(),
    });
    Router::new()
        .route(
            "/session",
            axum::routing::get(session::show)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/{endpoint}", any(endpoint))
        .fallback(any(no_endpoint))
        .with_state(api)
}

/// Endpoints of the Subsonic API that Legato does not offer (podcasts, radio, shares, chat,
/// jukebox, video, user management, play queues, bookmarks, lyrics, artist info): they answer
/// error 0, "not implemented"; names not in the API answer 70.
const NOT_OFFERED: &[&str] = &[
    "addChatMessage",
    "changePassword",
    "createBookmark",
    "createInternetRadioStation",
    "createPodcastChannel",
    "createShare",
    "createUser",
    "deleteBookmark",
    "deleteInternetRadioStation",
    "deletePodcastChannel",
    "deletePodcastEpisode",
    "deleteShare",
    "deleteUser",
    "downloadPodcastEpisode",
    "findSonicPath",
    "getAlbumInfo",
    "getAlbumInfo2",
    "getArtistInfo",
    "getArtistInfo2",
    "getAvatar",
    "getBookmarks",
    "getCaptions",
    "getChatMessages",
    "getInternetRadioStations",
    "getLyrics",
    "getLyricsBySongId",
    "getNewestPodcasts",
    "getPlayQueue",
    "getPlayQueueByIndex",
    "getPodcastEpisode",
    "getPodcasts",
    "getShares",
    "getSimilarSongs",
    "getSimilarSongs2",
    "getSonicSimilarTracks",
    "getTopSongs",
    "getTranscodeDecision",
    "getTranscodeStream",
    "getUsers",
    "getVideoInfo",
    "getVideos",
    "jukeboxControl",
    "refreshPodcasts",
    "savePlayQueue",
    "savePlayQueueByIndex",
    "search",
    "tokenInfo",
    "updateInternetRadioStation",
    "updateShare",
    "updateUser",
];

async fn no_endpoint(RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref(), &[]);
    let format = Format::from_params(params.get("f"), params.get("callback"));
    render::respond(&format, Err(SubsonicError::not_found("This endpoint")))
}

/// The largest form body a Subsonic request that stores nothing may carry (parameters in the
/// body of a POST). Requests that store user state have the smaller
/// [`UserQuotas::max_state_request_bytes`](crate::UserQuotas) for query and body together.
const MAX_FORM_BODY: u64 = 2 * 1024 * 1024;

/// The endpoints that store what a listener keeps (playlists, stars, ratings, plays): their
/// parameters are bounded by the user-state quota.
const STORES_USER_STATE: &[&str] = &[
    "createPlaylist",
    "updatePlaylist",
    "deletePlaylist",
    "star",
    "unstar",
    "setRating",
    "scrobble",
];

/// Most of a refused body read (and dropped) before answering, so that the client, still
/// sending, reads the answer instead of a reset connection.
const DRAIN_REFUSED: u64 = 4 * 1024 * 1024;

/// The refusal of a user-state request whose parameters exceed the quota.
fn too_large(endpoint: &str, sent: Option<u64>, limit: u64) -> SubsonicError {
    let sent = sent.map_or_else(String::new, |n| format!(" ({} KiB sent)", n.div_ceil(1024)));
    SubsonicError::quota(format!(
        "Request too large: {endpoint} may carry at most {} KiB of parameters{sent}. Send \
         fewer songs at a time (updatePlaylist adds them in steps), or ask the server's admin \
         to raise --max-state-request-kb.",
        limit / 1024
    ))
}

/// Reads and drops what is left of a refused body, at most [`DRAIN_REFUSED`] bytes and for
/// a few seconds.
async fn drain(body: axum::body::Body) {
    let mut stream = body.into_data_stream();
    let mut drained = 0u64;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while drained < DRAIN_REFUSED {
        match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut stream)).await {
            Ok(Some(Ok(chunk))) => drained += chunk.len() as u64,
            _ => break,
        }
    }
}

async fn endpoint(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    connect: Option<axum::extract::Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Response {
    let name = name.strip_suffix(".view").unwrap_or(&name);
    let query_len = query.as_ref().map_or(0, |q| q.len() as u64);
    // A user-state request's query and body together are bounded by the quota; refused as a
    // Subsonic error, in the format the query asks for, before anything is stored.
    let state_limit = STORES_USER_STATE
        .contains(&name)
        .then_some(api.state.config.quotas.max_state_request_bytes);
    let refuse = |sent: Option<u64>, limit: u64| {
        let params = Params::parse(query.as_deref(), &[]);
        let format = Format::from_params(params.get("f"), params.get("callback"));
        render::respond(&format, Err(too_large(name, sent, limit)))
    };
    let form_body = method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = if form_body {
        let content_length: Option<u64> = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // A user-state request announcing more than any form may carry is refused unread
        // (what it sends meanwhile is drained, within bounds, so it reads the answer); any
        // other is read whole, within the bound of every form, then measured, so the client
        // is never cut off while sending.
        if let Some(limit) = state_limit
            && content_length.is_some_and(|len| len > MAX_FORM_BODY)
        {
            drain(body).await;
            return refuse(
                content_length.map(|len| len.saturating_add(query_len)),
                limit,
            );
        }
        match crate::upload::read_small_body(body, content_length, MAX_FORM_BODY, &api.state.config)
            .await
        {
            Ok(body) => body,
            Err(crate::ApiError::PayloadTooLarge { .. }) if state_limit.is_some() => {
                return refuse(None, state_limit.unwrap_or_default());
            }
            // A body that does not arrive is the connection's problem, answered as HTTP.
            Err(error) => return axum::response::IntoResponse::into_response(error),
        }
    } else {
        Vec::new()
    };
    if let Some(limit) = state_limit {
        let sent = query_len + body.len() as u64;
        if sent > limit {
            return refuse(Some(sent), limit);
        }
    }
    let params = Params::parse(query.as_deref(), &body);
    let format = Format::from_params(params.get("f"), params.get("callback"));
    let client = client_address(
        &headers,
        connect.map(|c| c.0.0),
        &api.state.config.trusted_proxies,
    );
    let result = dispatch(&api, name, &params, &headers, client).await;
    match result {
        Ok(Reply::Media(response)) => response,
        Ok(Reply::Fields(fields)) => render::respond(&format, Ok(fields)),
        Err(error) => render::respond(&format, Err(error)),
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy. A proxy appends what it saw, so the
/// entries left of it are whatever the client wrote and are never believed.
fn client_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|hop| hop.parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        // A hop that is not an address: believe none of them.
        .unwrap_or_default();
    hops.iter()
        .rev()
        .find(|hop| !is_trusted(hop))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

async fn dispatch(
    api: &Api,
    name: &str,
    params: &Params,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<Reply, SubsonicError> {
    // Clients ask which extensions there are before signing in.
    if name == "getOpenSubsonicExtensions" {
        return Ok(Reply::with(
            "openSubsonicExtensions",
            serde_json::json!([
                { "name": "apiKeyAuthentication", "versions": [1] },
                { "name": "formPost", "versions": [1] },
                { "name": "transcodeOffset", "versions": [1] },
            ]),
        ));
    }
    let signed_in = if params.get("u").is_none() && params.get("apiKey").is_none() {
        session::without_credentials(api, headers).await?
    } else {
        None
    };
    let (user, signed_in) = match signed_in {
        Some((user, how)) => {
            if STORES_USER_STATE.contains(&name) {
                session::may_store(how, headers)?;
            }
            (user, how)
        }
        None => (
            auth::authenticate(&api.state.store, &api.secret, &api.failures, client, params)
                .await?,
            session::SignedIn::Credentials,
        ),
    };
    let call = Call {
        api,
        user: &user,
        signed_in,
        params,
        headers,
    };
    match name {
        "ping" => Ok(Reply::empty()),
        "getLicense" => Ok(Reply::with(
            "license",
            serde_json::json!({ "valid": true, "email": "", "licenseExpires": "2999-12-31T00:00:00Z" }),
        )),
        "getMusicFolders" => Ok(Reply::with(
            "musicFolders",
            serde_json::json!({ "musicFolder": [{ "id": browse::MUSIC_FOLDER, "name": "Music" }] }),
        )),
        "getScanStatus" | "startScan" => browse::scan_status(&call, name == "startScan").await,
        "getIndexes" => browse::indexes(&call).await,
        "getMusicDirectory" => browse::music_directory(&call).await,
        "getArtists" => browse::artists(&call).await,
        "getArtist" => browse::artist(&call).await,
        "getAlbum" => browse::album(&call).await,
        "getSong" => browse::song(&call).await,
        "getAlbumList" => browse::album_list(&call, false).await,
        "getAlbumList2" => browse::album_list(&call, true).await,
        "getRandomSongs" => browse::random_songs(&call).await,
        "getGenres" => browse::genres(&call).await,
        "getSongsByGenre" => browse::songs_by_genre(&call).await,
        "search2" => browse::search(&call, false).await,
        "search3" => browse::search(&call, true).await,
        "getStarred" => browse::starred(&call, false).await,
        "getStarred2" => browse::starred(&call, true).await,
        "stream" => media::stream(&call).await,
        "download" => media::download(&call).await,
        "getCoverArt" => media::cover_art(&call).await,
        "hls.m3u8" | "hls" => media::hls(&call).await,
        "getPlaylists" => user_state::playlists(&call).await,
        "getPlaylist" => user_state::playlist(&call).await,
        "createPlaylist" => user_state::create_playlist(&call).await,
        "updatePlaylist" => user_state::update_playlist(&call).await,
        "deletePlaylist" => user_state::delete_playlist(&call).await,
        "star" => user_state::star(&call, true).await,
        "unstar" => user_state::star(&call, false).await,
        "setRating" => user_state::set_rating(&call).await,
        "scrobble" => user_state::scrobble(&call).await,
        "getNowPlaying" => user_state::now_playing(&call).await,
        "getUser" => user_state::user(&call).await,
        other if NOT_OFFERED.contains(&other) => Err(SubsonicError::generic(format!(
            "{other} is not implemented by Legato."
        ))),
        other => Err(SubsonicError::not_found(format!(
            "Endpoint {}",
            other.chars().take(64).collect::<String>()
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_the_reference_servers_read_them() {
        for text in [
            "true", "True", "TRUE", "1", "on", "ON", "yes", "Yes", " true ",
        ] {
            assert!(boolean(text), "{text:?}");
        }
        for text in [
            "false", "False", "FALSE", "0", "off", "no", "2", "truthy", "t",
        ] {
            assert!(!boolean(text), "{text:?}");
        }
        let params = Params::parse(Some("a=True&b=0&c="), &[]);
        assert!(params.flag("a", false));
        assert!(!params.flag("b", true));
        assert!(params.flag("c", true), "empty: the default");
        assert!(params.flag("d", true), "absent: the default");
        assert_eq!(params.maybe_flag("c"), None);
        assert_eq!(params.maybe_flag("b"), Some(false));
    }
}

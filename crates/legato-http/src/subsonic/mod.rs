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
mod call;
mod error;
mod library;
mod media;
mod params;
mod render;
mod session;
mod user_state;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;

pub use crate::secret_key::SecretKey;
pub use auth::{check_new_user, hash_user_key, new_user_key};
use call::{Api, Call, MARKS_TTL, Reply, SignedIn};
pub use call::{iso_time, object};
pub use error::SubsonicError;
pub use params::boolean;
use params::{Params, client_address};
pub use render::API_VERSION;
use render::Format;
pub use session::{CSRF_HEADER, cookie_user};

use crate::AppState;

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
            SignedIn::Credentials,
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

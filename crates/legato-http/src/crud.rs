//! The crud function: add, list, show, edit and delete tracks.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use legato_store::{ListQuery, SortKey, SortOrder, Track, TrackId, TrackPatch};
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::ingest;
use crate::state::AppState;
use crate::upload::{self, clean_text};

/// A track as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackView {
    /// 24 hexadecimal characters (MongoDB ObjectId form).
    pub id: String,
    pub name: String,
    pub author: String,
    pub album: Option<String>,
    pub year: Option<i32>,
    /// Seconds.
    pub duration: f64,
    pub segments: u32,
    /// Path (and, with signed URLs, query) of the track's playlist: a master playlist when
    /// the track has several variants.
    pub playlist: String,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// Why processing failed.
    pub error: Option<String>,
    /// Codec of the uploaded file (`mp3`, `flac`, `pcm`, `vorbis`, `aac`).
    pub codec: Option<String>,
    /// kbit/s of the uploaded file.
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// Bytes of the uploaded file.
    pub size: Option<u64>,
    /// The renditions, lowest bitrate first (empty: one rendition, `playlist` is it).
    pub variants: Vec<VariantView>,
    /// URL of the cover image, or null.
    pub cover: Option<String>,
    /// Integrated loudness (EBU R128), once analysed.
    pub loudness: Option<f64>,
    /// True peak in dBTP, once analysed.
    pub true_peak: Option<f64>,
    /// Waveform peaks in 0..1, once analysed.
    pub peaks: Option<Vec<f32>>,
    /// RFC 3339.
    pub created_at: String,
}

/// One rendition of a track.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariantView {
    /// `original` (the uploaded MP3, bit-exact) or the bitrate, e.g. `128k`.
    pub name: String,
    /// kbit/s.
    pub bitrate: u32,
    /// Path of its media playlist.
    pub playlist: String,
}

impl TrackView {
    /// The view clients get; URLs are signed when the server signs them.
    pub fn of(track: Track, state: &AppState) -> Self {
        let query = state
            .config
            .url_signer
            .as_ref()
            .map(|s| format!("?{}", s.sign(&track.id).query()))
            .unwrap_or_default();
        Self::new(track, &state.config.streaming_path, &query)
    }

    pub fn new(track: Track, streaming_path: &str, query: &str) -> Self {
        let created = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(track.created_at).unwrap_or(0));
        let base = format!("{streaming_path}/{}", track.id);
        let (loudness, true_peak, peaks) = match track.analysis {
            Some(a) => (a.loudness_lufs, a.true_peak_dbtp, Some(a.peaks)),
            None => (None, None, None),
        };
        Self {
            playlist: format!("{base}/index.m3u8{query}"),
            id: track.id.to_string(),
            name: track.name,
            author: track.author,
            album: track.album,
            year: track.year,
            // Milliseconds are plenty for people and keep JSON short.
            duration: (track.duration * 1000.0).round() / 1000.0,
            segments: track.segments,
            status: track.status.as_str().to_owned(),
            error: track.error,
            codec: track.codec,
            bitrate: track.bitrate,
            sample_rate: track.sample_rate,
            channels: track.channels,
            size: track.size,
            variants: track
                .variants
                .into_iter()
                .map(|v| VariantView {
                    playlist: format!("{base}/{}{query}", v.playlist),
                    name: v.name,
                    bitrate: v.bitrate,
                })
                .collect(),
            cover: track.cover.map(|c| format!("{base}/{c}{query}")),
            loudness: loudness.map(|l| (l * 100.0).round() / 100.0),
            true_peak: true_peak.map(|p| (p * 100.0).round() / 100.0),
            peaks: peaks.map(|p| {
                p.into_iter()
                    .map(|v| (v * 1000.0).round() / 1000.0)
                    .collect()
            }),
            created_at: humantime::format_rfc3339_seconds(created).to_string(),
        }
    }
}

pub fn parse_id(raw: &str) -> Result<TrackId, ApiError> {
    raw.parse::<TrackId>()
        .map_err(|e| ApiError::InvalidId(e.to_string()))
}

/// Adds a track: the seed's JSON, multipart, or the raw file.
#[utoipa::path(post, path = "/function/crud", tag = "crud",
    params(
        ("name" = Option<String>, Query, description = "title, for a raw upload"),
        ("author" = Option<String>, Query, description = "artist, for a raw upload"),
    ),
    request_body(description = "the song", content(
        (crate::openapi::SeedUpload = "application/json"),
        (crate::openapi::MultipartUpload = "multipart/form-data"),
        (crate::openapi::Binary = "audio/mpeg"),
        (crate::openapi::Binary = "application/octet-stream"),
    )),
    responses(
        (status = 201, description = "stored and ready", body = TrackView,
            headers(("Location" = String, description = "the new track's URL"))),
        (status = 202, description = "accepted; processing goes on (status `processing`)", body = TrackView,
            headers(("Location" = String, description = "poll it for the status"))),
        (status = 400, description = "malformed body", body = crate::openapi::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::openapi::ErrorBody),
        (status = 408, description = "the upload stalled", body = crate::openapi::ErrorBody),
        (status = 413, description = "larger than the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "not audio we can read", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many ingests at once, or too many bytes being received", body = crate::openapi::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::openapi::ErrorBody),
        (status = 507, description = "not enough free disk for this upload", body = crate::openapi::ErrorBody),
    ),
    security((), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    // Checked before the body is read, so a refused client has not sent its file for
    // nothing; the slot itself is taken only once the body is in, so a slow sender holds
    // its share of the receive budget, never a processing slot.
    if state.ingests.available_permits() == 0 {
        return Err(ApiError::TooManyIngests(
            state.config.max_concurrent_ingests,
        ));
    }
    let receiving = upload::admit(&state, request.headers())?;
    let respond_async = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
    // The receive share is held until the body is in, then given back.
    let upload = upload::read_upload(request, &query, &state.config, receiving).await?;
    let _permit = state
        .ingests
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyIngests(state.config.max_concurrent_ingests))?;
    let (status, track) = match ingest::ingest(&state, upload, respond_async).await? {
        ingest::Outcome::Ready(track) => (StatusCode::CREATED, track),
        ingest::Outcome::Accepted(track) => (StatusCode::ACCEPTED, track),
    };
    let view = TrackView::of(track, &state);
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/function/crud/{}", view.id)) {
        headers.insert(header::LOCATION, location);
    }
    // Only a client that asked for it is told its preference was applied; a plain POST that
    // outlasted the sync window is 202 without the header.
    if status == StatusCode::ACCEPTED && respond_async {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
    }
    Ok((status, headers, Json(view)).into_response())
}

/// Lists tracks, newest last, with search and paging.
#[utoipa::path(get, path = "/function/crud", tag = "crud",
    params(
        ("q" = Option<String>, Query, description = "case-insensitive substring of name or author"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "page size (default 100)"),
        ("offset" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "tracks to skip"),
        ("sort" = Option<String>, Query, description = "created_at, name, author or duration"),
        ("order" = Option<String>, Query, description = "asc or desc"),
    ),
    responses(
        (status = 200, description = "a page of tracks", body = Vec<TrackView>,
            headers(("X-Total-Count" = u64, description = "tracks matching q"))),
        (status = 400, description = "a bad parameter", body = crate::openapi::ErrorBody),
        (status = 401, description = "the library is private", body = crate::openapi::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::openapi::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = list_query(&params)?;
    let page = state.store.list_tracks(&query).await?;
    let views: Vec<TrackView> = page
        .tracks
        .into_iter()
        .map(|t| TrackView::of(t, &state))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    Ok((headers, Json(views)).into_response())
}

fn list_query(params: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery::default();
    for (key, value) in params {
        match key.as_str() {
            "q" => {
                let needle = clean_text(value);
                query.search = (!needle.is_empty()).then_some(needle);
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| (1..=ListQuery::MAX_LIMIT).contains(&n))
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "limit must be a whole number from 1 to {}, not '{value}'",
                            ListQuery::MAX_LIMIT
                        ))
                    })?;
            }
            "offset" => {
                // Bounded by what every backend can skip (a signed 64-bit count).
                query.offset = value
                    .parse::<i64>()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "offset must be a whole number from 0, not '{value}'"
                        ))
                    })?;
            }
            "sort" => {
                query.sort = SortKey::parse(value).ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "sort must be one of {}, not '{value}'",
                        SortKey::NAMES.join(", ")
                    ))
                })?;
            }
            "order" => {
                query.order = match value.as_str() {
                    "asc" => SortOrder::Asc,
                    "desc" => SortOrder::Desc,
                    _ => {
                        return Err(ApiError::InvalidParameter(format!(
                            "order must be asc or desc, not '{value}'"
                        )));
                    }
                };
            }
            // Unknown parameters are ignored, as browsers and proxies add their own.
            _ => {}
        }
    }
    Ok(query)
}

/// One track.
#[utoipa::path(get, path = "/function/crud/{id}", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    responses(
        (status = 200, description = "the track", body = TrackView),
        (status = 400, description = "not an id", body = crate::openapi::ErrorBody),
        (status = 401, description = "the library is private", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such track", body = crate::openapi::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::openapi::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    let track = state.store.get_track(&id).await?;
    Ok(Json(TrackView::of(track, &state)))
}

/// Changes the name or the author.
#[utoipa::path(patch, path = "/function/crud/{id}", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    request_body(content = crate::openapi::TrackPatchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the updated track", body = TrackView),
        (status = 400, description = "not an id, or a bad body", body = crate::openapi::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such track", body = crate::openapi::ErrorBody),
        (status = 408, description = "the body stalled", body = crate::openapi::ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = crate::openapi::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::openapi::ErrorBody),
        (status = 507, description = "the disk is full", body = crate::openapi::ErrorBody),
    ),
    security((), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    let body = upload::read_small_body(request.into_body(), &state.config).await?;
    // serde would also take a struct from an array; the API takes an object only. Parsed
    // straight into the struct (not through a map) so duplicate keys are refused, as POST does.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::InvalidJson(
            "expected an object such as {\"name\": \"…\", \"author\": \"…\"}".into(),
        ));
    }
    let patch: TrackPatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    // The same rules as an upload: an empty author is the default author.
    let patch = TrackPatch {
        name: patch.name.as_deref().map(clean_text),
        author: patch.author.as_deref().map(clean_text).map(|author| {
            if author.is_empty() {
                ingest::DEFAULT_AUTHOR.to_owned()
            } else {
                author
            }
        }),
    };
    if patch.name.as_deref() == Some("") {
        return Err(ApiError::InvalidParameter("name must not be empty".into()));
    }
    let track = state.store.update_track(&id, &patch).await?;
    Ok(Json(TrackView::of(track, &state)))
}

/// Deletes a track with its playlist and segments.
#[utoipa::path(delete, path = "/function/crud/{id}", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    responses(
        (status = 200, description = "deleted", body = crate::openapi::Deleted),
        (status = 400, description = "not an id", body = crate::openapi::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such track", body = crate::openapi::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::openapi::ErrorBody),
    ),
    security((), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    state.store.delete_track(&id).await?;
    state.segments.forget_track(id);
    Ok(Json(json!({ "deleted": 1 })))
}

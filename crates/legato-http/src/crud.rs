//! The crud function: add, list, show, edit and delete tracks.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use legato_store::{ListQuery, SortKey, SortOrder, Track, TrackPatch};
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::params::parse_id;
use crate::state::AppState;
use crate::upload;
use legato_ingest::{Outcome, clean_text};

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
    /// Codec of the uploaded file (`mp3`, `flac`, `pcm`, `vorbis`, `aac`, `opus`).
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
    /// Waveform peaks in 0..1, once analysed (null before). Absent from list entries unless
    /// the list asks for it with `include=peaks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<f32>>)]
    pub peaks: Option<Option<Vec<f32>>>,
    /// The uploaded file, kept byte for byte (null for tracks stored before originals were
    /// kept); download it from `/function/crud/{id}/file`.
    pub source: Option<SourceView>,
    /// RFC 3339.
    pub created_at: String,
    /// The track's processing job, when it has one (queued, running, or failed with its
    /// error): shown by `GET /function/crud/{id}` and the reprocess answer, absent from
    /// lists. A failed reprocessing leaves the track `ready` on its old renditions, with the
    /// reason here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobView>,
    /// Renditions still to come: a ready track whose job (a reprocessing queued or running,
    /// such as the follow-up of an MP3 upload that played at once) will add them to
    /// `index.m3u8`. `128k` is an MP3 rung, `aac128k` an AAC one, `flac` the lossless one.
    /// Absent when nothing is coming.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coming: Vec<String>,
    /// `true` when an upload answered with a track that has the same file already (200):
    /// nothing was stored. Absent everywhere else.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub existing: bool,
}

impl TrackView {
    /// The view with the track's job, and what that job will add to a ready track.
    fn with_job(track: Track, job: Option<&legato_store::Job>, state: &AppState) -> Self {
        let pending = job.is_some_and(|job| {
            job.kind == legato_store::JobKind::Reprocess
                && matches!(
                    job.state,
                    legato_store::JobState::Queued | legato_store::JobState::Running
                )
        });
        let coming = if pending && track.status == legato_store::TrackStatus::Ready {
            state.ingest.coming(&track)
        } else {
            Vec::new()
        };
        let mut view = Self::of(track, state);
        view.job = job.map(JobView::of);
        view.coming = coming;
        view
    }
}

/// A track's processing job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// `ingest` (the first processing of an upload) or `reprocess`.
    pub kind: String,
    /// `queued`, `running` or `failed`.
    pub state: String,
    /// Claims of the current run (a crash of the process working on it counts).
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

impl JobView {
    fn of(job: &legato_store::Job) -> Self {
        Self {
            kind: job.kind.as_str().to_owned(),
            state: job.state.as_str().to_owned(),
            attempts: job.attempts,
            error: job.last_error.clone(),
        }
    }
}

/// The original upload of a track.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// `mp3`, `flac`, `wav`, `aiff`, `ogg`, `mp4`, `aac`, `opus` (Ogg Opus) or `webm` (WebM or
    /// Matroska).
    pub format: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex (also the download's ETag).
    pub sha256: String,
    /// The file name given at upload, if any.
    pub file_name: Option<String>,
}

/// One rendition of a track.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariantView {
    /// MP3 renditions: `original` (the uploaded MP3, bit-exact) or the bitrate, e.g. `128k`;
    /// AAC-LC ones `aac128k`; the lossless one `flac`.
    pub name: String,
    /// kbit/s (for `flac`, the average).
    pub bitrate: u32,
    /// `mp3`, `aac` or `flac`.
    pub codec: String,
    /// RFC 6381, as the master playlist's CODECS: `mp4a.40.34`, `mp4a.40.2` or `fLaC`.
    pub codecs: String,
    /// `mpegts` (MP3) or `fmp4` (fragmented MP4: AAC and FLAC).
    pub container: String,
    /// Peak and average bit/s of its segments, container included.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
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

    /// A list entry: without the waveform unless asked for.
    fn entry(track: Track, state: &AppState, with_peaks: bool) -> Self {
        let mut view = Self::of(track, state);
        if !with_peaks {
            view.peaks = None;
        }
        view
    }

    pub fn new(track: Track, streaming_path: &str, query: &str) -> Self {
        let created = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(track.created_at).unwrap_or(0));
        let base = format!("{streaming_path}/{}", track.id);
        let (loudness, true_peak, peaks) = match track.analysis {
            Some(a) => (a.loudness_lufs, a.true_peak_dbtp, Some(a.peaks)),
            None => (None, None, None),
        };
        // The first generation's playlist (and the seed's) is asked for as `index.m3u8`;
        // a reprocessed track's has its generation's name.
        let playlist = if legato_store::PLAYLIST_NAMES.contains(&track.playlist.as_str()) {
            legato_store::PLAYLIST_NAMES[0]
        } else {
            track.playlist.as_str()
        };
        let playlist = format!("{base}/{playlist}{query}");
        Self {
            playlist,
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
                .map(|v| {
                    let (codec, container) = match v.codecs.as_str() {
                        legato_media::CODECS_AAC_LC => ("aac", "fmp4"),
                        legato_media::CODECS_FLAC => ("flac", "fmp4"),
                        _ => ("mp3", "mpegts"),
                    };
                    VariantView {
                        playlist: format!("{base}/{}{query}", v.playlist),
                        name: v.name,
                        bitrate: v.bitrate,
                        codec: codec.to_owned(),
                        codecs: v.codecs,
                        container: container.to_owned(),
                        bandwidth: v.bandwidth,
                        average_bandwidth: v.average_bandwidth,
                    }
                })
                .collect(),
            cover: track.cover.map(|c| format!("{base}/{c}{query}")),
            loudness: loudness.map(|l| (l * 100.0).round() / 100.0),
            true_peak: true_peak.map(|p| (p * 100.0).round() / 100.0),
            peaks: Some(peaks.map(|p| {
                p.into_iter()
                    .map(|v| (v * 1000.0).round() / 1000.0)
                    .collect()
            })),
            source: track.source.map(|s| SourceView {
                format: s.format,
                size: s.size,
                sha256: s.sha256,
                file_name: s.file_name,
            }),
            created_at: humantime::format_rfc3339_seconds(created).to_string(),
            job: None,
            coming: Vec::new(),
            existing: false,
        }
    }
}

/// Adds a track: the seed's JSON, multipart, or the raw file.
#[utoipa::path(post, path = "/function/crud", tag = "crud",
    params(
        ("name" = Option<String>, Query, description = "title, for a raw upload"),
        ("author" = Option<String>, Query, description = "artist, for a raw upload"),
    ),
    request_body(description = "the song", content(
        (crate::schemas::SeedUpload = "application/json"),
        (crate::schemas::MultipartUpload = "multipart/form-data"),
        (crate::schemas::Binary = "audio/mpeg"),
        (crate::schemas::Binary = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "the same file is a track already (`existing`: true): nothing was stored, this is that track", body = TrackView,
            headers(("Location" = String, description = "the existing track's URL"))),
        (status = 201, description = "stored and ready", body = TrackView,
            headers(("Location" = String, description = "the new track's URL"))),
        (status = 202, description = "accepted; processing goes on (status `processing`)", body = TrackView,
            headers(("Location" = String, description = "poll it for the status"))),
        (status = 400, description = "malformed body", body = crate::schemas::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::schemas::ErrorBody),
        (status = 408, description = "the upload stalled", body = crate::schemas::ErrorBody),
        (status = 413, description = "larger than the limit (the upload, or its `cover` part)", body = crate::schemas::ErrorBody),
        (status = 415, description = "not audio we can read, or a `cover` part that is no JPEG, PNG or WebP image", body = crate::schemas::ErrorBody),
        (status = 429, description = "too many ingests at once, too many bytes being received, or the processing queue is full (Retry-After says when to retry)", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
        (status = 507, description = "not enough free disk for this upload", body = crate::schemas::ErrorBody),
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
    state.ingest.admit().await?;
    let receiving = upload::receive_share(&state, request.headers())?;
    let respond_async = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
    // The receive share is held until the body is in, then given back.
    let upload = upload::read_upload(request, &query, &state.config, receiving).await?;
    let (status, track) = match state.ingest.accept(upload, respond_async).await? {
        Outcome::Ready(track) => (StatusCode::CREATED, track),
        Outcome::Accepted(track) => (StatusCode::ACCEPTED, track),
        Outcome::Existing(track) => (StatusCode::OK, track),
    };
    // A track playable at once may have its other renditions coming.
    let job = if status == StatusCode::CREATED {
        state.store.get_job(&track.id).await?
    } else {
        None
    };
    let mut view = TrackView::with_job(track, job.as_ref(), &state);
    view.existing = status == StatusCode::OK;
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

/// Lists tracks, oldest first by default, with search and paging. Without `limit`, every
/// matching track (the seed's list), streamed.
#[utoipa::path(get, path = "/function/crud", tag = "crud",
    params(
        ("q" = Option<String>, Query, description = "words, each the start of a word of the name or the author (case and accents ignored); empty: no search; without any word (only spaces or punctuation): matches nothing"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "page size; without it, every matching track from `offset` on"),
        ("offset" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "tracks to skip"),
        ("sort" = Option<String>, Query, description = "created_at, name, author or duration"),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("include" = Option<String>, Query, description = "`peaks`: entries carry their waveform"),
        ("sha256" = Option<String>, Query, pattern = "^[0-9a-fA-F]{64}$", description = "only the track (of any status; the oldest, if several) whose uploaded file has this SHA-256: at most one, `q` is ignored. How an importer asks whether a file is stored before sending it"),
    ),
    responses(
        (status = 200, description = "the matching tracks (a page of them with `limit`)", body = Vec<TrackView>,
            headers(("X-Total-Count" = u64, description = "tracks matching q"))),
        (status = 400, description = "a bad parameter", body = crate::schemas::ErrorBody),
        (status = 401, description = "the library is private", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (query, paged) = list_query(&params)?;
    let with_peaks = query.peaks;
    let mut headers = HeaderMap::new();
    if let Some(sha256) = params.get("sha256") {
        let sha256 = parse_sha256(sha256)?;
        let found = state.store.find_by_source_sha256(&sha256).await?;
        let total = u64::from(found.is_some());
        let views: Vec<TrackView> = found
            .into_iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .map(|t| TrackView::entry(t, &state, with_peaks))
            .collect();
        headers.insert("x-total-count", HeaderValue::from(total));
        return Ok((headers, Json(views)).into_response());
    }
    if paged {
        let page = state.store.list_tracks(&query).await?;
        let views: Vec<TrackView> = page
            .tracks
            .into_iter()
            .map(|t| TrackView::entry(t, &state, with_peaks))
            .collect();
        headers.insert("x-total-count", HeaderValue::from(page.total));
        return Ok((headers, Json(views)).into_response());
    }
    // The seed's list: everything, written as it is read so memory stays flat.
    let total = state
        .store
        .list_tracks(&ListQuery {
            limit: 0,
            ..query.clone()
        })
        .await?
        .total;
    let mut tracks = state.store.stream_tracks(&query).await?;
    // A failure before the first track is still an error answer; later ones cut the body
    // short (the client sees a truncated array, never a complete-looking one).
    let first = match tracks.next().await {
        Some(Err(e)) => return Err(e.into()),
        first => first,
    };
    let empty = first.is_none();
    if empty {
        // The store's stream has ended; it must not be polled again.
        tracks = Box::pin(futures_util::stream::empty());
    }
    let mut started = false;
    let entries = futures_util::stream::iter(first)
        .chain(tracks)
        .ready_chunks(LIST_BATCH)
        .map(move |batch| {
            let mut buf = Vec::with_capacity(batch.len() * 768);
            for track in batch {
                let track = track.inspect_err(|e| {
                    tracing::warn!(error = %e, "listing failed after the answer began; cut short");
                })?;
                buf.push(if started { b',' } else { b'[' });
                started = true;
                serde_json::to_writer(&mut buf, &TrackView::entry(track, &state, with_peaks))
                    .map_err(|e| legato_store::StoreError::Backend(e.to_string()))?;
            }
            Ok::<_, legato_store::StoreError>(Bytes::from(buf))
        });
    let end: &'static [u8] = if empty { b"[]" } else { b"]" };
    let body = entries.chain(futures_util::stream::once(async move {
        Ok(Bytes::from_static(end))
    }));
    headers.insert("x-total-count", HeaderValue::from(total));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((headers, Body::from_stream(body)).into_response())
}

/// A SHA-256 as the store keeps it (lowercase hex), from a query parameter.
fn parse_sha256(value: &str) -> Result<String, ApiError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ApiError::InvalidParameter(format!(
            "sha256 must be 64 hexadecimal characters, not '{value}'"
        )))
    }
}

/// Tracks serialised into one piece of a streamed list.
const LIST_BATCH: usize = 64;

/// The query of a list, and whether it asks for a page (`limit`) rather than everything.
fn list_query(params: &HashMap<String, String>) -> Result<(ListQuery, bool), ApiError> {
    let mut query = ListQuery::default();
    let mut paged = false;
    for (key, value) in params {
        match key.as_str() {
            // An empty `q=` (a form's empty search box) is no search; any other `q` is one,
            // and a `q` without a word (only spaces, only punctuation) matches nothing.
            "q" => {
                query.search = (!value.is_empty()).then(|| clean_text(value));
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
                paged = true;
            }
            "include" => {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match part {
                        "peaks" => query.peaks = true,
                        _ => {
                            return Err(ApiError::InvalidParameter(format!(
                                "include takes peaks, not '{part}'"
                            )));
                        }
                    }
                }
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
    Ok((query, paged))
}

/// One track.
#[utoipa::path(get, path = "/function/crud/{id}", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    responses(
        (status = 200, description = "the track", body = TrackView),
        (status = 400, description = "not an id", body = crate::schemas::ErrorBody),
        (status = 401, description = "the library is private", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    // The job first: a job publishes its renditions before it ends, so a track read after
    // finding no job has them. Read the other way round, a job ending between the two reads
    // gave the track as it was before, without a job, and a client waiting for the job to
    // end took that for the finished track (seen under load in the fMP4 tests).
    let job = state.store.get_job(&id).await?;
    let track = state.store.get_track(&id).await?;
    Ok(Json(TrackView::with_job(track, job.as_ref(), &state)))
}

/// Rebuilds a track's renditions from its stored original with the server's current
/// settings (ladder, segment length), as a durable job any process may run. The track stays
/// playable on its current renditions meanwhile; the new set replaces them at once, and the
/// old one is removed after a grace period. Asking again while a reprocessing is queued or
/// running changes nothing.
#[utoipa::path(post, path = "/function/crud/{id}/reprocess", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    responses(
        (status = 202, description = "queued (or queued already); `job` says where it is", body = TrackView,
            headers(("Location" = String, description = "poll it for the job"))),
        (status = 400, description = "not an id", body = crate::schemas::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track (`not-found`), or it was stored before originals were kept (`source-unavailable`)", body = crate::schemas::ErrorBody),
        (status = 409, description = "the track is still being processed (`still-processing`)", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
        (status = 507, description = "the disk is full", body = crate::schemas::ErrorBody),
    ),
    security((), ("api_key" = [])))]
pub async fn reprocess(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let track = state.store.get_track(&id).await?;
    if track.source.is_none() {
        return Err(ApiError::SourceUnavailable);
    }
    if track.status == legato_store::TrackStatus::Processing {
        return Err(ApiError::StillProcessing(id.to_string()));
    }
    // Past every generation the track's chunks were named with: the new one's names are
    // fresh (chunks are immutable per name).
    let names = state.store.chunk_names(&id).await?;
    let after = legato_ingest::layout::highest_generation(&names);
    match state
        .store
        .enqueue_reprocess(&id, legato_ingest::now_millis(), after)
        .await
    {
        Ok(enqueued) => tracing::info!(%id, ?enqueued, "reprocessing requested"),
        Err(legato_store::StoreError::Invalid(_)) => {
            return Err(ApiError::StillProcessing(id.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    state.ingest.wake();
    let job = state.store.get_job(&id).await?;
    let location = format!("/function/crud/{id}");
    let view = TrackView::with_job(track, job.as_ref(), &state);
    let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Changes the name or the author.
#[utoipa::path(patch, path = "/function/crud/{id}", tag = "crud",
    params(("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    request_body(content = crate::schemas::TrackPatchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the updated track", body = TrackView),
        (status = 400, description = "not an id, or a bad body", body = crate::schemas::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track", body = crate::schemas::ErrorBody),
        (status = 408, description = "the body stalled", body = crate::schemas::ErrorBody),
        (status = 413, description = "the body is larger than 64 KiB", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
        (status = 507, description = "the disk is full", body = crate::schemas::ErrorBody),
    ),
    security((), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    let content_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = upload::read_small_body(
        request.into_body(),
        content_length,
        upload::MAX_SMALL_BODY,
        &state.config,
    )
    .await?;
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
                legato_ingest::DEFAULT_AUTHOR.to_owned()
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
        (status = 200, description = "deleted", body = crate::schemas::Deleted),
        (status = 400, description = "not an id", body = crate::schemas::ErrorBody),
        (status = 401, description = "an API key is needed", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
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

/// The original file of a track, byte for byte.
#[utoipa::path(get, path = "/function/crud/{id}/file", tag = "crud",
    params(
        ("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("Range" = Option<String>, Header, description = "one byte range"),
    ),
    responses(
        (status = 200, description = "the uploaded file", content(
            (crate::schemas::Binary = "audio/mpeg"),
            (crate::schemas::Binary = "audio/flac"),
            (crate::schemas::Binary = "audio/wav"),
            (crate::schemas::Binary = "audio/aiff"),
            (crate::schemas::Binary = "audio/ogg"),
            (crate::schemas::Binary = "audio/mp4"),
            (crate::schemas::Binary = "audio/aac"),
            (crate::schemas::Binary = "audio/webm"),
        ), headers(
            ("Content-Disposition" = String, description = "attachment with the file name"),
            ("ETag" = String, description = "the file's SHA-256, quoted"),
        )),
        (status = 206, description = "a byte range of the file"),
        (status = 304, description = "not modified (If-None-Match)"),
        (status = 400, description = "not an id", body = crate::schemas::ErrorBody),
        (status = 401, description = "the library is private", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track (`not-found`), or it was stored before originals were kept (`source-unavailable`)", body = crate::schemas::ErrorBody),
        (status = 416, description = "the range is outside the file", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let track = state.store.get_track(&id).await?;
    crate::original::source_response(&state, &track, &request)
}

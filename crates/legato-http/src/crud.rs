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
#[derive(Debug, Serialize)]
pub struct TrackView {
    pub id: String,
    pub name: String,
    pub author: String,
    pub duration: f64,
    pub segments: u32,
    pub playlist: String,
    pub codec: Option<String>,
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    pub size: Option<u64>,
    pub created_at: String,
}

impl TrackView {
    pub fn new(track: Track, streaming_path: &str) -> Self {
        let created = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(track.created_at).unwrap_or(0));
        Self {
            playlist: format!("{streaming_path}/{}/index.m3u8", track.id),
            id: track.id.to_string(),
            name: track.name,
            author: track.author,
            // Milliseconds are plenty for people and keep JSON short.
            duration: (track.duration * 1000.0).round() / 1000.0,
            segments: track.segments,
            codec: track.codec,
            bitrate: track.bitrate,
            sample_rate: track.sample_rate,
            channels: track.channels,
            size: track.size,
            created_at: humantime::format_rfc3339_seconds(created).to_string(),
        }
    }
}

pub fn parse_id(raw: &str) -> Result<TrackId, ApiError> {
    raw.parse::<TrackId>()
        .map_err(|e| ApiError::InvalidId(e.to_string()))
}

pub async fn create(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    let upload = upload::read_upload(request, &query, state.config.max_upload_bytes).await?;
    let track = ingest::ingest(&state, upload).await?;
    let view = TrackView::new(track, &state.config.streaming_path);
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/function/crud/{}", view.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(view)).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = list_query(&params)?;
    let page = state.store.list_tracks(&query).await?;
    let views: Vec<TrackView> = page
        .tracks
        .into_iter()
        .map(|t| TrackView::new(t, &state.config.streaming_path))
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
                query.offset = value.parse::<u64>().map_err(|_| {
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

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    let track = state.store.get_track(&id).await?;
    Ok(Json(TrackView::new(track, &state.config.streaming_path)))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<TrackView>, ApiError> {
    let id = parse_id(&id)?;
    let patch: TrackPatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let patch = TrackPatch {
        name: patch.name.as_deref().map(clean_text),
        author: patch.author.as_deref().map(clean_text),
    };
    if patch.name.as_deref() == Some("") {
        return Err(ApiError::InvalidParameter("name must not be empty".into()));
    }
    let track = state.store.update_track(&id, &patch).await?;
    Ok(Json(TrackView::new(track, &state.config.streaming_path)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    state.store.delete_track(&id).await?;
    state.segments.forget_track(id);
    Ok(Json(json!({ "deleted": 1 })))
}

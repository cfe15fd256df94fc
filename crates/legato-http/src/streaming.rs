//! The streaming function: playlists and segments, with the HTTP caching and range semantics
//! players and CDNs expect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use legato_store::{PLAYLIST_NAMES, StoreError, TrackId};

use crate::crud::parse_id;
use crate::error::ApiError;
use crate::state::{AppState, ServedChunk};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const MAX_NAME_LEN: usize = 100;

pub async fn chunk(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if !is_chunk_name(&name) {
        return Err(ApiError::InvalidName(
            name.chars().take(MAX_NAME_LEN).collect(),
        ));
    }
    let content_type = content_type(&name);
    let served = if is_playlist(&name) {
        // Playlists are read from the store every time: they are small, asked for once per
        // play, and reading them is how a track deleted elsewhere stops being playable.
        ServedChunk::new(playlist(&state, &id, &name).await?)
    } else {
        let store = state.store.clone();
        let key_name: Arc<str> = name.as_str().into();
        state
            .segments
            .inner()
            .try_get_with((id, key_name), async move {
                store.get_chunk(&id, &name).await.map(ServedChunk::new)
            })
            .await
            .map_err(unshare)?
    };
    Ok(respond(&served, content_type, &headers))
}

async fn playlist(state: &AppState, id: &TrackId, name: &str) -> Result<bytes::Bytes, ApiError> {
    match state.store.get_chunk(id, name).await {
        Err(StoreError::NotFound(_)) => {
            // `index.m3u8` and the seed's `outputlist.m3u8` name the same playlist.
            let other = PLAYLIST_NAMES
                .iter()
                .find(|&&n| n != name)
                .copied()
                .unwrap_or(name);
            Ok(state.store.get_chunk(id, other).await?)
        }
        other => Ok(other?),
    }
}

/// The store error shared by every waiter of one cache fill, as our own error.
fn unshare(err: Arc<StoreError>) -> ApiError {
    ApiError::Store(match &*err {
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Source(m) => StoreError::Source(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
    })
}

fn is_playlist(name: &str) -> bool {
    PLAYLIST_NAMES.contains(&name)
}

/// Chunk names are plain file names; anything else (paths, dot files) is refused before any
/// lookup.
fn is_chunk_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        _ => "application/octet-stream",
    }
}

fn respond(served: &ServedChunk, content_type: &'static str, request: &HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&served.etag) {
        headers.insert(header::ETAG, etag);
    }

    if let Some(candidates) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let matches = candidates
            .split(',')
            .map(|c| c.trim().trim_start_matches("W/"))
            .any(|c| c == "*" || c == &*served.etag);
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }

    let len = served.bytes.len() as u64;
    let range = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_allows(request, served));
    if let Some(range) = range {
        match http_range_header::parse_range_header(range).map(|r| r.validate(len)) {
            Ok(Ok(ranges)) if ranges.len() == 1 => {
                let (start, end) = (*ranges[0].start(), *ranges[0].end());
                let part = served.bytes.slice(
                    usize::try_from(start).unwrap_or(0)..usize::try_from(end + 1).unwrap_or(0),
                );
                if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
                return (StatusCode::PARTIAL_CONTENT, headers, Body::from(part)).into_response();
            }
            Ok(Err(_)) => return ApiError::RangeNotSatisfiable { len }.into_response(),
            // Several ranges or a header we cannot parse: the whole resource is a valid answer.
            _ => {}
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    (StatusCode::OK, headers, Body::from(served.bytes.clone())).into_response()
}

/// `If-Range` with a different validator means the client's partial copy is stale: send all.
fn if_range_allows(request: &HeaderMap, served: &ServedChunk) -> bool {
    match request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(validator) => validator.trim() == &*served.etag,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_are_plain_file_names() {
        for good in ["index.m3u8", "seg000.ts", "output012.ts", "a-b_c.ts"] {
            assert!(is_chunk_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "../x",
            ".hidden",
            "a/b",
            "a\\b",
            "x%2F",
            "é.ts",
            &"a".repeat(101),
        ] {
            assert!(!is_chunk_name(bad), "{bad}");
        }
    }
}

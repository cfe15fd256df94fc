//! The streaming function: playlists and segments, with the HTTP caching and range semantics
//! players and CDNs expect.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use legato_store::{PLAYLIST_NAMES, StoreError, TrackId};

use crate::config::SegmentDelivery;
use crate::error::ApiError;
use crate::params::parse_id;
use crate::signing::sign_playlist;
use crate::state::{AppState, ServedChunk};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The plain playlist names (`index.m3u8`, `outputlist.m3u8`) resolve to the track's current
/// playlist, which reprocessing changes: caches revalidate them (the ETag makes that cheap).
const REVALIDATE: &str = "public, no-cache";
const MAX_NAME_LEN: usize = 100;

/// A playlist (`index.m3u8`, alias `outputlist.m3u8`) or a segment of a track.
#[utoipa::path(get, path = "/function/streaming/{id}/{name}", tag = "streaming",
    params(
        ("id" = String, Path, description = "24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("name" = String, Path, description = "index.m3u8 (every rendition), mp3.m3u8 or outputlist.m3u8 (the MP3 renditions), or a playlist, init or segment name", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$"),
        ("exp" = Option<u64>, Query, description = "expiry of a signed URL"),
        ("sig" = Option<String>, Query, description = "signature of a signed URL"),
        ("Range" = Option<String>, Header, description = "one byte range"),
    ),
    responses(
        (status = 200, description = "the chunk", content(
            (crate::schemas::Binary = "application/vnd.apple.mpegurl"),
            (crate::schemas::Binary = "video/mp2t"),
            (crate::schemas::Binary = "audio/mp4"),
            (crate::schemas::Binary = "application/octet-stream"),
        )),
        (status = 206, description = "a byte range of the chunk", content(
            (crate::schemas::Binary = "application/vnd.apple.mpegurl"),
            (crate::schemas::Binary = "video/mp2t"),
            (crate::schemas::Binary = "audio/mp4"),
            (crate::schemas::Binary = "application/octet-stream"),
        )),
        (status = 304, description = "not modified (If-None-Match)"),
        (status = 400, description = "not an id or not a chunk name", body = crate::schemas::ErrorBody),
        (status = 401, description = "the library is private: send the API key, or use a signed URL", body = crate::schemas::ErrorBody),
        (status = 403, description = "a signed URL is needed or its signature is wrong", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such track or chunk", body = crate::schemas::ErrorBody),
        (status = 410, description = "the signed URL has expired", body = crate::schemas::ErrorBody),
        (status = 416, description = "the range is outside the chunk", body = crate::schemas::ErrorBody),
        (status = 503, description = "the store is unavailable", body = crate::schemas::ErrorBody),
    ))]
pub async fn chunk(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if !is_chunk_name(&name) {
        return Err(ApiError::InvalidName(
            name.chars().take(MAX_NAME_LEN).collect(),
        ));
    }
    let token = match &state.config.url_signer {
        Some(signer) => Some(signer.verify(
            &id,
            query.get("exp").map(String::as_str),
            query.get("sig").map(String::as_str),
        )?),
        // A private library without signed URLs: every playlist and segment needs the key,
        // as every crud read does (a signed URL is the other way in).
        None if state.config.private && !state.config.api_keys.is_empty() => {
            crate::auth::check_key_or_session(&state, &headers, false).await?;
            None
        }
        None => None,
    };
    let content_type = legato_store::content_type(&name);
    let cache = if is_current_alias(&name) {
        REVALIDATE
    } else {
        IMMUTABLE
    };
    let served = if name.ends_with(".m3u8") {
        // Playlists are read from the store every time: they are small, asked for once per
        // play, and reading them is how a track deleted elsewhere stops being playable.
        let mut bytes = playlist(&state, &id, &name).await?;
        if let SegmentDelivery::Cdn { base_url } = &state.config.segment_delivery {
            bytes = on_cdn(&state, &id, &bytes, base_url).into();
        }
        match &token {
            // Players resolve segment URIs without the playlist's query: carry the token on.
            Some(token) => {
                ServedChunk::new(sign_playlist(&String::from_utf8_lossy(&bytes), token).into())
            }
            None => ServedChunk::new(bytes),
        }
    } else if let SegmentDelivery::Redirect { expires } = &state.config.segment_delivery
        && let Some(url) = state.store.chunk_url(&id, &name, *expires).await?
    {
        // The player fetches the bytes from the object store; the presigned URL outlives
        // this answer by `expires`, so the redirect must not be cached longer.
        return Ok(redirect(&url, *expires));
    } else {
        state.segments.read(&state.store, id, &name).await?
    };
    Ok(respond(&served, content_type, cache, &headers))
}

/// A playlist by name. `index.m3u8` and the seed's `outputlist.m3u8` are the names players
/// know: both always answer the track's *current* playlist (`track.playlist`), which is
/// `gN-index.m3u8` once the track was processed again (a takeover after a crash, a
/// reprocessing), whatever older generation is still stored under the plain names.
///
/// `outputlist.m3u8` (the seed's players) and `mp3.m3u8` answer the MP3 renditions alone
/// when the track has fMP4 ones too, since players of that age know only MPEG-TS with MP3;
/// otherwise (older tracks, the seed's) the current playlist.
async fn playlist(state: &AppState, id: &TrackId, name: &str) -> Result<bytes::Bytes, ApiError> {
    let gone = || {
        ApiError::NotFound(format!(
            "no playlist {name} for track {id}: the track does not exist (any more) or is not \
             ready"
        ))
    };
    if !is_current_alias(name) {
        return Ok(state.store.get_chunk(id, name).await?);
    }
    let current = match state.store.get_track(id).await {
        Ok(track) => track.playlist,
        Err(StoreError::NotFound(_)) => return Err(gone()),
        Err(e) => return Err(e.into()),
    };
    if name != PLAYLIST_NAMES[0]
        && let Some(mp3) = legato_ingest::layout::mp3_playlist_beside(&current)
    {
        match state.store.get_chunk(id, &mp3).await {
            Err(StoreError::NotFound(_)) => {}
            other => return Ok(other?),
        }
    }
    match state.store.get_chunk(id, &current).await {
        Err(StoreError::NotFound(_)) => Err(gone()),
        other => Ok(other?),
    }
}

/// The playlist names that stand for the track's current generation (revalidated by caches).
fn is_current_alias(name: &str) -> bool {
    PLAYLIST_NAMES.contains(&name) || name == legato_ingest::layout::MP3_PLAYLIST
}

/// A playlist whose segment URIs point at the CDN in front of the object store; playlist
/// URIs (a master's variants) stay relative, answered here.
fn on_cdn(state: &AppState, id: &TrackId, playlist: &[u8], base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    legato_media::playlist::map_uris(&String::from_utf8_lossy(playlist), &|uri| match state
        .store
        .chunk_object_key(id, uri)
    {
        Some(key) if is_chunk_name(uri) => format!("{base}/{key}"),
        _ => uri.to_owned(),
    })
}

/// 302 to where the bytes are, cacheable for a little less than the URL lives.
fn redirect(url: &str, expires: std::time::Duration) -> Response {
    let mut headers = HeaderMap::new();
    match HeaderValue::from_str(url) {
        Ok(location) => {
            headers.insert(header::LOCATION, location);
        }
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    }
    let max_age = expires.as_secs() / 2;
    if let Ok(cache) = HeaderValue::from_str(&format!("private, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    (StatusCode::FOUND, headers).into_response()
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

fn respond(
    served: &ServedChunk,
    content_type: &'static str,
    cache: &'static str,
    request: &HeaderMap,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
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

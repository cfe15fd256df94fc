//! A track's original upload as an HTTP response, for the crud download and Subsonic's
//! `download` alike: validators, conditional requests and one byte range, read from the
//! store a piece or a segment at a time.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use legato_store::Track;

use crate::error::ApiError;
use crate::ranges::{byte_range, range_body};
use crate::state::AppState;

/// The original upload of `track` as a file: ETag, conditional requests, one byte range.
/// `SourceUnavailable` for a track stored before originals were kept.
pub(crate) fn source_response(
    state: &AppState,
    track: &Track,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = track.id;
    let Some(source) = track.source.clone() else {
        return Err(ApiError::SourceUnavailable);
    };
    let etag = format!("\"{}\"", source.sha256);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(legato_ingest::source_content_type(&source.format)),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&content_disposition(track, &source)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    if let Some(candidates) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && candidates
            .split(',')
            .map(|c| c.trim().trim_start_matches("W/"))
            .any(|c| c == "*" || c == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }

    let len = source.size;
    let (status, start, end) = byte_range(request, len, &etag, &mut headers)?;
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if body_len == 0 {
        return Ok((status, headers).into_response());
    }
    // Only what the range needs is read, one piece or segment at a time: the blocks from
    // `offset` on, cut to `start..=end`, and nothing read once `end` is passed.
    let (offset, blocks) = legato_ingest::source::blocks(state.store.clone(), id, &source, start);
    let blocks = blocks.map(|block| block.map_err(ApiError::from)).boxed();
    Ok((status, headers, range_body(blocks, offset, start, end)).into_response())
}

/// `attachment` with the upload's file name, else "author - name.ext": an ASCII fallback
/// and the exact name in RFC 5987 form.
fn content_disposition(track: &Track, source: &legato_store::SourceInfo) -> String {
    let name = source
        .file_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{} - {}.{}", track.author, track.name, source.format));
    // Only the last path component, whatever the client sent.
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_in_both_forms() {
        let track = legato_store::conformance::sample_track("Café", "Ana");
        let mut source = legato_store::SourceInfo {
            format: "flac".into(),
            size: 1,
            sha256: String::new(),
            file_name: None,
            pieces: 1,
            remainder: None,
        };
        assert_eq!(
            content_disposition(&track, &source),
            "attachment; filename=\"Ana - Caf_.flac\"; filename*=UTF-8''Ana%20-%20Caf%C3%A9.flac"
        );
        source.file_name = Some("../x\"y;\r\n.mp3".into());
        let header = content_disposition(&track, &source);
        assert!(HeaderValue::from_str(&header).is_ok(), "{header}");
        assert!(
            header.starts_with("attachment; filename=\"x_y___.mp3\""),
            "{header}"
        );
    }
}

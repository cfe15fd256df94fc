//! Byte ranges: the one range a request asks for, and a body cut to it from blocks.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use futures_util::StreamExt;

use crate::error::ApiError;

/// The bytes `start..=end` of a file given as consecutive blocks, the first of which starts
/// at `offset` (≤ `start`); blocks past `end` are never pulled.
pub(crate) fn range_body(
    blocks: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, ApiError>>,
    offset: u64,
    start: u64,
    end: u64,
) -> axum::body::Body {
    let stream =
        futures_util::stream::unfold((blocks, offset), move |(mut blocks, offset)| async move {
            if offset > end {
                return None;
            }
            let block = match blocks.next().await? {
                Ok(block) => block,
                Err(e) => return Some((Err(std::io::Error::other(e)), (blocks, u64::MAX))),
            };
            let from = usize::try_from(start.saturating_sub(offset)).unwrap_or(usize::MAX);
            let to = usize::try_from((end + 1).saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(block.len());
            let next = offset + block.len() as u64;
            Some((Ok(block.slice(from.min(to)..to)), (blocks, next)))
        });
    axum::body::Body::from_stream(stream)
}

/// The one byte range a request asks for within `len` bytes (honouring `If-Range` against
/// `etag`): the status and the first and last byte; `Content-Range` is set for a 206. Several
/// ranges, or a header that does not parse, get the whole body, which is a valid answer.
pub(crate) fn byte_range(
    request: &HeaderMap,
    len: u64,
    etag: &str,
    headers: &mut HeaderMap,
) -> Result<(StatusCode, u64, u64), ApiError> {
    let if_range_ok = request
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let whole = (StatusCode::OK, 0, len.saturating_sub(1));
    let Some(range) = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_ok)
    else {
        return Ok(whole);
    };
    match http_range_header::parse_range_header(range).map(|r| r.validate(len)) {
        Ok(Ok(ranges)) if ranges.len() == 1 => {
            let (start, end) = (*ranges[0].start(), *ranges[0].end());
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            Ok((StatusCode::PARTIAL_CONTENT, start, end))
        }
        Ok(Err(_)) => Err(ApiError::RangeNotSatisfiable { len }),
        _ => Ok(whole),
    }
}

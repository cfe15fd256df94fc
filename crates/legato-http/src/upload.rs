//! Reading an upload in any of the three forms the crud function accepts, within the size
//! limit, holding the audio in memory at most once.
//!
//! Raw and multipart bodies are streamed to a temporary file first: a slow upload then costs
//! a file descriptor rather than memory, and the audio is read into memory only when it is
//! complete and about to be ingested. The seed's JSON form carries the song as base64 and
//! must be parsed whole; it is decoded straight from the request bytes.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use crate::config::HttpConfig;
use crate::error::ApiError;

/// Longest name or author kept; longer text is cut.
pub const MAX_TEXT_CHARS: usize = 300;

/// Most bytes of a refused body read and dropped before answering 413.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Multipart framing and text fields on top of the file itself.
const MULTIPART_SLACK: u64 = 1024 * 1024;

/// An upload read off the wire: the audio, and what the uploader said about it.
#[derive(Debug)]
pub struct Upload {
    pub audio: Vec<u8>,
    pub name: Option<String>,
    pub author: Option<String>,
    /// The file name the client gave (multipart), used as a fallback title.
    pub file_name: Option<String>,
}

/// The seed's JSON body.
#[derive(Deserialize)]
struct SeedJson<'a> {
    name: Option<String>,
    author: Option<String>,
    #[serde(borrow)]
    song_base64: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the request's upload in whichever form it comes.
pub async fn read_upload(
    request: Request,
    query: &HashMap<String, String>,
    config: &HttpConfig,
) -> Result<Upload, ApiError> {
    let limits = Limits {
        max_bytes: config.max_upload_bytes,
        idle: config.upload_idle_timeout,
    };
    let max_bytes = limits.max_bytes;
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let declared = declared_length(&headers);

    match content_type.as_str() {
        "multipart/form-data" => {
            if declared.is_some_and(|len| len > max_bytes + MULTIPART_SLACK) {
                return Err(limits.refuse(request, declared).await);
            }
            read_multipart(request, &limits).await
        }
        "" | "application/json" | "text/plain" => {
            // base64 is 4/3 of the audio; JSON adds a little.
            let json_limit = max_bytes / 3 * 4 + 64 * 1024;
            if declared.is_some_and(|len| len > json_limit) {
                return Err(limits.refuse(request, declared).await);
            }
            let body = collect(request.into_body(), json_limit, &limits).await?;
            let looks_like_json = body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'{');
            if content_type.is_empty() && !looks_like_json {
                // No Content-Type and not JSON: a raw file sent by a minimal client.
                if body.len() as u64 > max_bytes {
                    return Err(limits.too_large());
                }
                return Ok(raw_upload(body, query));
            }
            parse_seed_json(&body, max_bytes, limits.limit_mb())
        }
        // Anything else is taken as the audio itself; the media layer decides from the bytes
        // whether it is audio we can read.
        _ => {
            if declared.is_some_and(|len| len > max_bytes) {
                return Err(limits.refuse(request, declared).await);
            }
            let file = spool(request.into_body().into_data_stream(), &limits).await?;
            Ok(raw_upload(read_back(file).await?, query))
        }
    }
}

/// How much a client may send, and how long it may pause.
struct Limits {
    max_bytes: u64,
    idle: Duration,
}

impl Limits {
    fn limit_mb(&self) -> u64 {
        self.max_bytes.div_ceil(1024 * 1024)
    }

    fn too_large(&self) -> ApiError {
        ApiError::PayloadTooLarge {
            limit_mb: self.limit_mb(),
        }
    }

    /// Reads and drops what is left of a refused body, so that the client can finish sending
    /// and read the 413 instead of meeting a reset connection. Bounded in bytes and time.
    async fn drain<S, E>(&self, stream: &mut S)
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut drained = 0u64;
        while drained < DRAIN_LIMIT {
            match self.next(stream.next()).await {
                Ok(Some(Ok(chunk))) => drained += chunk.len() as u64,
                _ => break,
            }
        }
    }

    /// A body declared too large: drained first when that is cheap, so the client reads
    /// the 413; otherwise refused at once (a client sending `Expect: 100-continue` then
    /// never sends the body at all).
    async fn refuse(&self, request: Request, declared: Option<u64>) -> ApiError {
        if declared.is_some_and(|len| len <= DRAIN_LIMIT) {
            let mut stream = request.into_body().into_data_stream();
            self.drain(&mut stream).await;
        }
        self.too_large()
    }

    fn stalled(&self) -> ApiError {
        ApiError::UploadTimeout(self.idle.as_secs())
    }

    /// Awaits the next piece of a body, failing when the client stays silent too long.
    async fn next<F: Future>(&self, next: F) -> Result<F::Output, ApiError> {
        tokio::time::timeout(self.idle, next)
            .await
            .map_err(|_| self.stalled())
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn raw_upload(audio: Vec<u8>, query: &HashMap<String, String>) -> Upload {
    Upload {
        audio,
        name: query.get("name").cloned(),
        author: query.get("author").cloned(),
        file_name: None,
    }
}

fn parse_seed_json(body: &[u8], max_bytes: u64, limit_mb: u64) -> Result<Upload, ApiError> {
    // The seed's body is an object; serde would also take the struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::InvalidJson(
            "expected an object with song_base64, name and author".into(),
        ));
    }
    let parsed: SeedJson<'_> =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let encoded = parsed
        .song_base64
        .ok_or(ApiError::MissingField("song_base64"))?;
    // Python's base64 output may be wrapped in lines; ignore ASCII whitespace.
    let compact: std::borrow::Cow<'_, str> = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        encoded
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        encoded
    };
    let audio = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| ApiError::InvalidBase64(e.to_string()))?;
    if audio.len() as u64 > max_bytes {
        return Err(ApiError::PayloadTooLarge { limit_mb });
    }
    Ok(Upload {
        audio,
        name: parsed.name,
        author: parsed.author,
        file_name: None,
    })
}

/// Longest text field (name, author) read from a multipart body.
const MAX_TEXT_FIELD: usize = 64 * 1024;

async fn read_multipart(request: Request, limits: &Limits) -> Result<Upload, ApiError> {
    let limit_mb = limits.limit_mb();
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::InvalidMultipart(e.body_text()))?;
    let mut upload = Upload {
        audio: Vec::new(),
        name: None,
        author: None,
        file_name: None,
    };
    let mut song = None;
    while let Some(mut field) = limits
        .next(multipart.next_field())
        .await?
        .map_err(|e| multipart_error(e, limit_mb))?
    {
        let field_name = field.name().unwrap_or_default().to_owned();
        match field_name.as_str() {
            "song" | "file" => {
                upload.file_name = field.file_name().map(str::to_owned);
                let stream = field.map(|chunk| chunk.map_err(std::io::Error::other));
                song = Some(spool(stream, limits).await?);
            }
            other => {
                // Text fields are bounded; unknown fields are read and dropped so that
                // clients may send more.
                let mut text = Vec::new();
                while let Some(chunk) = limits
                    .next(field.chunk())
                    .await?
                    .map_err(|e| multipart_error(e, limit_mb))?
                {
                    if text.len() + chunk.len() > MAX_TEXT_FIELD {
                        return Err(ApiError::InvalidMultipart(format!(
                            "the field `{other}` is longer than {MAX_TEXT_FIELD} bytes"
                        )));
                    }
                    text.extend_from_slice(&chunk);
                }
                let text = String::from_utf8_lossy(&text).into_owned();
                match other {
                    "name" => upload.name = Some(text),
                    "author" => upload.author = Some(text),
                    _ => {}
                }
            }
        }
    }
    let song = song.ok_or(ApiError::MissingField("song"))?;
    upload.audio = read_back(song).await?;
    Ok(upload)
}

fn multipart_error(err: axum::extract::multipart::MultipartError, limit_mb: u64) -> ApiError {
    if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit_mb }
    } else {
        ApiError::InvalidMultipart(err.body_text())
    }
}

fn body_error(err: impl std::fmt::Display, limits: &Limits) -> ApiError {
    let text = err.to_string();
    if text.contains("length limit") {
        limits.too_large()
    } else {
        ApiError::UploadFailed(text)
    }
}

/// Collects a small body (the seed's JSON) in memory, refusing more than `limit` bytes.
async fn collect(body: Body, limit: u64, limits: &Limits) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = limits.next(stream.next()).await? {
        let chunk = chunk.map_err(|e| body_error(e, limits))?;
        if (collected.len() + chunk.len()) as u64 > limit {
            limits.drain(&mut stream).await;
            return Err(limits.too_large());
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected)
}

/// Streams a body into an anonymous temporary file, refusing more than the limit.
async fn spool<S, E>(mut stream: S, limits: &Limits) -> Result<std::fs::File, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tempfile::tempfile()
        .map_err(|e| ApiError::Internal(format!("cannot create a temporary file: {e}")))?;
    let mut written = 0u64;
    while let Some(chunk) = limits.next(stream.next()).await? {
        let chunk = chunk.map_err(|e| body_error(e, limits))?;
        written += chunk.len() as u64;
        if written > limits.max_bytes {
            limits.drain(&mut stream).await;
            return Err(limits.too_large());
        }
        // Small synchronous writes to a local temporary file; cheaper than a blocking hop.
        file.write_all(&chunk)
            .map_err(|e| ApiError::Internal(format!("cannot write the temporary file: {e}")))?;
    }
    Ok(file)
}

async fn read_back(file: std::fs::File) -> Result<Vec<u8>, ApiError> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        let mut audio = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut audio)?;
        Ok::<_, std::io::Error>(audio)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading the upload back failed: {e}")))?
    .map_err(|e| ApiError::Internal(format!("cannot read the temporary file: {e}")))
}

/// Name or author as kept: control characters removed, whitespace trimmed, length capped.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_strips_controls_and_caps_length() {
        assert_eq!(clean_text("  A\u{0}b\nc\u{7f} "), "Abc");
        assert_eq!(
            clean_text(&"x".repeat(1000)).chars().count(),
            MAX_TEXT_CHARS
        );
    }

    #[test]
    fn seed_json_decodes_wrapped_base64() {
        let body = Bytes::from(r#"{"name":"n","author":"a","song_base64":"aGVs\nbG8="}"#);
        let upload = parse_seed_json(&body, 100, 1).unwrap();
        assert_eq!(upload.audio, b"hello");
        assert_eq!(upload.name.as_deref(), Some("n"));
    }

    #[test]
    fn seed_json_errors_are_specific() {
        let missing = parse_seed_json(br#"{"name":"n"}"#, 100, 1).unwrap_err();
        assert_eq!(missing.code(), "missing-field");
        let bad = parse_seed_json(br#"{"song_base64":"@@@"}"#, 100, 1).unwrap_err();
        assert_eq!(bad.code(), "invalid-base64");
        let broken = parse_seed_json(b"{", 100, 1).unwrap_err();
        assert_eq!(broken.code(), "invalid-json");
        let big = parse_seed_json(br#"{"song_base64":"aGVsbG8="}"#, 2, 1).unwrap_err();
        assert_eq!(big.code(), "payload-too-large");
    }
}

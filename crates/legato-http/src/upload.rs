//! Reading an upload in any of the three forms the crud function accepts, within the
//! receive limits, holding the audio in memory at most once.
//!
//! Every body is streamed to a temporary file first: a slow upload then costs a file
//! descriptor and its share of the receive budget rather than memory, and the audio is read
//! into memory only when it is complete and about to be ingested. The seed's JSON form is
//! parsed as it arrives, its base64 decoded straight into the temporary file, so a JSON
//! upload costs no more memory than a raw one.
//!
//! Receiving is bounded apart from processing ([`receive_share`] is the hook the crud handler calls
//! before reading): bytes in flight across all uploads, free disk, an idle timeout, a
//! minimum average rate and a total time, so a trickling client holds only its own share.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::state::AppState;
use legato_ingest::{MAX_COVER_BYTES, Spooled, Upload, cover_mime, spool_error, temp_file};

/// Most bytes of a refused body read and dropped before answering 413.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Multipart framing and text fields on top of the file itself.
const MULTIPART_SLACK: u64 = 1024 * 1024;

/// Largest small JSON body (a PATCH).
pub const MAX_SMALL_BODY: u64 = 64 * 1024;

/// The receive budget counts kibibytes, so that a semaphore can hold terabytes.
const BUDGET_UNIT: u64 = 1024;

/// The largest body of any form for an upload limit of `max_bytes`: base64 is 4/3 of the
/// audio, and JSON adds a little.
fn largest_body(max_bytes: u64) -> u64 {
    max_bytes / 3 * 4 + 64 * 1024
}

/// An upload's share of the receive budget, held while its body arrives.
pub struct Receiving {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    /// Bytes covered by `held`.
    covered: u64,
    budget_mb: u64,
}

use std::sync::Arc;

impl Receiving {
    /// A share of a budget of its own, `budget_bytes` large, for reading a body outside a
    /// running server (the upload fuzz target).
    pub fn standalone(budget_bytes: u64) -> Self {
        let units = usize::try_from(budget_bytes / BUDGET_UNIT)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            budget: Arc::new(Semaphore::new(units)),
            held: None,
            covered: 0,
            budget_mb: budget_bytes.div_ceil(1024 * 1024),
        }
    }

    /// Makes sure `total` bytes received are covered by the budget, taking more of it (in
    /// whole mebibytes) when a body without a declared length grows.
    fn cover(&mut self, total: u64) -> Result<(), ApiError> {
        if total <= self.covered {
            return Ok(());
        }
        let more = (total - self.covered).next_multiple_of(1024 * 1024);
        let units = u32::try_from(more / BUDGET_UNIT).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| ApiError::ReceiveBudgetFull {
                budget_mb: self.budget_mb,
            })?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.covered += u64::from(units) * BUDGET_UNIT;
        Ok(())
    }
}

/// Admits an upload to be received, before any of its body is read: refuses it (429) when
/// the bytes already in flight leave no room for its declared length, and (507) when it
/// would leave less free disk than configured. The returned share is held while the body
/// arrives; a body without a declared length takes its share as it grows.
pub fn receive_share(state: &AppState, headers: &HeaderMap) -> Result<Receiving, ApiError> {
    let config = &state.config;
    let declared = declared_length(headers);
    check_free_disk(config, declared.unwrap_or(0))?;
    let mut receiving = Receiving {
        budget: state.receiving.clone(),
        held: None,
        covered: 0,
        budget_mb: config.receive.bytes_in_flight.div_ceil(1024 * 1024),
    };
    // A body declared over every limit is refused unread (413) later: it takes no budget.
    if let Some(len) = declared.filter(|&len| len <= largest_body(config.max_upload_bytes)) {
        receiving.cover(len)?;
    }
    Ok(receiving)
}

/// Free bytes for an unprivileged writer on the file system holding `path`.
pub fn free_disk_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Refuses (507) an upload of `incoming` bytes that would leave less than the configured
/// free disk in the temporary folder (where it is spooled) or the data folder (where it is
/// stored).
fn check_free_disk(config: &HttpConfig, incoming: u64) -> Result<(), ApiError> {
    let keep = config.receive.min_free_disk_bytes;
    let mut places = vec![std::env::temp_dir()];
    places.extend(config.receive.data_dir.clone());
    for place in places {
        let Some(free) = free_disk_bytes(&place) else {
            continue;
        };
        if free < incoming.saturating_add(keep) {
            return Err(ApiError::StorageFull(format!(
                "the server has {} MB of free disk; this upload of {} MB needs it plus the \
                 {} MB kept free: delete tracks or ask the operator for more disk",
                free / (1024 * 1024),
                incoming.div_ceil(1024 * 1024),
                keep / (1024 * 1024)
            )));
        }
    }
    Ok(())
}

/// Reads the request's upload in whichever form it comes, holding `receiving` until the
/// body is in.
pub async fn read_upload(
    request: Request,
    query: &HashMap<String, String>,
    config: &HttpConfig,
    receiving: Receiving,
) -> Result<Upload, ApiError> {
    let limits = Limits::new(config, receiving);
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
            let cover = MAX_COVER_BYTES as u64;
            if declared.is_some_and(|len| len > max_bytes + MULTIPART_SLACK + cover) {
                return Err(limits.refuse(request, declared).await);
            }
            read_multipart(request, &limits).await
        }
        "" | "application/json" | "text/plain" => {
            if declared.is_some_and(|len| len > largest_body(max_bytes)) {
                return Err(limits.refuse(request, declared).await);
            }
            let mut stream = request.into_body().into_data_stream();
            // The first byte that is not blank tells JSON from a raw file sent by a minimal
            // client (no Content-Type).
            let mut head = Vec::new();
            let first = loop {
                match limits.next(stream.next()).await? {
                    Some(chunk) => {
                        let chunk = chunk.map_err(body_error)?;
                        limits.received(chunk.len())?;
                        head.extend_from_slice(&chunk);
                        if let Some(&b) = head.iter().find(|b| !b.is_ascii_whitespace()) {
                            break Some(b);
                        }
                    }
                    None => break None,
                }
            };
            if content_type.is_empty() && first.is_some_and(|b| b != b'{') {
                let head = futures_util::stream::iter([Ok::<_, axum::Error>(Bytes::from(head))]);
                let file = spool(head.chain(stream), &limits, true).await?;
                return Ok(raw_upload(Spooled::new(file)?, query));
            }
            read_seed_json(head, stream, &limits).await
        }
        // Anything else is taken as the audio itself; the media layer decides from the bytes
        // whether it is audio we can read.
        _ => {
            if declared.is_some_and(|len| len > max_bytes) {
                return Err(limits.refuse(request, declared).await);
            }
            let file = spool(request.into_body().into_data_stream(), &limits, false).await?;
            Ok(raw_upload(Spooled::new(file)?, query))
        }
    }
}

/// Reads a small body (a PATCH's JSON, a Subsonic form) of at most `max_bytes`. It must be
/// whole within the grace ([`ReceiveLimits::small_body_grace`](crate::ReceiveLimits)) plus its
/// length (the `Content-Length`, else `max_bytes`) at the uploads' minimum rate, and never
/// pause longer than the idle timeout: a client sending a byte now and then is cut (408)
/// instead of holding its connection.
pub async fn read_small_body(
    body: Body,
    content_length: Option<u64>,
    max_bytes: u64,
    config: &HttpConfig,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        what: "body",
        limit_bytes: max_bytes,
    };
    if content_length.is_some_and(|len| len > max_bytes) {
        return Err(too_large());
    }
    let expected = content_length.unwrap_or(max_bytes);
    let rate = config.receive.min_bytes_per_second.max(1);
    let allowed = config.receive.small_body_grace + Duration::from_secs(expected.div_ceil(rate));
    let deadline = tokio::time::Instant::now() + allowed;
    let idle = config.upload_idle_timeout;
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    loop {
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(idle);
        let next = match tokio::time::timeout(wait, stream.next()).await {
            Ok(next) => next,
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::UploadTooSlow(format!(
                    "the body did not arrive within {} s: send it at {} KiB/s or more",
                    allowed.as_secs(),
                    rate / 1024
                )));
            }
            Err(_) => return Err(ApiError::UploadTimeout(idle.as_secs())),
        };
        let Some(chunk) = next else {
            return Ok(collected);
        };
        let chunk = chunk.map_err(|e| ApiError::UploadFailed(e.to_string()))?;
        if (collected.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_large());
        }
        collected.extend_from_slice(&chunk);
    }
}

/// How much a client may send, how long it may pause, how slowly and for how long it may
/// send, and its share of the receive budget.
struct Limits {
    max_bytes: u64,
    idle: Duration,
    min_bytes_per_second: u64,
    started: Instant,
    max_duration: Duration,
    received: AtomicU64,
    receiving: Mutex<Receiving>,
}

impl Limits {
    fn new(config: &HttpConfig, receiving: Receiving) -> Self {
        Self {
            max_bytes: config.max_upload_bytes,
            idle: config.upload_idle_timeout,
            min_bytes_per_second: config.receive.min_bytes_per_second,
            started: Instant::now(),
            max_duration: config.receive.max_duration,
            received: AtomicU64::new(0),
            receiving: Mutex::new(receiving),
        }
    }

    fn too_large(&self) -> ApiError {
        ApiError::PayloadTooLarge {
            what: "upload",
            limit_bytes: self.max_bytes,
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

    fn too_long(&self) -> ApiError {
        ApiError::UploadTooSlow(format!(
            "the upload took longer than the {} s allowed for receiving one",
            self.max_duration.as_secs()
        ))
    }

    /// Awaits the next piece of a body, failing when the client stays silent too long or
    /// the body's time is up.
    async fn next<F: Future>(&self, next: F) -> Result<F::Output, ApiError> {
        let left = self.max_duration.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return Err(self.too_long());
        }
        let wait = self.idle.min(left);
        tokio::time::timeout(wait, next).await.map_err(|_| {
            if wait < self.idle {
                self.too_long()
            } else {
                ApiError::UploadTimeout(self.idle.as_secs())
            }
        })
    }

    /// Counts `n` more bytes received: within the budget, and (once the first idle period
    /// has passed) at the minimum average rate.
    fn received(&self, n: usize) -> Result<(), ApiError> {
        let total = self.received.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        self.receiving
            .lock()
            .map_err(|_| ApiError::Internal("the receive budget lock is poisoned".into()))?
            .cover(total)?;
        let elapsed = self.started.elapsed();
        if self.min_bytes_per_second > 0 && elapsed > self.idle {
            let expected = u128::from(self.min_bytes_per_second) * elapsed.as_millis() / 1000;
            if u128::from(total) < expected {
                return Err(ApiError::UploadTooSlow(format!(
                    "the upload arrived at {} bytes/s on average, slower than the {} bytes/s \
                     allowed",
                    u128::from(total) * 1000 / elapsed.as_millis().max(1),
                    self.min_bytes_per_second
                )));
            }
        }
        Ok(())
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn raw_upload(audio: Spooled, query: &HashMap<String, String>) -> Upload {
    Upload {
        audio,
        name: query.get("name").cloned(),
        author: query.get("author").cloned(),
        file_name: None,
        cover: None,
    }
}

/// Reads the seed's JSON body as it arrives (`head` is what was read already), decoding its
/// base64 into a temporary file.
async fn read_seed_json<S, E>(
    head: Vec<u8>,
    mut stream: S,
    limits: &Limits,
) -> Result<Upload, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let file = temp_file()?;
    let mut reader = SeedJsonReader::new(file, limits.max_bytes);
    if let Err(err) = reader.feed(&head) {
        return Err(refused_mid_body(err, &mut stream, limits).await);
    }
    while let Some(chunk) = limits.next(stream.next()).await? {
        let chunk = chunk.map_err(body_error)?;
        limits.received(chunk.len())?;
        if let Err(err) = reader.feed(&chunk) {
            return Err(refused_mid_body(err, &mut stream, limits).await);
        }
    }
    let (fields, file) = reader.finish()?;
    Ok(Upload {
        audio: Spooled::new(file)?,
        name: fields.name,
        author: fields.author,
        file_name: None,
        cover: None,
    })
}

/// A body refused before its end: drained (bounded) so the client reads the answer.
async fn refused_mid_body<S, E>(err: ApiError, stream: &mut S, limits: &Limits) -> ApiError
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    limits.drain(stream).await;
    err
}

/// The seed's text fields.
#[derive(Debug, Default)]
struct SeedFields {
    name: Option<String>,
    author: Option<String>,
}

/// Where the incremental JSON reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonState {
    /// Before the opening `{`.
    Start,
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,`: a key.
    Key,
    /// Inside a key's string.
    InKey { escaped: bool },
    /// After a key: `:`.
    Colon,
    /// After `:`: the value.
    Value,
    /// Inside `song_base64`'s string.
    InBase64 { escaped: bool },
    /// Inside another value, kept raw until it ends.
    InOther {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    /// After a value: `,` or `}`.
    AfterValue,
    /// After the closing `}`: only blanks.
    End,
}

/// An incremental reader of `{"name": …, "author": …, "song_base64": "…"}` that writes the
/// decoded song to a file as it goes: memory stays bounded whatever the body's size. It
/// accepts what serde would for the seed's struct (unknown keys ignored, duplicate keys and
/// trailing text refused).
struct SeedJsonReader {
    state: JsonState,
    key: Vec<u8>,
    value: Vec<u8>,
    seen: Vec<Vec<u8>>,
    fields: SeedFields,
    /// base64 characters not yet decoded (fewer than a block, or waiting for a full block).
    pending: Vec<u8>,
    /// `\u` escape digits inside the base64 string.
    unicode: Option<Vec<u8>>,
    padded: bool,
    has_song: bool,
    written: u64,
    max_bytes: u64,
    file: std::fs::File,
}

/// Largest key or non-song value kept while parsing.
const MAX_JSON_FIELD: usize = 64 * 1024;
/// base64 characters decoded at a time.
const BASE64_BLOCK: usize = 64 * 1024;

impl SeedJsonReader {
    fn new(file: std::fs::File, max_bytes: u64) -> Self {
        Self {
            state: JsonState::Start,
            key: Vec::new(),
            value: Vec::new(),
            seen: Vec::new(),
            fields: SeedFields::default(),
            pending: Vec::with_capacity(BASE64_BLOCK + 4),
            unicode: None,
            padded: false,
            has_song: false,
            written: 0,
            max_bytes,
            file,
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.state {
                JsonState::InBase64 { escaped: false } if self.unicode.is_none() => {
                    // The fast path: a run of plain base64 characters.
                    let run = chunk[i..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                        .unwrap_or(chunk.len() - i);
                    self.base64(&chunk[i..i + run])?;
                    i += run;
                    if let Some(&c) = chunk.get(i) {
                        if c == b'"' {
                            self.end_base64()?;
                            self.state = JsonState::AfterValue;
                        } else {
                            self.state = JsonState::InBase64 { escaped: true };
                        }
                        i += 1;
                    }
                    continue;
                }
                _ => self.step(b)?,
            }
            i += 1;
        }
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<(), ApiError> {
        use JsonState::*;
        let blank = b.is_ascii_whitespace();
        match self.state {
            Start | End if blank => {}
            Start if b == b'{' => self.state = FirstKey,
            Start => return Err(not_an_object()),
            End => return Err(json_error("trailing characters after the object")),
            FirstKey | Key | Colon | Value | AfterValue if blank => {}
            FirstKey if b == b'}' => self.state = End,
            FirstKey | Key if b == b'"' => {
                self.key.clear();
                self.state = InKey { escaped: false };
            }
            FirstKey | Key => return Err(json_error("expected a key in double quotes")),
            InKey { escaped } => {
                if !escaped && b == b'"' {
                    self.state = Colon;
                } else {
                    self.key.push(b);
                    if self.key.len() > MAX_JSON_FIELD {
                        return Err(json_error("a key is too long"));
                    }
                    self.state = InKey {
                        escaped: !escaped && b == b'\\',
                    };
                }
            }
            Colon if b == b':' => {
                // Keys are compared as serde compares them, after unescaping.
                let key: String = serde_json::from_slice(&[b"\"", &self.key[..], b"\""].concat())
                    .map_err(|e| json_error(&e.to_string()))?;
                let known = matches!(key.as_str(), "name" | "author" | "song_base64");
                if known && self.seen.iter().any(|k| k == key.as_bytes()) {
                    return Err(json_error(&format!("duplicate field `{key}`")));
                }
                self.key = key.into_bytes();
                self.seen.push(self.key.clone());
                self.value.clear();
                self.state = Value;
            }
            Colon => return Err(json_error("expected `:` after a key")),
            Value if b == b'"' && self.key == b"song_base64" => {
                self.has_song = true;
                self.state = InBase64 { escaped: false };
            }
            Value => {
                self.value.push(b);
                self.state = InOther {
                    depth: u32::from(matches!(b, b'{' | b'[')),
                    in_string: b == b'"',
                    escaped: false,
                };
            }
            InOther {
                depth,
                in_string,
                escaped,
            } => {
                if !in_string && depth == 0 && (blank || matches!(b, b',' | b'}')) {
                    self.end_other()?;
                    self.state = AfterValue;
                    return self.step(b);
                }
                self.value.push(b);
                if self.value.len() > MAX_JSON_FIELD {
                    return Err(json_error("a field's value is longer than 64 KiB"));
                }
                self.state = if in_string {
                    InOther {
                        depth,
                        in_string: escaped || b != b'"',
                        escaped: !escaped && b == b'\\',
                    }
                } else {
                    let depth = match b {
                        b'{' | b'[' => depth + 1,
                        b'}' | b']' => depth.saturating_sub(1),
                        _ => depth,
                    };
                    InOther {
                        depth,
                        in_string: b == b'"',
                        escaped: false,
                    }
                };
            }
            InBase64 { escaped: true } => {
                self.state = InBase64 { escaped: false };
                match b {
                    // Python's wrapped base64 becomes `\n` in JSON: blanks are skipped.
                    b'n' | b'r' | b't' | b'f' | b'b' => {}
                    b'/' => self.base64(b"/")?,
                    b'u' => self.unicode = Some(Vec::with_capacity(4)),
                    _ => {
                        return Err(ApiError::InvalidBase64(format!(
                            "unexpected escape `\\{}` in song_base64",
                            char::from(b).escape_default()
                        )));
                    }
                }
            }
            InBase64 { escaped: false } => {
                // Only reached inside a `\u` escape (the fast path takes the rest).
                if let Some(digits) = &mut self.unicode {
                    digits.push(b);
                    if digits.len() == 4 {
                        let code = std::str::from_utf8(digits)
                            .ok()
                            .and_then(|d| u32::from_str_radix(d, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| json_error("a bad \\u escape in song_base64"))?;
                        self.unicode = None;
                        let mut buf = [0u8; 4];
                        let text = code.encode_utf8(&mut buf);
                        let bytes = text.as_bytes().to_vec();
                        self.base64(&bytes)?;
                    }
                }
            }
            AfterValue if b == b',' => self.state = Key,
            AfterValue if b == b'}' => self.state = End,
            AfterValue => return Err(json_error("expected `,` or `}` after a value")),
        }
        Ok(())
    }

    /// A value other than the song's string ended: keep the name and author.
    fn end_other(&mut self) -> Result<(), ApiError> {
        let value = std::mem::take(&mut self.value);
        match self.key.as_slice() {
            b"name" | b"author" => {
                let text: Option<String> =
                    serde_json::from_slice(&value).map_err(|e| json_error(&e.to_string()))?;
                if self.key == b"name" {
                    self.fields.name = text;
                } else {
                    self.fields.author = text;
                }
            }
            b"song_base64" => {
                // Only `null` is accepted besides a string: it means no song.
                let _: Option<String> =
                    serde_json::from_slice(&value).map_err(|e| json_error(&e.to_string()))?;
            }
            _ => {
                // Unknown keys are ignored, but must hold valid JSON.
                let _: serde::de::IgnoredAny =
                    serde_json::from_slice(&value).map_err(|e| json_error(&e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Queues base64 characters (blanks skipped) and decodes whole blocks.
    fn base64(&mut self, text: &[u8]) -> Result<(), ApiError> {
        for &c in text {
            if c.is_ascii_whitespace() {
                continue;
            }
            if self.padded {
                if c == b'=' && self.pending.len() < 2 * BASE64_BLOCK {
                    self.pending.push(c);
                    continue;
                }
                return Err(ApiError::InvalidBase64("data after the padding".into()));
            }
            if c == b'=' {
                self.padded = true;
            }
            self.pending.push(c);
            if self.pending.len() >= BASE64_BLOCK && !self.padded {
                self.decode_pending()?;
            }
        }
        Ok(())
    }

    /// Decodes the whole 4-character groups queued, keeping the rest.
    fn decode_pending(&mut self) -> Result<(), ApiError> {
        let whole = self.pending.len() / 4 * 4;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&self.pending[..whole])
            .map_err(|e| ApiError::InvalidBase64(e.to_string()))?;
        self.pending.drain(..whole);
        self.write(&decoded)
    }

    fn end_base64(&mut self) -> Result<(), ApiError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&self.pending)
            .map_err(|e| ApiError::InvalidBase64(e.to_string()))?;
        self.pending.clear();
        self.write(&decoded)
    }

    fn write(&mut self, decoded: &[u8]) -> Result<(), ApiError> {
        self.written += decoded.len() as u64;
        if self.written > self.max_bytes {
            return Err(ApiError::PayloadTooLarge {
                what: "upload",
                limit_bytes: self.max_bytes,
            });
        }
        Ok(self.file.write_all(decoded).map_err(spool_error)?)
    }

    fn finish(self) -> Result<(SeedFields, std::fs::File), ApiError> {
        match self.state {
            JsonState::End => {}
            JsonState::Start => return Err(not_an_object()),
            _ => return Err(json_error("EOF while parsing an object")),
        }
        if !self.has_song {
            return Err(ApiError::MissingField("song_base64"));
        }
        Ok((self.fields, self.file))
    }
}

fn not_an_object() -> ApiError {
    ApiError::InvalidJson("expected an object with song_base64, name and author".into())
}

fn json_error(message: &str) -> ApiError {
    ApiError::InvalidJson(message.to_owned())
}

/// Longest text field (name, author) read from a multipart body.
const MAX_TEXT_FIELD: usize = 64 * 1024;

async fn read_multipart(request: Request, limits: &Limits) -> Result<Upload, ApiError> {
    let limit_bytes = limits.max_bytes;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::InvalidMultipart(e.body_text()))?;
    let (mut name, mut author, mut file_name) = (None, None, None);
    // The `file_name` field, when sent, is the file's name whatever it holds: a part's
    // `filename` parameter cannot carry a newline or an escape character.
    let mut file_name_field = None;
    let (mut song, mut cover) = (None, None);
    while let Some(mut field) = limits
        .next(multipart.next_field())
        .await?
        .map_err(|e| multipart_error(e, limit_bytes))?
    {
        let field_name = field.name().unwrap_or_default().to_owned();
        match field_name.as_str() {
            "song" | "file" => {
                file_name = field.file_name().map(str::to_owned);
                let stream = field.map(|chunk| chunk.map_err(std::io::Error::other));
                song = Some(spool(stream, limits, false).await?);
            }
            "cover" => {
                let mut bytes = Vec::new();
                while let Some(chunk) = limits
                    .next(field.chunk())
                    .await?
                    .map_err(|e| multipart_error(e, limit_bytes))?
                {
                    limits.received(chunk.len())?;
                    if bytes.len() + chunk.len() > MAX_COVER_BYTES {
                        return Err(ApiError::CoverTooLarge {
                            limit_bytes: MAX_COVER_BYTES as u64,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let mime = cover_mime(&bytes).ok_or_else(|| {
                    ApiError::InvalidCover(if bytes.is_empty() {
                        "it is empty".to_owned()
                    } else {
                        "its bytes are of no such image".to_owned()
                    })
                })?;
                cover = Some(legato_transcode::Cover { mime, bytes });
            }
            other => {
                // Text fields are bounded; unknown fields are read and dropped so that
                // clients may send more.
                let mut text = Vec::new();
                while let Some(chunk) = limits
                    .next(field.chunk())
                    .await?
                    .map_err(|e| multipart_error(e, limit_bytes))?
                {
                    limits.received(chunk.len())?;
                    if text.len() + chunk.len() > MAX_TEXT_FIELD {
                        return Err(ApiError::InvalidMultipart(format!(
                            "the field `{other}` is longer than {MAX_TEXT_FIELD} bytes"
                        )));
                    }
                    text.extend_from_slice(&chunk);
                }
                let text = String::from_utf8_lossy(&text).into_owned();
                match other {
                    "name" => name = Some(text),
                    "author" => author = Some(text),
                    "file_name" => file_name_field = Some(text),
                    _ => {}
                }
            }
        }
    }
    let song = song.ok_or(ApiError::MissingField("song"))?;
    Ok(Upload {
        audio: Spooled::new(song)?,
        name,
        author,
        file_name: file_name_field.or(file_name),
        cover,
    })
}

fn multipart_error(err: axum::extract::multipart::MultipartError, limit_bytes: u64) -> ApiError {
    if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge {
            what: "upload",
            limit_bytes,
        }
    } else {
        ApiError::InvalidMultipart(err.body_text())
    }
}

/// The body stream broke (the client went away, the connection failed). The size limit is
/// ours, counted as the bytes arrive (`Limits::received`): no body reaching here is limited.
fn body_error(err: impl std::fmt::Display) -> ApiError {
    ApiError::UploadFailed(err.to_string())
}

/// Streams a body into an anonymous temporary file, refusing more than the limit. The
/// bytes of the stream are counted against the receive limits unless `counted` already.
async fn spool<S, E>(
    mut stream: S,
    limits: &Limits,
    counted: bool,
) -> Result<std::fs::File, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = temp_file()?;
    let mut written = 0u64;
    let mut first = counted;
    while let Some(chunk) = limits.next(stream.next()).await? {
        let chunk = chunk.map_err(body_error)?;
        // The first chunk of a sniffed body was counted when it was read.
        if !std::mem::take(&mut first) {
            limits.received(chunk.len())?;
        }
        written += chunk.len() as u64;
        if written > limits.max_bytes {
            limits.drain(&mut stream).await;
            return Err(limits.too_large());
        }
        // Small synchronous writes to a local temporary file; cheaper than a blocking hop.
        file.write_all(&chunk).map_err(spool_error)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` to the incremental reader `step` bytes at a time.
    fn parse(body: &[u8], max: u64, step: usize) -> Result<(SeedFields, Vec<u8>), ApiError> {
        use std::io::{Read, Seek};
        let mut reader = SeedJsonReader::new(tempfile::tempfile().unwrap(), max);
        for chunk in body.chunks(step) {
            reader.feed(chunk)?;
        }
        let (fields, mut file) = reader.finish()?;
        file.rewind().unwrap();
        let mut audio = Vec::new();
        file.read_to_end(&mut audio).unwrap();
        Ok((fields, audio))
    }

    #[test]
    fn seed_json_decodes_wrapped_base64_split_anywhere() {
        let body = br#" {"name":"n", "extra": {"a": [1, "}"]}, "author" : null,"song_base64":"aGVs\nbG8=" } "#;
        for step in 1..body.len() {
            let (fields, audio) = parse(body, 100, step).unwrap();
            assert_eq!(audio, b"hello", "step {step}");
            assert_eq!(fields.name.as_deref(), Some("n"));
            assert_eq!(fields.author, None);
        }
    }

    #[test]
    fn seed_json_streams_a_large_song_in_blocks() {
        let audio: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&audio);
        let body = format!(r#"{{"song_base64":"{encoded}","name":"big"}}"#);
        let (fields, decoded) = parse(body.as_bytes(), 1 << 20, 8191).unwrap();
        assert_eq!(decoded, audio);
        assert_eq!(fields.name.as_deref(), Some("big"));
    }

    #[test]
    fn seed_json_errors_are_specific() {
        let code = |body: &[u8], max| parse(body, max, 3).unwrap_err().code();
        assert_eq!(code(br#"{"name":"n"}"#, 100), "missing-field");
        assert_eq!(code(br#"{"song_base64":"@@@"}"#, 100), "invalid-base64");
        assert_eq!(
            code(br#"{"song_base64":"aGk=aGk="}"#, 100),
            "invalid-base64"
        );
        assert_eq!(code(b"{", 100), "invalid-json");
        assert_eq!(code(b"[1]", 100), "invalid-json");
        assert_eq!(code(br#"{"song_base64":"aGk="} x"#, 100), "invalid-json");
        assert_eq!(code(br#"{"song_base64":"aGk=",}"#, 100), "invalid-json");
        assert_eq!(
            code(br#"{"name":1,"song_base64":"aGk="}"#, 100),
            "invalid-json"
        );
        assert_eq!(
            code(br#"{"name":"a","name":"b","song_base64":"aGk="}"#, 100),
            "invalid-json"
        );
        assert_eq!(
            code(br#"{"song_base64":"aGVsbG8="}"#, 2),
            "payload-too-large"
        );
    }
}

//! `legato_http::upload::read_upload` on a request built from fuzzed bytes.
//!
//! Input: `[selector, body...]`. `selector % 8` picks the Content-Type: seed JSON, none,
//! text/plain, multipart with the fixed boundary [`BOUNDARY`], audio/mpeg (raw),
//! application/octet-stream (raw), multipart without a boundary, or (7) the body's first line
//! taken as the Content-Type itself. `(selector >> 3) % 8` picks the Content-Length header:
//! none, the true length, a lie over every limit (the body is then drained), `u64::MAX`
//! (refused at once), not a number, zero, one byte short, or none. Bit 6 adds `name` and
//! `author` query parameters.
//!
//! The decoder must answer `Ok` or `Err` and never panic; an `Ok` never holds more audio than
//! the limit, and no `Err` maps to a 5xx (nothing a client sends is a server error).

#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use legato_http::HttpConfig;
use legato_http::upload::{Receiving, read_upload};
use libfuzzer_sys::fuzz_target;

/// The multipart boundary of the seed corpus.
const BOUNDARY: &str = "legatofuzzboundary";

/// A small limit, so the size checks are reached with small inputs (the seed corpus holds
/// bodies on both sides of it).
const MAX_UPLOAD_BYTES: u64 = 4 * 1024;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
});

/// `LEGATO_FUZZ_VERBOSE=1` prints each outcome (to check what the seeds reach, with `-runs=0`).
static VERBOSE: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("LEGATO_FUZZ_VERBOSE").is_some());

static CONFIG: LazyLock<HttpConfig> = LazyLock::new(|| HttpConfig {
    max_upload_bytes: MAX_UPLOAD_BYTES,
    upload_idle_timeout: Duration::from_secs(5),
    ..HttpConfig::default()
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type: Option<HeaderValue> = match selector % 8 {
        0 => Some(HeaderValue::from_static("application/json")),
        1 => None,
        2 => Some(HeaderValue::from_static("text/plain; charset=utf-8")),
        3 => Some(
            HeaderValue::from_str(&format!("multipart/form-data; boundary={BOUNDARY}"))
                .expect("a valid header"),
        ),
        4 => Some(HeaderValue::from_static("audio/mpeg")),
        5 => Some(HeaderValue::from_static("application/octet-stream")),
        6 => Some(HeaderValue::from_static("multipart/form-data")),
        _ => {
            let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
            match HeaderValue::from_bytes(line) {
                Ok(value) => Some(value),
                Err(_) => return,
            }
        }
    };
    let content_length = match (selector >> 3) % 8 {
        1 => Some(HeaderValue::from(body.len())),
        // Over the raw, JSON and multipart limits, under the 64 MiB drain limit.
        2 => Some(HeaderValue::from(4 * 1024 * 1024u64)),
        3 => Some(HeaderValue::from(u64::MAX)),
        4 => Some(HeaderValue::from_static("12abc")),
        5 => Some(HeaderValue::from(0u64)),
        6 => Some(HeaderValue::from(body.len().saturating_sub(1))),
        _ => None,
    };
    let mut query = HashMap::new();
    if selector & 0x40 != 0 {
        query.insert("name".to_owned(), "fuzzed name".to_owned());
        query.insert("author".to_owned(), "fuzzed author".to_owned());
    }

    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/?name=fuzzed%20name");
    if let Some(value) = content_type {
        builder = builder.header(header::CONTENT_TYPE, value);
    }
    if let Some(value) = content_length {
        builder = builder.header(header::CONTENT_LENGTH, value);
    }
    let request = builder
        .body(Body::from(body.to_vec()))
        .expect("a valid request");

    // A budget far over the limit: the fuzzed decoding, not the budget, is under test.
    let receiving = Receiving::standalone(64 * MAX_UPLOAD_BYTES);
    let result = RUNTIME.block_on(read_upload(request, &query, &CONFIG, receiving));
    if *VERBOSE {
        match &result {
            Ok(upload) => eprintln!(
                "selector {selector:#04x}: Ok, {} bytes of audio, name {:?}, author {:?}, file {:?}",
                upload.audio.len(),
                upload.name,
                upload.author,
                upload.file_name
            ),
            Err(error) => eprintln!("selector {selector:#04x}: {} {error}", error.status()),
        }
    }
    match result {
        Ok(upload) => assert!(
            upload.audio.len() as u64 <= MAX_UPLOAD_BYTES,
            "{} bytes of audio accepted over a limit of {MAX_UPLOAD_BYTES}",
            upload.audio.len()
        ),
        Err(error) => assert!(
            !error.status().is_server_error(),
            "client input answered {}: {error}",
            error.status()
        ),
    }
});

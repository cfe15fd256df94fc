//! Every failure a handler can report, and the one place where each becomes an HTTP status
//! and a stable, kebab-case error code that clients switch on.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use legato_ingest::IngestError;
use legato_media::MediaError;
use legato_store::StoreError;
use legato_transcode::TranscodeError;
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidId(String),
    #[error("the body is not valid JSON of the expected shape: {0}")]
    InvalidJson(String),
    #[error("song_base64 is not valid base64: {0}")]
    InvalidBase64(String),
    #[error("the field `{0}` is required")]
    MissingField(&'static str),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("the multipart body is malformed: {0}")]
    InvalidMultipart(String),
    #[error("'{0}' is not a chunk name: names are letters, digits, '.', '_' and '-'")]
    InvalidName(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    BadSignature(&'static str),
    #[error("this signed URL has expired: ask the crud function for the track again")]
    Expired,
    #[error("{0} uploads are being processed; try again in a few seconds")]
    TooManyIngests(usize),
    /// The web player's sign-in, after too many wrong passwords for the account or address.
    #[error(
        "too many failed sign-ins {whose}: try again in {wait} s (the password was not checked)"
    )]
    TooManySignIns { whose: &'static str, wait: u64 },
    #[error("{queued} uploads are waiting to be processed; try again in {retry_after} seconds")]
    QueueFull { queued: u64, retry_after: u64 },
    #[error(
        "this track was stored before Legato kept original files: its upload cannot be \
         downloaded or reprocessed"
    )]
    SourceUnavailable,
    #[error(
        "track {0} is still being processed: it can be reprocessed once it is ready (or failed)"
    )]
    StillProcessing(String),
    #[error("the upload stalled: no data for {0} seconds")]
    UploadTimeout(u64),
    #[error("{0}")]
    UploadTooSlow(String),
    #[error(
        "the server is receiving {budget_mb} MB of uploads already; try again in a few seconds"
    )]
    ReceiveBudgetFull { budget_mb: u64 },
    #[error("{0}")]
    StorageFull(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no such path: {0}")]
    NoRoute(String),
    #[error("{0} is not allowed here")]
    MethodNotAllowed(String),
    /// `what` (the upload, a PATCH's body) is over its limit of `limit_bytes`.
    #[error("the {what} is larger than the limit of {}", size_text(*limit_bytes))]
    PayloadTooLarge {
        what: &'static str,
        limit_bytes: u64,
    },
    #[error("the upload could not be read in time: {0}")]
    UploadFailed(String),
    /// The multipart `cover` part is not a JPEG, PNG or WebP image.
    #[error("the cover is not a JPEG, PNG or WebP image ({0})")]
    InvalidCover(String),
    /// The multipart `cover` part is over its limit of `limit_bytes`.
    #[error("the cover is larger than the limit of {}", size_text(*limit_bytes))]
    CoverTooLarge { limit_bytes: u64 },
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Transcode(#[from] TranscodeError),
    #[error("the range is outside the {len} bytes of the resource")]
    RangeNotSatisfiable { len: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The pipeline's errors, each answered as the HTTP error of the same meaning.
impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Media(e) => Self::Media(e),
            IngestError::Transcode(e) => Self::Transcode(e),
            IngestError::Store(e) => Self::Store(e),
            IngestError::TooManyIngests(limit) => Self::TooManyIngests(limit),
            IngestError::QueueFull {
                queued,
                retry_after,
            } => Self::QueueFull {
                queued,
                retry_after,
            },
            IngestError::SourceUnavailable => Self::SourceUnavailable,
            e @ IngestError::DiskFull => Self::StorageFull(e.to_string()),
            IngestError::Internal(e) => Self::Internal(e),
        }
    }
}

/// A limit in bytes as people read it: whole MB (mebibytes, as `--max-upload-mb` counts
/// them), else whole KiB, else bytes.
fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidId(_)
            | Self::InvalidJson(_)
            | Self::InvalidBase64(_)
            | Self::MissingField(_)
            | Self::InvalidParameter(_)
            | Self::InvalidMultipart(_)
            | Self::InvalidName(_)
            | Self::UploadFailed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::Expired => StatusCode::GONE,
            Self::TooManyIngests(_) | Self::QueueFull { .. } | Self::TooManySignIns { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::SourceUnavailable => StatusCode::NOT_FOUND,
            Self::StillProcessing(_) => StatusCode::CONFLICT,
            Self::UploadTimeout(_) | Self::UploadTooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Self::ReceiveBudgetFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::StorageFull(_) | Self::Store(StoreError::Full(_)) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Self::NotFound(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } | Self::CoverTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidCover(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Media(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Transcode(TranscodeError::TooLong { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            // The server's configuration or the encoder, not the file.
            Self::Transcode(err) if !err.is_input_error() => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Transcode(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Store(StoreError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(StoreError::Source(_) | StoreError::Backend(_)) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable code clients switch on; never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId(_) => "invalid-id",
            Self::InvalidJson(_) => "invalid-json",
            Self::InvalidBase64(_) => "invalid-base64",
            Self::MissingField(_) => "missing-field",
            Self::InvalidParameter(_) => "invalid-parameter",
            Self::InvalidMultipart(_) => "invalid-multipart",
            Self::InvalidName(_) => "invalid-name",
            Self::UploadFailed(_) => "upload-failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::BadSignature(_) => "bad-signature",
            Self::Expired => "expired",
            Self::TooManyIngests(_) => "too-many-ingests",
            Self::TooManySignIns { .. } => "too-many-sign-ins",
            Self::QueueFull { .. } => "queue-full",
            Self::SourceUnavailable => "source-unavailable",
            Self::StillProcessing(_) => "still-processing",
            Self::UploadTimeout(_) => "upload-timeout",
            Self::UploadTooSlow(_) => "upload-too-slow",
            Self::ReceiveBudgetFull { .. } => "too-many-uploads",
            Self::StorageFull(_) | Self::Store(StoreError::Full(_)) => "storage-full",
            Self::NotFound(_) | Self::Store(StoreError::NotFound(_)) => "not-found",
            Self::NoRoute(_) => "no-route",
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::InvalidCover(_) => "invalid-cover",
            Self::CoverTooLarge { .. } => "cover-too-large",
            Self::Media(err) => err.code(),
            Self::Transcode(err) => err.code(),
            Self::RangeNotSatisfiable { .. } => "range-not-satisfiable",
            Self::Store(StoreError::Invalid(_)) => "invalid-parameter",
            Self::Store(StoreError::Unavailable(_)) => "store-unavailable",
            Self::Store(StoreError::Source(_) | StoreError::Backend(_)) | Self::Internal(_) => {
                "internal-error"
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Store(err) = &self
            && !matches!(err, StoreError::NotFound(_))
        {
            metrics::counter!(crate::metrics::STORE_ERRORS, "kind" => store_error_kind(err))
                .increment(1);
        }
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        let message = match &self {
            // The backend's own words may name hosts or files: keep them in the log.
            Self::Store(StoreError::Backend(_) | StoreError::Source(_)) | Self::Internal(_) => {
                "something went wrong on the server; the server log has the details".to_owned()
            }
            Self::Store(StoreError::Unavailable(_)) => {
                "the database cannot be reached right now; try again in a few seconds".to_owned()
            }
            Self::Store(StoreError::Full(_)) => "the server's disk is full: nothing new can be \
                stored until space is freed (delete tracks, or ask the operator to grow the disk); \
                reading and deleting still work"
                .to_owned(),
            other => other.to_string(),
        };
        let body = json!({ "error": { "code": self.code(), "message": message } });
        let mut response = (status, Json(body)).into_response();
        if let Self::RangeNotSatisfiable { len } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::QueueFull {
            retry_after: wait, ..
        }
        | Self::TooManySignIns { wait, .. } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

fn store_error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::NotFound(_) => "not-found",
        StoreError::Invalid(_) => "invalid",
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Source(_) => "source",
        StoreError::Backend(_) => "backend",
        StoreError::Full(_) => "full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_too_large_states_its_real_limit() {
        let message =
            |what, limit_bytes| ApiError::PayloadTooLarge { what, limit_bytes }.to_string();
        assert_eq!(
            message("body", 64 * 1024),
            "the body is larger than the limit of 64 KiB"
        );
        assert_eq!(
            message("upload", 512 * 1024 * 1024),
            "the upload is larger than the limit of 512 MB"
        );
        assert_eq!(
            message("upload", 1000),
            "the upload is larger than the limit of 1000 bytes"
        );
    }

    #[test]
    fn transcode_errors_map_by_variant() {
        let status = |e: TranscodeError| ApiError::Transcode(e).status();
        assert_eq!(
            status(TranscodeError::TooLong {
                limit_seconds: 60.0
            }),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(TranscodeError::NotAudio("looks like text")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(TranscodeError::UnsupportedSampleRate(1)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(TranscodeError::Encoder("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(TranscodeError::InvalidOptions("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    /// One error of every kind a handler can answer. The match has no wildcard, so a new
    /// `ApiError` variant does not compile until it is added here, and with it to the check
    /// against docs/api.md below.
    fn one_of_each() -> Vec<ApiError> {
        use legato_transcode::SourceFormat;
        let mut all = vec![
            ApiError::InvalidId("x".into()),
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidBase64("x".into()),
            ApiError::MissingField("song"),
            ApiError::InvalidParameter("x".into()),
            ApiError::InvalidMultipart("x".into()),
            ApiError::InvalidName("x".into()),
            ApiError::Unauthorized("x"),
            ApiError::BadSignature("x"),
            ApiError::Expired,
            ApiError::TooManyIngests(1),
            ApiError::TooManySignIns {
                whose: "for this account",
                wait: 1,
            },
            ApiError::QueueFull {
                queued: 1,
                retry_after: 1,
            },
            ApiError::SourceUnavailable,
            ApiError::StillProcessing("x".into()),
            ApiError::UploadTimeout(1),
            ApiError::UploadTooSlow("x".into()),
            ApiError::ReceiveBudgetFull { budget_mb: 1 },
            ApiError::StorageFull("x".into()),
            ApiError::NotFound("x".into()),
            ApiError::NoRoute("x".into()),
            ApiError::MethodNotAllowed("x".into()),
            ApiError::PayloadTooLarge {
                what: "upload",
                limit_bytes: 1,
            },
            ApiError::UploadFailed("x".into()),
            ApiError::InvalidCover("x".into()),
            ApiError::CoverTooLarge { limit_bytes: 1 },
            ApiError::RangeNotSatisfiable { len: 1 },
            ApiError::Internal("x".into()),
        ];
        all.extend(
            [
                MediaError::Empty,
                MediaError::NotMpegAudio,
                MediaError::TooShort,
                MediaError::InvalidSegmentTarget(0.0),
                MediaError::NotFlac,
                MediaError::CorruptFlac { offset: 0 },
                MediaError::UnpackableTrack("x"),
            ]
            .map(ApiError::Media),
        );
        all.extend(
            [
                TranscodeError::Empty,
                TranscodeError::NotAudio("x"),
                TranscodeError::Unsupported("x".into()),
                TranscodeError::Corrupt {
                    format: SourceFormat::Flac,
                    detail: "x".into(),
                },
                TranscodeError::NoAudio(SourceFormat::Flac),
                TranscodeError::TooLong { limit_seconds: 1.0 },
                TranscodeError::TooManyChannels { found: 9, max: 8 },
                TranscodeError::UnsupportedSampleRate(1),
                TranscodeError::InvalidOptions("x".into()),
                TranscodeError::Encoder("x".into()),
                TranscodeError::Io("x".into()),
            ]
            .map(ApiError::Transcode),
        );
        all.extend(
            [
                StoreError::NotFound("x".into()),
                StoreError::Invalid("x".into()),
                StoreError::Unavailable("x".into()),
                StoreError::Source("x".into()),
                StoreError::Backend("x".into()),
                StoreError::Full("x".into()),
            ]
            .map(ApiError::Store),
        );
        for error in &all {
            match error {
                ApiError::InvalidId(_)
                | ApiError::InvalidJson(_)
                | ApiError::InvalidBase64(_)
                | ApiError::MissingField(_)
                | ApiError::InvalidParameter(_)
                | ApiError::InvalidMultipart(_)
                | ApiError::InvalidName(_)
                | ApiError::Unauthorized(_)
                | ApiError::BadSignature(_)
                | ApiError::Expired
                | ApiError::TooManyIngests(_)
                | ApiError::TooManySignIns { .. }
                | ApiError::QueueFull { .. }
                | ApiError::SourceUnavailable
                | ApiError::StillProcessing(_)
                | ApiError::UploadTimeout(_)
                | ApiError::UploadTooSlow(_)
                | ApiError::ReceiveBudgetFull { .. }
                | ApiError::StorageFull(_)
                | ApiError::NotFound(_)
                | ApiError::NoRoute(_)
                | ApiError::MethodNotAllowed(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::UploadFailed(_)
                | ApiError::InvalidCover(_)
                | ApiError::CoverTooLarge { .. }
                | ApiError::Media(_)
                | ApiError::Transcode(_)
                | ApiError::RangeNotSatisfiable { .. }
                | ApiError::Store(_)
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    /// The string literals a `fn code` of `source` returns: every code that map can give,
    /// including those of variants `one_of_each` might miss (the media and transcode
    /// errors are `non_exhaustive`, so their variants cannot be listed exhaustively here).
    fn code_literals(source: &str) -> Vec<String> {
        let start = source.find("pub fn code(&self)").expect("a code map");
        let body = &source[start..];
        let end = body.find("\n    }\n").expect("the end of the code map");
        // Every string literal of the map is a code.
        body[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// (status, code) of each row of docs/api.md's error table; a row may list several codes.
    fn documented_errors() -> Vec<(u16, String)> {
        use legato_test_support::docs::{quoted, table_rows};
        let docs = include_str!("../../../docs/api.md");
        table_rows(docs, "\n## Errors", "| status | code |")
            .into_iter()
            .flat_map(|cells| {
                let status: u16 = cells[0]
                    .parse()
                    .unwrap_or_else(|_| panic!("a status in the first cell: {cells:?}"));
                quoted(&cells[1])
                    .into_iter()
                    .map(move |code| (status, code))
            })
            .collect()
    }

    /// Answers that are not `ApiError`s: the accept loop's canned 503, written before any
    /// request is read (`connections.rs`).
    const OUTSIDE_THE_ERROR_MAP: [(u16, &str); 1] = [(503, "too-many-connections")];

    #[test]
    fn docs_api_error_table_is_the_error_map() {
        let documented = documented_errors();
        assert!(
            documented.len() > 25,
            "the table was not read: {documented:?}"
        );
        let mut missing = Vec::new();
        for error in one_of_each() {
            let pair = (error.status().as_u16(), error.code().to_owned());
            if !documented.contains(&pair) {
                missing.push(format!("{} `{}` ({error:?})", pair.0, pair.1));
            }
        }
        for (status, code) in OUTSIDE_THE_ERROR_MAP {
            assert!(
                include_str!("connections.rs").contains(&format!("\\\"code\\\":\\\"{code}\\\"")),
                "{code} is no longer answered by connections.rs"
            );
            if !documented.contains(&(status, code.to_owned())) {
                missing.push(format!("{status} `{code}`"));
            }
        }
        let mut answered: Vec<String> = [
            include_str!("error.rs"),
            include_str!("../../legato-media/src/error.rs"),
            include_str!("../../legato-transcode/src/error.rs"),
        ]
        .into_iter()
        .flat_map(code_literals)
        .chain(OUTSIDE_THE_ERROR_MAP.map(|(_, code)| code.to_owned()))
        .collect();
        answered.sort();
        answered.dedup();
        let made: Vec<&str> = one_of_each().iter().map(ApiError::code).collect();
        let not_constructed: Vec<&String> = answered
            .iter()
            .filter(|code| !made.contains(&code.as_str()))
            .filter(|code| !OUTSIDE_THE_ERROR_MAP.iter().any(|(_, c)| c == code))
            .collect();
        let stale: Vec<&(u16, String)> = documented
            .iter()
            .filter(|(_, code)| !answered.contains(code))
            .collect();
        assert!(
            missing.is_empty() && stale.is_empty() && not_constructed.is_empty(),
            "docs/api.md's error table and the error map disagree:\n  answered but not \
             documented with that status: {missing:?}\n  documented but never answered: \
             {stale:?}\n  codes in a map that one_of_each does not construct: \
             {not_constructed:?}"
        );
    }
}

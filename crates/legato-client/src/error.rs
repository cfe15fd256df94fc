//! What a call to the server can fail with.

use std::path::PathBuf;

use thiserror::Error;

/// Every failure of a [`Client`](crate::Client) call.
///
/// The split that callers act on: [`Api`](Self::Api) is an answer from the server (it refused
/// the request and said why, with a stable `code` to switch on); [`Unreachable`] and
/// [`Transport`] mean no complete answer came back, so retrying or fixing the URL may help;
/// [`File`] is about the local file being uploaded.
///
/// [`Unreachable`]: Self::Unreachable
/// [`Transport`]: Self::Transport
/// [`File`]: Self::File
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request. `code` is Legato's stable kebab-case error code
    /// (`not-found`, `not-audio`, ...; see docs/api.md) or, when the answer did not come from
    /// Legato itself (a gateway or proxy page), `http-<status>`.
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
        /// Seconds the server asked to wait before trying again (`Retry-After`, sent with
        /// 429 and 503), when it said.
        retry_after: Option<u64>,
    },
    /// No connection could be made: nothing listens there, the host is unknown, or the
    /// connection attempt timed out.
    #[error("cannot reach the Legato server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// A connection was made but the exchange broke off (reset, timeout, a failed upload
    /// stream) before a complete answer came back.
    #[error("the request to the Legato server at {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// The server answered with a success status but a body that is not what Legato sends
    /// (the URL probably points at something else).
    #[error(
        "the server at {url} answered {status} with something that is not Legato's JSON: {detail}"
    )]
    UnexpectedResponse {
        url: String,
        status: u16,
        detail: String,
    },
    /// The local file to upload cannot be opened or read.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A download could not be written where it was going.
    #[error("cannot write the downloaded file: {0}")]
    Output(#[source] std::io::Error),
    /// A track id that cannot be sent (empty, `.` or `..`); other malformed ids are refused
    /// by the server with `invalid-id`.
    #[error("'{0}' is not a track id")]
    InvalidId(String),
    /// The server URL given to [`Client::new`](crate::Client::new) is not usable.
    #[error("invalid server URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl ClientError {
    /// The server's error code, for [`Api`](Self::Api) errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server asked to be asked again later: it is busy (429: too many uploads or
    /// ingests at once, or its processing queue is full), not refusing the request itself.
    pub fn is_busy(&self) -> bool {
        self.status() == Some(429)
    }

    /// How long the server asked to wait before trying again (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Api {
                retry_after: Some(seconds),
                ..
            } => Some(std::time::Duration::from_secs(*seconds)),
            _ => None,
        }
    }

    /// The server said the track (or the path) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("not-found")
    }

    /// No complete answer came back from the server: it is down, unreachable, or the
    /// connection broke off.
    pub fn is_network(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Transport { .. })
    }

    /// Turns a reqwest failure into [`Unreachable`](Self::Unreachable) or
    /// [`Transport`](Self::Transport), with a short reason a person can act on.
    pub(crate) fn from_reqwest(err: &reqwest::Error, url: &str) -> Self {
        let reason = network_reason(err);
        if err.is_connect() {
            Self::Unreachable {
                url: url.to_owned(),
                reason,
            }
        } else {
            Self::Transport {
                url: url.to_owned(),
                reason,
            }
        }
    }
}

/// The most telling part of a reqwest error chain: the operating system's word when there is
/// one ("connection refused"), else the innermost cause.
fn network_reason(err: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = err;
    let mut io_error = None;
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_error = Some(io);
        }
        innermost = cause;
        current = cause.source();
    }
    if let Some(io) = io_error {
        use std::io::ErrorKind;
        return match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            ErrorKind::ConnectionReset => "the connection was reset".to_owned(),
            ErrorKind::ConnectionAborted => "the connection was aborted".to_owned(),
            ErrorKind::TimedOut => "timed out".to_owned(),
            _ => io.to_string(),
        };
    }
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    innermost.to_string()
}

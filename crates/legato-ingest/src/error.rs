//! What can go wrong between an upload and a published track. `legato-http` maps each to
//! an HTTP status and a stable code (its `error.rs`, the one place that does).

use legato_media::MediaError;
use legato_store::StoreError;
use legato_transcode::TranscodeError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The MP3 cannot be cut (the file's fault).
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The file cannot be decoded or encoded; [`TranscodeError::is_input_error`] tells whose
    /// fault it is.
    #[error(transparent)]
    Transcode(#[from] TranscodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every processing slot of this process is taken (the limit is the value).
    #[error("{0} uploads are being processed; try again in a few seconds")]
    TooManyIngests(usize),
    /// The durable queue, shared by every process on the store, is full.
    #[error("{queued} uploads are waiting to be processed; try again in {retry_after} seconds")]
    QueueFull { queued: u64, retry_after: u64 },
    /// The track has no stored original (stored before originals were kept).
    #[error(
        "this track was stored before Legato kept original files: its upload cannot be \
         downloaded or reprocessed"
    )]
    SourceUnavailable,
    /// The temporary file of an upload or a source cannot be written: the disk is full.
    #[error("the server's disk is full: the upload cannot be received; try again later")]
    DiskFull,
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    /// Whether the file itself is to blame: trying again would fail again.
    pub fn is_inherent(&self) -> bool {
        match self {
            Self::Media(_) => true,
            Self::Transcode(e) => e.is_input_error(),
            _ => false,
        }
    }
}

/// A failure to write a temporary file: a full disk is its own error (the client's 507,
/// not the server's 500).
pub fn spool_error(err: std::io::Error) -> IngestError {
    if err.kind() == std::io::ErrorKind::StorageFull {
        IngestError::DiskFull
    } else {
        IngestError::Internal(format!("cannot write the temporary file: {err}"))
    }
}

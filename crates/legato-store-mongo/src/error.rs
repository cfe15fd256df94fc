//! Driver errors turned into [`StoreError`]s, so no driver type leaks past this crate.

use mongodb::error::{Error, ErrorKind, WriteFailure};

use legato_store::StoreError;

const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's OutOfDiskSpace: a full disk, not a passing failure.
const OUT_OF_DISK_SPACE: i32 = 14031;
/// IndexOptionsConflict, IndexKeySpecsConflict: the index exists under another name.
const INDEX_CONFLICT: [i32; 2] = [85, 86];

/// Server codes meaning "not now": the node is stepping down, recovering, shutting down, or
/// the operation ran out of time on the server (the SDAM spec's lists, and MaxTimeMSExpired,
/// ExceededTimeLimit, HostUnreachable, HostNotFound, NetworkTimeout, SocketException).
const TRANSIENT_CODES: [i32; 15] = [
    11600, 11602, 13436, 189, 91, 10107, 13435, 10058, 50, 262, 6, 7, 89, 9001, 134,
];

pub fn map_err(err: Error) -> StoreError {
    let message = describe(&err);
    if is_duplicate_key(&err) {
        return StoreError::Invalid(message);
    }
    match &*err.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => StoreError::Unavailable(message),
        ErrorKind::InvalidArgument { .. } => StoreError::Invalid(message),
        _ if code(&err) == Some(OUT_OF_DISK_SPACE) => StoreError::Full(message),
        _ if code(&err).is_some_and(|c| TRANSIENT_CODES.contains(&c)) => {
            StoreError::Unavailable(message)
        }
        _ => StoreError::Backend(message),
    }
}

fn code(err: &Error) -> Option<i32> {
    match &*err.kind {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|e| e.code)
            .or_else(|| e.write_concern_error.as_ref().map(|e| e.code)),
        _ => None,
    }
}

/// Whether creating an index failed because one with the same keys exists under another name.
pub fn is_index_conflict(err: &Error) -> bool {
    code(err).is_some_and(|c| INDEX_CONFLICT.contains(&c))
}

pub fn is_duplicate_key(err: &Error) -> bool {
    match &*err.kind {
        ErrorKind::InsertMany(e) => e
            .write_errors
            .iter()
            .flatten()
            .any(|e| e.code == DUPLICATE_KEY),
        _ => code(err) == Some(DUPLICATE_KEY),
    }
}

/// The driver's `Display` repeats labels and raw server replies; keep the gist.
fn describe(err: &Error) -> String {
    match &*err.kind {
        ErrorKind::Command(e) => format!("{} ({}, code {})", e.message, e.code_name, e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => {
            format!("{} (code {})", e.message, e.code)
        }
        ErrorKind::InsertMany(e) => match e.write_errors.as_ref().and_then(|w| w.first()) {
            Some(first) => format!("{} (code {})", first.message, first.code),
            None => err.kind.to_string(),
        },
        kind => kind.to_string(),
    }
}

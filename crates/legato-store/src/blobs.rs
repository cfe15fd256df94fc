//! The blob contract: the bytes of a track's chunks, by track and name.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Result, TrackId};

/// Where chunk bytes live. A blob store knows nothing of tracks' status: the
/// [`Store`](crate::Store) asks its [`Catalog`](crate::Catalog) what may be read before it
/// reads here.
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Stores a chunk's bytes; a second put of one name stores the same bytes again (a retried
    /// write). A backend whose chunks belong to a catalog's track answers
    /// [`NotFound`](crate::StoreError::NotFound) when the catalog has no such track.
    async fn put(&self, id: &TrackId, name: &str, bytes: Bytes) -> Result<()>;

    /// A chunk's bytes; `NotFound` when there are none.
    async fn get(&self, id: &TrackId, name: &str) -> Result<Bytes>;

    /// The bytes of `range` of a chunk (clipped to its end); `NotFound` when there is no such
    /// chunk, `Invalid` when the range starts past its end or ends before it starts.
    async fn get_range(&self, id: &TrackId, name: &str, range: Range<u64>) -> Result<Bytes>;

    /// Removes these chunks of a track (those that exist).
    async fn delete(&self, id: &TrackId, names: &[String]) -> Result<()>;

    /// Names of every chunk kept for a track, in no particular order.
    async fn list(&self, id: &TrackId) -> Result<Vec<String>>;

    /// A URL a client may fetch the chunk from without this process, valid for `expires`;
    /// `None` when the backend serves bytes only through [`get`](Blobs::get).
    async fn url(&self, id: &TrackId, name: &str, expires: Duration) -> Result<Option<String>> {
        let _ = (id, name, expires);
        Ok(None)
    }

    /// The key (within its bucket) the backend keeps this chunk under, for a CDN in front of
    /// the bucket; `None` when it has no such key.
    fn key(&self, id: &TrackId, name: &str) -> Option<String> {
        let _ = (id, name);
        None
    }

    /// Cheap round trip to the backend, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// A short human description of the backend for logs, with any secret redacted.
    fn describe(&self) -> String;
}

/// The bytes of `range` of `bytes`, as [`Blobs::get_range`] answers: for backends that read
/// a chunk whole.
pub fn slice_range(
    bytes: Bytes,
    range: Range<u64>,
    what: impl FnOnce() -> String,
) -> Result<Bytes> {
    let len = bytes.len() as u64;
    if range.start > len || range.start > range.end {
        return Err(crate::StoreError::Invalid(format!(
            "range {}..{} is outside {} ({len} bytes)",
            range.start,
            range.end,
            what()
        )));
    }
    let end = range.end.min(len);
    // Both within `len`, which came from a usize.
    Ok(bytes.slice(range.start as usize..end as usize))
}

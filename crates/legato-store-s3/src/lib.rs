//! Chunk bytes in an S3-compatible object store: the blob contract over a bucket.
//!
//! [`Bucket`] implements [`Blobs`](legato_store::Blobs): every chunk but playlists goes to the
//! bucket under `<prefix><track id>/<name>`, while a catalog (SQLite or MongoDB) keeps the
//! tracks and the chunks' rows. [`legato_store::Store::with_objects`] composes the two and
//! keeps publish-last across them (objects first, rows last; rows deleted first). A write that
//! fails (or a process killed mid-write) leaves objects no row names; the store removes them
//! at once when it can, else [`collect_garbage`] does once they are older than a grace period.
//!
//! Object-store failures are [`StoreError::Unavailable`](legato_store::StoreError) within a
//! few seconds (short connect timeout, bounded retries); nothing is cached about a failure, so
//! the store recovers as soon as the bucket answers again.

mod bucket;
mod uri;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use legato_store::{Catalog, Result, TrackId};

pub use bucket::{Bucket, IMMUTABLE, Listed};
pub use uri::BlobsUri;

/// How the sweep of objects no row names behaves.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// An object no row names is removed only once older than this: a write in progress
    /// (objects first, rows last) must not lose its objects.
    pub grace: Duration,
    /// How often a background sweep runs; `None` for none.
    pub every: Option<Duration>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(6 * 3600),
            every: Some(Duration::from_secs(3600)),
        }
    }
}

/// Starts the background sweep of `bucket` against `catalog` when `options` asks for one
/// (inside a Tokio runtime); it ends when the catalog is dropped.
pub fn spawn_sweep(catalog: &Arc<dyn Catalog>, bucket: Bucket, options: SweepOptions) {
    let Some(every) = options.every else { return };
    let weak = Arc::downgrade(catalog);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(catalog) = weak.upgrade() else {
                return;
            };
            match collect_garbage(&*catalog, &bucket, options.grace).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed objects no track names"),
                Err(e) => tracing::warn!(error = %e, "garbage collection of objects failed"),
            }
        }
    });
}

/// Removes objects that no chunk row of `catalog` names and that are older than `grace` (a
/// crash or a failure between the two steps of a write leaves them); how many.
pub async fn collect_garbage(
    catalog: &dyn Catalog,
    bucket: &Bucket,
    grace: Duration,
) -> Result<u64> {
    use legato_store::Blobs;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let mut old: HashMap<TrackId, Vec<String>> = HashMap::new();
    for listed in bucket.list_all().await? {
        if now_ms.saturating_sub(listed.modified_ms) >= grace_ms {
            old.entry(listed.track).or_default().push(listed.name);
        }
    }
    let mut removed = 0;
    for (id, names) in old {
        let named: HashSet<String> = catalog.chunk_names(&id).await?.into_iter().collect();
        let orphans: Vec<String> = names.into_iter().filter(|n| !named.contains(n)).collect();
        if !orphans.is_empty() {
            bucket.delete(&id, &orphans).await?;
            removed += orphans.len() as u64;
        }
    }
    Ok(removed)
}

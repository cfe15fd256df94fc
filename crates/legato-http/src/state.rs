use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use legato_ingest::{ChunkCache, Pipeline};
use legato_store::{DynStore, StoreError, TrackId};
use moka::future::Cache;

use crate::config::HttpConfig;

/// What every handler shares: the store, the segment cache, the settings and the ingest
/// pipeline.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub config: Arc<HttpConfig>,
    pub segments: SegmentCache,
    /// The receive budget: kibibytes of upload bodies in flight (see
    /// `upload::receive_share`).
    pub receiving: Arc<tokio::sync::Semaphore>,
    /// From a received upload to a published track, and this process's workers.
    pub ingest: Pipeline,
    /// Who each web-player session cookie signs in, for [`SESSION_TTL`]: the crud and
    /// streaming routes of a private library then read the user once per cookie every few
    /// seconds, not on every segment.
    pub sessions: Cache<Arc<str>, Option<legato_store::User>>,
}

/// How long a cookie's user is answered from memory: a new password, a deleted user or a
/// lost admin right takes effect within this on the crud and streaming routes (at once on
/// `/rest`, which reads the user per request as apps' sign-ins do).
pub const SESSION_TTL: Duration = Duration::from_secs(2);

impl AppState {
    pub fn new(store: DynStore, config: HttpConfig) -> Self {
        let segments = SegmentCache::new(config.cache_bytes);
        // Installs the metrics recorder now, so that nothing recorded before the first scrape
        // is lost.
        crate::metrics::handle();
        let budget_kib = usize::try_from(config.receive.bytes_in_flight / 1024)
            .unwrap_or(usize::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let ingest = Pipeline::new(
            store.clone(),
            config.ingest(),
            Some(Arc::new(segments.clone())),
        );
        Self {
            store,
            receiving: Arc::new(tokio::sync::Semaphore::new(budget_kib)),
            config: Arc::new(config),
            segments,
            ingest,
            sessions: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SESSION_TTL)
                .build(),
        }
    }
}

/// A chunk ready to serve: its bytes and its strong validator.
#[derive(Clone)]
pub struct ServedChunk {
    pub bytes: Bytes,
    pub etag: Arc<str>,
}

impl ServedChunk {
    pub fn new(bytes: Bytes) -> Self {
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&bytes)).into();
        Self { bytes, etag }
    }
}

/// Segments held in memory, bounded by their total size.
///
/// Segments never change for a given `(id, name)`, so a cached copy is always right while the
/// track exists. A track deleted by another process (the crud function) is not seen here; its
/// cached segments expire after [`SegmentCache::TIME_TO_LIVE`], and without its playlist (which
/// is never cached) no player learns their names anyway.
#[derive(Clone)]
pub struct SegmentCache {
    inner: Cache<(TrackId, Arc<str>), ServedChunk>,
    /// Bumped by every `forget`, before its invalidations: a read that began before a
    /// removal may store what it read after the invalidation, and drops it again on seeing
    /// the epoch moved.
    epoch: Arc<AtomicU64>,
}

impl SegmentCache {
    pub const TIME_TO_LIVE: Duration = Duration::from_secs(3600);

    pub fn new(max_bytes: u64) -> Self {
        let inner = Cache::builder()
            .weigher(|_key, chunk: &ServedChunk| {
                u32::try_from(chunk.bytes.len().saturating_add(128)).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .time_to_live(Self::TIME_TO_LIVE)
            .support_invalidation_closures()
            .build();
        Self {
            inner,
            epoch: Arc::default(),
        }
    }

    /// A chunk through the cache: the one way streaming, Subsonic and downloads read
    /// segments. Concurrent misses of one chunk share one store read.
    pub async fn read(
        &self,
        store: &DynStore,
        id: TrackId,
        name: &str,
    ) -> Result<ServedChunk, StoreError> {
        let key = (id, Arc::<str>::from(name));
        if let Some(hit) = self.inner.get(&key).await {
            metrics::counter!(crate::metrics::CACHE_HITS).increment(1);
            return Ok(hit);
        }
        metrics::counter!(crate::metrics::CACHE_MISSES).increment(1);
        let began = self.epoch.load(Ordering::SeqCst);
        let store = store.clone();
        let owned = name.to_owned();
        let served = self
            .inner
            .try_get_with(key.clone(), async move {
                store.get_chunk(&id, &owned).await.map(ServedChunk::new)
            })
            .await
            .map_err(|e| (*e).clone())?;
        if self.epoch.load(Ordering::SeqCst) != began {
            // Something was removed while this was read: it may have been this chunk.
            self.inner.invalidate(&key).await;
        }
        Ok(served)
    }

    /// Drops these cached chunks of a track (the renditions a reprocessing replaced, once
    /// removed). Other processes' copies expire after [`Self::TIME_TO_LIVE`]: their bytes
    /// are still right, and no current playlist names them.
    pub async fn forget(&self, id: TrackId, names: &[String]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for name in names {
            self.inner.invalidate(&(id, Arc::from(name.as_str()))).await;
        }
    }

    /// Drops every cached segment of a track (after a delete in this process).
    pub fn forget_track(&self, id: TrackId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // Only fails when closures are not supported, which `new` enables.
        let _ = self.inner.invalidate_entries_if(move |key, _| key.0 == id);
    }
}

#[async_trait::async_trait]
impl ChunkCache for SegmentCache {
    async fn forget(&self, id: TrackId, names: &[String]) {
        SegmentCache::forget(self, id, names).await;
    }
}

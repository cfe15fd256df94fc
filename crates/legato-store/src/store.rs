//! A store: a catalog plus where its chunk bytes live, composed here and nowhere else.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::{Blobs, Catalog, Chunk, ChunkSource, ListQuery, Result, StoreError, Track, TrackId};

/// Object writes in flight per track write: enough to hide an object store's latency, few
/// enough that memory stays at a handful of segments.
const PUTS_IN_FLIGHT: usize = 4;

/// A catalog and its chunk bytes.
///
/// Everything that is not chunk bytes is the catalog's: a `Store` dereferences to it, so
/// `store.get_track(…)` asks the catalog. The methods that move chunk bytes are the
/// store's own; they keep the invariants across the two contracts:
/// - **Publish-last, objects first**: with a separate blob store, a write stores the bytes
///   first, then hands the catalog the playlists and empty rows, whose commit publishes the
///   track. A write that fails leaves bytes no row names; they are removed at once when
///   possible (an object store's sweep removes what a crash leaves).
/// - **Rows first on delete**, bytes after: a reader never finds a row whose bytes are gone.
/// - A row that still holds bytes (written before the object store was configured) is
///   served from the row: the two kinds mix in one store.
pub struct Store {
    catalog: Arc<dyn Catalog>,
    blobs: Arc<dyn Blobs>,
    /// The blobs are the catalog's own chunk rows: chunks are written with their rows, in
    /// the catalog's one step (a SQLite transaction, MongoDB's chunks before the track).
    in_rows: bool,
}

impl Deref for Store {
    type Target = dyn Catalog;

    fn deref(&self) -> &Self::Target {
        &*self.catalog
    }
}

/// Playlists stay in the catalog's rows: they are small, read on every play, and the
/// streaming function rewrites them (signatures, CDN URLs).
fn kept_in_rows(name: &str) -> bool {
    name.ends_with(".m3u8")
}

impl Store {
    /// A backend that keeps chunk bytes in its own rows (SQLite, MongoDB's `chunks`).
    pub fn local<B: Catalog + Blobs>(backend: Arc<B>) -> Arc<Self> {
        Arc::new(Self {
            catalog: backend.clone(),
            blobs: backend,
            in_rows: true,
        })
    }

    /// A catalog whose chunk bytes (but playlists) live in a separate blob store.
    pub fn with_objects(catalog: Arc<dyn Catalog>, blobs: Arc<dyn Blobs>) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            blobs,
            in_rows: false,
        })
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.blobs
    }

    /// A short human description for logs, with any secret redacted.
    pub fn describe(&self) -> String {
        if self.in_rows {
            self.catalog.describe()
        } else {
            format!(
                "{} with chunk bytes in {}",
                self.catalog.describe(),
                self.blobs.describe()
            )
        }
    }

    /// Cheap round trip to both contracts' backends, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.catalog.ping().await?;
        if !self.in_rows {
            self.blobs.ping().await?;
        }
        Ok(())
    }

    /// [`Catalog::insert_track`] with the chunks' bytes placed.
    pub async fn insert_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        let catalog = self.catalog.clone();
        self.publish(track.id, chunks, |rows| async move {
            catalog.insert_track(track, rows).await
        })
        .await
    }

    /// [`Catalog::complete_track`] with the chunks' bytes placed.
    pub async fn complete_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        let catalog = self.catalog.clone();
        self.publish(track.id, chunks, |rows| async move {
            catalog.complete_track(track, rows).await
        })
        .await
    }

    /// [`Catalog::accept_track`] with the source's bytes placed.
    pub async fn accept_track(&self, track: Track, source: ChunkSource) -> Result<Track> {
        let catalog = self.catalog.clone();
        self.publish(track.id, source, |rows| async move {
            catalog.accept_track(track, rows).await
        })
        .await
    }

    /// [`Catalog::publish_with_follow_up`] with the chunks' bytes placed.
    pub async fn publish_with_follow_up(
        &self,
        track: Track,
        chunks: ChunkSource,
        after_claims: u64,
    ) -> Result<Track> {
        let catalog = self.catalog.clone();
        self.publish(track.id, chunks, |rows| async move {
            catalog
                .publish_with_follow_up(track, rows, after_claims)
                .await
        })
        .await
    }

    /// [`Catalog::replace_renditions`] with the chunks' bytes placed.
    pub async fn replace_renditions(
        &self,
        track: Track,
        chunks: ChunkSource,
        claims: u64,
        retire_after_ms: i64,
    ) -> Result<Track> {
        let catalog = self.catalog.clone();
        self.publish(track.id, chunks, |rows| async move {
            catalog
                .replace_renditions(track, rows, claims, retire_after_ms)
                .await
        })
        .await
    }

    /// The bytes of one chunk of a ready track; `NotFound` otherwise.
    pub async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let row = self.catalog.get_chunk(id, name).await?;
        self.resolve(id, name, row).await
    }

    /// The bytes of one chunk of a track whatever its status (its source while processing).
    pub async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let row = self.catalog.get_stored_chunk(id, name).await?;
        self.resolve(id, name, row).await
    }

    /// Removes a track, its rows, then its bytes; `NotFound` when there is none.
    pub async fn delete_track(&self, id: &TrackId) -> Result<()> {
        if self.in_rows {
            return self.catalog.delete_track(id).await;
        }
        self.catalog.delete_track(id).await?;
        let removed = async {
            let names = self.blobs.list(id).await?;
            self.blobs.delete(id, &names).await
        };
        if let Err(e) = removed.await {
            tracing::warn!(%id, error = %e, "the track is deleted; its bytes are left to the sweep");
        }
        Ok(())
    }

    /// Removes these chunks of a track (those that exist): rows, then bytes.
    pub async fn delete_chunks(&self, id: &TrackId, names: Vec<String>) -> Result<()> {
        if self.in_rows {
            return self.catalog.delete_chunks(id, names).await;
        }
        self.catalog.delete_chunks(id, names.clone()).await?;
        let objects: Vec<String> = names.into_iter().filter(|n| !kept_in_rows(n)).collect();
        if let Err(e) = self.blobs.delete(id, &objects).await {
            tracing::warn!(%id, error = %e, "chunks removed; their bytes are left to the sweep");
        }
        Ok(())
    }

    /// Where a client may fetch this chunk of a ready track without this process: a URL of
    /// the blob store, presigned for `expires`. `None` when the store serves it itself (bytes
    /// in rows, a playlist, or a chunk not migrated yet); `NotFound` as
    /// [`get_chunk`](Store::get_chunk).
    pub async fn chunk_url(
        &self,
        id: &TrackId,
        name: &str,
        expires: Duration,
    ) -> Result<Option<String>> {
        if self.in_rows || kept_in_rows(name) {
            return Ok(None);
        }
        let row = self.catalog.get_chunk(id, name).await?;
        if !row.is_empty() {
            // Not migrated yet: only this process can serve it.
            return Ok(None);
        }
        self.blobs.url(id, name, expires).await
    }

    /// The key (within its bucket) the blob store keeps this chunk under, for a CDN in front
    /// of the bucket; `None` when bytes live in rows, or for a playlist.
    pub fn chunk_object_key(&self, id: &TrackId, name: &str) -> Option<String> {
        if self.in_rows || kept_in_rows(name) {
            return None;
        }
        self.blobs.key(id, name)
    }

    /// Moves the bytes of every chunk the catalog's rows still hold (but playlists) into the
    /// blob store: each is written there, then emptied in its row. Readers see the same bytes
    /// throughout (a row with bytes is served from the row, an empty one from the blobs), so
    /// servers running with the blob store keep serving. Resumable: chunks already moved are
    /// skipped, and one interrupted between its two steps is written again. `progress` is
    /// called after each track. `Invalid` for a store whose bytes live in its rows.
    pub async fn migrate(&self, mut progress: impl FnMut(&Migrated) + Send) -> Result<Migrated> {
        if self.in_rows {
            return Err(StoreError::Invalid(format!(
                "{} has no separate blob store to move chunk bytes into",
                self.describe()
            )));
        }
        let mut listed = self
            .catalog
            .stream_tracks(&ListQuery {
                limit: ListQuery::MAX_LIMIT,
                ..ListQuery::default()
            })
            .await?;
        // Ids first: the listing is not held open while rows are rewritten.
        let mut ids = Vec::new();
        while let Some(track) = listed.next().await {
            ids.push(track?.id);
        }
        drop(listed);
        let mut moved = Migrated::default();
        for id in ids {
            let names = match self.catalog.chunk_names(&id).await {
                Ok(names) => names,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for name in names.into_iter().filter(|n| !kept_in_rows(n)) {
                let bytes = match self.catalog.get_stored_chunk(&id, &name).await {
                    Ok(bytes) => bytes,
                    // Deleted meanwhile (a track removed, a retirement).
                    Err(StoreError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                if bytes.is_empty() {
                    moved.already += 1;
                    continue;
                }
                let len = bytes.len() as u64;
                self.blobs.put(&id, &name, bytes).await?;
                match self.catalog.clear_chunk_bytes(&id, &name).await {
                    // A chunk deleted between the two steps leaves bytes for the sweep.
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                moved.chunks += 1;
                moved.bytes += len;
            }
            moved.tracks += 1;
            progress(&moved);
        }
        Ok(moved)
    }

    /// Runs a catalog write over the chunks' rows: with a separate blob store, the bytes are
    /// stored first and the rows emptied; a failure of either step forgets the bytes written.
    async fn publish<F, Fut>(&self, id: TrackId, chunks: ChunkSource, write: F) -> Result<Track>
    where
        F: FnOnce(ChunkSource) -> Fut,
        Fut: std::future::Future<Output = Result<Track>>,
    {
        if self.in_rows {
            return write(chunks).await;
        }
        let (rows, written) = self.offload(id, chunks).await?;
        match write(Box::new(rows.into_iter().map(Ok))).await {
            Ok(track) => Ok(track),
            Err(e) => {
                self.forget(&id, written).await;
                Err(e)
            }
        }
    }

    /// Writes `chunks`' bytes to the blob store (a few at a time, in the order given) and
    /// returns the rows the catalog keeps: playlists whole, every other chunk empty. On
    /// failure the bytes written are removed (best effort) and nothing is kept.
    async fn offload(&self, id: TrackId, chunks: ChunkSource) -> Result<(Vec<Chunk>, Written)> {
        let written = Written::default();
        // The source may encode or read files as it is pulled: pulled on a blocking thread.
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Chunk>>(2);
        let producer = tokio::task::spawn_blocking(move || {
            for chunk in chunks {
                let failed = chunk.is_err();
                if sender.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        let pulled = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        });
        let rows = pulled
            .map(|chunk| {
                let blobs = &self.blobs;
                let written = &written;
                async move {
                    let chunk = chunk?;
                    if kept_in_rows(&chunk.name) {
                        return Ok(chunk);
                    }
                    blobs.put(&id, &chunk.name, chunk.bytes).await?;
                    written.push(&chunk.name);
                    Ok(Chunk::new(chunk.name, Bytes::new()))
                }
            })
            .buffered(PUTS_IN_FLIGHT)
            .try_collect::<Vec<Chunk>>()
            .await;
        // Dropping the stream above closed the channel: the producer ends at its next chunk.
        let _ = producer.await;
        match rows {
            Ok(rows) => Ok((rows, written)),
            Err(e) => {
                self.forget(&id, written).await;
                Err(e)
            }
        }
    }

    /// Removes the bytes of a write that did not publish (the sweep gets them otherwise).
    async fn forget(&self, id: &TrackId, written: Written) {
        let names = written.take();
        if names.is_empty() {
            return;
        }
        if let Err(e) = self.blobs.delete(id, &names).await {
            tracing::warn!(%id, error = %e, chunks = names.len(),
                "could not remove the bytes of a failed write; the sweep will");
        }
    }

    /// The bytes of a chunk whose row the catalog answered with.
    async fn resolve(&self, id: &TrackId, name: &str, row: Bytes) -> Result<Bytes> {
        if self.in_rows || !row.is_empty() || kept_in_rows(name) {
            return Ok(row);
        }
        self.blobs.get(id, name).await.map_err(|e| match e {
            StoreError::NotFound(what) => {
                tracing::error!(%id, name, "the catalog names a chunk the blob store lacks");
                StoreError::NotFound(what)
            }
            other => other,
        })
    }
}

/// What [`Store::migrate`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Tracks looked at.
    pub tracks: u64,
    /// Chunks moved into the blob store, and their bytes.
    pub chunks: u64,
    pub bytes: u64,
    /// Chunks found in the blob store already (an earlier run, or written there).
    pub already: u64,
}

/// Names of the chunks a write has stored so far.
#[derive(Default)]
struct Written(Mutex<Vec<String>>);

impl Written {
    fn push(&self, name: &str) {
        if let Ok(mut names) = self.0.lock() {
            names.push(name.to_owned());
        }
    }

    fn take(self) -> Vec<String> {
        self.0.into_inner().unwrap_or_default()
    }
}

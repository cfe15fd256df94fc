//! Chunk bytes in an S3-compatible object store, beside a metadata store.
//!
//! [`ObjectChunks`] wraps any [`Store`] (SQLite or MongoDB): tracks, jobs, accounts and
//! playlists stay there; every other chunk (segments, init segments, covers, pieces of a
//! source) goes to the bucket under `<prefix><track id>/<name>`, and the metadata store keeps
//! the chunk's row with empty bytes, so names, deletes and publish-last work as before. The
//! invariants of [`legato_store`] hold across the two:
//!
//! - **Publish-last**: a write stores the objects first, then hands the metadata store the
//!   playlists and the empty rows, whose commit publishes the track. A write that fails (or a
//!   process killed mid-write) leaves objects no track names; they are removed at once when
//!   possible, else by [`ObjectChunks::collect_garbage`] once older than a grace period.
//! - **Delete metadata first**, objects after: a reader never finds a track whose bytes are
//!   gone.
//! - A chunk whose row still has its bytes (written before the object store was configured)
//!   is served from the row: the two kinds mix in one store.
//!
//! Object-store failures are [`StoreError::Unavailable`] within a few seconds (short
//! connect timeout, bounded retries); nothing is cached about a failure, so the store
//! recovers as soon as the bucket answers again.

mod bucket;
mod uri;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use legato_store::accounts::{
    Accounts, ItemRef, Playlist, PlaylistPatch, User, UserKey, UserMarks,
};
use legato_store::{
    Chunk, ChunkSource, DynStore, Enqueued, Job, JobCounts, ListQuery, Page, Result, Retirement,
    Store, StoreError, Track, TrackId, TrackPatch, TrackStream,
};

pub use bucket::{Bucket, IMMUTABLE};
pub use uri::BlobsUri;

/// Object writes in flight per track write: enough to hide the store's latency, few enough
/// that memory stays at a handful of segments.
const PUTS_IN_FLIGHT: usize = 4;

/// How the object side behaves.
#[derive(Clone, Debug)]
pub struct ObjectOptions {
    /// An object no track names is removed only once older than this: a write in progress
    /// (objects first, metadata last) must not lose its objects.
    pub gc_grace: Duration,
    /// How often a background sweep collects such objects; `None` for none.
    pub gc_every: Option<Duration>,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        Self {
            gc_grace: Duration::from_secs(6 * 3600),
            gc_every: Some(Duration::from_secs(3600)),
        }
    }
}

/// A metadata store with its chunk bytes in a bucket.
pub struct ObjectChunks {
    meta: DynStore,
    bucket: Bucket,
    options: ObjectOptions,
}

/// Playlists stay in the metadata store: they are small, read on every play, and the
/// streaming function rewrites them (signatures, CDN URLs).
fn kept_in_metadata(name: &str) -> bool {
    name.ends_with(".m3u8")
}

impl ObjectChunks {
    /// Wraps `meta`; starts the background sweep when `options` asks for one (inside a
    /// Tokio runtime).
    pub fn new(meta: DynStore, bucket: Bucket, options: ObjectOptions) -> Arc<Self> {
        let store = Arc::new(Self {
            meta,
            bucket,
            options,
        });
        if let Some(every) = store.options.gc_every {
            let weak = Arc::downgrade(&store);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(store) = weak.upgrade() else { return };
                    match store.collect_garbage().await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "removed objects no track names"),
                        Err(e) => {
                            tracing::warn!(error = %e, "garbage collection of objects failed")
                        }
                    }
                }
            });
        }
        store
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    pub fn metadata(&self) -> &DynStore {
        &self.meta
    }

    /// Removes objects that no track's chunk names and that are older than the grace
    /// period (a crash or a failure between the two steps of a write leaves them); how many.
    pub async fn collect_garbage(&self) -> Result<u64> {
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let grace_ms = i64::try_from(self.options.gc_grace.as_millis()).unwrap_or(i64::MAX);
        let mut old: HashMap<TrackId, Vec<String>> = HashMap::new();
        for listed in self.bucket.list().await? {
            if now_ms.saturating_sub(listed.modified_ms) >= grace_ms {
                old.entry(listed.track).or_default().push(listed.name);
            }
        }
        let mut removed = 0;
        for (id, names) in old {
            let named: std::collections::HashSet<String> =
                self.meta.chunk_names(&id).await?.into_iter().collect();
            let orphans: Vec<String> = names.into_iter().filter(|n| !named.contains(n)).collect();
            if !orphans.is_empty() {
                self.bucket.delete(&id, &orphans).await?;
                removed += orphans.len() as u64;
            }
        }
        Ok(removed)
    }

    /// Moves the bytes of every chunk the metadata store still holds (but playlists) into
    /// the bucket: each is written as an object, then emptied in its row. Readers see the
    /// same bytes throughout (a row with bytes is served from the row, an empty one from the
    /// bucket), so servers running with the object store keep serving. Resumable: chunks
    /// already moved are skipped, and one interrupted between its two steps is written
    /// again. `progress` is called after each track.
    pub async fn migrate(&self, mut progress: impl FnMut(&Migrated) + Send) -> Result<Migrated> {
        let mut listed = self
            .meta
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
            let names = match self.meta.chunk_names(&id).await {
                Ok(names) => names,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for name in names.into_iter().filter(|n| !kept_in_metadata(n)) {
                let bytes = match self.meta.get_stored_chunk(&id, &name).await {
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
                self.bucket.put(&id, &name, bytes).await?;
                match self.meta.clear_chunk_bytes(&id, &name).await {
                    // A chunk deleted between the two steps leaves an object for the sweep.
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

    /// Writes `chunks`' bytes to the bucket (a few at a time, in the order given) and returns
    /// what the metadata store keeps: the playlists whole, every other chunk as an empty
    /// row. On failure the objects written are removed (best effort) and nothing is kept.
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
        let kept = pulled
            .map(|chunk| {
                let bucket = &self.bucket;
                let written = &written;
                async move {
                    let chunk = chunk?;
                    if kept_in_metadata(&chunk.name) {
                        return Ok(chunk);
                    }
                    bucket.put(&id, &chunk.name, chunk.bytes).await?;
                    written.push(&chunk.name);
                    Ok(Chunk::new(chunk.name, Bytes::new()))
                }
            })
            .buffered(PUTS_IN_FLIGHT)
            .try_collect::<Vec<Chunk>>()
            .await;
        // Dropping the stream above closed the channel: the producer ends at its next chunk.
        let _ = producer.await;
        match kept {
            Ok(kept) => Ok((kept, written)),
            Err(e) => {
                self.forget(&id, written).await;
                Err(e)
            }
        }
    }

    /// Removes objects of a write that did not publish (the sweep gets them otherwise).
    async fn forget(&self, id: &TrackId, written: Written) {
        let names = written.take();
        if names.is_empty() {
            return;
        }
        if let Err(e) = self.bucket.delete(id, &names).await {
            tracing::warn!(%id, error = %e, objects = names.len(),
                "could not remove the objects of a failed write; the sweep will");
        }
    }

    /// Runs a metadata write over the offloaded chunks; its failure forgets the objects.
    async fn publish<F, Fut>(&self, id: TrackId, chunks: ChunkSource, write: F) -> Result<Track>
    where
        F: FnOnce(ChunkSource) -> Fut,
        Fut: std::future::Future<Output = Result<Track>>,
    {
        let (kept, written) = self.offload(id, chunks).await?;
        match write(Box::new(kept.into_iter().map(Ok))).await {
            Ok(track) => Ok(track),
            Err(e) => {
                self.forget(&id, written).await;
                Err(e)
            }
        }
    }

    /// The bytes of a chunk whose row the metadata store answered with.
    async fn resolve(&self, id: &TrackId, name: &str, row: Bytes) -> Result<Bytes> {
        if !row.is_empty() || kept_in_metadata(name) {
            return Ok(row);
        }
        self.bucket.get(id, name).await.map_err(|e| match e {
            StoreError::NotFound(what) => {
                tracing::error!(%id, name, "the metadata names a chunk the object store lacks");
                StoreError::NotFound(what)
            }
            other => other,
        })
    }
}

/// What [`ObjectChunks::migrate`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Tracks looked at.
    pub tracks: u64,
    /// Chunks moved into the bucket, and their bytes.
    pub chunks: u64,
    pub bytes: u64,
    /// Chunks found in the bucket already (an earlier run, or written there).
    pub already: u64,
}

/// Names of the objects a write has stored so far.
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

#[async_trait]
impl Store for ObjectChunks {
    async fn insert_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        let meta = self.meta.clone();
        self.publish(track.id, chunks, |kept| async move {
            meta.insert_track(track, kept).await
        })
        .await
    }

    async fn insert_pending(&self, track: Track) -> Result<Track> {
        self.meta.insert_pending(track).await
    }

    async fn complete_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        let meta = self.meta.clone();
        self.publish(track.id, chunks, |kept| async move {
            meta.complete_track(track, kept).await
        })
        .await
    }

    async fn fail_track(&self, id: &TrackId, error: &str) -> Result<()> {
        self.meta.fail_track(id, error).await
    }

    async fn set_analysis(&self, id: &TrackId, analysis: &legato_store::Analysis) -> Result<()> {
        self.meta.set_analysis(id, analysis).await
    }

    async fn fail_stale_processing(&self, before_ms: i64) -> Result<u64> {
        self.meta.fail_stale_processing(before_ms).await
    }

    async fn list_tracks(&self, query: &ListQuery) -> Result<Page> {
        self.meta.list_tracks(query).await
    }

    async fn stream_tracks(&self, query: &ListQuery) -> Result<TrackStream> {
        self.meta.stream_tracks(query).await
    }

    async fn get_track(&self, id: &TrackId) -> Result<Track> {
        self.meta.get_track(id).await
    }

    async fn update_track(&self, id: &TrackId, patch: &TrackPatch) -> Result<Track> {
        self.meta.update_track(id, patch).await
    }

    async fn delete_track(&self, id: &TrackId) -> Result<()> {
        self.meta.delete_track(id).await?;
        if let Err(e) = self.bucket.delete_track(id).await {
            tracing::warn!(%id, error = %e, "the track is deleted; its objects are left to the sweep");
        }
        Ok(())
    }

    async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let row = self.meta.get_chunk(id, name).await?;
        self.resolve(id, name, row).await
    }

    async fn accept_track(&self, track: Track, source: ChunkSource) -> Result<Track> {
        let meta = self.meta.clone();
        self.publish(track.id, source, |kept| async move {
            meta.accept_track(track, kept).await
        })
        .await
    }

    async fn publish_with_follow_up(
        &self,
        track: Track,
        chunks: ChunkSource,
        after_claims: u64,
    ) -> Result<Track> {
        let meta = self.meta.clone();
        self.publish(track.id, chunks, |kept| async move {
            meta.publish_with_follow_up(track, kept, after_claims).await
        })
        .await
    }

    async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let row = self.meta.get_stored_chunk(id, name).await?;
        self.resolve(id, name, row).await
    }

    async fn chunk_names(&self, id: &TrackId) -> Result<Vec<String>> {
        self.meta.chunk_names(id).await
    }

    async fn delete_chunks(&self, id: &TrackId, names: Vec<String>) -> Result<()> {
        self.meta.delete_chunks(id, names.clone()).await?;
        let objects: Vec<String> = names.into_iter().filter(|n| !kept_in_metadata(n)).collect();
        if let Err(e) = self.bucket.delete(id, &objects).await {
            tracing::warn!(%id, error = %e, "chunks removed; their objects are left to the sweep");
        }
        Ok(())
    }

    async fn claim_job(&self, owner: &str, now_ms: i64, lease_until: i64) -> Result<Option<Job>> {
        self.meta.claim_job(owner, now_ms, lease_until).await
    }

    async fn renew_job(&self, id: &TrackId, claims: u64, lease_until: i64) -> Result<bool> {
        self.meta.renew_job(id, claims, lease_until).await
    }

    async fn release_job(
        &self,
        id: &TrackId,
        claims: u64,
        due_ms: i64,
        error: Option<&str>,
        counted: bool,
    ) -> Result<()> {
        self.meta
            .release_job(id, claims, due_ms, error, counted)
            .await
    }

    async fn finish_job(&self, id: &TrackId, claims: u64) -> Result<()> {
        self.meta.finish_job(id, claims).await
    }

    async fn follow_up_job(&self, id: &TrackId, claims: u64, now_ms: i64) -> Result<()> {
        self.meta.follow_up_job(id, claims, now_ms).await
    }

    async fn fail_job(&self, id: &TrackId, claims: u64, error: &str) -> Result<()> {
        self.meta.fail_job(id, claims, error).await
    }

    async fn enqueue_job(&self, id: &TrackId, now_ms: i64) -> Result<()> {
        self.meta.enqueue_job(id, now_ms).await
    }

    async fn enqueue_reprocess(
        &self,
        id: &TrackId,
        now_ms: i64,
        after_claims: u64,
    ) -> Result<Enqueued> {
        self.meta.enqueue_reprocess(id, now_ms, after_claims).await
    }

    async fn replace_renditions(
        &self,
        track: Track,
        chunks: ChunkSource,
        claims: u64,
        retire_after_ms: i64,
    ) -> Result<Track> {
        let meta = self.meta.clone();
        self.publish(track.id, chunks, |kept| async move {
            meta.replace_renditions(track, kept, claims, retire_after_ms)
                .await
        })
        .await
    }

    async fn due_retirements(&self, now_ms: i64, limit: u32) -> Result<Vec<Retirement>> {
        self.meta.due_retirements(now_ms, limit).await
    }

    async fn end_retirement(&self, id: &TrackId, after_ms: i64) -> Result<()> {
        self.meta.end_retirement(id, after_ms).await
    }

    async fn get_job(&self, id: &TrackId) -> Result<Option<Job>> {
        self.meta.get_job(id).await
    }

    async fn job_counts(&self) -> Result<JobCounts> {
        self.meta.job_counts().await
    }

    async fn ping(&self) -> Result<()> {
        self.meta.ping().await?;
        self.bucket.ping().await
    }

    async fn find_by_source_sha256(&self, sha256: &str) -> Result<Option<Track>> {
        self.meta.find_by_source_sha256(sha256).await
    }

    async fn library_version(&self) -> Result<u64> {
        self.meta.library_version().await
    }

    async fn change_cursor(&self) -> Result<u64> {
        self.meta.change_cursor().await
    }

    async fn changes_since(&self, cursor: u64) -> Result<Option<legato_store::Changes>> {
        self.meta.changes_since(cursor).await
    }

    fn describe(&self) -> String {
        format!(
            "{} with chunk bytes in {}",
            self.meta.describe(),
            self.bucket.describe()
        )
    }

    async fn chunk_url(
        &self,
        id: &TrackId,
        name: &str,
        expires: Duration,
    ) -> Result<Option<String>> {
        if kept_in_metadata(name) {
            return Ok(None);
        }
        let row = self.meta.get_chunk(id, name).await?;
        if !row.is_empty() {
            // Not migrated yet: only this process can serve it.
            return Ok(None);
        }
        self.bucket.presign(id, name, expires).await.map(Some)
    }

    fn chunk_object_key(&self, id: &TrackId, name: &str) -> Option<String> {
        (!kept_in_metadata(name)).then(|| self.bucket.key(id, name))
    }
}

/// Accounts live in the metadata store.
#[async_trait]
impl Accounts for ObjectChunks {
    async fn create_user(&self, user: User) -> Result<User> {
        self.meta.create_user(user).await
    }
    async fn get_user(&self, name: &str) -> Result<User> {
        self.meta.get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.meta.list_users().await
    }
    async fn set_user_password(&self, name: &str, sealed_password: Vec<u8>) -> Result<()> {
        self.meta.set_user_password(name, sealed_password).await
    }
    async fn set_user_admin(&self, name: &str, admin: bool) -> Result<()> {
        self.meta.set_user_admin(name, admin).await
    }
    async fn delete_user(&self, name: &str) -> Result<()> {
        self.meta.delete_user(name).await
    }
    async fn add_user_key(&self, key: UserKey) -> Result<()> {
        self.meta.add_user_key(key).await
    }
    async fn find_user_key(&self, hash: &str) -> Result<Option<UserKey>> {
        self.meta.find_user_key(hash).await
    }
    async fn list_user_keys(&self, user: &str) -> Result<Vec<UserKey>> {
        self.meta.list_user_keys(user).await
    }
    async fn revoke_user_keys(&self, user: &str, label: Option<&str>) -> Result<u64> {
        self.meta.revoke_user_keys(user, label).await
    }
    async fn set_starred(
        &self,
        user: &str,
        item: &ItemRef,
        starred: bool,
        at_ms: i64,
    ) -> Result<()> {
        self.meta.set_starred(user, item, starred, at_ms).await
    }
    async fn set_rating(&self, user: &str, item: &ItemRef, rating: u8) -> Result<()> {
        self.meta.set_rating(user, item, rating).await
    }
    async fn record_play(&self, user: &str, track: &TrackId, at_ms: i64) -> Result<()> {
        self.meta.record_play(user, track, at_ms).await
    }
    async fn user_marks(&self, user: &str) -> Result<UserMarks> {
        self.meta.user_marks(user).await
    }
    async fn create_playlist(&self, playlist: Playlist) -> Result<Playlist> {
        self.meta.create_playlist(playlist).await
    }
    async fn get_playlist(&self, id: &str) -> Result<Playlist> {
        self.meta.get_playlist(id).await
    }
    async fn list_playlists(&self) -> Result<Vec<Playlist>> {
        self.meta.list_playlists().await
    }
    async fn visible_playlists(&self, viewer: &str) -> Result<Vec<Playlist>> {
        self.meta.visible_playlists(viewer).await
    }
    async fn count_playlists(&self, owner: &str) -> Result<u64> {
        self.meta.count_playlists(owner).await
    }
    async fn update_playlist(
        &self,
        id: &str,
        patch: &PlaylistPatch,
        at_ms: i64,
    ) -> Result<Playlist> {
        self.meta.update_playlist(id, patch, at_ms).await
    }
    async fn delete_playlist(&self, id: &str) -> Result<()> {
        self.meta.delete_playlist(id).await
    }
}

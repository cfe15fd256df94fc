//! The catalog contract: tracks, jobs, the library and its listeners.

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Accounts, Analysis, Changes, ChunkSource, Enqueued, Job, JobCounts, ListQuery, Page, Result,
    Retirement, StoreError, Track, TrackId, TrackPatch, TrackStream,
};

/// Tracks, their jobs, the library and its listeners: what a store knows about its media.
///
/// A chunk-bearing method takes the chunks' *rows*: each names a chunk and holds its bytes,
/// or is empty when the store keeps the bytes in a separate [`Blobs`](crate::Blobs) store
/// (playlists always hold theirs). The [`Store`](crate::Store) composing a catalog with its
/// blobs decides which; nothing else calls these methods with chunks.
#[async_trait]
pub trait Catalog: Accounts + Send + Sync + 'static {
    /// Stores a track with all its chunks, atomically from a reader's point of view.
    ///
    /// `chunks` is pulled lazily so a backend can write each chunk and drop it before the
    /// next one is produced: an hour-long track is never held in memory twice.
    async fn insert_track(&self, track: Track, chunks: ChunkSource) -> Result<Track>;

    /// Records a track whose media is still being made (status `Processing`, no chunks): it
    /// is listed and shown, never streamed.
    async fn insert_pending(&self, track: Track) -> Result<Track>;

    /// Stores the chunks of a pending track and then publishes `track` (status `Ready`) in
    /// its place, publish-last as [`insert_track`](Catalog::insert_track). Only the media
    /// fields are written (a rename made meanwhile stays), and the source description when
    /// `track` has one (an MP3's source may move into the renditions it publishes). The publish is conditional on the
    /// track still processing, so of two processes racing on one job only one publishes.
    /// `NotFound` when the pending track is gone (deleted, or published by another process
    /// meanwhile); its chunks are then not kept.
    async fn complete_track(&self, track: Track, chunks: ChunkSource) -> Result<Track>;

    /// Marks a pending track failed, with the reason.
    async fn fail_track(&self, id: &TrackId, error: &str) -> Result<()>;

    /// Attaches loudness and waveform to a track.
    async fn set_analysis(&self, id: &TrackId, analysis: &Analysis) -> Result<()>;

    /// Marks failed every track still processing that was created before `before_ms` and
    /// has no job (work of a version without durable jobs that a crash left unfinished);
    /// returns how many.
    async fn fail_stale_processing(&self, before_ms: i64) -> Result<u64>;

    /// Tracks matching the query, with the number of matches before paging.
    ///
    /// Every order is total: ties are broken by id, in the query's direction. Names and
    /// authors are ordered by their [`keys::fold`]ed form, compared as bytes.
    async fn list_tracks(&self, query: &ListQuery) -> Result<Page>;

    /// Every track matching the query from its `offset` on, in its order, with no limit: read
    /// from the backend as the stream is polled, so memory stays flat whatever the library's
    /// size. An error ends the stream.
    async fn stream_tracks(&self, query: &ListQuery) -> Result<TrackStream>;

    /// One track; [`StoreError::NotFound`] when there is none with this id.
    async fn get_track(&self, id: &TrackId) -> Result<Track>;

    /// Changes the given fields; [`StoreError::NotFound`] when there is no such track.
    async fn update_track(&self, id: &TrackId, patch: &TrackPatch) -> Result<Track>;

    /// Removes a track and all its chunks; [`StoreError::NotFound`] when there is none.
    async fn delete_track(&self, id: &TrackId) -> Result<()>;

    /// The bytes of one chunk of a ready track; [`StoreError::NotFound`] otherwise.
    async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes>;

    /// Records an accepted upload durably: the pending track (status `Processing`), the
    /// chunks of its source, and a queued job to process it. Once this returns, the upload
    /// survives the process.
    async fn accept_track(&self, track: Track, source: ChunkSource) -> Result<Track>;

    /// Stores a playable track (status `Ready`) with its first renditions and, before the
    /// track is visible, a queued [`JobKind::Reprocess`] job that makes the rest of them
    /// (its first claim is `after_claims + 1`, so it writes names the first renditions do
    /// not use). Publish-last as [`insert_track`](Catalog::insert_track); once this returns,
    /// the track and its follow-up both survive the process. A crash before the track is
    /// written leaves a job whose track never appears, which ends on its own.
    async fn publish_with_follow_up(
        &self,
        track: Track,
        chunks: ChunkSource,
        after_claims: u64,
    ) -> Result<Track>;

    /// The bytes of one chunk of a track whatever its status (its source while processing).
    /// Meant for pieces of a source, read once from start to end: a backend need not cache
    /// or map them.
    async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes>;

    /// Names of every chunk stored for a track.
    async fn chunk_names(&self, id: &TrackId) -> Result<Vec<String>>;

    /// Removes these chunks of a track (those that exist).
    async fn delete_chunks(&self, id: &TrackId, names: Vec<String>) -> Result<()>;

    /// Claims the oldest job that is queued (and due) or whose lease ended before `now_ms`,
    /// atomically: two processes never get the same claim. The claim's `claims` count is
    /// its fencing token.
    async fn claim_job(&self, owner: &str, now_ms: i64, lease_until: i64) -> Result<Option<Job>>;

    /// Extends a claim; `false` when the claim is no longer ours (taken over or removed).
    async fn renew_job(&self, id: &TrackId, claims: u64, lease_until: i64) -> Result<bool>;

    /// Gives a claimed job back to the queue, due at `due_ms`. A release for a shutdown
    /// (`counted` false) does not use up an attempt.
    async fn release_job(
        &self,
        id: &TrackId,
        claims: u64,
        due_ms: i64,
        error: Option<&str>,
        counted: bool,
    ) -> Result<()>;

    /// Removes a finished job, if the claim is still ours.
    async fn finish_job(&self, id: &TrackId, claims: u64) -> Result<()>;

    /// Turns a finished ingest, if the claim is still ours, into its follow-up: a queued
    /// [`JobKind::Reprocess`] that makes the renditions the first publish left out. The
    /// claim count is kept, so the follow-up writes a fresh generation.
    async fn follow_up_job(&self, id: &TrackId, claims: u64, now_ms: i64) -> Result<()>;

    /// Marks a claimed job failed for good, with the reason.
    async fn fail_job(&self, id: &TrackId, claims: u64, error: &str) -> Result<()>;

    /// Queues a job for a track (reprocessing); an existing job is queued again.
    async fn enqueue_job(&self, id: &TrackId, now_ms: i64) -> Result<()>;

    /// Queues a [`JobKind::Reprocess`] job for a track that is not processing. `after_claims`
    /// is a floor for the job's claim count: the caller passes the highest generation the
    /// track's chunks were ever named with, so the new claim (and the names it writes) is
    /// fresh. A failed job of the track is queued again as a reprocessing (its claim count
    /// never goes back); a job queued or running already is left alone
    /// ([`Enqueued::Pending`]). `NotFound` when there is no such track; `Invalid` when it is
    /// still processing.
    async fn enqueue_reprocess(
        &self,
        id: &TrackId,
        now_ms: i64,
        after_claims: u64,
    ) -> Result<Enqueued>;

    /// Publishes the new renditions of a reprocessed track in one step: stores `chunks`
    /// (names no earlier generation used), then switches the media fields of the track
    /// (playlist, variants, segments, duration, cover, codec fields, the tags album, year,
    /// album artist, genre, track and disc number that `track` has — a tag it lacks is kept —
    /// and the source description when `track` has one) to `track`'s and makes
    /// it `ready` (a failed track that is reprocessed becomes playable). Until that switch,
    /// readers see the old renditions whole; after it, the new ones whole. Fenced by the
    /// claim: only while job `claims` of the track is running, and never over a generation
    /// published by a later claim. The old renditions stay stored and readable; the switch
    /// records a [`Retirement`] due at `retire_after_ms`. Name and author are left alone.
    /// `NotFound` when the claim is lost, the track is gone or processing; the chunks are
    /// then not kept.
    async fn replace_renditions(
        &self,
        track: Track,
        chunks: ChunkSource,
        claims: u64,
        retire_after_ms: i64,
    ) -> Result<Track>;

    /// Retirements due before `now_ms` (at most `limit`), oldest first. Durable: a process
    /// that restarts finds them again.
    async fn due_retirements(&self, now_ms: i64, limit: u32) -> Result<Vec<Retirement>>;

    /// Marks a retirement done once its chunks are removed; a later replacement (another
    /// `after_ms`) is left pending.
    async fn end_retirement(&self, id: &TrackId, after_ms: i64) -> Result<()>;

    /// The job of a track, if any.
    async fn get_job(&self, id: &TrackId) -> Result<Option<Job>>;

    /// Jobs waiting and running across every process sharing the store; `queued` counts
    /// only ingests (uploads are admitted by it, and a `reprocess --all` must not refuse
    /// them). Claims take ingests before reprocessings.
    async fn job_counts(&self) -> Result<JobCounts>;

    /// Cheap round trip to the backend, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// The track whose stored source has this SHA-256 (lowercase hex), if any: the oldest
    /// that is not failed, else the oldest failed one. Backed by an index: uploads ask it every time.
    async fn find_by_source_sha256(&self, sha256: &str) -> Result<Option<Track>>;

    /// A number that changes whenever a track is added, changed or removed (by any process
    /// sharing the store), so a cache of the library knows when to rebuild. Not a count.
    async fn library_version(&self) -> Result<u64>;

    /// A cursor for [`changes_since`](Catalog::changes_since) taken before a full read of the
    /// library, so that the changes after it are all that a copy needs to stay current.
    /// `0` when the backend cannot follow changes.
    async fn change_cursor(&self) -> Result<u64> {
        Ok(0)
    }

    /// The tracks added, changed or removed since `cursor` (from
    /// [`change_cursor`](Catalog::change_cursor) or an earlier call), through an index of
    /// changes; `None` when the backend cannot tell (it does not follow changes, the cursor is
    /// `0`, or a program that does not record its changes wrote the library), so the caller
    /// reads the library again. A change may be reported twice; applying one is idempotent.
    async fn changes_since(&self, cursor: u64) -> Result<Option<Changes>> {
        let _ = cursor;
        Ok(None)
    }

    /// A short human description of the backend for logs, with any secret redacted.
    fn describe(&self) -> String;

    /// Empties a chunk's bytes in place, keeping its name: its bytes were copied to an object
    /// store that a wrapping store reads them from (`legato migrate`). Readers of the wrapped
    /// store see the same bytes before and after. `NotFound` when there is no such chunk.
    async fn clear_chunk_bytes(&self, id: &TrackId, name: &str) -> Result<()> {
        let _ = (id, name);
        Err(StoreError::Invalid(format!(
            "{} cannot move chunk bytes to an object store",
            self.describe()
        )))
    }
}

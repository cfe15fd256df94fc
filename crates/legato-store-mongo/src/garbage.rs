//! Garbage: what a crash between the steps of an insert or a delete leaves, found through
//! `pending_writes` (never by reading every chunk), and the explicit full sweep.

use std::future::IntoFuture;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::{Bson, doc, oid::ObjectId};
use std::collections::HashSet;

use legato_store::{Result, TrackId};

use crate::{ID_BATCH, MongoStore, now_ms, schema};

impl MongoStore {
    /// Finishes the writes a crash or a lost connection left half done, once they are older
    /// than [`MongoOptions::gc_grace`]: for each entry of `pending_writes`, a track without
    /// its document loses its chunks, waveform and retirement; returns how many chunks were
    /// removed. Reads only `pending_writes` (through its `at` index) and the tracks it names,
    /// so it costs nothing on a library of any size; runs in the background at start-up.
    pub async fn collect_garbage(&self) -> Result<u64> {
        let cutoff =
            now_ms() - i64::try_from(self.inner.options.gc_grace.as_millis()).unwrap_or(i64::MAX);
        let stale = self
            .find_all(
                self.inner
                    .pending_writes
                    .find(doc! { "at": { "$lt": cutoff } })
                    .sort(doc! { "at": 1 })
                    .limit(ID_BATCH as i64),
            )
            .await?;
        let mut removed = 0;
        for entry in stale {
            let Some(id) = entry
                .get_str("_id")
                .ok()
                .and_then(|hex| hex.parse::<TrackId>().ok())
            else {
                continue;
            };
            let oid = schema::object_id(&id);
            if !self.track_exists(oid).await? {
                let result = self
                    .timed(
                        self.inner
                            .chunks
                            .delete_many(doc! { "music_id": id.to_string() }),
                    )
                    .await?;
                self.timed(self.inner.peaks.delete_one(doc! { "_id": oid }))
                    .await?;
                self.timed(
                    self.inner
                        .retirements
                        .delete_one(doc! { "_id": id.to_string() }),
                )
                .await?;
                if result.deleted_count > 0 {
                    tracing::info!(track = %id, chunks = result.deleted_count,
                        "removed the chunks of a write that did not finish");
                }
                removed += result.deleted_count;
            }
            self.end_write(&id).await;
        }
        Ok(removed)
    }

    /// Records a write that leaves chunks without a track document while it runs.
    pub(crate) async fn begin_write(&self, id: &TrackId) -> Result<()> {
        self.timed(
            self.inner
                .pending_writes
                .replace_one(
                    doc! { "_id": id.to_string() },
                    doc! { "_id": id.to_string(), "at": now_ms() },
                )
                .upsert(true),
        )
        .await?;
        Ok(())
    }

    /// One of the steps after a track's document is deleted: its failure is logged (the
    /// track is gone for every reader already).
    pub(crate) async fn after_delete<T, F>(&self, id: &TrackId, step: F, what: &str)
    where
        F: IntoFuture<Output = mongodb::error::Result<T>>,
    {
        if let Err(e) = self.timed(step).await {
            tracing::warn!(track = %id, error = %e, "track deleted but not {what}");
        }
    }

    /// Ends what [`begin_write`](Self::begin_write) recorded; left for garbage collection
    /// when the server cannot be reached.
    pub(crate) async fn end_write(&self, id: &TrackId) {
        if let Err(e) = self
            .timed(
                self.inner
                    .pending_writes
                    .delete_one(doc! { "_id": id.to_string() }),
            )
            .await
        {
            tracing::warn!(track = %id, error = %e, "could not end a pending write; garbage collection will");
        }
    }

    /// Removes chunks that no track document refers to and that are older than
    /// [`MongoOptions::gc_grace`] (younger ones may belong to an insert in progress, whose
    /// track document is written last); returns how many were removed.
    ///
    /// An explicit bulk operation that reads every chunk (the whole library's audio): for a
    /// database an older version or a crash before `pending_writes` existed left garbage in.
    /// [`collect_garbage`](Self::collect_garbage) covers what this version leaves. A chunk's
    /// age is its `_id`'s time, which the seed's chunks have too (the seed writes its track
    /// document before its chunks, so its inserts never look like garbage).
    pub async fn sweep_orphan_chunks(&self) -> Result<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let cutoff_secs = now.saturating_sub(self.inner.options.gc_grace).as_secs();
        let cutoff = ObjectId::from_parts(
            u32::try_from(cutoff_secs).unwrap_or(u32::MAX),
            [0; 5],
            [0; 3],
        );
        let old = doc! { "_id": { "$lt": cutoff } };
        let music_ids = self
            .timed(self.inner.chunks.distinct("music_id", old.clone()))
            .await?;
        // Only ids we understand: a chunk whose music_id is not an ObjectId's hex is not ours
        // to judge.
        let candidates: Vec<ObjectId> = music_ids
            .iter()
            .filter_map(|id| match id {
                Bson::String(hex) => ObjectId::parse_str(hex).ok(),
                _ => None,
            })
            .collect();
        let mut removed = 0;
        for batch in candidates.chunks(ID_BATCH) {
            let live: HashSet<ObjectId> = self
                .find_all(
                    self.inner
                        .musics
                        .find(doc! { "_id": { "$in": batch.to_vec() } })
                        .projection(doc! { "_id": 1 }),
                )
                .await?
                .iter()
                .filter_map(|doc| doc.get_object_id("_id").ok())
                .collect();
            let orphans: Vec<String> = batch
                .iter()
                .filter(|id| !live.contains(id))
                .map(|id| id.to_hex())
                .collect();
            if orphans.is_empty() {
                continue;
            }
            let result = self
                .timed(self.inner.chunks.delete_many(doc! {
                    "music_id": { "$in": &orphans },
                    "_id": { "$lt": cutoff },
                }))
                .await?;
            tracing::info!(
                tracks = orphans.len(),
                chunks = result.deleted_count,
                "removed chunks of tracks that do not exist"
            );
            removed += result.deleted_count;
        }
        Ok(removed)
    }
}

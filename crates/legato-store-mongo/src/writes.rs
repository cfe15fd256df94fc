//! Writing tracks: chunks in batches first, then the track document (publish-last without
//! transactions), and the cleanup of a write that failed.

use std::collections::HashSet;

use legato_store::{Analysis, Chunk, ChunkSource, Result, StoreError, Track, TrackId};
use mongodb::bson::{Document, doc, oid::ObjectId};

use crate::error::{is_duplicate_key, map_err};
use crate::schema;
use crate::{BATCH_BYTES, BATCH_CHUNKS, ID_BATCH, MongoStore};

impl MongoStore {
    /// Stores (or, when it has none, removes) a track's waveform in [`PEAKS`].
    pub(crate) async fn write_peaks(&self, oid: ObjectId, analysis: &Analysis) -> Result<()> {
        if analysis.peaks.is_empty() {
            self.timed(self.inner.peaks.delete_one(doc! { "_id": oid }))
                .await?;
            return Ok(());
        }
        let peaks = schema::peaks_doc(oid, &analysis.peaks);
        // Inserted (a track's first analysis), replaced only when one is there: an upsert
        // that inserts is a scan on FerretDB.
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(
            limit,
            self.inner.peaks.insert_one(peaks.clone()).into_future(),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if is_duplicate_key(&e) => {
                self.timed(self.inner.peaks.replace_one(doc! { "_id": oid }, peaks))
                    .await?;
                Ok(())
            }
            Ok(Err(e)) => Err(self.scrubbed(map_err(e))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {limit:?}"
            ))),
        }
    }

    /// Writes the chunks in batches as the source yields them, recording each chunk's `_id`
    /// in `written` before it is sent (so a failure can remove exactly what it wrote).
    pub(crate) async fn write_chunks(
        &self,
        music_id: &str,
        source: ChunkSource,
        written: &mut Vec<ObjectId>,
    ) -> Result<()> {
        let mut names = HashSet::new();
        // The source may block (it may be encoding), so it is pulled on the blocking pool,
        // one batch ahead of the batch being inserted.
        let mut next = Some(tokio::task::spawn_blocking(move || pull_batch(source)));
        while let Some(pending) = next.take() {
            let (source, batch) = pending
                .await
                .map_err(|e| StoreError::Source(format!("the chunk source panicked: {e}")))??;
            if let Some(source) = source {
                next = Some(tokio::task::spawn_blocking(move || pull_batch(source)));
            }
            if batch.is_empty() {
                continue;
            }
            let mut docs = Vec::with_capacity(batch.len());
            for chunk in &batch {
                if !names.insert(chunk.name.clone()) {
                    return Err(StoreError::Invalid(format!(
                        "chunk {} of track {music_id} given twice",
                        chunk.name
                    )));
                }
                let oid = schema::chunk_oid_for(music_id, &chunk.name);
                written.push(oid);
                docs.push(schema::chunk_doc(oid, music_id, chunk));
            }
            drop(batch);
            let first = written.len() - docs.len();
            let limit = self.inner.options.operation_timeout;
            match tokio::time::timeout(
                limit,
                self.inner
                    .chunks
                    .insert_many(docs)
                    .ordered(true)
                    .into_future(),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    // An ordered insert stops at its first failure: what follows it in the
                    // batch was not written by us (a duplicate may be another track's).
                    if let mongodb::error::ErrorKind::InsertMany(failure) = e.kind.as_ref()
                        && let Some(index) = failure
                            .write_errors
                            .as_ref()
                            .and_then(|errors| errors.iter().map(|w| w.index).min())
                    {
                        written.truncate(first + index);
                    }
                    return Err(self.scrubbed(map_err(e)));
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "MongoDB did not answer within {limit:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Writes every chunk of a track ([`write_chunks`](Self::write_chunks)), removing what it
    /// wrote when one fails; the ids written, for a later step's failure to remove.
    pub(crate) async fn write_all_chunks(
        &self,
        id: &TrackId,
        chunks: ChunkSource,
    ) -> Result<Vec<ObjectId>> {
        let mut written = Vec::new();
        if let Err(e) = self
            .write_chunks(&id.to_string(), chunks, &mut written)
            .await
        {
            self.discard_chunks(id, &written).await;
            return Err(e);
        }
        Ok(written)
    }

    /// The rest of [`Catalog::insert_track`], between its pending write's start and end.
    pub(crate) async fn insert_track_written(
        &self,
        track: Track,
        chunks: ChunkSource,
    ) -> Result<Track> {
        let oid = schema::object_id(&track.id);
        let written = self.write_all_chunks(&track.id, chunks).await?;
        if let Some(analysis) = &track.analysis
            && let Err(e) = self.write_peaks(oid, analysis).await
        {
            self.discard_chunks(&track.id, &written).await;
            return Err(e);
        }
        let published = self
            .inner
            .musics
            .insert_one(schema::track_doc(&track))
            .into_future();
        match tokio::time::timeout(self.inner.options.operation_timeout, published).await {
            Ok(Ok(_)) => {
                self.bump_library().await;
                Ok(track)
            }
            Ok(Err(e)) if is_duplicate_key(&e) => {
                // Another insert published this id meanwhile: its document is not ours to
                // remove, our chunks are.
                self.discard_chunks(&track.id, &written).await;
                Err(self.scrubbed(map_err(e)))
            }
            outcome => {
                let err = match outcome {
                    Ok(Err(e)) => self.scrubbed(map_err(e)),
                    _ => StoreError::Unavailable(format!(
                        "MongoDB did not confirm the track {} in time",
                        track.id
                    )),
                };
                // The document may have been written all the same: retract it before removing
                // the chunks, and keep the chunks if that cannot be made sure of.
                match self
                    .timed(self.inner.musics.delete_one(doc! { "_id": oid }))
                    .await
                {
                    Ok(_) => {
                        let _ = self
                            .timed(self.inner.peaks.delete_one(doc! { "_id": oid }))
                            .await;
                        self.discard_chunks(&track.id, &written).await
                    }
                    Err(e) => tracing::warn!(track = %track.id, error = %e,
                        "could not retract a track whose insert failed; its chunks are kept"),
                }
                Err(err)
            }
        }
    }

    /// The rest of [`Catalog::accept_track`], between its pending write's start and end.
    /// The chunks, then `job`, then the track document (see
    /// [`Catalog::accept_track`] and [`Catalog::publish_with_follow_up`]).
    pub(crate) async fn accept_track_written(
        &self,
        track: Track,
        source: ChunkSource,
        job: Document,
    ) -> Result<Track> {
        let music_id = track.id.to_string();
        let written = self.write_all_chunks(&track.id, source).await?;
        // The job before the track: a crash between the two leaves a job whose track never
        // appears (it ends on its own), never a track whose job is lost.
        if let Err(e) = self.timed(self.inner.jobs.insert_one(job)).await {
            self.discard_chunks(&track.id, &written).await;
            return Err(e);
        }
        if let Err(e) = self
            .timed(self.inner.musics.insert_one(schema::track_doc(&track)))
            .await
        {
            // Whether the document was written is unknown on a timeout: keep the chunks and
            // the job then; the job finds the track or ends.
            if matches!(e, StoreError::Unavailable(_)) {
                self.bump_library().await;
            } else {
                let _ = self
                    .timed(self.inner.jobs.delete_one(doc! { "_id": &music_id }))
                    .await;
                self.discard_chunks(&track.id, &written).await;
            }
            return Err(e);
        }
        self.bump_library().await;
        Ok(track)
    }

    /// Removes the chunks a failed insert wrote. Failing that, they stay for
    /// [`collect_garbage`](Self::collect_garbage): no track refers to them.
    pub(crate) async fn discard_chunks(&self, id: &TrackId, written: &[ObjectId]) {
        for batch in written.chunks(ID_BATCH) {
            let result = self
                .timed(
                    self.inner
                        .chunks
                        .delete_many(doc! { "_id": { "$in": batch.to_vec() } }),
                )
                .await;
            if let Err(e) = result {
                tracing::warn!(track = %id, error = %e,
                    "could not remove the chunks of a failed insert; garbage collection will");
                return;
            }
        }
    }
}

/// A batch of chunks, and the source unless it is exhausted.
type Pulled = (Option<ChunkSource>, Vec<Chunk>);

/// The next batch of chunks, and the source unless it is exhausted.
pub(crate) fn pull_batch(mut source: ChunkSource) -> Result<Pulled> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while bytes < BATCH_BYTES && batch.len() < BATCH_CHUNKS {
        match source.next() {
            None => return Ok((None, batch)),
            Some(chunk) => {
                let chunk = chunk?;
                bytes += chunk.bytes.len();
                batch.push(chunk);
            }
        }
    }
    Ok((Some(source), batch))
}

//! Durable ingest jobs and the workers that run them.
//!
//! An accepted upload is a pending track, its stored source and a queued job, all in the
//! store. A fixed number of workers per process claim jobs with an atomic conditional update
//! (any process sharing the store: `legato serve`, every replica of the crud function), renew
//! the claim's lease while they work, and publish the result only if the track is still
//! processing, so two processes racing on one job never both publish. A process that dies
//! stops renewing: once the lease has passed, another process claims the job and starts over
//! from the stored source. Each claim counts as an attempt, so a file that kills its process
//! cannot loop forever; a release at shutdown does not count. A failure that is the file's
//! (it cannot be decoded) fails the track at once.
//!
//! A *reprocessing* job ([`JobKind::Reprocess`]) is the same work on a track that is ready:
//! it rebuilds the renditions from the stored source with this process's settings, under
//! the names of its claim's generation, and publishes them with one fenced store operation
//! ([`Store::replace_renditions`](legato_store::Store::replace_renditions)). The track stays
//! playable on its old renditions all along; if the work fails, it stays on them and the
//! job keeps the error. The replaced renditions are retired, not deleted: players may hold
//! their media playlists, so their chunks are removed only once the old track's duration
//! plus `retire_grace` has passed ([`retire_due`], run by every process, from the store's
//! durable record, so a restart still removes them).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use legato_store::{Job, JobKind, StoreError, Track, TrackId, TrackStatus};
use tokio::sync::{Notify, broadcast, watch};

use crate::Pipeline;
use crate::analysis::finished;
use crate::error::IngestError;
use crate::layout::{self, Generation};
use crate::now_millis;
use crate::produce::{BuildJob, Built};
use crate::spool::{self, Spooled};

/// A job whose track is not there yet may be a MongoDB accept between its two writes; after
/// this long the track is not coming.
const MISSING_TRACK_PATIENCE_MS: i64 = 60_000;
/// Retry delay after a failure that is not the file's (the store was unreachable…).
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What the workers of this process share with the upload handler.
pub struct JobHub {
    wake: Notify,
    finished: broadcast::Sender<JobDone>,
    /// Seconds a job takes, smoothed, for Retry-After.
    average_seconds: Mutex<f64>,
}

/// A job this process finished, announced to an upload waiting for it.
#[derive(Clone)]
pub struct JobDone {
    pub id: TrackId,
    error: Arc<Mutex<Option<IngestError>>>,
}

impl JobDone {
    /// The error the job failed with, for the one waiter that answers with it.
    pub fn take_error(&self) -> Option<IngestError> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Default for JobHub {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            finished: broadcast::channel(64).0,
            average_seconds: Mutex::new(30.0),
        }
    }
}

impl JobHub {
    /// Tells an idle worker of this process that a job is queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobDone> {
        self.finished.subscribe()
    }

    pub fn average_seconds(&self) -> f64 {
        *self
            .average_seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, seconds: f64) {
        let mut average = self
            .average_seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *average = *average * 0.7 + seconds * 0.3;
    }

    fn announce(&self, id: TrackId, error: Option<IngestError>) {
        let _ = self.finished.send(JobDone {
            id,
            error: Arc::new(Mutex::new(error)),
        });
    }
}

/// Starts the workers of this process; they stop claiming once `shutdown` turns true, and
/// the returned task ends when each has finished or released its job.
pub(crate) fn spawn_workers(
    state: &Pipeline,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut workers: Vec<_> = (0..state.config.ingest_workers.max(1))
        .map(|index| {
            let owner = format!("{}:{}:{index}", hostname(), std::process::id());
            tokio::spawn(worker(state.clone(), owner, shutdown.clone()))
        })
        .collect();
    workers.push(tokio::spawn(retirer(state.clone(), shutdown)));
    tokio::spawn(async move {
        for worker in workers {
            let _ = worker.await;
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

async fn worker(state: Pipeline, owner: String, mut shutdown: watch::Receiver<bool>) {
    let poll = state.config.job_poll_interval;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = now_millis();
        let lease = millis(state.config.job_lease);
        match state.store.claim_job(&owner, now, now + lease).await {
            Ok(Some(job)) => run(&state, &owner, job, &mut shutdown).await,
            Ok(None) => {
                tokio::select! {
                    () = state.jobs.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look for ingest jobs");
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

async fn run(state: &Pipeline, owner: &str, job: Job, shutdown: &mut watch::Receiver<bool>) {
    let id = job.track_id;
    let claims = job.claims;
    let started = Instant::now();
    tracing::info!(%id, attempt = job.attempts, claim = claims, %owner, "job claimed");
    let max_attempts = state.config.job_max_attempts;
    if job.attempts > max_attempts {
        let why = format!(
            "processing was interrupted {} times (the process working on it died or was \
             stopped); giving up: upload the file again or reprocess it",
            job.attempts - 1
        );
        fail(state, &job, &why, None).await;
        return;
    }
    let track = match state.store.get_track(&id).await {
        Ok(track) => track,
        Err(StoreError::NotFound(_)) => {
            if now_millis() - job.created_at < MISSING_TRACK_PATIENCE_MS {
                release(state, &job, RETRY_DELAY, None, false).await;
            } else {
                tracing::info!(%id, "the job's track is gone; ending the job");
                let _ = state.store.finish_job(&id, claims).await;
            }
            return;
        }
        Err(e) => {
            release(state, &job, RETRY_DELAY, Some(&e.to_string()), false).await;
            return;
        }
    };
    let processing = track.status == TrackStatus::Processing;
    if processing != (job.kind == JobKind::Ingest) {
        // An ingest published by a process whose claim had lapsed (or that died before it
        // queued the follow-up): only the follow-up may be left. (A reprocessing is never
        // queued for a track still processing.)
        if job.kind == JobKind::Ingest {
            end_ingest(state, &track, claims).await;
        } else {
            let _ = state.store.finish_job(&id, claims).await;
        }
        return;
    }
    // The lease is renewed from here on, reading the source included: a large source read
    // from a slow store outlasts a lease, and another process would take the job meanwhile.
    let renew_every = state.config.job_lease / 3;
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    let reading = read_source(state, &track);
    tokio::pin!(reading);
    let read = loop {
        tokio::select! {
            read = &mut reading => break read,
            _ = renew.tick() => {
                if !keep_claim(state, &id, claims).await {
                    return;
                }
            }
            () = stopped(shutdown) => {
                tracing::info!(%id, "shutting down: releasing the current job to another process");
                release(state, &job, Duration::ZERO, None, false).await;
                return;
            }
        }
    };
    let audio = match read {
        Ok(audio) => audio,
        // No source, or a piece of it missing: no attempt can do better.
        Err(e @ (IngestError::SourceUnavailable | IngestError::Store(StoreError::NotFound(_)))) => {
            fail(state, &job, &e.to_string(), Some(e)).await;
            return;
        }
        Err(e) => {
            release(state, &job, RETRY_DELAY, Some(&e.to_string()), true).await;
            return;
        }
    };
    tracing::info!(%id, bytes = audio.len(), kind = job.kind.as_str(), "source read; processing");
    // What a reprocessing replaces: kept for players until its duration and the grace passed.
    let old_duration = track.duration;
    let old_generation = layout::generation_of(&track.playlist).unwrap_or(0);

    // An upload that must be decoded is made playable first (one rung), then completed by
    // its follow-up; an MP3 accepted as a job (by an older version) is made whole at once.
    let first_stage =
        job.kind == JobKind::Ingest && track.source.as_ref().is_some_and(|s| s.format != "mp3");
    let config = &state.config;
    let folder_cover = read_folder_cover(state, &track).await;
    let build = BuildJob {
        audio: audio.clone(),
        ladder: if first_stage {
            crate::produce::first_rungs(config)
        } else {
            config.ladder_kbps.clone()
        },
        aac_ladder: if first_stage {
            Vec::new()
        } else {
            config.aac_ladder_kbps.clone()
        },
        lossless: config.lossless && !first_stage,
        segment_seconds: state.config.segment_seconds,
        generation: Generation::new(claims),
        folder_cover,
        // The first stage is about a quick first rendition; its follow-up measures.
        analysis: !first_stage,
    };
    let base = track.clone();
    let mut work = tokio::task::spawn_blocking(move || build.build(base));
    let built = loop {
        tokio::select! {
            built = &mut work => break built,
            _ = renew.tick() => {
                if !keep_claim(state, &id, claims).await {
                    return;
                }
            }
            _ = stopped(shutdown) => {
                let grace = state.config.job_shutdown_grace;
                if !grace.is_zero() {
                    tracing::info!(%id, ?grace, "shutting down: finishing the current job first");
                    if let Ok(built) = tokio::time::timeout(grace, &mut work).await {
                        break built;
                    }
                }
                tracing::info!(%id, "shutting down: releasing the current job to another process");
                release(state, &job, Duration::ZERO, None, false).await;
                return;
            }
        }
    };
    let built = match built {
        Ok(built) => built,
        Err(e) => Err(IngestError::Internal(format!(
            "the ingest task failed: {e}"
        ))),
    };
    match built {
        Ok(built) if job.kind == JobKind::Reprocess => {
            let old = (old_duration, old_generation);
            replace(state, &job, built, started, old).await;
        }
        Ok(built) => publish(state, &job, built, started, audio).await,
        Err(err) if err.is_inherent() => {
            tracing::info!(%id, error = %err, "processing failed: the file cannot be processed");
            fail(state, &job, &err.to_string(), Some(err)).await;
        }
        Err(err) => {
            tracing::warn!(%id, error = %err, "processing failed; will retry");
            if job.attempts >= max_attempts {
                fail(state, &job, &err.to_string(), Some(err)).await;
            } else {
                release(state, &job, RETRY_DELAY, Some(&err.to_string()), true).await;
            }
        }
    }
}

async fn publish(state: &Pipeline, job: &Job, built: Built, started: Instant, audio: Spooled) {
    let id = job.track_id;
    let Built {
        track,
        chunks,
        names,
        decode_ms,
        encode_ms,
        analysis,
    } = built;
    match state.store.complete_track(track, chunks).await {
        Ok(track) => {
            let published =
                std::mem::take(&mut *names.lock().unwrap_or_else(PoisonError::into_inner));
            // What earlier attempts of this track left: no longer referenced by anything.
            let source_published = track.source.as_ref().is_some_and(|s| s.remainder.is_some());
            remove_leftovers(state, id, |all| {
                layout::unused(all, &published, source_published)
            })
            .await;
            end_ingest(state, &track, job.claims).await;
            state.jobs.record(started.elapsed().as_secs_f64());
            tracing::info!(%id, claim = job.claims, decode_ms, encode_ms, "job done");
            finished(state, &track, started, audio, analysis);
            state.jobs.announce(id, None);
        }
        Err(StoreError::NotFound(_)) => {
            tracing::info!(%id, "the track was deleted or published elsewhere while processing");
        }
        Err(e) => {
            tracing::warn!(%id, error = %e, "could not store the processed track; will retry");
            release(state, job, RETRY_DELAY, Some(&e.to_string()), true).await;
        }
    }
}

/// Ends a published ingest: its job becomes the follow-up when the settings ask for
/// renditions the first publish left out, and is removed otherwise.
async fn end_ingest(state: &Pipeline, track: &Track, claims: u64) {
    let id = track.id;
    let coming = crate::produce::coming(&state.config, track);
    let ended = if coming.is_empty() {
        state.store.finish_job(&id, claims).await
    } else {
        tracing::info!(%id, ?coming, "playable; a follow-up makes the other renditions");
        let queued = state.store.follow_up_job(&id, claims, now_millis()).await;
        state.jobs.wake();
        queued
    };
    if let Err(e) = ended {
        tracing::warn!(%id, error = %e, "published, but the job could not be ended");
    }
}

/// Publishes a reprocessing: the new generation replaces the old at once; the old one is
/// retired (removed by [`retire_due`] once players holding its playlists are done).
/// `old` is the replaced renditions' duration and generation.
async fn replace(state: &Pipeline, job: &Job, built: Built, started: Instant, old: (f64, u64)) {
    let (old_duration, old_generation) = old;
    let id = job.track_id;
    let Built {
        track,
        chunks,
        analysis,
        ..
    } = built;
    let keep = Duration::from_secs_f64(old_duration.max(0.0)) + state.config.retire_grace;
    let retire_after = now_millis().saturating_add(millis(keep));
    match state
        .store
        .replace_renditions(track, chunks, job.claims, retire_after)
        .await
    {
        Ok(track) => {
            // Attempts of this job that died mid-write (MongoDB stores chunks before the
            // switch) left generations between the old one and ours: never published, so no
            // player holds them. Pieces of a source now kept in the renditions go too (not
            // the folder's cover kept beside them: every processing lays it out).
            let source_published = track.source.as_ref().is_some_and(|s| s.remainder.is_some());
            remove_leftovers(state, id, |all| {
                all.into_iter()
                    .filter(|name| {
                        layout::generation_of(name)
                            .map_or(source_published && name != layout::FOLDER_COVER, |g| {
                                g > old_generation && g < job.claims
                            })
                    })
                    .collect()
            })
            .await;
            if let Some(analysis) = &analysis
                && let Err(e) = state.store.set_analysis(&id, analysis).await
            {
                tracing::warn!(%id, error = %e, "published, but the analysis could not be stored");
            }
            if let Err(e) = state.store.finish_job(&id, job.claims).await {
                tracing::warn!(%id, error = %e, "published, but the job could not be removed");
            }
            state.jobs.record(started.elapsed().as_secs_f64());
            tracing::info!(%id, claim = job.claims, playlist = %track.playlist,
                variants = track.variants.len(), seconds = started.elapsed().as_secs_f64(),
                retire_in_s = keep.as_secs(), "reprocessed: the new renditions are published");
            metrics::histogram!(crate::INGEST_SECONDS, "kind" => "reprocess")
                .record(started.elapsed().as_secs_f64());
            state.jobs.announce(id, None);
        }
        Err(StoreError::NotFound(_)) => {
            tracing::info!(%id, claim = job.claims,
                "the claim was lost or the track deleted while reprocessing; nothing published");
        }
        Err(e) => {
            tracing::warn!(%id, error = %e, "could not store the reprocessed renditions; will retry");
            release(state, job, RETRY_DELAY, Some(&e.to_string()), true).await;
        }
    }
}

/// Removes the chunks of track `id` that `stale` picks from all its chunk names; a failure
/// is logged, not fatal (the chunks are unreferenced either way).
async fn remove_leftovers(
    state: &Pipeline,
    id: TrackId,
    stale: impl FnOnce(Vec<String>) -> Vec<String>,
) {
    match state.store.chunk_names(&id).await {
        Ok(all) => {
            let stale = stale(all);
            if !stale.is_empty() {
                tracing::info!(%id, chunks = stale.len(), "removing chunks of earlier attempts");
                if let Err(e) = state.store.delete_chunks(&id, stale).await {
                    tracing::warn!(%id, error = %e, "could not remove chunks of earlier attempts");
                }
            }
        }
        Err(e) => tracing::warn!(%id, error = %e, "could not list the track's chunks"),
    }
}

/// Removes the renditions reprocessings replaced whose grace period is over; returns how
/// many chunks went. Any process may run it (removing a chunk twice is harmless).
pub(crate) async fn retire_due(state: &Pipeline) -> Result<usize, StoreError> {
    let mut removed = 0;
    for due in state.store.due_retirements(now_millis(), 100).await? {
        let id = due.track_id;
        let old = layout::retired(state.store.chunk_names(&id).await?, due.generation);
        if !old.is_empty() {
            removed += old.len();
            tracing::info!(%id, chunks = old.len(), generation = due.generation,
                "removing the renditions a reprocessing replaced");
            // Forgotten before the delete too: a store may take its time after removing
            // (SQLite gives the space back to the disk), and a cached copy must not outlive
            // the chunks. The epoch guard of the second covers reads racing the delete.
            state.forget(id, &old).await;
            state.store.delete_chunks(&id, old.clone()).await?;
            state.forget(id, &old).await;
        }
        state.store.end_retirement(&id, due.after_ms).await?;
    }
    Ok(removed)
}

/// Runs [`retire_due`] every poll interval until shutdown.
async fn retirer(state: Pipeline, mut shutdown: watch::Receiver<bool>) {
    let every = state
        .config
        .job_poll_interval
        .max(Duration::from_millis(100));
    loop {
        if let Err(e) = retire_due(&state).await {
            tracing::warn!(error = %e, "could not remove replaced renditions; will retry");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Renews the claim's lease; false when the claim is no longer ours (taken over after our
/// lease lapsed, or the job removed): whoever holds it now publishes, and our result would
/// lose the race anyway.
async fn keep_claim(state: &Pipeline, id: &TrackId, claims: u64) -> bool {
    let until = now_millis() + millis(state.config.job_lease);
    match state.store.renew_job(id, claims, until).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(%id, claim = claims, "the job's claim was lost; abandoning this attempt");
            false
        }
        Err(e) => {
            // The lease may still hold; the next renewal tries again.
            tracing::warn!(%id, error = %e, "could not renew the job's lease");
            true
        }
    }
}

/// Resolves once the process is stopping, at once if it already is.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the process is stopping too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn fail(state: &Pipeline, job: &Job, why: &str, err: Option<IngestError>) {
    let id = job.track_id;
    match job.kind {
        JobKind::Ingest => {
            if let Err(e) = state.store.fail_track(&id, why).await {
                tracing::warn!(%id, error = %e, "could not mark the track failed");
            }
        }
        // The track stays as it was, playable on its current renditions; the job keeps the
        // error. Whatever this attempt stored is no use (MongoDB writes chunks before the
        // switch).
        JobKind::Reprocess => {
            tracing::info!(%id, error = why, "reprocessing failed; the track keeps its renditions");
            match state.store.chunk_names(&id).await {
                Ok(all) => {
                    // Claim 1 names the first generation: never a reprocessing's own.
                    let ours = if job.claims > 1 {
                        layout::of_generation(all, job.claims)
                    } else {
                        Vec::new()
                    };
                    if !ours.is_empty()
                        && let Err(e) = state.store.delete_chunks(&id, ours).await
                    {
                        tracing::warn!(%id, error = %e, "could not remove a failed attempt's chunks");
                    }
                }
                Err(e) => tracing::warn!(%id, error = %e, "could not list the track's chunks"),
            }
        }
    }
    if let Err(e) = state.store.fail_job(&id, job.claims, why).await {
        tracing::warn!(%id, error = %e, "could not mark the job failed");
    }
    state.jobs.announce(id, err);
}

async fn release(state: &Pipeline, job: &Job, delay: Duration, error: Option<&str>, counted: bool) {
    let due = now_millis() + millis(delay);
    if let Err(e) = state
        .store
        .release_job(&job.track_id, job.claims, due, error, counted)
        .await
    {
        // The lease runs out by itself: another process takes the job then.
        tracing::warn!(id = %job.track_id, error = %e, "could not release the job");
    }
}

/// The art of the track's folder that its upload carried ([`layout::FOLDER_COVER`]), if it
/// has one: a track without one (most) costs one lookup of a missing chunk. A store that
/// fails here leaves the track without it for this processing, with a warning.
async fn read_folder_cover(state: &Pipeline, track: &Track) -> Option<legato_transcode::Cover> {
    match state
        .store
        .get_stored_chunk(&track.id, layout::FOLDER_COVER)
        .await
    {
        Ok(bytes) => {
            let mime = spool::cover_mime(&bytes)?;
            Some(legato_transcode::Cover {
                mime,
                bytes: bytes.to_vec(),
            })
        }
        Err(StoreError::NotFound(_)) => None,
        Err(e) => {
            tracing::warn!(id = %track.id, error = %e, "could not read the folder's cover");
            None
        }
    }
}

/// The stored source of a track, as the worker processes it: an MP3 in memory (its frames
/// are packaged as they are), anything else copied block by block into a temporary file
/// that the decoder reads as it goes, so memory does not grow with the source's size. An
/// MP3 rebuilt from its segments is checked against the upload's SHA-256.
pub(crate) async fn read_source(state: &Pipeline, track: &Track) -> Result<Spooled, IngestError> {
    use futures_util::TryStreamExt;
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncWriteExt;
    let source = track
        .source
        .as_ref()
        .ok_or(IngestError::SourceUnavailable)?;
    let (_, mut blocks) = crate::source::blocks(state.store.clone(), track.id, source, 0);
    // Into a temporary file, a block at a time, whatever the format: memory does not grow
    // with the source.
    let mut file = tokio::fs::File::from_std(spool::temp_file()?);
    let mut hasher = Sha256::new();
    while let Some(block) = blocks.try_next().await? {
        hasher.update(&block);
        file.write_all(&block).await.map_err(crate::spool_error)?;
    }
    file.flush().await.map_err(crate::spool_error)?;
    if source.remainder.is_some() && hex::encode(hasher.finalize()) != source.sha256 {
        return Err(IngestError::Internal(
            "the MP3 rebuilt from its segments is not the upload (SHA-256 differs)".into(),
        ));
    }
    Spooled::new(file.into_std().await)
}

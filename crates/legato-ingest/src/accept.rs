//! From uploaded bytes to a stored track.
//!
//! Any audio we can decode comes in; what goes out is HLS. An MP3 is kept bit-exact as the
//! `original` rendition; lower rungs of the ladder (and every rung, for other formats) are
//! encoded in-process by `legato-transcode`. All renditions are cut at the same instants, so
//! a player can switch at any segment. A track with one rendition keeps the simple layout
//! (`index.m3u8` is its media playlist); with several, `index.m3u8` is a master playlist.
//!
//! Playable first, richer after. An MP3 is cut into its bit-exact rendition in the request
//! and published at once (`publish_playable`); an upload that must be decoded is stored
//! with a job whose first run publishes one MP3 rung (`first_rungs`). Either way a
//! follow-up job (a reprocessing) then makes what the settings ask for beyond it
//! (`coming`) and publishes it in one switch. The decoding work runs on the blocking pool;
//! if the first rendition is not published within `sync_ingest_seconds` (at once, when the
//! client sent `Prefer: respond-async`), the client gets 202 with the track `processing`.
//! Loudness and waveform are computed after the track is ready, never on the way to the
//! answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use legato_store::{Chunk, ChunkSource, SourceInfo, StoreError, Track, TrackId, TrackStatus};
use legato_transcode::SourceFormat;
use sha2::{Digest, Sha256};

use crate::Pipeline;
use crate::analysis::finished;
use crate::error::IngestError;
use crate::formats::source_format_name;
use crate::layout::{self, Generation};
use crate::now_millis;
use crate::produce::{BuildJob, Built, blocking, coming};
use crate::spool::{Spooled, Upload, clean_text};

pub const DEFAULT_AUTHOR: &str = "Unknown artist";
pub const DEFAULT_NAME: &str = "Untitled";
/// Bytes hashed at a time when an upload is checked.
const HASH_BLOCK_BYTES: usize = 1 << 20;

/// What happened to an upload.
pub enum Outcome {
    /// Stored and ready to stream (201).
    Ready(Track),
    /// Accepted; still processing in the background (202).
    Accepted(Track),
    /// The same bytes are a track already (200): nothing was stored.
    Existing(Track),
}

/// Accepts an upload: probes it, stores it durably with a queued job, then waits up to
/// `sync_ingest_seconds` (not at all with `Prefer: respond-async`) for a worker to finish
/// it. The 202 is answered only once the source is stored, so an accepted upload survives
/// the process.
pub(crate) async fn accept(
    state: &Pipeline,
    upload: Upload,
    respond_async: bool,
) -> Result<Outcome, IngestError> {
    let started = Instant::now();
    let Upload {
        audio,
        name,
        author,
        file_name,
        cover,
    } = upload;
    // Cheap checks first, so that a file we cannot read is refused before anything is stored.
    // The upload stays in its temporary file: only its start, its tags and one block at a
    // time are read.
    let probe_audio = audio.clone();
    let (format, tags, sha256) = blocking(move || {
        let reread = |e: std::io::Error| {
            IngestError::Internal(format!(
                "cannot read the upload back from its temporary file: {e}"
            ))
        };
        let mut reader = probe_audio.reader();
        let format = legato_transcode::detect_reader(&mut reader).map_err(reread)??;
        let tags = legato_transcode::read_tags_from(&mut reader);
        let mut hasher = Sha256::new();
        let mut block = vec![0u8; HASH_BLOCK_BYTES];
        let mut offset = 0u64;
        while offset < probe_audio.len() {
            let n = usize::try_from((probe_audio.len() - offset).min(HASH_BLOCK_BYTES as u64))
                .unwrap_or(HASH_BLOCK_BYTES);
            probe_audio
                .read_at(offset, &mut block[..n])
                .map_err(reread)?;
            hasher.update(&block[..n]);
            offset += n as u64;
        }
        Ok((format, tags, hex::encode(hasher.finalize())))
    })
    .await?;

    // The same bytes uploaded again (a re-run import, a second click) give the track they
    // are already, not a copy. A failed track does not count: uploading again is how one
    // retries. Uploads of one file are stored one at a time in this process, so the same
    // file sent twice at once is found by the second; processes sharing a store do not
    // see each other's uploads in flight.
    let same_file = state.same_file.lock(&sha256).await;
    if let Some(existing) = state.store.find_by_source_sha256(&sha256).await?
        && existing.status != TrackStatus::Failed
    {
        tracing::info!(id = %existing.id, %sha256, "upload is an existing track; nothing stored");
        return Ok(Outcome::Existing(existing));
    }
    // The folder's art sent beside the audio is the track's cover only when the audio has
    // none of its own; kept with the source, as every processing lays the cover out anew.
    let folder_cover = cover.filter(|_| tags.cover.is_none());
    // A processing slot, only for what is stored: an upload answered with its existing
    // track takes none.
    let _permit = state
        .ingests
        .try_acquire()
        .map_err(|_| IngestError::TooManyIngests(state.config.max_concurrent_ingests))?;

    let size = audio.len();
    let pieces =
        usize::try_from(size.div_ceil(layout::SOURCE_PIECE_BYTES as u64)).unwrap_or(usize::MAX);
    let track = Track {
        id: TrackId::generate(),
        name: pick_name(name.as_deref(), tags.title.as_deref(), file_name.as_deref()),
        author: author
            .as_deref()
            .map(clean_text)
            .filter(|a| !a.is_empty())
            .or_else(|| {
                tags.artist
                    .as_deref()
                    .map(clean_text)
                    .filter(|a| !a.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_AUTHOR.to_owned()),
        duration: 0.0,
        segments: 0,
        playlist: legato_store::PLAYLIST_NAMES[0].to_owned(),
        codec: None,
        bitrate: None,
        sample_rate: None,
        channels: None,
        size: Some(size),
        created_at: now_millis(),
        album: tags
            .album
            .as_deref()
            .map(clean_text)
            .filter(|a| !a.is_empty()),
        year: tags.year,
        album_artist: tags
            .album_artist
            .as_deref()
            .map(clean_text)
            .filter(|a| !a.is_empty()),
        genre: tags
            .genre
            .as_deref()
            .map(clean_text)
            .filter(|g| !g.is_empty()),
        track_number: tags.track,
        disc_number: tags.disc,
        status: TrackStatus::Processing,
        error: None,
        variants: Vec::new(),
        cover: None,
        analysis: None,
        source: Some(SourceInfo {
            format: source_format_name(format).to_owned(),
            size,
            sha256,
            file_name: file_name
                .as_deref()
                .map(clean_text)
                .filter(|f| !f.is_empty()),
            pieces: u32::try_from(pieces).unwrap_or(u32::MAX),
            remainder: None,
        }),
    };

    if format == SourceFormat::Mp3 {
        return publish_playable(state, track, audio, folder_cover, started, same_file).await;
    }

    let mut finished = state.jobs.subscribe();
    let source: ChunkSource =
        Box::new(source_pieces(audio).chain(folder_cover_chunk(folder_cover)));
    let pending = state.store.accept_track(track, source).await?;
    drop(same_file);
    let accepted_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(id = %pending.id, format = %format, accepted_ms, "upload stored; processing queued");
    state.jobs.wake();

    let wait = if respond_async {
        Duration::ZERO
    } else {
        state.config.sync_ingest_timeout
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            done = finished.recv() => match done {
                Ok(done) if done.id == pending.id => {
                    if let Some(err) = done.take_error() {
                        // Failed within the wait: answered as an error, and nothing kept, as
                        // for a file refused at once.
                        if let Err(e) = state.store.delete_track(&pending.id).await {
                            tracing::warn!(id = %pending.id, error = %e, "could not remove a failed upload");
                        }
                        return Err(err);
                    }
                    let track = state.store.get_track(&pending.id).await?;
                    return Ok(outcome(track));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            // Another process may have done the work.
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let track = state.store.get_track(&pending.id).await?;
                if track.status != TrackStatus::Processing {
                    return Ok(outcome(track));
                }
            }
        }
    }
    tracing::info!(id = %pending.id, "processing in the background");
    Ok(Outcome::Accepted(pending))
}

/// The upload as source pieces, read piece by piece as the store writes them: one piece in
/// memory at a time.
fn source_pieces(audio: Spooled) -> ChunkSource {
    let size = audio.len();
    let pieces = size.div_ceil(layout::SOURCE_PIECE_BYTES as u64);
    Box::new((0..pieces).map(move |i| {
        let start = i * layout::SOURCE_PIECE_BYTES as u64;
        let len = (size - start).min(layout::SOURCE_PIECE_BYTES as u64);
        let mut piece = vec![0u8; usize::try_from(len).unwrap_or(0)];
        audio.read_at(start, &mut piece).map_err(|e| {
            StoreError::Source(format!(
                "cannot read the upload from its temporary file: {e}"
            ))
        })?;
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        Ok(Chunk::new(layout::source_piece(index), Bytes::from(piece)))
    }))
}

/// The chunk that keeps a folder's art with the source ([`layout::FOLDER_COVER`]), if any.
fn folder_cover_chunk(
    cover: Option<legato_transcode::Cover>,
) -> impl Iterator<Item = Result<Chunk, StoreError>> + Send {
    cover
        .map(|cover| Ok(Chunk::new(layout::FOLDER_COVER.to_owned(), cover.bytes)))
        .into_iter()
}

/// The claim count of an upload's first renditions: they are named as an ingest job's first
/// claim names them (plain names), so a follow-up's claims start after it.
const FIRST_CLAIM: u64 = 1;

/// An MP3 is playable the moment it is stored: its frames are cut into the passthrough
/// rendition in the request (milliseconds, whatever the file's length), and those segments
/// with the remainder that rebuilds the original are its source, written once. Every other
/// rendition the settings ask for is made by a follow-up reprocessing, queued with the track
/// and published into `index.m3u8` at once when it is done.
async fn publish_playable(
    state: &Pipeline,
    track: Track,
    upload: Spooled,
    folder_cover: Option<legato_transcode::Cover>,
    started: Instant,
    same_file: tokio::sync::OwnedMutexGuard<()>,
) -> Result<Outcome, IngestError> {
    let config = &state.config;
    let audio = upload.clone();
    let build = BuildJob {
        audio: audio.clone(),
        ladder: Vec::new(),
        aac_ladder: Vec::new(),
        lossless: false,
        segment_seconds: config.segment_seconds,
        generation: Generation::new(FIRST_CLAIM),
        folder_cover: folder_cover.clone(),
        analysis: false,
    };
    let Built {
        track, mut chunks, ..
    } = blocking(move || build.build(track)).await?;
    if track.source.as_ref().is_some_and(|s| s.remainder.is_none()) {
        // Its segments cannot give the upload back (tags larger than a piece): it is kept
        // whole as well, in pieces.
        chunks = Box::new(chunks.chain(source_pieces(upload)));
    }
    let chunks: ChunkSource = Box::new(chunks.chain(folder_cover_chunk(folder_cover)));
    let follow_up = !coming(config, &track).is_empty();
    let track = if follow_up {
        state
            .store
            .publish_with_follow_up(track, chunks, FIRST_CLAIM)
            .await?
    } else {
        state.store.insert_track(track, chunks).await?
    };
    drop(same_file);
    if follow_up {
        state.jobs.wake();
    }
    tracing::info!(id = %track.id, follow_up, ready_ms = started.elapsed().as_secs_f64() * 1000.0,
        "MP3 stored and playable");
    finished(state, &track, started, audio, None);
    Ok(Outcome::Ready(track))
}

/// Refuses an upload before its body is read when every processing slot of this process is
/// taken, or when the processing queue (shared by every process on the store) is full;
/// `retry_after` is when a place should be free. The slot itself is taken only once the
/// body is in, so a slow sender never holds one.
pub(crate) async fn admit(state: &Pipeline) -> Result<(), IngestError> {
    if state.ingests.available_permits() == 0 {
        return Err(IngestError::TooManyIngests(
            state.config.max_concurrent_ingests,
        ));
    }
    let counts = state.store.job_counts().await?;
    if counts.queued < state.config.max_queued_jobs {
        return Ok(());
    }
    // Jobs ahead of a new one, over the workers known to be busy, times a job's duration.
    let ahead = counts.queued + 1 - state.config.max_queued_jobs;
    let busy = counts.running.max(1) as f64;
    let seconds = (ahead as f64 / busy * state.jobs.average_seconds()).ceil();
    Err(IngestError::QueueFull {
        queued: counts.queued,
        retry_after: (seconds as u64).clamp(1, 3600),
    })
}

fn outcome(track: Track) -> Outcome {
    if track.status == TrackStatus::Ready {
        Outcome::Ready(track)
    } else {
        Outcome::Accepted(track)
    }
}

/// Serialises uploads of the same bytes (by SHA-256) within this process: the second waits
/// until the first is stored, then finds it and is answered with it. Uploads of different
/// files never wait on each other. Processes sharing a store do not see each other's locks.
#[derive(Default)]
pub(crate) struct SameFile {
    held: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    >,
}

impl SameFile {
    /// Waits for the other uploads of this file to be stored; the guard lets the next one in.
    pub(crate) async fn lock(&self, sha256: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut held = self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget the files no upload holds any more.
            held.retain(|_, lock| lock.strong_count() > 0);
            match held.get(sha256).and_then(std::sync::Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    held.insert(sha256.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

fn pick_name(name: Option<&str>, title: Option<&str>, file_name: Option<&str>) -> String {
    let given = name.map(clean_text).filter(|n| !n.is_empty());
    given
        .or_else(|| title.map(clean_text).filter(|n| !n.is_empty()))
        .or_else(|| {
            let stem = file_name
                .and_then(|f| std::path::Path::new(f).file_stem())
                .and_then(|s| s.to_str())
                .map(clean_text)?;
            (!stem.is_empty()).then_some(stem)
        })
        .unwrap_or_else(|| DEFAULT_NAME.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_uploader_then_tags_then_the_file_name() {
        assert_eq!(
            pick_name(Some(" Song "), Some("Tag"), Some("x.mp3")),
            "Song"
        );
        assert_eq!(pick_name(Some("  "), Some("Tag"), Some("x.mp3")), "Tag");
        assert_eq!(pick_name(None, None, Some("dir/My Song.mp3")), "My Song");
        assert_eq!(pick_name(None, None, None), DEFAULT_NAME);
    }
}

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

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use legato_media::fmp4::{Cut, Fmp4Track};
use legato_media::original::Remainder;
use legato_media::{
    Package, READ_WINDOW_BYTES, SegmentOptions, VariantEntry, master_playlist, package_mp3,
    package_mp3_like, package_mp3_read,
};
use legato_store::{
    Analysis, Chunk, ChunkSource, SourceInfo, StoreError, Track, TrackId, TrackStatus, Variant,
};
use legato_transcode::{Fmp4Options, LadderOptions, Progress, SourceFormat};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::layout::{self, Generation};
use crate::state::AppState;
use crate::upload::{Spooled, Upload, clean_text};

pub const DEFAULT_AUTHOR: &str = "Unknown artist";
pub const DEFAULT_NAME: &str = "Untitled";
/// The rendition that is an MP3 upload's own frames.
const ORIGINAL: &str = "original";
/// The one rendition made of a non-MP3 upload when no ladder is configured.
const FALLBACK_KBPS: u32 = 192;
/// Bytes hashed at a time when an upload is checked.
const HASH_BLOCK_BYTES: usize = 1 << 20;
/// Waveform points computed per track.
const WAVEFORM_POINTS: usize = 400;

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
pub async fn ingest(
    state: &AppState,
    upload: Upload,
    respond_async: bool,
) -> Result<Outcome, ApiError> {
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
            ApiError::Internal(format!(
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
        Ok((format, tags, hex(&hasher.finalize())))
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
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyIngests(state.config.max_concurrent_ingests))?;

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
    state: &AppState,
    track: Track,
    upload: Spooled,
    folder_cover: Option<legato_transcode::Cover>,
    started: Instant,
    same_file: tokio::sync::OwnedMutexGuard<()>,
) -> Result<Outcome, ApiError> {
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
    finished(state, &track, started, audio);
    Ok(Outcome::Ready(track))
}

/// The renditions the settings ask for that a ready track does not have yet: what a
/// follow-up reprocessing of it makes. An MP3 ladder rung is named by its bitrate (`128k`),
/// an AAC rung `aac128k`, the lossless rung `flac`.
pub(crate) fn coming(config: &crate::config::HttpConfig, track: &Track) -> Vec<String> {
    let format = track
        .source
        .as_ref()
        .and_then(|s| source_format_of(&s.format))
        .unwrap_or(SourceFormat::Mp3);
    let lossless_source = matches!(
        format,
        SourceFormat::Wav | SourceFormat::Aiff | SourceFormat::Flac
    );
    // An MP3 gets the rungs below its own bitrate; it is the rung above them.
    let mp3_source_kbps = (format == SourceFormat::Mp3)
        .then_some(track.bitrate)
        .flatten();
    let mut planned: Vec<String> = config
        .ladder_kbps
        .iter()
        .filter(|&&kbps| mp3_source_kbps.is_none_or(|source| kbps < source))
        .map(|kbps| format!("{kbps}k"))
        .collect();
    planned.extend(
        aac_rungs_for(&config.aac_ladder_kbps, format, track.bitrate)
            .iter()
            .map(|kbps| format!("aac{kbps}k")),
    );
    if config.lossless && lossless_source {
        planned.push("flac".into());
    }
    planned.dedup();
    planned.retain(|name| !track.variants.iter().any(|v| &v.name == name));
    if track.variants.is_empty() && format != SourceFormat::Mp3 {
        // One rendition, named by no variant: the first rung of a decoded upload.
        let first: Vec<String> = first_rungs(config)
            .iter()
            .map(|kbps| format!("{kbps}k"))
            .collect();
        planned.retain(|name| !first.contains(name));
    }
    planned
}

/// The first rendition of an upload that must be decoded (WAV, FLAC, AAC, Vorbis): one MP3
/// rung, what every HLS player plays, encoded from one decode: the ladder's rung nearest
/// 128 kbit/s from below (its lowest when every rung is above). Without a ladder, the
/// fallback rung. Its follow-up makes the rest.
pub(crate) fn first_rungs(config: &crate::config::HttpConfig) -> Vec<u32> {
    let ladder = &config.ladder_kbps;
    ladder
        .iter()
        .copied()
        .filter(|&kbps| kbps <= 128)
        .max()
        .or_else(|| ladder.iter().copied().min())
        .into_iter()
        .collect()
}

/// Refuses an upload when the processing queue (shared by every process on the store) is
/// full, before its body is read; `Retry-After` is when a place should be free.
pub async fn admit(state: &AppState) -> Result<(), ApiError> {
    let counts = state.store.job_counts().await?;
    if counts.queued < state.config.max_queued_jobs {
        return Ok(());
    }
    // Jobs ahead of a new one, over the workers known to be busy, times a job's duration.
    let ahead = counts.queued + 1 - state.config.max_queued_jobs;
    let busy = counts.running.max(1) as f64;
    let seconds = (ahead as f64 / busy * state.jobs.average_seconds()).ceil();
    Err(ApiError::QueueFull {
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

/// The format a track's source description names.
fn source_format_of(name: &str) -> Option<SourceFormat> {
    [
        SourceFormat::Mp3,
        SourceFormat::Wav,
        SourceFormat::Flac,
        SourceFormat::OggVorbis,
        SourceFormat::Mp4Aac,
        SourceFormat::Adts,
        SourceFormat::Aiff,
        SourceFormat::OggOpus,
        SourceFormat::Matroska,
    ]
    .into_iter()
    .find(|format| source_format_name(*format) == name)
}

/// The short name of a source format, as the track JSON and the download use it.
pub fn source_format_name(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::Mp3 => "mp3",
        SourceFormat::Wav => "wav",
        SourceFormat::Flac => "flac",
        SourceFormat::OggVorbis => "ogg",
        SourceFormat::Mp4Aac => "mp4",
        SourceFormat::Adts => "aac",
        SourceFormat::Aiff => "aiff",
        SourceFormat::OggOpus => "opus",
        SourceFormat::Matroska => "webm",
    }
}

/// The MIME type of a source format name.
pub fn source_content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "mp4" => "audio/mp4",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "opus" => "audio/ogg",
        "webm" => "audio/webm",
        _ => "application/octet-stream",
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Logs the ingest, records its duration, and starts the analysis in the background.
pub(crate) fn finished(state: &AppState, track: &Track, started: Instant, audio: Spooled) {
    let kind = if track.variants.is_empty() {
        "single"
    } else {
        "ladder"
    };
    metrics::histogram!(crate::metrics::INGEST_SECONDS, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        id = %track.id,
        segments = track.segments,
        variants = track.variants.len(),
        duration_s = track.duration,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "ingested"
    );
    let state = state.clone();
    let id = track.id;
    tokio::spawn(async move {
        // One analysis at a time: it decodes the whole file again.
        let Ok(_permit) = state.analyses.clone().acquire_owned().await else {
            return;
        };
        let analyzed = tokio::task::spawn_blocking(move || {
            legato_transcode::analyze_file(audio.file(), WAVEFORM_POINTS)
        })
        .await;
        match analyzed {
            Ok(Ok(a)) => {
                let analysis = Analysis {
                    loudness_lufs: a.loudness_lufs.filter(|v| v.is_finite()),
                    true_peak_dbtp: a.true_peak_dbtp.filter(|v| v.is_finite()),
                    peaks: a.peaks,
                };
                if let Err(e) = state.store.set_analysis(&id, &analysis).await {
                    tracing::debug!(%id, error = %e, "analysis not stored (track gone?)");
                }
            }
            Ok(Err(e)) => tracing::info!(%id, error = %e, "no analysis for this track"),
            Err(e) => tracing::warn!(%id, error = %e, "the analysis task failed"),
        }
    });
}

/// A track's source while it is processed, in a temporary file (the upload's spool, or
/// read back from the store by [`crate::jobs::read_source`]), read as decoding goes.
impl Spooled {
    /// The format, from the bytes.
    fn detect(&self) -> Result<SourceFormat, ApiError> {
        Ok(legato_transcode::detect_reader(&mut self.reader()).map_err(unreadable)??)
    }

    fn tags(&self) -> legato_transcode::Tags {
        legato_transcode::read_tags_from(&mut self.reader())
    }

    /// The bytes, read into memory.
    fn into_bytes(self) -> Result<Arc<Vec<u8>>, ApiError> {
        let mut data = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut self.reader(), &mut data).map_err(unreadable)?;
        Ok(Arc::new(data))
    }
}

fn unreadable(err: std::io::Error) -> ApiError {
    ApiError::Transcode(legato_transcode::TranscodeError::Io(err.to_string()))
}

/// The CPU-bound part of processing, run on the blocking pool: plan the renditions from
/// the probed input, produce them, lay them out as chunks.
pub(crate) struct BuildJob {
    pub audio: Spooled,
    pub ladder: Vec<u32>,
    /// AAC-LC rungs (fMP4), kbit/s.
    pub aac_ladder: Vec<u32>,
    /// Whether to make a lossless FLAC rung (fMP4) of a lossless upload.
    pub lossless: bool,
    pub segment_seconds: f64,
    pub generation: Generation,
    /// The art of the upload's folder ([`layout::FOLDER_COVER`]): the cover when the audio
    /// has none in its tags.
    pub folder_cover: Option<legato_transcode::Cover>,
}

/// What a build made: the track to publish and its chunks, produced lazily; `names`
/// fills up with the name of each chunk as the store pulls it.
pub(crate) struct Built {
    pub track: Track,
    pub chunks: ChunkSource,
    pub names: Arc<std::sync::Mutex<Vec<String>>>,
    pub decode_ms: f64,
    pub encode_ms: f64,
}

/// One rendition ready to be stored.
struct Rendition {
    name: String,
    mp3: RungBytes,
    package: Package,
}

/// One fragmented-MP4 rendition ready to be stored: an AAC-LC rung or the lossless FLAC one.
struct Fmp4Rendition {
    /// `aac128k` or `flac`.
    name: String,
    /// Average kbit/s.
    bitrate_kbps: u32,
    track: Fmp4Track,
    /// The coded frames `track` describes: an uploaded FLAC in memory, or an encoder's
    /// output in its temporary file, read back a segment at a time.
    frames: RungBytes,
}

impl Fmp4Rendition {
    fn codecs(&self) -> &'static str {
        self.track.info().codec.codecs()
    }
}

/// The AAC-LC rungs worth making of a source: all of `ladder` for a lossless one; for a
/// lossy one those at or below its bitrate (a rung above it would spend bits on the
/// source's artefacts), and the lowest whatever the source's bitrate.
pub(crate) fn aac_rungs_for(
    ladder: &[u32],
    format: SourceFormat,
    source_kbps: Option<u32>,
) -> Vec<u32> {
    let mut rungs = ladder.to_vec();
    rungs.sort_unstable();
    rungs.dedup();
    let lossless = matches!(
        format,
        SourceFormat::Wav | SourceFormat::Aiff | SourceFormat::Flac
    );
    match source_kbps {
        Some(kbps) if !lossless => {
            let lowest = rungs.first().copied();
            rungs.retain(|&r| r <= kbps);
            if rungs.is_empty() {
                rungs.extend(lowest);
            }
            rungs
        }
        _ => rungs,
    }
}

/// Where a rendition's coded frames are (MP3, or AAC/FLAC for an fMP4 rung): the upload (or
/// a rung of an MP3 upload) in memory; an encoded rung in the temporary file it was written
/// to as it was encoded, read back a window or a segment at a time, so that memory does not
/// grow with the track's length.
#[derive(Clone)]
enum RungBytes {
    Memory(Arc<Vec<u8>>),
    File { file: Arc<std::fs::File>, len: u64 },
}

impl RungBytes {
    /// An MP3 upload's own frames, where the upload is.
    fn of_source(audio: &Spooled) -> Self {
        RungBytes::File {
            file: audio.shared_file(),
            len: audio.len(),
        }
    }

    fn len(&self) -> u64 {
        match self {
            RungBytes::Memory(data) => data.len() as u64,
            RungBytes::File { len, .. } => *len,
        }
    }

    /// Scans and plans the MP3, cut like `reference` when there is one.
    fn package(
        &self,
        reference: Option<&Package>,
        options: &SegmentOptions,
    ) -> Result<Package, ApiError> {
        match (self, reference) {
            (RungBytes::Memory(data), None) => Ok(package_mp3(data, options)?),
            (RungBytes::Memory(data), Some(reference)) => {
                Ok(package_mp3_like(data, reference, options)?)
            }
            (RungBytes::File { file, len }, reference) => {
                let len = usize::try_from(*len)
                    .map_err(|_| ApiError::Internal("an encoded rung is too large".into()))?;
                let mut read = |range| read_range(file, range).map_err(unreadable);
                package_mp3_read(len, READ_WINDOW_BYTES, &mut read, reference, options)
            }
        }
    }

    /// The segments of `package` (made from these bytes), muxed as the store pulls them.
    fn into_segments(
        self,
        package: Package,
    ) -> Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>> + Send> {
        match self {
            RungBytes::Memory(data) => Box::new(package.into_segments(ArcBytes(data)).map(Ok)),
            file @ RungBytes::File { .. } => Box::new(
                package.into_segments_read(move |range| file.window(range).map(Cow::into_owned)),
            ),
        }
    }

    /// Bytes `range` of the frames: borrowed from memory, read back from the temporary file.
    fn window(&self, range: std::ops::Range<usize>) -> Result<Cow<'_, [u8]>, StoreError> {
        match self {
            RungBytes::Memory(data) => data
                .get(range)
                .map(Cow::Borrowed)
                .ok_or_else(|| StoreError::Source("a segment lies outside its rendition".into())),
            RungBytes::File { file, .. } => read_range(file, range).map(Cow::Owned).map_err(|e| {
                StoreError::Source(format!(
                    "cannot read an encoded rung back from its temporary file: {e}"
                ))
            }),
        }
    }
}

/// Bytes `range` of `file`, with a positioned read (the file is shared).
fn read_range(file: &std::fs::File, range: std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; range.len()];
    file.read_exact_at(&mut bytes, range.start as u64)?;
    Ok(bytes)
}

/// What the source is, as the track describes it.
struct SourceDescription {
    codec: String,
    sample_rate: u32,
    channels: u8,
    bitrate_kbps: Option<u32>,
}

impl BuildJob {
    pub fn build(self, mut track: Track) -> Result<Built, ApiError> {
        let options = SegmentOptions {
            target_seconds: self.segment_seconds,
        };
        let format = self.audio.detect()?;
        let tags = self.audio.tags();
        let size = self.audio.len();
        let id = track.id;
        // An MP3's frames are packaged as they are, read a window at a time from where the
        // upload is; anything else is decoded from there.
        let audio = self.audio;
        let mp3 = (format == SourceFormat::Mp3).then(|| RungBytes::of_source(&audio));

        // Plan: without a ladder an MP3 is only repackaged; anything else needs one rendition.
        let rungs_kbps = match (self.ladder.is_empty(), format) {
            (true, SourceFormat::Mp3) => Vec::new(),
            (true, _) => vec![FALLBACK_KBPS],
            (false, _) => self.ladder.clone(),
        };

        // Produce. The reference rendition (first) sets the cut points: the original when
        // there is one.
        let mut renditions = Vec::new();
        let (source, decode_ms, encode_ms) = if let (true, Some(mp3)) =
            (rungs_kbps.is_empty(), &mp3)
        {
            let package = mp3.package(None, &options)?;
            let info = package.info();
            let source = SourceDescription {
                codec: "mp3".into(),
                sample_rate: info.sample_rate,
                channels: info.channels,
                bitrate_kbps: Some(info.bitrate_kbps),
            };
            renditions.push(Rendition {
                name: ORIGINAL.into(),
                mp3: mp3.clone(),
                package,
            });
            (source, 0.0, 0.0)
        } else {
            let last_logged = std::sync::Mutex::new(Instant::now());
            let progress = move |p: Progress| {
                if let Ok(mut last) = last_logged.lock()
                    && last.elapsed() >= Duration::from_secs(5)
                {
                    *last = Instant::now();
                    tracing::info!(%id, stage = ?p.stage, percent = (p.fraction * 100.0).round(), "ingest progress");
                }
            };
            let ladder = LadderOptions { rungs_kbps };
            // The file is decoded as it is read, and its rungs are written to temporary files
            // as they are encoded.
            let spill = tempfile::tempfile;
            let mut transcoded =
                legato_transcode::transcode_file_spilled(audio.file(), &ladder, &progress, &spill)?
                    .map_rungs(|rung| {
                        let file = Arc::new(rung.file);
                        Ok((
                            rung.name,
                            RungBytes::File {
                                file,
                                len: rung.len,
                            },
                        ))
                    })?;
            let rungs = std::mem::take(&mut transcoded.rungs);
            if let (true, Some(mp3)) = (transcoded.keep_original, &mp3) {
                let mp3 = mp3.clone();
                let package = mp3.package(None, &options)?;
                renditions.push(Rendition {
                    name: ORIGINAL.into(),
                    mp3,
                    package,
                });
            }
            // The highest rung is the reference when there is no original.
            for (name, mp3) in rungs.into_iter().rev() {
                let package = mp3.package(renditions.first().map(|r| &r.package), &options)?;
                renditions.push(Rendition { name, mp3, package });
            }
            if renditions.is_empty() {
                return Err(ApiError::Internal(
                    "the transcoder produced no rendition".into(),
                ));
            }
            let info = &transcoded.source;
            let source = SourceDescription {
                codec: info.codec.clone(),
                sample_rate: info.sample_rate,
                channels: info.channels,
                bitrate_kbps: info.bitrate_kbps,
            };
            (source, transcoded.decode_ms, transcoded.encode_ms)
        };

        // The fMP4 rungs are cut where the reference's segments end, so a player switches
        // between any two renditions at the same instants (within a frame).
        let instants =
            legato_media::cmaf_plan::instants_of(&renditions[0].package.segment_durations());
        let fmp4 = fmp4_renditions(
            &audio,
            format,
            source.bitrate_kbps,
            &self.aac_ladder,
            self.lossless,
            &instants,
        )?;
        let reference_info = renditions[0].package.info().clone();
        track.duration = reference_info.duration;
        track.segments = u32::try_from(renditions[0].package.segment_count()).unwrap_or(u32::MAX);
        track.codec = Some(source.codec);
        track.bitrate = source.bitrate_kbps.or(Some(reference_info.bitrate_kbps));
        track.sample_rate = Some(source.sample_rate);
        track.channels = Some(source.channels);
        track.size = Some(size);
        track.status = TrackStatus::Ready;
        track.error = None;
        // A reprocessing fills in what tags an older version did not read (album artist,
        // genre, track and disc numbers); what the track has is kept.
        track.album = track.album.or_else(|| tags.album.clone());
        track.year = track.year.or(tags.year);
        track.album_artist = track.album_artist.or_else(|| tags.album_artist.clone());
        track.genre = track.genre.or_else(|| tags.genre.clone());
        track.track_number = track.track_number.or(tags.track);
        track.disc_number = track.disc_number.or(tags.disc);
        // Lowest bandwidth first in the master playlist.
        renditions.sort_by_key(|r| r.package.info().bitrate_kbps);

        // Lay out.
        let cover = tags.cover.or(self.folder_cover);
        let chunks = lay_out(&mut track, renditions, fmp4, cover, &self.generation);
        if let Some(kept) = track.source.as_ref().and_then(|s| s.remainder.as_ref())
            && *kept != self.generation.remainder()
        {
            // The source lives in the renditions being replaced: publishing would lose it.
            return Err(ApiError::Internal(
                "the new renditions cannot keep this MP3's source; the track is left as it is"
                    .into(),
            ));
        }
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = names.clone();
        let chunks: ChunkSource = Box::new(chunks.inspect(move |chunk| {
            if let (Ok(chunk), Ok(mut names)) = (chunk, recorded.lock()) {
                names.push(chunk.name.clone());
            }
        }));
        Ok(Built {
            track,
            chunks,
            names,
            decode_ms,
            encode_ms,
        })
    }
}

/// The fMP4 renditions of a source: AAC-LC rungs (from one more decode) and, for a lossless
/// upload, the FLAC rung (a FLAC upload's own frames, bit-exact; WAV/AIFF encoded
/// losslessly). Ascending by bitrate, FLAC last. A source the fMP4 side cannot take (a FLAC
/// file our frame scanner refuses, say) keeps its MP3 renditions: the rung is left out with a
/// warning rather than failing a track that plays.
fn fmp4_renditions(
    audio: &Spooled,
    format: SourceFormat,
    source_kbps: Option<u32>,
    aac_ladder: &[u32],
    lossless: bool,
    instants: &[f64],
) -> Result<Vec<Fmp4Rendition>, ApiError> {
    let aac_rungs = aac_rungs_for(aac_ladder, format, source_kbps);
    let own_flac = lossless && format == SourceFormat::Flac;
    let options = Fmp4Options {
        aac_rungs_kbps: aac_rungs,
        lossless: lossless && !own_flac,
    };
    let mut out = Vec::new();
    let encodes_flac = options.lossless && matches!(format, SourceFormat::Wav | SourceFormat::Aiff);
    if !options.aac_rungs_kbps.is_empty() || encodes_flac {
        // Each rendition goes to a temporary file as it is encoded, so memory does not grow
        // with the track's length (the MP3 rungs do the same).
        let spill = tempfile::tempfile;
        let encoded = legato_transcode::transcode_fmp4_file_spilled(audio.file(), &options, &spill);
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) if e.is_input_error() => {
                tracing::warn!(error = %e, "no AAC or FLAC renditions: the fMP4 encoder refused this source");
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        };
        for aac in encoded.aac {
            let track = legato_media::fmp4::aac_track(
                aac.audio_specific_config,
                aac.sample_rate,
                aac.channels,
                &aac.frame_lens,
                aac.priming,
                aac.valid_samples,
                aac.bitrate_kbps,
                Cut::At(instants),
            )?;
            out.push(Fmp4Rendition {
                name: format!("aac{}k", aac.bitrate_kbps),
                bitrate_kbps: aac.bitrate_kbps,
                track,
                frames: RungBytes::File {
                    file: Arc::new(aac.data.file),
                    len: aac.data.len,
                },
            });
        }
        if let Some(flac) = encoded.flac {
            out.push(encoded_flac_rendition(flac, instants)?);
        }
    }
    if own_flac {
        let data = audio.clone().into_bytes()?;
        out.extend(flac_rendition(data, instants));
    }
    Ok(out)
}

/// The lossless rung of a WAV/AIFF encoded to FLAC: the encoder told where its frames are.
fn encoded_flac_rendition(
    flac: legato_transcode::FlacRung<legato_transcode::SpilledData>,
    instants: &[f64],
) -> Result<Fmp4Rendition, ApiError> {
    let legato_transcode::FlacRung { data: flac, layout } = flac;
    let Some(stream_info) = legato_media::flac::StreamInfo::parse(&layout.stream_info) else {
        return Err(ApiError::Internal(
            "the FLAC encoder wrote a STREAMINFO we cannot read".into(),
        ));
    };
    let mut frames = Vec::with_capacity(layout.frame_lens.len());
    let mut at = layout.header_len;
    for &len in &layout.frame_lens {
        frames.push(at..at + len as usize);
        at += len as usize;
    }
    let data_len = usize::try_from(flac.len)
        .map_err(|_| ApiError::Internal("an encoded rung is too large".into()))?;
    let track = legato_media::fmp4::flac_frames_track(
        stream_info,
        frames,
        layout.frame_samples.clone(),
        data_len,
        Cut::At(instants),
    )?;
    Ok(Fmp4Rendition {
        name: "flac".into(),
        bitrate_kbps: track.info().avg_bitrate / 1000,
        track,
        frames: RungBytes::File {
            file: Arc::new(flac.file),
            len: flac.len,
        },
    })
}

/// The lossless rung of a FLAC stream's frames; `None` (with a warning) if they cannot be
/// carried.
fn flac_rendition(data: Arc<Vec<u8>>, instants: &[f64]) -> Option<Fmp4Rendition> {
    match legato_media::fmp4::flac_track(&data, Cut::At(instants)) {
        Ok(track) => {
            let kbps = track.info().avg_bitrate / 1000;
            Some(Fmp4Rendition {
                name: "flac".into(),
                bitrate_kbps: kbps,
                track,
                frames: RungBytes::Memory(data),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "no lossless rendition: the FLAC frames cannot be carried");
            None
        }
    }
}

/// The chunks of a track's renditions, named by `generation`; fills in the track's
/// playlist, variants and cover.
fn lay_out(
    track: &mut Track,
    mut renditions: Vec<Rendition>,
    fmp4: Vec<Fmp4Rendition>,
    cover: Option<legato_transcode::Cover>,
    generation: &Generation,
) -> ChunkSource {
    let mut chunks: Vec<ChunkSource> = Vec::new();
    track.playlist = generation.playlist();
    track.variants = Vec::new();
    track.cover = None;
    if let Some(cover) = cover {
        let name = generation.cover(cover.mime);
        track.cover = Some(name.clone());
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(name, cover.bytes)))));
    }
    if renditions.len() == 1 && fmp4.is_empty() {
        let only = renditions.remove(0);
        let names = generation.clone();
        let segments = (0..only.package.segment_count()).map(|i| names.segment(i));
        chunks.extend(source_in_segments(
            track,
            &only,
            segments.collect(),
            generation,
        ));
        let playlist = only.package.media_playlist(&|i| names.segment(i));
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
            track.playlist.clone(),
            playlist,
        )))));
        let names = generation.clone();
        chunks.push(Box::new(
            only.mp3
                .into_segments(only.package)
                .enumerate()
                .map(move |(i, bytes)| Ok(Chunk::new(names.segment(i), bytes?))),
        ));
    } else {
        let mut entries = Vec::new();
        let mut media = Vec::new();
        for rendition in renditions {
            let (bandwidth, average_bandwidth) = rendition.package.bandwidths();
            let playlist_name = generation.variant_playlist(&rendition.name);
            let names = generation.clone();
            let rung = rendition.name.clone();
            let playlist = rendition
                .package
                .media_playlist(&|i| names.variant_segment(&rung, i));
            let segments = (0..rendition.package.segment_count())
                .map(|i| names.variant_segment(&rung, i))
                .collect();
            media.extend(source_in_segments(track, &rendition, segments, generation));
            entries.push(VariantEntry {
                uri: playlist_name.clone(),
                bandwidth,
                average_bandwidth,
                codecs: legato_media::CODECS_MP3.to_owned(),
            });
            track.variants.push(Variant {
                name: rendition.name.clone(),
                bitrate: rendition.package.info().bitrate_kbps,
                bandwidth,
                average_bandwidth,
                codecs: legato_media::CODECS_MP3.to_owned(),
                playlist: playlist_name.clone(),
            });
            media.push(
                Box::new(std::iter::once(Ok(Chunk::new(playlist_name, playlist)))) as ChunkSource,
            );
            media.push(Box::new(
                rendition
                    .mp3
                    .into_segments(rendition.package)
                    .enumerate()
                    .map(move |(i, bytes)| Ok(Chunk::new(names.variant_segment(&rung, i), bytes?))),
            ));
        }
        // Standards players pick from the AAC rungs and the lossless one first (Apple's
        // authoring spec has no MP3; video.js refuses it); MP3 comes last. Legacy players
        // get the MP3 rungs alone (`mp3.m3u8`, which `outputlist.m3u8` answers).
        let mut every = Vec::new();
        for rendition in fmp4 {
            every.push(lay_out_fmp4(track, rendition, generation, &mut media));
        }
        if !every.is_empty() {
            chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
                generation.mp3_playlist(),
                master_playlist(&entries),
            )))));
        }
        every.extend(entries);
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
            track.playlist.clone(),
            master_playlist(&every),
        )))));
        chunks.extend(media);
    }
    Box::new(chunks.into_iter().flatten())
}

/// The chunks of one fMP4 rendition (init segment, media playlist, media segments written
/// as the store pulls them) into `media`; records the variant on the track and returns its
/// master playlist entry.
fn lay_out_fmp4(
    track: &mut Track,
    rendition: Fmp4Rendition,
    generation: &Generation,
    media: &mut Vec<ChunkSource>,
) -> VariantEntry {
    let name = rendition.name.clone();
    let codecs = rendition.codecs().to_owned();
    let (bandwidth, average_bandwidth) = rendition.track.bandwidths().unwrap_or_default();
    let playlist_name = generation.variant_playlist(&name);
    let init_name = generation.fmp4_init(&name);
    let playlist = rendition
        .track
        .media_playlist(&init_name, &|i| generation.fmp4_segment(&name, i));
    track.variants.push(Variant {
        name: name.clone(),
        bitrate: rendition.bitrate_kbps,
        bandwidth,
        average_bandwidth,
        codecs: codecs.clone(),
        playlist: playlist_name.clone(),
    });
    let init = rendition.track.init_segment();
    media.push(Box::new(std::iter::once(
        init.map(|bytes| Chunk::new(init_name, bytes))
            .map_err(|e| StoreError::Source(format!("cannot write an init segment: {e}"))),
    )));
    media.push(Box::new(std::iter::once(Ok(Chunk::new(
        playlist_name.clone(),
        playlist,
    )))));
    let names = generation.clone();
    let Fmp4Rendition {
        track: fmp4_track,
        frames,
        ..
    } = rendition;
    media.push(Box::new((0..fmp4_track.segment_count()).map(move |i| {
        let outside = || StoreError::Source("an fMP4 segment lies outside its frames".into());
        let window = frames.window(fmp4_track.segment_byte_range(i).ok_or_else(outside)?)?;
        fmp4_track
            .media_segment_window(&window, i)
            .map(|bytes| Chunk::new(names.fmp4_segment(&name, i), bytes))
            .ok_or_else(outside)
    })));
    VariantEntry {
        uri: playlist_name,
        bandwidth,
        average_bandwidth,
        codecs,
    }
}

/// For the `original` rendition of an MP3: the source is kept as these segments plus a
/// remainder chunk (its tags and whatever else is not a frame), so its audio is not stored
/// twice; the track's source then names the remainder (see [`legato_media::original`]).
/// `None` for any other rendition, or when the remainder would be larger than a source piece.
fn source_in_segments(
    track: &mut Track,
    rendition: &Rendition,
    segments: Vec<String>,
    generation: &Generation,
) -> Option<ChunkSource> {
    let source = track.source.as_mut()?;
    if rendition.name != ORIGINAL || source.format != "mp3" {
        return None;
    }
    let len = usize::try_from(rendition.mp3.len()).ok()?;
    // Tags larger than a piece (a huge cover) leave the source to be stored in pieces.
    let remainder = Remainder::of_read(
        len,
        &rendition.package,
        segments,
        layout::SOURCE_PIECE_BYTES,
        &mut |range| rendition.mp3.window(range).ok().map(Cow::into_owned),
    )?;
    let bytes = remainder.to_bytes();
    if remainder.len != source.size || bytes.len() > layout::SOURCE_PIECE_BYTES {
        return None;
    }
    let name = generation.remainder();
    source.pieces = 0;
    source.remainder = Some(name.clone());
    Some(Box::new(std::iter::once(Ok(Chunk::new(name, bytes)))))
}

/// Shared audio bytes for the lazy segment muxer.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("an ingest task failed: {e}")))?
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

/// Milliseconds since the Unix epoch, as tracks record `created_at`.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

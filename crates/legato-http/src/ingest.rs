//! From uploaded bytes to a stored track.
//!
//! Any audio we can decode comes in; what goes out is HLS. An MP3 is kept bit-exact as the
//! `original` rendition; lower rungs of the ladder (and every rung, for other formats) are
//! encoded in-process by `legato-transcode`. All renditions are cut at the same instants, so
//! a player can switch at any segment. A track with one rendition keeps the simple layout
//! (`index.m3u8` is its media playlist); with several, `index.m3u8` is a master playlist.
//!
//! The work runs on the blocking pool. If it is not done within `sync_ingest_seconds` (at
//! once, when the client sent `Prefer: respond-async`), the track is recorded as
//! `processing`, the client gets 202, and the work finishes in the background, turning the
//! track `ready` or `failed`. Loudness and waveform are computed after the track is ready,
//! never on the way to the answer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use legato_media::{
    Package, SegmentOptions, VariantEntry, master_playlist, package_mp3, package_mp3_like,
    segment_name,
};
use legato_store::{Analysis, Chunk, ChunkSource, Track, TrackId, TrackStatus, Variant};
use legato_transcode::{LadderOptions, Progress, SourceFormat, SourceInfo, Tags, Transcoded};

use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::{Upload, clean_text};

pub const DEFAULT_AUTHOR: &str = "Unknown artist";
pub const DEFAULT_NAME: &str = "Untitled";
/// RFC 6381 codec of MPEG-1/2 Layer III audio in HLS.
const MP3_CODECS: &str = "mp4a.40.34";
/// The one rendition made of a non-MP3 upload when no ladder is configured.
const FALLBACK_KBPS: u32 = 192;
/// Waveform points computed per track.
const WAVEFORM_POINTS: usize = 400;

/// What happened to an upload.
pub enum Outcome {
    /// Stored and ready to stream (201).
    Ready(Track),
    /// Accepted; still processing in the background (202).
    Accepted(Track),
}

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
    } = upload;
    let audio = Arc::new(audio);

    // Cheap checks first, so that a file we cannot read is refused before any 202.
    let probe_audio = audio.clone();
    let (format, tags) = blocking(move || {
        let format = legato_transcode::detect(&probe_audio)?;
        Ok((format, legato_transcode::read_tags(&probe_audio)))
    })
    .await?;

    let cover = tags.cover.as_ref().map(|c| {
        if c.mime == "image/png" {
            "cover.png"
        } else {
            "cover.jpg"
        }
        .to_owned()
    });
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
        size: None,
        created_at: now_millis(),
        album: tags
            .album
            .as_deref()
            .map(clean_text)
            .filter(|a| !a.is_empty()),
        year: tags.year,
        status: TrackStatus::Processing,
        error: None,
        variants: Vec::new(),
        cover,
        analysis: None,
    };

    let job = BuildJob {
        audio: audio.clone(),
        format,
        tags,
        ladder: state.config.ladder_kbps.clone(),
        segment_seconds: state.config.segment_seconds,
        id: track.id,
    };
    let base = track.clone();
    let mut work = tokio::task::spawn_blocking(move || job.build(base));
    let wait = if respond_async {
        Duration::ZERO
    } else {
        state.config.sync_ingest_timeout
    };

    tokio::select! {
        built = &mut work => {
            let (track, chunks) = joined(built)?;
            let stored = state.store.insert_track(track, chunks).await?;
            finished(state, &stored, started, audio);
            Ok(Outcome::Ready(stored))
        }
        () = tokio::time::sleep(wait) => {
            let pending = state.store.insert_pending(track).await?;
            tracing::info!(id = %pending.id, "processing in the background");
            let background = state.clone();
            let id = pending.id;
            tokio::spawn(async move {
                let result = match joined(work.await) {
                    Ok((track, chunks)) => background
                        .store
                        .complete_track(track, chunks)
                        .await
                        .map_err(ApiError::from),
                    Err(err) => Err(err),
                };
                match result {
                    Ok(track) => finished(&background, &track, started, audio),
                    Err(ApiError::Store(legato_store::StoreError::NotFound(_))) => {
                        tracing::info!(%id, "the track was deleted while it was processing");
                    }
                    Err(err) => {
                        tracing::warn!(%id, error = %err, "processing failed");
                        if let Err(e) = background.store.fail_track(&id, &err.to_string()).await {
                            tracing::warn!(%id, error = %e, "could not mark the track failed");
                        }
                    }
                }
            });
            Ok(Outcome::Accepted(pending))
        }
    }
}

/// Logs the ingest, records its duration, and starts the analysis in the background.
fn finished(state: &AppState, track: &Track, started: Instant, audio: Arc<Vec<u8>>) {
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
        let analyzed =
            tokio::task::spawn_blocking(move || legato_transcode::analyze(&audio, WAVEFORM_POINTS))
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

/// The CPU-bound part of an ingest, run on the blocking pool.
struct BuildJob {
    audio: Arc<Vec<u8>>,
    format: SourceFormat,
    tags: Tags,
    ladder: Vec<u32>,
    segment_seconds: f64,
    id: TrackId,
}

/// One rendition ready to be stored.
struct Rendition {
    name: String,
    mp3: Arc<Vec<u8>>,
    package: Package,
}

impl BuildJob {
    fn build(self, mut track: Track) -> Result<(Track, ChunkSource), ApiError> {
        let started = Instant::now();
        let options = SegmentOptions {
            target_seconds: self.segment_seconds,
        };
        let id = self.id;
        let last_logged = std::sync::Mutex::new(Instant::now());
        let progress = move |p: Progress| {
            if let Ok(mut last) = last_logged.lock()
                && last.elapsed() >= Duration::from_secs(5)
            {
                *last = Instant::now();
                tracing::info!(%id, stage = ?p.stage, percent = (p.fraction * 100.0).round(), "ingest progress");
            }
        };
        // Without a ladder an MP3 is only repackaged; anything else still needs one rendition.
        let rungs_kbps = match (self.ladder.is_empty(), self.format) {
            (true, SourceFormat::Mp3) => Vec::new(),
            (true, _) => vec![FALLBACK_KBPS],
            (false, _) => self.ladder.clone(),
        };
        let transcoded = if rungs_kbps.is_empty() {
            let package = package_mp3(&self.audio, &options)?;
            let info = package.info();
            Transcoded {
                source: SourceInfo {
                    format: SourceFormat::Mp3,
                    codec: "mp3".into(),
                    sample_rate: info.sample_rate,
                    channels: info.channels,
                    bitrate_kbps: Some(info.bitrate_kbps),
                    duration: info.duration,
                },
                sample_rate: info.sample_rate,
                channels: info.channels,
                rungs: Vec::new(),
                keep_original: true,
                decode_ms: 0.0,
                encode_ms: 0.0,
            }
        } else {
            let ladder = LadderOptions { rungs_kbps };
            legato_transcode::transcode(&self.audio, &ladder, &progress)?
        };

        // The reference rendition sets the cut points: the original when there is one.
        let mut renditions = Vec::new();
        if transcoded.keep_original {
            let package = package_mp3(&self.audio, &options)?;
            renditions.push(Rendition {
                name: "original".into(),
                mp3: self.audio.clone(),
                package,
            });
        }
        let mut rungs = transcoded.rungs.into_iter().rev();
        if renditions.is_empty() {
            let rung = rungs
                .next()
                .ok_or_else(|| ApiError::Internal("the transcoder produced no rendition".into()))?;
            let package = package_mp3(&rung.mp3, &options)?;
            renditions.push(Rendition {
                name: rung.name,
                mp3: Arc::new(rung.mp3),
                package,
            });
        }
        for rung in rungs {
            let package = package_mp3_like(&rung.mp3, &renditions[0].package, &options)?;
            renditions.push(Rendition {
                name: rung.name,
                mp3: Arc::new(rung.mp3),
                package,
            });
        }
        // Lowest bandwidth first in the master playlist.
        let reference_info = renditions[0].package.info().clone();
        let reference_segments = renditions[0].package.segment_count();
        renditions.sort_by_key(|r| r.package.info().bitrate_kbps);

        let source = &transcoded.source;
        track.duration = reference_info.duration;
        track.segments = u32::try_from(reference_segments).unwrap_or(u32::MAX);
        track.codec = Some(source.codec.clone());
        track.bitrate = source.bitrate_kbps.or(Some(reference_info.bitrate_kbps));
        track.sample_rate = Some(source.sample_rate);
        track.channels = Some(source.channels);
        track.size = Some(self.audio.len() as u64);
        track.status = TrackStatus::Ready;

        let mut chunks: Vec<
            Box<dyn Iterator<Item = Result<Chunk, legato_store::StoreError>> + Send>,
        > = Vec::new();
        if let Some((name, cover)) = track.cover.clone().zip(self.tags.cover) {
            chunks.push(Box::new(std::iter::once(Ok(Chunk::new(name, cover.bytes)))));
        }
        if renditions.len() == 1 {
            let only = renditions.remove(0);
            let playlist = only.package.media_playlist(&segment_name);
            chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
                track.playlist.clone(),
                playlist,
            )))));
            chunks.push(Box::new(
                only.package
                    .into_segments(ArcBytes(only.mp3))
                    .enumerate()
                    .map(|(i, bytes)| Ok(Chunk::new(segment_name(i), bytes))),
            ));
        } else {
            let mut entries = Vec::new();
            for rendition in renditions {
                let (bandwidth, average_bandwidth) = rendition.package.bandwidths();
                let playlist_name = format!("{}.m3u8", rendition.name);
                let prefix = rendition.name.clone();
                let segment_uri = move |i: usize| format!("{prefix}-{i:03}.ts");
                let playlist = rendition.package.media_playlist(&segment_uri);
                entries.push(VariantEntry {
                    uri: playlist_name.clone(),
                    bandwidth,
                    average_bandwidth,
                    codecs: MP3_CODECS.to_owned(),
                });
                track.variants.push(Variant {
                    name: rendition.name.clone(),
                    bitrate: rendition.package.info().bitrate_kbps,
                    bandwidth,
                    average_bandwidth,
                    codecs: MP3_CODECS.to_owned(),
                    playlist: playlist_name.clone(),
                });
                chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
                    playlist_name,
                    playlist,
                )))));
                chunks.push(Box::new(
                    rendition
                        .package
                        .into_segments(ArcBytes(rendition.mp3))
                        .enumerate()
                        .map(move |(i, bytes)| Ok(Chunk::new(segment_uri(i), bytes))),
                ));
            }
            let master = master_playlist(&entries);
            chunks.insert(
                0,
                Box::new(std::iter::once(Ok(Chunk::new(
                    track.playlist.clone(),
                    master,
                )))),
            );
        }
        tracing::info!(
            id = %track.id,
            format = %self.format,
            decode_ms = transcoded.decode_ms,
            encode_ms = transcoded.encode_ms,
            package_ms = started.elapsed().as_secs_f64() * 1000.0 - transcoded.decode_ms - transcoded.encode_ms,
            "media built"
        );
        Ok((track, Box::new(chunks.into_iter().flatten())))
    }
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

fn joined<T>(result: Result<Result<T, ApiError>, tokio::task::JoinError>) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::Internal(format!("the ingest task failed: {e}")))?
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
pub(crate) fn now_millis() -> i64 {
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

//! From uploaded bytes to a stored track: package the MP3 into HLS and store it in one go.
//!
//! The CPU work (frame scan, segment plan) runs on the blocking pool so the async workers keep
//! streaming. Segments are muxed lazily while the store writes them, so the audio is held in
//! memory once and each segment only while it is written.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use legato_media::{SegmentOptions, package_mp3, segment_name};
use legato_store::{Chunk, ChunkSource, Track, TrackId};

use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::{Upload, clean_text};

pub const DEFAULT_AUTHOR: &str = "Unknown artist";
pub const DEFAULT_NAME: &str = "Untitled";

pub async fn ingest(state: &AppState, upload: Upload) -> Result<Track, ApiError> {
    let started = Instant::now();
    let options = SegmentOptions {
        target_seconds: state.config.segment_seconds,
    };
    let Upload {
        audio,
        name,
        author,
        file_name,
    } = upload;
    let input_bytes = audio.len();
    let (package, audio) = tokio::task::spawn_blocking(move || {
        package_mp3(&audio, &options).map(|package| (package, audio))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the packaging task failed: {e}")))??;
    let packaged = started.elapsed();

    let info = package.info().clone();
    let track = Track {
        id: TrackId::generate(),
        name: pick_name(name.as_deref(), file_name.as_deref()),
        author: author
            .as_deref()
            .map(clean_text)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_AUTHOR.to_owned()),
        duration: info.duration,
        segments: u32::try_from(package.segment_count()).unwrap_or(u32::MAX),
        playlist: legato_store::PLAYLIST_NAMES[0].to_owned(),
        codec: Some("mp3".to_owned()),
        bitrate: Some(info.bitrate_kbps),
        sample_rate: Some(info.sample_rate),
        channels: Some(info.channels),
        size: Some(info.audio_bytes),
        created_at: now_millis(),
    };

    let playlist = package.media_playlist(&segment_name);
    let playlist_chunk = Chunk::new(track.playlist.clone(), playlist);
    let chunks: ChunkSource = Box::new(
        std::iter::once(Ok(playlist_chunk)).chain(
            package
                .into_segments(audio)
                .enumerate()
                .map(|(i, bytes)| Ok(Chunk::new(segment_name(i), bytes))),
        ),
    );
    let stored = state.store.insert_track(track, chunks).await?;
    metrics::histogram!(crate::metrics::INGEST_SECONDS, "kind" => "mp3-passthrough")
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        id = %stored.id,
        input_bytes,
        segments = stored.segments,
        duration_s = stored.duration,
        package_ms = packaged.as_secs_f64() * 1000.0,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "ingested"
    );
    Ok(stored)
}

fn pick_name(name: Option<&str>, file_name: Option<&str>) -> String {
    let given = name.map(clean_text).filter(|n| !n.is_empty());
    given
        .or_else(|| {
            let stem = file_name
                .and_then(|f| std::path::Path::new(f).file_stem())
                .and_then(|s| s.to_str())
                .map(clean_text)?;
            (!stem.is_empty()).then_some(stem)
        })
        .unwrap_or_else(|| DEFAULT_NAME.to_owned())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back_to_the_file_name_then_a_default() {
        assert_eq!(pick_name(Some(" Song "), Some("x.mp3")), "Song");
        assert_eq!(pick_name(Some("  "), Some("dir/My Song.mp3")), "My Song");
        assert_eq!(pick_name(None, None), DEFAULT_NAME);
    }
}

//! After a track is published: its ingest logged and timed, and its analysis (loudness,
//! true peak, waveform) computed in the background, never on the way to the answer.

use std::time::Instant;

use legato_store::{Analysis, Track};

use crate::Pipeline;
use crate::spool::Spooled;

use crate::produce::{WAVEFORM_POINTS, stored};

/// Logs the ingest and records its duration. `analysis` is what the build measured; without
/// it, the analysis runs in the background now, unless a follow-up is coming (its decode
/// measures it).
pub(crate) fn finished(
    state: &Pipeline,
    track: &Track,
    started: Instant,
    audio: Spooled,
    analysis: Option<Analysis>,
) {
    let kind = if track.variants.is_empty() {
        "single"
    } else {
        "ladder"
    };
    metrics::histogram!(crate::INGEST_SECONDS, "kind" => kind)
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
    let follow_up = !crate::produce::coming(&state.config, track).is_empty();
    tokio::spawn(async move {
        if let Some(analysis) = analysis {
            if let Err(e) = state.store.set_analysis(&id, &analysis).await {
                tracing::debug!(%id, error = %e, "analysis not stored (track gone?)");
            }
            return;
        }
        if follow_up {
            return;
        }
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
                if let Err(e) = state.store.set_analysis(&id, &stored(a)).await {
                    tracing::debug!(%id, error = %e, "analysis not stored (track gone?)");
                }
            }
            Ok(Err(e)) => tracing::info!(%id, error = %e, "no analysis for this track"),
            Err(e) => tracing::warn!(%id, error = %e, "the analysis task failed"),
        }
    });
}

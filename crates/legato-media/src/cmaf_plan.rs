//! Cutting a track of coded frames (AAC access units, FLAC frames) into fMP4 segments.
//!
//! Times here are *presentation* times: the decode timeline minus the encoder delay
//! (priming) that the edit list removes, clamped to the source's length. That is the timeline
//! a player shows and the one the playlist's `#EXTINF` durations add up to, so cutting at
//! the same presentation instants as another rendition (the MP3 rungs) lines the renditions
//! up for a player that switches between them.
//!
//! All arithmetic is in integer samples; seconds appear only at the edges (targets and the
//! reference's instants), converted once.

use std::ops::Range;

/// A track's frames as the planner sees them.
#[derive(Debug, Clone, Copy)]
pub struct Timeline<'a> {
    /// Samples per channel of each frame, in decode order.
    pub frame_samples: &'a [u32],
    pub sample_rate: u32,
    /// Samples at the start that are encoder delay, not source audio.
    pub priming: u64,
    /// Samples of source audio (after the priming); the rest at the end is padding.
    pub valid_samples: u64,
}

impl Timeline<'_> {
    /// Decode time of the start of each frame, and of the end of the last one (one more entry
    /// than frames).
    fn starts(&self) -> Vec<u64> {
        let mut starts = Vec::with_capacity(self.frame_samples.len() + 1);
        let mut at = 0u64;
        starts.push(at);
        for &samples in self.frame_samples {
            at = at.saturating_add(u64::from(samples));
            starts.push(at);
        }
        starts
    }

    /// Presentation time of a decode time, in samples.
    pub fn presentation(&self, decode: u64) -> u64 {
        decode.saturating_sub(self.priming).min(self.valid_samples)
    }

    fn seconds_to_samples(&self, seconds: f64) -> u64 {
        // Saturating float-to-int conversion; NaN gives 0.
        (seconds * f64::from(self.sample_rate)).round() as u64
    }
}

/// Plans segments of at most `target_seconds` of presentation time each (a segment always
/// holds at least one frame), merging a last segment under a quarter of the target into the
/// one before, as the MPEG-TS planner does.
pub fn plan_by_target(timeline: &Timeline<'_>, target_seconds: f64) -> Vec<Range<usize>> {
    let starts = timeline.starts();
    let target = timeline.seconds_to_samples(target_seconds).max(1);
    let mut segments: Vec<Range<usize>> = Vec::new();
    let mut first = 0;
    for index in 0..timeline.frame_samples.len() {
        let start = presentation_at(timeline, &starts, first);
        let end = presentation_at(timeline, &starts, index + 1);
        if index > first && end - start > target {
            segments.push(first..index);
            first = index;
        }
    }
    if first < timeline.frame_samples.len() {
        segments.push(first..timeline.frame_samples.len());
    }
    let short = |range: &Range<usize>| {
        let length = presentation_at(timeline, &starts, range.end)
            - presentation_at(timeline, &starts, range.start);
        length < target / 4
    };
    if segments.len() >= 2 && segments.last().is_some_and(short) {
        if let Some(last) = segments.pop() {
            if let Some(previous) = segments.last_mut() {
                previous.end = last.end;
            }
        }
    }
    segments
}

/// Plans segments that end at the frame boundaries nearest to `instants` (presentation
/// times in seconds from the start, ascending; e.g. the running sums of another rendition's
/// segment durations). The last segment runs to the end of the track; instants that would
/// give an empty segment are skipped. Each cut is within half a frame of its instant.
pub fn plan_at_instants(timeline: &Timeline<'_>, instants: &[f64]) -> Vec<Range<usize>> {
    let starts = timeline.starts();
    let frames = timeline.frame_samples.len();
    let mut segments = Vec::new();
    let mut first = 0;
    for &instant in instants {
        let wanted = timeline.seconds_to_samples(instant);
        // The first boundary at or past the instant, or the one before it if nearer.
        let after = starts
            .partition_point(|&decode| timeline.presentation(decode) < wanted)
            .min(frames);
        let before = after.saturating_sub(1);
        let distance =
            |boundary: usize| presentation_at(timeline, &starts, boundary).abs_diff(wanted);
        let cut = if distance(before) <= distance(after) {
            before
        } else {
            after
        };
        if cut > first && cut < frames {
            segments.push(first..cut);
            first = cut;
        }
    }
    if first < frames {
        segments.push(first..frames);
    }
    segments
}

/// Presentation durations of planned segments, in samples: they add up to the valid samples.
pub fn segment_samples(timeline: &Timeline<'_>, segments: &[Range<usize>]) -> Vec<u64> {
    let starts = timeline.starts();
    segments
        .iter()
        .map(|range| {
            presentation_at(timeline, &starts, range.end)
                - presentation_at(timeline, &starts, range.start)
        })
        .collect()
}

/// The running sums of segment durations: the instants at which segments end.
pub fn instants_of(durations: &[f64]) -> Vec<f64> {
    durations
        .iter()
        .scan(0.0, |sum, duration| {
            *sum += duration;
            Some(*sum)
        })
        .collect()
}

fn presentation_at(timeline: &Timeline<'_>, starts: &[u64], boundary: usize) -> u64 {
    let decode = starts.get(boundary).or(starts.last()).copied().unwrap_or(0);
    timeline.presentation(decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(frames: &[u32], priming: u64, valid: u64) -> Timeline<'_> {
        Timeline {
            frame_samples: frames,
            sample_rate: 44_100,
            priming,
            valid_samples: valid,
        }
    }

    #[test]
    fn target_plans_count_presentation_time() {
        // 30 s of source with 2048 samples of priming, 1024-sample frames.
        let valid: u64 = 30 * 44_100;
        let count = (valid + 2048).div_ceil(1024) as usize;
        let frames = vec![1024u32; count];
        let line = timeline(&frames, 2048, valid);
        let plan = plan_by_target(&line, 10.0);
        let samples = segment_samples(&line, &plan);
        assert_eq!(samples.iter().sum::<u64>(), valid);
        assert!(samples.iter().all(|&s| s <= 10 * 44_100 + 44_100 / 4));
        assert!(samples[0] <= 10 * 44_100 && samples[0] > 10 * 44_100 - 1024);
        assert_eq!(plan.first().map(|r| r.start), Some(0));
        assert_eq!(plan.last().map(|r| r.end), Some(count));
    }

    #[test]
    fn instant_plans_cut_within_half_a_frame() {
        let valid: u64 = 25 * 44_100;
        let count = (valid + 2048).div_ceil(1024) as usize;
        let frames = vec![1024u32; count];
        let line = timeline(&frames, 2048, valid);
        let mp3_durations = [9.978776, 9.978776, 5.042448];
        let plan = plan_at_instants(&line, &instants_of(&mp3_durations));
        assert_eq!(plan.len(), 3);
        let samples = segment_samples(&line, &plan);
        let mut at = 0u64;
        for (index, instant) in instants_of(&mp3_durations).iter().take(2).enumerate() {
            at += samples[index];
            let cut = at as f64 / 44_100.0;
            // Half a frame, plus the rounding of the durations given.
            assert!(
                (cut - instant).abs() <= 512.5 / 44_100.0,
                "{cut} vs {instant}"
            );
        }
        assert_eq!(samples.iter().sum::<u64>(), valid);
    }

    #[test]
    fn degenerate_inputs_give_sane_plans() {
        assert!(plan_by_target(&timeline(&[], 0, 0), 10.0).is_empty());
        assert!(plan_at_instants(&timeline(&[], 0, 0), &[1.0]).is_empty());
        let frames = [4096u32; 3];
        let line = timeline(&frames, 0, 3 * 4096);
        assert_eq!(plan_by_target(&line, 0.0).len(), 3);
        assert_eq!(plan_by_target(&line, f64::NAN).len(), 3);
        assert_eq!(plan_by_target(&line, f64::INFINITY), vec![0..3_usize]);
        assert_eq!(
            plan_at_instants(&line, &[f64::NAN, -1.0, 1e300]),
            vec![0..3_usize]
        );
    }
}

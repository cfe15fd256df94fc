//! Cuts a track's frames into HLS segments.
//!
//! Segments end at frame boundaries and last at most the target duration (a frame is never
//! split, so most segments are a little shorter). A last segment shorter than a quarter of
//! the target is merged into the one before, so no tiny tail is fetched on its own.
//!
//! A *run* is a stretch of frames with one format (sample rate, channels, MPEG version and
//! layer). A new run starts a new segment flagged as a discontinuity, since decoders must be
//! reset there; the timeline stays continuous across it.
//!
//! All timing is kept in integer samples and converted once: a segment's duration is its
//! sample count over the sample rate, and timestamps come from the samples since the start of
//! the run, so rounding never accumulates.

use std::ops::Range;

use crate::mpeg::{FrameHeader, Layer, MpegVersion};
use crate::scan::Frame;

/// MPEG-TS clock: timestamps count 90 kHz ticks.
pub const TICKS_PER_SECOND: u64 = 90_000;

/// Slack when comparing durations with the target, so a segment of exactly the target
/// duration is not cut one frame early by floating-point noise.
const DURATION_EPSILON: f64 = 1e-9;

/// What must stay the same within a run of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamFormat {
    pub sample_rate: u32,
    pub channels: u8,
    pub version: MpegVersion,
    pub layer: Layer,
}

impl From<&FrameHeader> for StreamFormat {
    fn from(header: &FrameHeader) -> Self {
        StreamFormat {
            sample_rate: header.sample_rate(),
            channels: header.channels(),
            version: header.version(),
            layer: header.layer(),
        }
    }
}

/// One planned segment: a range of frames of a single run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSegment {
    /// Indices into the frame list the plan was made from.
    pub frames: Range<usize>,
    /// The format of every frame in the segment.
    pub format: StreamFormat,
    /// Samples (per channel) in the segment.
    pub samples: u64,
    /// Whether the format changed at this segment (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// Time from the start of the track to the start of this segment's run, in 90 kHz ticks.
    pub run_start_ticks: u64,
    /// Samples of the same run before this segment.
    pub run_samples_before: u64,
}

impl PlannedSegment {
    /// Duration in seconds, exact to the sample.
    pub fn duration(&self) -> f64 {
        self.samples as f64 / f64::from(self.format.sample_rate)
    }

    /// Time from the start of the track, in 90 kHz ticks, of the sample `samples_in` samples
    /// into this segment.
    pub fn ticks_at(&self, samples_in: u64) -> u64 {
        let run_samples = self.run_samples_before.saturating_add(samples_in);
        self.run_start_ticks
            .saturating_add(samples_to_ticks(run_samples, self.format.sample_rate))
    }
}

/// Converts a sample count to 90 kHz ticks, rounding down.
pub fn samples_to_ticks(samples: u64, sample_rate: u32) -> u64 {
    let ticks = u128::from(samples) * u128::from(TICKS_PER_SECOND) / u128::from(sample_rate.max(1));
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Plans segments of at most `target_seconds` over `frames`.
///
/// A segment always holds at least one frame, so a target shorter than a frame gives one
/// frame per segment. `target_seconds` should be finite and positive; anything else gives
/// one frame per segment (NaN) or one segment per run (infinity).
pub fn plan_segments(frames: &[Frame], target_seconds: f64) -> Vec<PlannedSegment> {
    let mut segments: Vec<PlannedSegment> = Vec::new();
    let mut current: Option<PlannedSegment> = None;
    let mut run_first_segment = 0;
    let mut run_samples = 0u64;
    let mut run_start_ticks = 0u64;

    for (index, frame) in frames.iter().enumerate() {
        let format = StreamFormat::from(&frame.header);
        let frame_samples = u64::from(frame.header.samples());
        let new_run = current.as_ref().is_none_or(|seg| seg.format != format);

        if new_run {
            if let Some(segment) = current.take() {
                run_start_ticks = run_start_ticks
                    .saturating_add(samples_to_ticks(run_samples, segment.format.sample_rate));
                segments.push(segment);
                merge_short_tail(&mut segments, run_first_segment, target_seconds);
            }
            run_first_segment = segments.len();
            run_samples = 0;
        } else if let Some(segment) = current.take() {
            let grown = (segment.samples + frame_samples) as f64 / f64::from(format.sample_rate);
            if grown <= target_seconds + DURATION_EPSILON {
                current = Some(segment);
            } else {
                segments.push(segment);
            }
        }

        let segment = current.get_or_insert(PlannedSegment {
            frames: index..index,
            format,
            samples: 0,
            discontinuity: new_run && index > 0,
            run_start_ticks,
            run_samples_before: run_samples,
        });
        segment.frames.end = index + 1;
        segment.samples += frame_samples;
        run_samples += frame_samples;
    }
    if let Some(segment) = current {
        segments.push(segment);
        merge_short_tail(&mut segments, run_first_segment, target_seconds);
    }
    segments
}

/// Plans segments over `frames` with the same number of frames per segment as `reference`
/// (the last segment takes whatever is left), so that renditions of one track switch at the
/// same instants. `None` when that cannot line up: a reference with discontinuities, or
/// frames of another format (sample rate, MPEG version or layer) than the reference's.
pub fn plan_like(frames: &[Frame], reference: &[PlannedSegment]) -> Option<Vec<PlannedSegment>> {
    let first = reference.first()?;
    let format = StreamFormat::from(&frames.first()?.header);
    let aligned = format.sample_rate == first.format.sample_rate
        && format.version == first.format.version
        && format.layer == first.format.layer;
    let uniform = frames
        .iter()
        .all(|frame| StreamFormat::from(&frame.header) == format);
    if !aligned || !uniform || reference.iter().any(|segment| segment.discontinuity) {
        return None;
    }
    let samples_per_frame = frames.first().map(|f| u64::from(f.header.samples()))?;
    let mut segments = Vec::with_capacity(reference.len());
    let mut start = 0;
    for (index, segment) in reference.iter().enumerate() {
        let is_last = index + 1 == reference.len();
        let end = if is_last {
            frames.len()
        } else {
            (start + segment.frames.len()).min(frames.len())
        };
        if end <= start {
            break;
        }
        let count = (end - start) as u64;
        segments.push(PlannedSegment {
            frames: start..end,
            format,
            samples: count * samples_per_frame,
            discontinuity: false,
            run_start_ticks: 0,
            run_samples_before: start as u64 * samples_per_frame,
        });
        start = end;
    }
    Some(segments)
}

/// Merges the last segment of a run into the one before it if it is under a quarter of the
/// target (only within the run that starts at `run_first_segment`).
fn merge_short_tail(segments: &mut Vec<PlannedSegment>, run_first_segment: usize, target: f64) {
    if segments.len() < run_first_segment + 2 {
        return;
    }
    let short = segments
        .last()
        .is_some_and(|last| last.duration() < target / 4.0);
    if !short {
        return;
    }
    if let Some(last) = segments.pop() {
        if let Some(previous) = segments.last_mut() {
            previous.frames.end = last.frames.end;
            previous.samples += last.samples;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::scan::scan_mp3;
    use crate::test_support::*;

    fn scanned(parts: &[Vec<u8>]) -> Vec<Frame> {
        scan_mp3(&concat(parts)).unwrap().frames
    }

    const FRAME_SECONDS: f64 = 1152.0 / 44_100.0;

    #[test]
    fn segments_fill_up_to_the_target() {
        // 1000 frames of 26.12 ms: 382 fit in 10 s.
        let frames = scanned(&frames(HeaderBits::default(), 1000));
        let plan = plan_segments(&frames, 10.0);
        let lengths: Vec<usize> = plan.iter().map(|s| s.frames.len()).collect();
        assert_eq!(lengths, [382, 382, 236]);
        assert!((plan[0].duration() - 382.0 * FRAME_SECONDS).abs() < 1e-12);
        assert!(plan.iter().all(|s| !s.discontinuity));
        assert_eq!(plan[1].frames.start, 382);
        assert_eq!(plan[2].ticks_at(0), 764 * 1152 * 90_000 / 44_100);
        let total: f64 = plan.iter().map(PlannedSegment::duration).sum();
        assert!((total - 1000.0 * FRAME_SECONDS).abs() < 1e-9);
    }

    #[test]
    fn a_segment_of_exactly_the_target_is_kept_whole() {
        // 576-sample MPEG-2 frames at 24 kHz: 0.024 s each, 125 make exactly 3 s.
        let bits = HeaderBits {
            version: 0b10,
            sample_rate_index: 1,
            ..HeaderBits::default()
        };
        let frames = scanned(&frames(bits, 250));
        let plan = plan_segments(&frames, 3.0);
        let lengths: Vec<usize> = plan.iter().map(|s| s.frames.len()).collect();
        assert_eq!(lengths, [125, 125]);
        assert_eq!(plan[0].duration(), 3.0);
    }

    #[test]
    fn a_short_last_segment_is_merged() {
        // 382 + 382 + 50 frames: 50 frames = 1.3 s < 2.5 s, so it joins the second segment.
        let frames = scanned(&frames(HeaderBits::default(), 814));
        let plan = plan_segments(&frames, 10.0);
        let lengths: Vec<usize> = plan.iter().map(|s| s.frames.len()).collect();
        assert_eq!(lengths, [382, 432]);
        // 96 frames = 2.51 s is long enough to stay.
        let frames = scanned(&frames_of(860));
        let lengths: Vec<usize> = plan_segments(&frames, 10.0)
            .iter()
            .map(|s| s.frames.len())
            .collect();
        assert_eq!(lengths, [382, 382, 96]);
        // A single short segment has nothing to merge into.
        let frames = scanned(&frames_of(10));
        assert_eq!(plan_segments(&frames, 10.0).len(), 1);
    }

    fn frames_of(count: usize) -> Vec<Vec<u8>> {
        frames(HeaderBits::default(), count)
    }

    #[test]
    fn a_sample_rate_change_starts_a_discontinuity() {
        let first = HeaderBits::default();
        let second = HeaderBits {
            sample_rate_index: 1,
            ..first
        };
        let mut parts = frames(first, 400);
        parts.extend(frames(second, 100));
        let frames = scanned(&parts);
        let plan = plan_segments(&frames, 10.0);
        let shape: Vec<(usize, bool)> = plan
            .iter()
            .map(|s| (s.frames.len(), s.discontinuity))
            .collect();
        // 18 frames at 44.1 kHz are merged back; the 48 kHz run is its own segment.
        assert_eq!(shape, [(400, false), (100, true)]);
        let run_ticks = samples_to_ticks(400 * 1152, 44_100);
        assert_eq!(plan[1].run_start_ticks, run_ticks);
        assert_eq!(plan[1].ticks_at(1152), run_ticks + 1152 * 90_000 / 48_000);
        assert_eq!(plan[1].format.sample_rate, 48_000);
    }

    #[test]
    fn channel_changes_also_break_runs() {
        let stereo = HeaderBits::default();
        let mono = HeaderBits {
            channel_mode: 0b11,
            ..stereo
        };
        let mut parts = frames(stereo, 5);
        parts.extend(frames(mono, 5));
        let plan = plan_segments(&scanned(&parts), 10.0);
        assert_eq!(plan.len(), 2);
        assert!(plan[1].discontinuity);
        assert_eq!(plan[1].format.channels, 1);
    }

    #[test]
    fn tiny_and_odd_targets_still_make_progress() {
        let frames = scanned(&frames_of(5));
        assert_eq!(plan_segments(&frames, 0.001).len(), 5);
        assert_eq!(plan_segments(&frames, f64::NAN).len(), 5);
        assert_eq!(plan_segments(&frames, f64::INFINITY).len(), 1);
        assert!(plan_segments(&[], 10.0).is_empty());
    }
}

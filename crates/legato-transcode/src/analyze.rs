//! Loudness, true peak and a waveform, in one decoding pass.
//!
//! The signal measured is the one the rungs carry: downmixed to at most two channels, at the
//! source's sample rate. Loudness is EBU R128 integrated loudness (ITU-R BS.1770 gating) and
//! the peak is the 4×-oversampled true peak, both from the `ebur128` crate (histogram mode,
//! so memory does not grow with the length of the track).

use ebur128::{EbuR128, Mode};

use crate::decode::{Decoder, Input, conform};
use crate::detect::Sniffed;
use crate::{Analysis, MAX_WAVEFORM_POINTS, TranscodeError};

/// See [`crate::analyze`].
pub(crate) fn analyze(
    input: Input<'_>,
    sniffed: Sniffed,
    points: usize,
) -> Result<Analysis, TranscodeError> {
    let mut decoder = Decoder::open(input, sniffed)?;
    metrics::counter!(crate::DECODES).increment(1);
    let Some(first) = decoder.next_chunk()?.map(<[Vec<f32>]>::to_vec) else {
        return Err(decoder
            .finish()
            .err()
            .unwrap_or(TranscodeError::NoAudio(sniffed.format)));
    };
    let Some((rate, _)) = decoder.spec() else {
        return Err(TranscodeError::NoAudio(sniffed.format));
    };
    let mut analyzer = Analyzer::new(first.len(), rate)?;
    analyzer.push(&first)?;
    while let Some(chunk) = decoder.next_chunk()? {
        analyzer.push(chunk)?;
    }
    decoder.finish()?;
    Ok(analyzer.finish(points.min(MAX_WAVEFORM_POINTS)))
}

/// Measures decoded audio as it goes: loudness, true peak and the waveform's peaks.
pub(crate) struct Analyzer {
    channels: usize,
    meter: EbuR128,
    waveform: Waveform,
    scratch: Vec<f32>,
}

impl Analyzer {
    /// For audio of `channels` planes (as the first chunk has) at `rate`.
    pub fn new(channels: usize, rate: u32) -> Result<Self, TranscodeError> {
        Ok(Analyzer {
            channels,
            meter: new_meter(channels, rate)?,
            waveform: Waveform::default(),
            scratch: Vec::new(),
        })
    }

    pub fn push(&mut self, chunk: &[Vec<f32>]) -> Result<(), TranscodeError> {
        let planes = conform(chunk, self.channels, &mut self.scratch);
        self.waveform.push(&planes);
        self.meter
            .add_frames_planar_f32(&planes)
            .map_err(|error| TranscodeError::Encoder(format!("loudness meter: {error}")))
    }

    /// The measures, with a waveform of `points` peaks.
    pub fn finish(self, points: usize) -> Analysis {
        let meter = self.meter;
        let loudness_lufs = meter.loudness_global().ok().filter(|lufs| lufs.is_finite());
        let true_peak_dbtp = (0..meter.channels())
            .filter_map(|channel| meter.true_peak(channel).ok())
            .fold(None, |max: Option<f64>, peak| {
                Some(max.map_or(peak, |m| m.max(peak)))
            })
            .filter(|&peak| peak > 0.0)
            .map(|peak| 20.0 * peak.log10());
        Analysis {
            loudness_lufs,
            true_peak_dbtp,
            peaks: self.waveform.points(points),
        }
    }
}

fn new_meter(channels: usize, rate: u32) -> Result<EbuR128, TranscodeError> {
    let channels = u32::try_from(channels).unwrap_or(2);
    EbuR128::new(channels, rate, Mode::I | Mode::TRUE_PEAK | Mode::HISTOGRAM)
        .map_err(|error| TranscodeError::Encoder(format!("loudness meter: {error}")))
}

/// Peak amplitudes over the whole track, kept at a resolution that halves whenever the list
/// grows past a bound, so memory stays constant.
#[derive(Debug, Default)]
pub(crate) struct Waveform {
    /// Peak of each bucket of `bucket_frames` frames (the last one possibly partial).
    buckets: Vec<f32>,
    bucket_frames: usize,
    in_last: usize,
}

/// Buckets kept before two neighbours are merged into one.
const MAX_BUCKETS: usize = 1 << 16;

impl Waveform {
    pub fn push(&mut self, planes: &[&[f32]]) {
        if self.bucket_frames == 0 {
            self.bucket_frames = 64;
        }
        let frames = planes.first().map_or(0, |plane| plane.len());
        let mut start = 0;
        while start < frames {
            if self.buckets.is_empty() || self.in_last == self.bucket_frames {
                if self.buckets.len() == MAX_BUCKETS {
                    self.halve();
                }
                self.buckets.push(0.0);
                self.in_last = 0;
            }
            let take = (self.bucket_frames - self.in_last).min(frames - start);
            let peak = planes
                .iter()
                .flat_map(|plane| &plane[start..start + take])
                .fold(0.0f32, |peak, sample| peak.max(sample.abs()));
            if let Some(last) = self.buckets.last_mut() {
                *last = last.max(peak.min(1.0));
            }
            self.in_last += take;
            start += take;
        }
    }

    /// Merges neighbouring buckets: half as many, twice as long.
    fn halve(&mut self) {
        // An even count pairs the last (partial) bucket with a full one; an odd count leaves
        // it alone.
        if self.buckets.len() % 2 == 0 {
            self.in_last += self.bucket_frames;
        }
        self.buckets = self
            .buckets
            .chunks(2)
            .map(|pair| pair.iter().copied().fold(0.0, f32::max))
            .collect();
        self.bucket_frames *= 2;
    }

    /// `points` peaks spread evenly over the whole track.
    pub fn points(&self, points: usize) -> Vec<f32> {
        let n = self.buckets.len();
        if n == 0 || points == 0 {
            return vec![0.0; points];
        }
        (0..points)
            .map(|i| {
                let from = i * n / points;
                let to = ((i + 1) * n / points).max(from + 1).min(n);
                self.buckets[from..to].iter().copied().fold(0.0, f32::max)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_points_cover_the_track() {
        let mut waveform = Waveform::default();
        // 1000 frames of silence, then 1000 at 0.5, in odd-sized pieces.
        let signal: Vec<f32> = (0..2000)
            .map(|i| if i < 1000 { 0.0 } else { 0.5 })
            .collect();
        for piece in signal.chunks(77) {
            waveform.push(&[piece]);
        }
        let points = waveform.points(4);
        assert_eq!(points.len(), 4);
        assert_eq!(points[0], 0.0);
        assert_eq!(points[3], 0.5);
        assert_eq!(waveform.points(0), Vec::<f32>::new());
    }

    #[test]
    fn waveform_memory_is_bounded() {
        let mut waveform = Waveform::default();
        let block = vec![0.25f32; 10_000];
        for _ in 0..1000 {
            waveform.push(&[&block]);
        }
        waveform.push(&[&[1.0f32; 10]]);
        assert!(waveform.buckets.len() <= MAX_BUCKETS);
        let points = waveform.points(400);
        assert_eq!(points.len(), 400);
        assert!(points[..399].iter().all(|&p| p == 0.25));
        assert_eq!(points[399], 1.0);
    }

    #[test]
    fn samples_above_full_scale_are_capped() {
        let mut waveform = Waveform::default();
        waveform.push(&[&[3.0f32; 100]]);
        assert_eq!(waveform.points(1), vec![1.0]);
    }
}

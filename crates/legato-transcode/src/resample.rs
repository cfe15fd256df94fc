//! Streaming sample-rate conversion with rubato's synchronous FFT resampler.
//!
//! Audio arrives in chunks of any size and leaves in chunks of any size; the resampler's
//! start-up delay is trimmed and the tail is flushed, so `n` input frames become exactly
//! `ceil(n * to / from)` output frames, aligned with the input.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler, WindowFunction};

use crate::TranscodeError;

/// Input frames per resampler call, split in two FFT sub-chunks (about 1024 frames each: a
/// long, steep anti-aliasing filter; the extra delay does not matter offline).
const CHUNK_FRAMES: usize = 2048;
const SUB_CHUNKS: usize = 2;

/// Receives resampled audio: one slice per channel.
pub(crate) type Emit<'a> = dyn FnMut(&[&[f32]]) -> Result<(), TranscodeError> + 'a;

pub(crate) struct StreamResampler {
    inner: Fft<f32>,
    channels: usize,
    from: u64,
    to: u64,
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    to_trim: usize,
    consumed: u64,
    produced: u64,
}

fn resample_error(error: impl std::fmt::Display) -> TranscodeError {
    TranscodeError::Encoder(format!("resampling failed: {error}"))
}

impl StreamResampler {
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Self, TranscodeError> {
        let inner = Fft::<f32>::new_custom(
            from as usize,
            to as usize,
            CHUNK_FRAMES,
            SUB_CHUNKS,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(resample_error)?;
        let out_len = inner.output_frames_max();
        let to_trim = inner.output_delay();
        Ok(StreamResampler {
            inner,
            channels,
            from: u64::from(from),
            to: u64::from(to),
            pending: vec![Vec::with_capacity(CHUNK_FRAMES * 2); channels],
            out: vec![vec![0.0; out_len]; channels],
            to_trim,
            consumed: 0,
            produced: 0,
        })
    }

    /// Adds input; `emit` receives whatever output is ready (one slice per channel).
    pub fn push(&mut self, planes: &[&[f32]], emit: &mut Emit<'_>) -> Result<(), TranscodeError> {
        for (pending, plane) in self.pending.iter_mut().zip(planes) {
            pending.extend_from_slice(plane);
        }
        self.consumed += planes.first().map_or(0, |plane| plane.len() as u64);
        loop {
            let need = self.inner.input_frames_next();
            if self.pending_len() < need {
                return Ok(());
            }
            self.process(None, need, emit)?;
        }
    }

    /// Flushes the tail: after this, exactly `ceil(consumed * to / from)` frames were emitted.
    pub fn finish(&mut self, emit: &mut Emit<'_>) -> Result<(), TranscodeError> {
        let expected = (self.consumed * self.to).div_ceil(self.from);
        let left = self.pending_len();
        if left > 0 {
            self.process(Some(left), left, emit)?;
        }
        // Pump silence until the delayed end of the input has come out. The bound is only a
        // guard against a resampler that produced nothing.
        let mut rounds = 0;
        while self.produced < expected && rounds < 64 {
            self.process(Some(0), 0, emit)?;
            rounds += 1;
        }
        Ok(())
    }

    fn pending_len(&self) -> usize {
        self.pending.first().map_or(0, Vec::len)
    }

    /// One resampler call on the first `take` pending frames (`partial`: fewer than a chunk).
    fn process(
        &mut self,
        partial: Option<usize>,
        take: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), TranscodeError> {
        let input = SequentialSliceOfVecs::new(&self.pending, self.channels, self.pending_len())
            .map_err(resample_error)?;
        let out_frames = self.out.first().map_or(0, Vec::len);
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.out, self.channels, out_frames)
            .map_err(resample_error)?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, written) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(resample_error)?;
        for pending in &mut self.pending {
            pending.drain(..take);
        }
        let skip = self.to_trim.min(written);
        self.to_trim -= skip;
        let expected = (self.consumed * self.to).div_ceil(self.from);
        let mut usable = written - skip;
        if partial.is_some() {
            // Past the end of the input: keep only what completes the expected length.
            usable = usable.min(expected.saturating_sub(self.produced) as usize);
        }
        if usable > 0 {
            let slices: Vec<&[f32]> = self
                .out
                .iter()
                .map(|plane| &plane[skip..skip + usable])
                .collect();
            emit(&slices)?;
            self.produced += usable as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;

    fn resample(from: u32, to: u32, input: &[f32], piece: usize) -> Vec<f32> {
        let mut resampler = StreamResampler::new(from, to, 1).unwrap();
        let mut out = Vec::new();
        let mut emit = |planes: &[&[f32]]| {
            out.extend_from_slice(planes[0]);
            Ok(())
        };
        for chunk in input.chunks(piece) {
            resampler.push(&[chunk], &mut emit).unwrap();
        }
        resampler.finish(&mut emit).unwrap();
        out
    }

    fn sine(rate: u32, freq: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|n| (std::f32::consts::TAU * freq * n as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn lengths_are_exact_and_the_signal_is_aligned() {
        for (from, to) in [
            (96_000, 48_000),
            (22_050, 44_100),
            (44_100, 48_000),
            (8_000, 48_000),
        ] {
            let frames = from as usize / 3 + 17;
            let input = sine(from, 440.0, frames);
            for piece in [100, 4096, 100_000] {
                let out = resample(from, to, &input, piece);
                let expected = (frames as u64 * u64::from(to)).div_ceil(u64::from(from));
                assert_eq!(
                    out.len() as u64,
                    expected,
                    "{from} -> {to}, pieces of {piece}"
                );
                // Aligned: the output is the same sine at the new rate, away from the edges,
                // to within half an output sample (rubato rounds a delay of 560.5 frames at
                // 44.1 -> 48 kHz to 560: 10 µs, inaudible).
                let error = [-0.5f32, -0.25, 0.0, 0.25, 0.5]
                    .into_iter()
                    .map(|shift| {
                        (out.len() / 4..out.len() * 3 / 4)
                            .map(|i| {
                                let t = (i as f32 + shift) / to as f32;
                                (out[i] - (std::f32::consts::TAU * 440.0 * t).sin() * 0.5).abs()
                            })
                            .fold(0.0f32, f32::max)
                    })
                    .fold(f32::INFINITY, f32::min);
                assert!(error < 0.005, "{from} -> {to}: max error {error}");
            }
        }
    }

    #[test]
    fn a_clip_shorter_than_a_chunk_still_comes_out() {
        let out = resample(96_000, 48_000, &sine(96_000, 440.0, 10), 10);
        assert_eq!(out.len(), 5);
    }
}

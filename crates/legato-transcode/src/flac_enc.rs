//! Lossless FLAC of an integer PCM upload (WAV, AIFF), encoded in-process with the pure-Rust
//! `flacenc` crate, at the source's own rate, channels and bit depth: decoding the result
//! gives back the source's samples exactly.
//!
//! Only integer PCM of at most 24 bits and at most two channels qualifies: the decoder hands
//! out `f32`, which holds every 24-bit value exactly (a 24-bit mantissa) but not every 32-bit
//! one, and downmixes more than two channels. Float PCM has no lossless FLAC form.

use flacenc::bitsink::ByteSink;
use flacenc::component::BitRepr;
use flacenc::error::Verify;

use crate::TranscodeError;

/// Samples per FLAC frame: flacenc's default and the reference encoder's (4096 = 93 ms at
/// 44.1 kHz), so a 10 s segment holds about 108 frames.
pub const FLAC_BLOCK_SIZE: usize = 4096;

/// Collects decoded PCM as integers and encodes it to a FLAC stream at the end.
pub(crate) struct FlacEncoder {
    channels: usize,
    bits_per_sample: u8,
    sample_rate: u32,
    /// Interleaved integer samples.
    samples: Vec<i32>,
}

impl FlacEncoder {
    pub fn new(
        sample_rate: u32,
        channels: u8,
        bits_per_sample: u8,
    ) -> Result<Self, TranscodeError> {
        if !(1..=2).contains(&channels) || !(8..=24).contains(&bits_per_sample) {
            return Err(TranscodeError::InvalidOptions(format!(
                "a lossless rung needs 1 or 2 channels of 8 to 24-bit PCM, not {channels} of {bits_per_sample}-bit"
            )));
        }
        Ok(FlacEncoder {
            channels: usize::from(channels),
            bits_per_sample,
            sample_rate,
            samples: Vec::new(),
        })
    }

    /// Appends one block (one plane per channel) of samples that came from integers of
    /// `bits_per_sample` bits.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<(), TranscodeError> {
        let frames = planes.first().map_or(0, |plane| plane.len());
        if planes.len() < self.channels {
            return Err(TranscodeError::Encoder(
                "a block with too few channels".into(),
            ));
        }
        let scale = f64::from(1u32 << (self.bits_per_sample - 1));
        let (low, high) = (-scale, scale - 1.0);
        self.samples.reserve(frames * self.channels);
        for index in 0..frames {
            for plane in planes.iter().take(self.channels) {
                let sample = f64::from(plane.get(index).copied().unwrap_or(0.0));
                // Exact for integer sources of up to 24 bits (see the module notes).
                self.samples
                    .push((sample * scale).round().clamp(low, high) as i32);
            }
        }
        Ok(())
    }

    /// Encodes everything pushed into one FLAC stream (`fLaC`, STREAMINFO with the MD5 of
    /// the samples, frames of [`FLAC_BLOCK_SIZE`]).
    pub fn finish(self) -> Result<Vec<u8>, TranscodeError> {
        if self.samples.is_empty() {
            return Err(TranscodeError::Encoder("no samples to encode".into()));
        }
        let mut config = flacenc::config::Encoder::default();
        config.block_size = FLAC_BLOCK_SIZE;
        let config = config
            .into_verified()
            .map_err(|(_, error)| TranscodeError::Encoder(format!("flacenc settings: {error}")))?;
        let source = flacenc::source::MemSource::from_samples(
            &self.samples,
            self.channels,
            usize::from(self.bits_per_sample),
            self.sample_rate as usize,
        );
        let stream = flacenc::encode_with_fixed_block_size(&config, source, FLAC_BLOCK_SIZE)
            .map_err(|error| TranscodeError::Encoder(format!("flacenc failed: {error}")))?;
        let mut sink = ByteSink::new();
        stream.write(&mut sink).map_err(|error| {
            TranscodeError::Encoder(format!("flacenc failed to write: {error}"))
        })?;
        Ok(sink.into_inner())
    }
}

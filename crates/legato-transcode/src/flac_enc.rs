//! Lossless FLAC of an integer PCM upload (WAV, AIFF), encoded in-process with the pure-Rust
//! `flacenc` crate, at the source's own rate, channels and bit depth: decoding the result
//! gives back the source's samples exactly.
//!
//! Only integer PCM of at most 24 bits and at most two channels qualifies: the decoder hands
//! out `f32`, which holds every 24-bit value exactly (a 24-bit mantissa) but not every 32-bit
//! one, and downmixes more than two channels. Float PCM has no lossless FLAC form.
//!
//! Frames are encoded one block at a time as the samples arrive and written out at once (to
//! memory or a spill file), so memory holds one block of samples, not the track; the
//! STREAMINFO (its MD5 and lengths known only at the end) is written over the reserved start.

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};

use crate::sink::{RungOut, Sink};
use crate::{SpillFile, TranscodeError};

/// Samples per FLAC frame: flacenc's default and the reference encoder's (4096 = 93 ms at
/// 44.1 kHz), so a 10 s segment holds about 108 frames.
pub const FLAC_BLOCK_SIZE: usize = 4096;

/// `fLaC`, a metadata block header (last block, STREAMINFO, 34 bytes) and the STREAMINFO.
pub const FLAC_HEADER_LEN: usize = 4 + 4 + 34;

/// A FLAC stream and where its frames are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlacLayout {
    /// The STREAMINFO block's body (34 bytes).
    pub stream_info: [u8; 34],
    /// Bytes before the first frame.
    pub header_len: usize,
    /// Bytes of each frame, in order, back to back after the header.
    pub frame_lens: Vec<u32>,
    /// Samples per channel of each frame.
    pub frame_samples: Vec<u32>,
}

fn failed(what: &str, error: impl std::fmt::Display) -> TranscodeError {
    TranscodeError::Encoder(format!("flacenc {what}: {error}"))
}

/// Encodes decoded PCM to FLAC a block at a time.
pub(crate) struct FlacEncoder {
    channels: usize,
    bits_per_sample: u8,
    config: Verified<config::Encoder>,
    buffer: (FrameBuf, Context),
    stream_info: StreamInfo,
    /// Interleaved integer samples not yet in a frame (less than a block).
    pending: Vec<i32>,
    out: Sink,
    layout: FlacLayout,
}

impl FlacEncoder {
    pub fn new(
        sample_rate: u32,
        channels: u8,
        bits_per_sample: u8,
        spill: Option<SpillFile<'_>>,
    ) -> Result<Self, TranscodeError> {
        if !(1..=2).contains(&channels) || !(8..=24).contains(&bits_per_sample) {
            return Err(TranscodeError::InvalidOptions(format!(
                "a lossless rung needs 1 or 2 channels of 8 to 24-bit PCM, not {channels} of {bits_per_sample}-bit"
            )));
        }
        let mut config = config::Encoder::default();
        config.block_size = FLAC_BLOCK_SIZE;
        let config = config
            .into_verified()
            .map_err(|(_, error)| failed("settings", error))?;
        let (ch, bits) = (usize::from(channels), usize::from(bits_per_sample));
        let mut stream_info =
            StreamInfo::new(sample_rate as usize, ch, bits).map_err(|e| failed("stream", e))?;
        stream_info
            .set_block_sizes(FLAC_BLOCK_SIZE, FLAC_BLOCK_SIZE)
            .map_err(|e| failed("block size", e))?;
        let buffer = (
            FrameBuf::with_size(ch, FLAC_BLOCK_SIZE).map_err(|e| failed("buffer", e))?,
            Context::new(bits, ch),
        );
        let mut out = Sink::new(spill)?;
        // Room for the header, written once the stream's length and MD5 are known.
        out.write(&[0; FLAC_HEADER_LEN])?;
        Ok(FlacEncoder {
            channels: ch,
            bits_per_sample,
            config,
            buffer,
            stream_info,
            pending: Vec::with_capacity(FLAC_BLOCK_SIZE * ch),
            out,
            layout: FlacLayout {
                stream_info: [0; 34],
                header_len: FLAC_HEADER_LEN,
                frame_lens: Vec::new(),
                frame_samples: Vec::new(),
            },
        })
    }

    /// Appends one block (one plane per channel) of samples that came from integers of
    /// `bits_per_sample` bits, encoding every whole frame.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<(), TranscodeError> {
        let frames = planes.first().map_or(0, |plane| plane.len());
        if planes.len() < self.channels {
            return Err(TranscodeError::Encoder(
                "a block with too few channels".into(),
            ));
        }
        let scale = f64::from(1u32 << (self.bits_per_sample - 1));
        let (low, high) = (-scale, scale - 1.0);
        let block = FLAC_BLOCK_SIZE * self.channels;
        for index in 0..frames {
            for plane in planes.iter().take(self.channels) {
                let sample = f64::from(plane.get(index).copied().unwrap_or(0.0));
                // Exact for integer sources of up to 24 bits (see the module notes).
                self.pending
                    .push((sample * scale).round().clamp(low, high) as i32);
            }
            if self.pending.len() == block {
                self.encode_pending()?;
            }
        }
        Ok(())
    }

    fn encode_pending(&mut self) -> Result<(), TranscodeError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.buffer
            .fill_interleaved(&self.pending)
            .map_err(|e| failed("input", e))?;
        let number = self
            .buffer
            .1
            .current_frame_number()
            .ok_or_else(|| TranscodeError::Encoder("flacenc lost count of frames".into()))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.buffer.0,
            number,
            &self.stream_info,
        )
        .map_err(|e| failed("failed", e))?;
        self.stream_info.update_frame_info(&frame);
        let mut sink = ByteSink::new();
        frame.write(&mut sink).map_err(|e| failed("output", e))?;
        let bytes = sink.into_inner();
        self.out.write(&bytes)?;
        self.layout
            .frame_lens
            .push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.layout
            .frame_samples
            .push((self.pending.len() / self.channels) as u32);
        self.pending.clear();
        Ok(())
    }

    /// Encodes what is left and completes the stream (`fLaC`, STREAMINFO with the MD5 of the
    /// samples, frames of [`FLAC_BLOCK_SIZE`]).
    pub fn finish(mut self) -> Result<(RungOut, FlacLayout), TranscodeError> {
        self.encode_pending()?;
        if self.layout.frame_lens.is_empty() {
            return Err(TranscodeError::Encoder("no samples to encode".into()));
        }
        self.stream_info.set_md5_digest(&self.buffer.1.md5_digest());
        let mut sink = ByteSink::new();
        self.stream_info
            .write(&mut sink)
            .map_err(|e| failed("output", e))?;
        let body = sink.into_inner();
        let stream_info: [u8; 34] = body
            .as_slice()
            .try_into()
            .map_err(|_| TranscodeError::Encoder("flacenc wrote an odd STREAMINFO".into()))?;
        let mut head = Vec::with_capacity(FLAC_HEADER_LEN);
        head.extend_from_slice(b"fLaC");
        head.extend_from_slice(&[0x80, 0, 0, 34]);
        head.extend_from_slice(&stream_info);
        let total = FLAC_HEADER_LEN as u64
            + self
                .layout
                .frame_lens
                .iter()
                .map(|&l| u64::from(l))
                .sum::<u64>();
        self.layout.stream_info = stream_info;
        Ok((self.out.finish(total, &head)?, self.layout))
    }
}

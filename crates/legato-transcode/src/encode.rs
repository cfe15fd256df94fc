//! One CBR MP3 rendition, encoded in-process by LAME 3.100 (mp3lame-encoder).
//!
//! Settings that matter for HLS, each a trap if left at its default:
//! * the output sample rate is set explicitly (LAME would otherwise pick a lower one for a low
//!   bitrate, and the rungs would no longer share frame boundaries);
//! * no Xing/LAME tag frame: LAME writes a blank placeholder first and expects the caller to
//!   overwrite it at the end; left in place it would be a silent frame in every stream, and
//!   the packager drops such frames anyway, so none is written;
//! * no bit reservoir ([`crate::lame_ffi`]), so every frame decodes on its own;
//! * the flush is `lame_encode_flush` ([`FlushGap`]): the "no gap" flush drops the last
//!   ~46 ms.
//!
//! The quality setting is LAME's default (`-q 3`), the same as ffmpeg's libmp3lame uses.

use mp3lame_encoder::{
    Bitrate, Builder, DualPcm, Encoder, FlushGap, Mode, MonoPcm, VbrMode, max_required_buffer_size,
};

use std::fs::File;
use std::io::{BufWriter, Write};

use crate::{TranscodeError, lame_ffi};

/// Bytes buffered before a rung written to a file is written out.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// Bytes of a rung's start kept aside (a frame header is 4).
const HEAD_BYTES: usize = 16;

fn spill_error(error: std::io::Error) -> TranscodeError {
    TranscodeError::Io(format!(
        "cannot write an encoded rung to its temporary file: {error}"
    ))
}

/// The CBR bitrates LAME can be given (mp3lame-encoder's `Bitrate`, in kbit/s). MPEG-1
/// (32–48 kHz) allows 32–320, MPEG-2 and 2.5 (8–24 kHz) 8–160.
pub(crate) const LAME_BITRATES: [u32; 16] = [
    8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

fn lame_bitrate(kbps: u32) -> Option<Bitrate> {
    Some(match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        _ => return None,
    })
}

fn lame_error(what: &str, error: impl std::fmt::Display) -> TranscodeError {
    TranscodeError::Encoder(format!("{what}: {error}"))
}

/// Where a rung's MP3 goes as it is encoded.
pub(crate) enum RungOutput {
    /// Kept in memory.
    Memory(Vec<u8>),
    /// Written to a file as it comes (memory stays at one block's worth).
    File {
        writer: BufWriter<File>,
        len: u64,
        /// The first bytes written: the first frame header, read back for the bitrate.
        head: Vec<u8>,
    },
}

/// A finished rung.
pub(crate) enum Encoded {
    Memory(Vec<u8>),
    /// The file holds `len` bytes of MP3 from its start; `head` is their beginning.
    File {
        file: File,
        len: u64,
        head: Vec<u8>,
    },
}

impl Encoded {
    /// The stream's first bytes (at least a frame header, if there is one).
    pub fn head(&self) -> &[u8] {
        match self {
            Encoded::Memory(mp3) => mp3,
            Encoded::File { head, .. } => head,
        }
    }
}

/// A LAME encoder for one rung and where its MP3 goes.
pub(crate) struct RungEncoder {
    encoder: Encoder,
    output: RungOutput,
    /// What LAME produced for the current block, on its way to a file.
    block: Vec<u8>,
    mono: bool,
}

impl RungEncoder {
    /// `expected_frames`, if known, sizes the output buffer once.
    /// With `file`, the MP3 is written there as it is encoded; otherwise it is kept in memory.
    pub fn new(
        bitrate_kbps: u32,
        sample_rate: u32,
        channels: u8,
        expected_frames: Option<u64>,
        file: Option<File>,
    ) -> Result<Self, TranscodeError> {
        let bitrate = lame_bitrate(bitrate_kbps).ok_or_else(|| {
            TranscodeError::InvalidOptions(format!("LAME has no {bitrate_kbps} kbit/s CBR"))
        })?;
        let settings = |error| {
            lame_error(
                &format!(
                    "LAME refused {bitrate_kbps} kbit/s, {sample_rate} Hz, {channels} channel(s)"
                ),
                error,
            )
        };
        let mut builder = Builder::new()
            .ok_or_else(|| TranscodeError::Encoder("LAME could not allocate".into()))?;
        builder.set_num_channels(channels).map_err(settings)?;
        builder.set_sample_rate(sample_rate).map_err(settings)?;
        builder
            .set_output_sample_rate(std::num::NonZeroU32::new(sample_rate))
            .map_err(settings)?;
        builder.set_brate(bitrate).map_err(settings)?;
        builder.set_vbr_mode(VbrMode::Off).map_err(settings)?;
        builder
            .set_mode(if channels == 1 {
                Mode::Mono
            } else {
                Mode::JointStereo
            })
            .map_err(settings)?;
        builder.set_to_write_vbr_tag(false).map_err(settings)?;
        lame_ffi::disable_bit_reservoir(&mut builder).map_err(|status| {
            TranscodeError::Encoder(format!(
                "LAME refused to disable the bit reservoir ({status})"
            ))
        })?;
        let encoder = builder.build().map_err(settings)?;
        let capacity = expected_frames
            .map(|frames| frames as f64 / f64::from(sample_rate) * f64::from(bitrate_kbps) * 125.0)
            .map_or(0, |bytes| {
                (bytes as usize).saturating_add(16 * 1024).min(512 << 20)
            });
        let output = match file {
            Some(file) => RungOutput::File {
                writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
                len: 0,
                head: Vec::new(),
            },
            None => RungOutput::Memory(Vec::with_capacity(capacity)),
        };
        Ok(RungEncoder {
            encoder,
            output,
            block: Vec::new(),
            mono: channels == 1,
        })
    }

    /// LAME's output for this block goes to the memory buffer, or to `block` first when the
    /// rung is written to a file.
    fn target(&mut self) -> &mut Vec<u8> {
        match &mut self.output {
            RungOutput::Memory(mp3) => mp3,
            RungOutput::File { .. } => {
                self.block.clear();
                &mut self.block
            }
        }
    }

    /// Writes `block` out, for a rung written to a file.
    fn write_block(&mut self) -> Result<(), TranscodeError> {
        if let RungOutput::File { writer, len, head } = &mut self.output {
            if head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head.len()).min(self.block.len());
                head.extend_from_slice(&self.block[..take]);
            }
            writer.write_all(&self.block).map_err(spill_error)?;
            *len += self.block.len() as u64;
        }
        Ok(())
    }

    /// Encodes one block: one plane (mono) or two (stereo) of equal length, in -1..=1.
    pub fn encode(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError> {
        let frames = planes.first().map_or(0, Vec::len);
        if frames == 0 {
            return Ok(());
        }
        if !self.mono && planes.len() < 2 {
            return Err(TranscodeError::Encoder(
                "a block with too few channels".into(),
            ));
        }
        let mut target = std::mem::take(self.target());
        target.reserve(max_required_buffer_size(frames));
        let result = match planes {
            [mono, ..] if self.mono => self
                .encoder
                .encode_to_vec(MonoPcm(mono.as_slice()), &mut target),
            [left, right, ..] => self.encoder.encode_to_vec(
                DualPcm {
                    left: left.as_slice(),
                    right: right.as_slice(),
                },
                &mut target,
            ),
            _ => Ok(0),
        };
        self.put_back(target);
        result.map_err(|error| lame_error("LAME failed to encode", error))?;
        self.write_block()
    }

    /// Flushes LAME (padding the last frame with silence) and gives the whole stream.
    pub fn finish(mut self) -> Result<Encoded, TranscodeError> {
        let mut target = std::mem::take(self.target());
        target.reserve(max_required_buffer_size(0));
        let flushed = self.encoder.flush_to_vec::<FlushGap>(&mut target);
        self.put_back(target);
        flushed.map_err(|error| lame_error("LAME failed to flush", error))?;
        self.write_block()?;
        match self.output {
            RungOutput::Memory(mp3) => Ok(Encoded::Memory(mp3)),
            RungOutput::File { writer, len, head } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| spill_error(e.into_error()))?;
                Ok(Encoded::File { file, len, head })
            }
        }
    }

    /// Returns the buffer [`target`](Self::target) lent out.
    fn put_back(&mut self, buffer: Vec<u8>) {
        match &mut self.output {
            RungOutput::Memory(mp3) => *mp3 = buffer,
            RungOutput::File { .. } => self.block = buffer,
        }
    }
}

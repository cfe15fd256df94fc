//! One AAC-LC rendition, encoded in-process by libfdk-aac (the `fdk-aac` crate builds it from
//! bundled source: no system library).
//!
//! The output is raw access units (no ADTS headers: fMP4 carries the configuration once, in
//! the init segment's `esds`), one per 1024 samples, plus what the packager needs to make
//! the track decode to the source's exact length:
//!
//! * **priming**: the encoder delay (`nDelay`, 2048 samples for AAC-LC at 44.1 kHz): the
//!   decoded stream starts with that many samples that are not source audio;
//! * **valid samples**: the source's length; the rest of the last access unit is padding.
//!
//! libfdk-aac is flushed by feeding silence until every source sample is covered by an
//! access unit, rather than through its end-of-stream call (which the crate does not
//! expose); the access units after that, pure padding, are dropped.

use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

use crate::sink::{RungOut, Sink};
use crate::{SpillFile, TranscodeError};

/// Samples per channel in one AAC-LC access unit.
pub const AAC_FRAME_SAMPLES: u32 = 1024;

/// The bitrates offered for AAC-LC rungs, in kbit/s (Apple's HLS authoring spec recommends
/// 32–160 kbit/s stereo AAC-LC and allows higher; 256 is the iTunes Plus rate).
pub const AAC_BITRATES: [u32; 7] = [32, 48, 64, 96, 128, 192, 256];

/// An encoded AAC-LC rendition; its access units in memory (`Vec<u8>`), or in a file
/// ([`crate::SpilledData`], from [`crate::transcode_fmp4_file_spilled`]).
#[derive(Clone, PartialEq, Eq)]
pub struct AacTrack<D = Vec<u8>> {
    /// Average bitrate asked of the encoder, kbit/s.
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
    /// The MPEG-4 AudioSpecificConfig (for the `esds` box).
    pub audio_specific_config: Vec<u8>,
    /// The access units, back to back.
    pub data: D,
    /// The length of each access unit in `data`, in order.
    pub frame_lens: Vec<u32>,
    /// Encoder delay at the start, in samples per channel.
    pub priming: u32,
    /// Source samples per channel (after the priming; the rest is padding).
    pub valid_samples: u64,
}

impl<D> AacTrack<D> {
    /// The same track with its data converted by `convert`.
    ///
    /// # Errors
    /// Those of `convert`.
    pub fn map_data<E, F>(self, convert: impl FnOnce(D) -> Result<E, F>) -> Result<AacTrack<E>, F> {
        Ok(AacTrack {
            bitrate_kbps: self.bitrate_kbps,
            sample_rate: self.sample_rate,
            channels: self.channels,
            audio_specific_config: self.audio_specific_config,
            data: convert(self.data)?,
            frame_lens: self.frame_lens,
            priming: self.priming,
            valid_samples: self.valid_samples,
        })
    }
}

impl<D> std::fmt::Debug for AacTrack<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacTrack")
            .field("bitrate_kbps", &self.bitrate_kbps)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("frames", &self.frame_lens.len())
            .field(
                "bytes",
                &self.frame_lens.iter().map(|&l| u64::from(l)).sum::<u64>(),
            )
            .field("priming", &self.priming)
            .field("valid_samples", &self.valid_samples)
            .finish()
    }
}

fn fdk_error(what: &str, error: impl std::fmt::Display) -> TranscodeError {
    TranscodeError::Encoder(format!("{what}: {error}"))
}

/// A libfdk-aac encoder for one rung and the access units it has produced so far.
pub(crate) struct AacEncoder {
    encoder: Encoder,
    channels: usize,
    bitrate_kbps: u32,
    sample_rate: u32,
    /// Interleaved samples not yet taken by the encoder.
    pending: Vec<i16>,
    scratch: Vec<u8>,
    out: Sink,
    frame_lens: Vec<u32>,
    input_samples: u64,
    priming: u32,
    audio_specific_config: Vec<u8>,
}

impl AacEncoder {
    pub fn new(
        bitrate_kbps: u32,
        sample_rate: u32,
        channels: u8,
        spill: Option<SpillFile<'_>>,
    ) -> Result<Self, TranscodeError> {
        if !AAC_BITRATES.contains(&bitrate_kbps) {
            return Err(TranscodeError::InvalidOptions(format!(
                "{bitrate_kbps} kbit/s is not an AAC rung we make; use one of {AAC_BITRATES:?}"
            )));
        }
        let refused = |error| {
            fdk_error(
                &format!(
                    "libfdk-aac refused {bitrate_kbps} kbit/s, {sample_rate} Hz, {channels} channel(s)"
                ),
                error,
            )
        };
        let encoder = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(bitrate_kbps * 1000),
            sample_rate,
            transport: Transport::Raw,
            channels: if channels == 1 {
                ChannelMode::Mono
            } else {
                ChannelMode::Stereo
            },
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(refused)?;
        let info = encoder.info().map_err(refused)?;
        if info.frameLength != AAC_FRAME_SAMPLES {
            return Err(TranscodeError::Encoder(format!(
                "libfdk-aac chose {}-sample frames, not {AAC_FRAME_SAMPLES}",
                info.frameLength
            )));
        }
        let config_len = (info.confSize as usize).min(info.confBuf.len());
        let audio_specific_config = info.confBuf.get(..config_len).unwrap_or_default().to_vec();
        if audio_specific_config.is_empty() {
            return Err(TranscodeError::Encoder(
                "libfdk-aac gave no AudioSpecificConfig".into(),
            ));
        }
        Ok(AacEncoder {
            encoder,
            channels: usize::from(channels.clamp(1, 2)),
            bitrate_kbps,
            sample_rate,
            pending: Vec::new(),
            scratch: vec![0; (info.maxOutBufBytes as usize).max(8 * 1024)],
            out: Sink::new(spill)?,
            frame_lens: Vec::new(),
            input_samples: 0,
            priming: info.nDelay,
            audio_specific_config,
        })
    }

    /// Encodes one block: one plane (mono) or two (stereo) of equal length, in -1..=1.
    pub fn encode(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError> {
        let frames = planes.first().map_or(0, Vec::len);
        if planes.len() < self.channels {
            return Err(TranscodeError::Encoder(
                "a block with too few channels".into(),
            ));
        }
        self.pending.reserve(frames * self.channels);
        for index in 0..frames {
            for plane in planes.iter().take(self.channels) {
                let sample = plane.get(index).copied().unwrap_or(0.0);
                self.pending.push(to_i16(sample));
            }
        }
        self.input_samples += frames as u64;
        self.drain()
    }

    /// Hands whole frames of pending input to libfdk-aac, collecting the access units.
    fn drain(&mut self) -> Result<(), TranscodeError> {
        let frame = AAC_FRAME_SAMPLES as usize * self.channels;
        let mut taken = 0;
        while self.pending.len() - taken >= frame {
            let input = self.pending.get(taken..).unwrap_or_default();
            let info = self
                .encoder
                .encode(input, &mut self.scratch)
                .map_err(|error| fdk_error("libfdk-aac failed to encode", error))?;
            if info.input_consumed == 0 && info.output_size == 0 {
                break;
            }
            taken += info.input_consumed;
            self.push_unit(info.output_size)?;
        }
        self.pending.drain(..taken.min(self.pending.len()));
        Ok(())
    }

    fn push_unit(&mut self, len: usize) -> Result<(), TranscodeError> {
        if len == 0 {
            return Ok(());
        }
        let unit = self
            .scratch
            .get(..len)
            .ok_or_else(|| TranscodeError::Encoder("libfdk-aac overran its buffer".into()))?;
        self.out.write(unit)?;
        self.frame_lens.push(len as u32);
        Ok(())
    }

    /// Feeds silence until every source sample is in an access unit, and returns the track.
    pub fn finish(mut self) -> Result<AacTrack<RungOut>, TranscodeError> {
        let needed = (self.input_samples + u64::from(self.priming))
            .div_ceil(u64::from(AAC_FRAME_SAMPLES)) as usize;
        // Each frame of silence yields at most one access unit; the encoder's look-ahead is
        // a few frames, so this bound is never reached by a working encoder.
        let mut budget = needed + 16;
        let silence = vec![0i16; AAC_FRAME_SAMPLES as usize * self.channels];
        while self.frame_lens.len() < needed {
            if budget == 0 {
                return Err(TranscodeError::Encoder(
                    "libfdk-aac stopped producing access units".into(),
                ));
            }
            budget -= 1;
            self.pending.extend_from_slice(&silence);
            self.drain()?;
        }
        let keep: u64 = self
            .frame_lens
            .get(..needed)
            .map_or(0, |lens| lens.iter().map(|&len| u64::from(len)).sum());
        self.frame_lens.truncate(needed);
        Ok(AacTrack {
            bitrate_kbps: self.bitrate_kbps,
            sample_rate: self.sample_rate,
            channels: self.channels as u8,
            audio_specific_config: self.audio_specific_config,
            data: self.out.finish(keep, &[])?,
            frame_lens: self.frame_lens,
            priming: self.priming,
            valid_samples: self.input_samples,
        })
    }
}

/// Full scale `f32` to 16-bit, rounded and clamped.
fn to_i16(sample: f32) -> i16 {
    // Saturating float-to-int conversion; NaN gives 0.
    (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

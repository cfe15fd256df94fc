//! The fMP4 renditions: AAC-LC rungs and a lossless FLAC rung, from one decode.
//!
//! ```text
//!              ┌──────────────── calling thread ───────────────┐     one thread per rung
//! bytes ──▶ Symphonia ──▶ downmix ─┬─▶ rubato ──▶ blocks ───────┼──▶ fdk-aac 64k  ──▶ AUs
//!                                  │                            ├──▶ fdk-aac 128k ──▶ AUs
//!                                  │                            └──▶ fdk-aac 256k ──▶ AUs
//!                                  └─▶ integers (WAV/AIFF PCM only) ──▶ flacenc ──▶ FLAC
//! ```
//!
//! Like the MP3 ladder ([`crate::transcode`]), this decodes once and runs the encoders in
//! parallel behind short bounded queues. The lossless rung takes the samples before any
//! resampling, at the source's rate and depth.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use crate::aac::{AacEncoder, AacTrack};
use crate::decode::{Decoder, Input, conform};
use crate::detect::Sniffed;
use crate::flac_enc::FlacEncoder;
use crate::ladder::output_rate;
use crate::resample::StreamResampler;
use crate::sink::RungOut;
use crate::{
    FlacRung, Fmp4Options, Fmp4Renditions, SourceFormat, SourceInfo, SpillFile, TranscodeError,
};

/// Frames per block handed to the AAC encoders: 16 AAC frames, about 0.37 s at 44.1 kHz.
const BLOCK_FRAMES: usize = 1024 * 16;
/// Blocks that may wait for the slowest encoder before decoding pauses.
const QUEUE_BLOCKS: usize = 8;

type Block = Arc<Vec<Vec<f32>>>;

/// See [`crate::transcode_fmp4`].
pub(crate) fn transcode(
    input: Input<'_>,
    sniffed: Sniffed,
    options: &Fmp4Options,
    spill: Option<SpillFile<'_>>,
) -> Result<Fmp4Renditions<RungOut>, TranscodeError> {
    let mut bitrates = options.aac_rungs_kbps.clone();
    bitrates.sort_unstable();
    bitrates.dedup();
    let mut decoder = Decoder::open(input, sniffed)?;
    let started = Instant::now();
    let Some(first) = decoder.next_chunk()?.map(<[Vec<f32>]>::to_vec) else {
        return Err(decoder
            .finish()
            .err()
            .unwrap_or(TranscodeError::NoAudio(sniffed.format)));
    };
    let Some((source_rate, source_channels)) = decoder.spec() else {
        return Err(TranscodeError::NoAudio(sniffed.format));
    };
    let out_rate = output_rate(sniffed.format, source_rate);
    let out_channels: u8 = if source_channels == 1 { 1 } else { 2 };
    let encoders = bitrates
        .iter()
        .map(|&kbps| AacEncoder::new(kbps, out_rate, out_channels, spill))
        .collect::<Result<Vec<_>, _>>()?;
    let lossless_source = matches!(sniffed.format, SourceFormat::Wav | SourceFormat::Aiff);
    let mut flac = match decoder.pcm_bits() {
        Some(bits) if options.lossless && lossless_source && source_channels <= 2 => Some(
            FlacEncoder::new(source_rate, source_channels as u8, bits, spill)?,
        ),
        _ => None,
    };
    let mut resampler = if source_rate == out_rate {
        None
    } else {
        Some(StreamResampler::new(
            source_rate,
            out_rate,
            usize::from(out_channels),
        )?)
    };

    let (decoded, encoded) = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(encoders.len());
        let mut handles = Vec::with_capacity(encoders.len());
        for encoder in encoders {
            let (sender, receiver) = sync_channel::<Block>(QUEUE_BLOCKS);
            senders.push(sender);
            handles.push(scope.spawn(move || encode_aac(encoder, &receiver)));
        }
        let mut blocks = Blocks::new(senders, usize::from(out_channels));
        let decoded = (|| -> Result<_, TranscodeError> {
            let mut scratch = Vec::new();
            let mut chunk = Some(first);
            let mut gone = false;
            while let Some(planes) = chunk.take() {
                if let Some(flac) = flac.as_mut() {
                    let source: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
                    flac.push(&source)?;
                }
                let planes = conform(&planes, usize::from(out_channels), &mut scratch);
                match resampler.as_mut() {
                    None => gone |= blocks.push(&planes).is_err(),
                    Some(resampler) => resampler.push(&planes, &mut |out| {
                        gone |= blocks.push(out).is_err();
                        Ok(())
                    })?,
                }
                if gone {
                    return Ok(None);
                }
                chunk = decoder.next_chunk()?.map(<[Vec<f32>]>::to_vec);
            }
            if let Some(resampler) = resampler.as_mut() {
                resampler.finish(&mut |out| {
                    gone |= blocks.push(out).is_err();
                    Ok(())
                })?;
            }
            if gone || blocks.send().is_err() {
                return Ok(None);
            }
            drop(blocks);
            Ok(Some(decoder.finish()?))
        })();
        let encoded: Vec<Result<AacTrack<RungOut>, TranscodeError>> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(TranscodeError::Encoder("an encoder thread panicked".into()))
                })
            })
            .collect();
        (decoded, encoded)
    });
    let Some(stats) = decoded? else {
        let failure = encoded.into_iter().find_map(Result::err);
        return Err(failure.unwrap_or_else(|| TranscodeError::Encoder("an encoder stopped".into())));
    };
    let aac = encoded.into_iter().collect::<Result<Vec<_>, _>>()?;
    let flac = flac
        .map(FlacEncoder::finish)
        .transpose()?
        .map(|(data, layout)| FlacRung { data, layout });
    Ok(Fmp4Renditions {
        source: SourceInfo {
            format: sniffed.format,
            codec: stats.codec.into(),
            sample_rate: stats.sample_rate,
            channels: u8::try_from(stats.channels).unwrap_or(u8::MAX),
            bitrate_kbps: stats.bitrate_kbps(),
            duration: stats.duration(),
        },
        sample_rate: out_rate,
        channels: out_channels,
        aac,
        flac,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

fn encode_aac(
    mut encoder: AacEncoder,
    receiver: &Receiver<Block>,
) -> Result<AacTrack<RungOut>, TranscodeError> {
    for block in receiver {
        encoder.encode(&block)?;
    }
    encoder.finish()
}

/// The encoders are gone: one of them failed (its error is reported from its thread).
struct EncoderGone;

/// Collects output-rate PCM into blocks and hands each to every encoder.
struct Blocks {
    senders: Vec<SyncSender<Block>>,
    planes: Vec<Vec<f32>>,
}

impl Blocks {
    fn new(senders: Vec<SyncSender<Block>>, channels: usize) -> Self {
        Blocks {
            senders,
            planes: vec![Vec::with_capacity(BLOCK_FRAMES); channels],
        }
    }

    fn push(&mut self, planes: &[&[f32]]) -> Result<(), EncoderGone> {
        let frames = planes.first().map_or(0, |plane| plane.len());
        let mut done = 0;
        while done < frames {
            let filled = self.planes.first().map_or(0, Vec::len);
            let take = (BLOCK_FRAMES - filled).min(frames - done);
            for (block, plane) in self.planes.iter_mut().zip(planes) {
                let part = plane.get(done..done + take).unwrap_or_default();
                block.extend(part.iter().map(|s| s.clamp(-1.0, 1.0)));
            }
            done += take;
            if self.planes.first().map_or(0, Vec::len) >= BLOCK_FRAMES {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), EncoderGone> {
        if self.planes.first().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let channels = self.planes.len();
        let planes = std::mem::replace(
            &mut self.planes,
            vec![Vec::with_capacity(BLOCK_FRAMES); channels],
        );
        let block = Arc::new(planes);
        for sender in &self.senders {
            sender.send(Arc::clone(&block)).map_err(|_| EncoderGone)?;
        }
        Ok(())
    }
}

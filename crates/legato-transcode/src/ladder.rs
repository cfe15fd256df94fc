//! The ladder: which rungs to make, at which rate, and the decode → encode pipeline.
//!
//! ```text
//!              ┌───────────── calling thread ─────────────┐      one thread per rung
//! bytes ──▶ Symphonia ──▶ downmix ──▶ rubato ──▶ blocks ──┼──▶ LAME 64k  ──▶ MP3 bytes
//!                                                         ├──▶ LAME 128k ──▶ MP3 bytes
//!                                                         └──▶ LAME 192k ──▶ MP3 bytes
//! ```
//!
//! The audio is decoded once; blocks of PCM (shared, reference-counted) go to every rung's
//! encoder through a short bounded queue. Decoding and the encoders run at the same time, so
//! memory stays at a few blocks whatever the length of the track (only the MP3 output
//! grows), and all cores are busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use legato_media::{FrameHeader, MediaError, READ_WINDOW_BYTES, SegmentOptions, package_mp3_read};

use crate::decode::{DecodeStats, Decoder, Input, conform};
use crate::detect::Sniffed;
use crate::encode::{Encoded, LAME_BITRATES, RungEncoder};
use crate::resample::StreamResampler;
use crate::{
    LadderOptions, MAX_DURATION_SECONDS, Progress, Rung, SourceFormat, SourceInfo, SpillFile,
    SpilledRung, Stage, TranscodeError, Transcoded,
};

/// Frames per block handed to the encoders: 16 MPEG-1 frames, about 0.4 s.
const BLOCK_FRAMES: usize = 1152 * 16;
/// Blocks that may wait for the slowest encoder before decoding pauses.
const QUEUE_BLOCKS: usize = 8;

/// The sample rate of every encoded rung.
///
/// An MP3 source keeps its own rate (even MPEG-2/2.5 rates), so that the rungs' frames line
/// up with the original's. Other sources keep 32, 44.1 or 48 kHz, and otherwise go to 48 kHz
/// from a multiple of 8 kHz (8, 16, 24, 96, 192 kHz...) or to 44.1 kHz from anything else
/// (11.025, 22.05, 88.2 kHz, odd rates).
pub(crate) fn output_rate(format: SourceFormat, source_rate: u32) -> u32 {
    match source_rate {
        _ if format == SourceFormat::Mp3 && is_mpeg_rate(source_rate) => source_rate,
        32_000 | 44_100 | 48_000 => source_rate,
        rate if rate % 8_000 == 0 => 48_000,
        _ => 44_100,
    }
}

fn is_mpeg_rate(rate: u32) -> bool {
    matches!(
        rate,
        8_000 | 11_025 | 12_000 | 16_000 | 22_050 | 24_000 | 32_000 | 44_100 | 48_000
    )
}

/// The CBR bitrates LAME allows at an output rate: MPEG-1 (32–48 kHz) 32–320 kbit/s,
/// MPEG-2 (16–24 kHz) 8–160 kbit/s, MPEG-2.5 (8–12 kHz) 8–64 kbit/s (LAME's own table for
/// MPEG-2.5 stops there).
pub(crate) fn bitrate_range(rate: u32) -> (u32, u32) {
    match rate {
        32_000.. => (32, 320),
        16_000.. => (8, 160),
        _ => (8, 64),
    }
}

/// Checks the requested rungs (before any work is done).
pub(crate) fn validate(options: &LadderOptions) -> Result<(), TranscodeError> {
    if options.rungs_kbps.is_empty() {
        return Err(TranscodeError::InvalidOptions(
            "the ladder needs at least one rung".into(),
        ));
    }
    if let Some(bad) = options
        .rungs_kbps
        .iter()
        .find(|kbps| !LAME_BITRATES.contains(kbps))
    {
        return Err(TranscodeError::InvalidOptions(format!(
            "{bad} kbit/s is not a bitrate LAME encodes; use one of {LAME_BITRATES:?}"
        )));
    }
    Ok(())
}

/// The bitrates to encode, ascending: the requested ones brought into the range allowed at
/// `rate`, and for an MP3 source only those below its own bitrate (the original is the top
/// rung).
pub(crate) fn plan_bitrates(
    requested: &[u32],
    rate: u32,
    mp3_source_kbps: Option<u32>,
) -> Vec<u32> {
    let (min, max) = bitrate_range(rate);
    let mut bitrates: Vec<u32> = requested
        .iter()
        .map(|&kbps| kbps.clamp(min, max))
        .filter(|&kbps| mp3_source_kbps.is_none_or(|source| kbps < source))
        .collect();
    bitrates.sort_unstable();
    bitrates.dedup();
    bitrates
}

/// An encoded rung, in memory or in a file.
pub(crate) struct EncodedRung {
    name: String,
    bitrate_kbps: u32,
    encoded: Encoded,
}

impl EncodedRung {
    pub fn into_memory(self) -> Result<Rung, TranscodeError> {
        match self.encoded {
            Encoded::Memory(mp3) => Ok(Rung {
                name: self.name,
                bitrate_kbps: self.bitrate_kbps,
                mp3,
            }),
            Encoded::File { .. } => Err(TranscodeError::Encoder(
                "a rung was written to a file, not kept in memory".into(),
            )),
        }
    }

    pub fn into_file(self) -> Result<SpilledRung, TranscodeError> {
        match self.encoded {
            Encoded::File { file, len, .. } => Ok(SpilledRung {
                name: self.name,
                bitrate_kbps: self.bitrate_kbps,
                file,
                len,
            }),
            Encoded::Memory(_) => Err(TranscodeError::Encoder(
                "a rung was kept in memory, not written to a file".into(),
            )),
        }
    }
}

/// Why an MP3 source could not be scanned: its bytes could not be read, or they are not MP3.
enum ScanError {
    Io(String),
    Media(MediaError),
}

impl From<MediaError> for ScanError {
    fn from(error: MediaError) -> Self {
        ScanError::Media(error)
    }
}

/// See [`crate::transcode`]; with `spill`, each rung is written to a file of its own.
pub(crate) fn transcode(
    input: Input<'_>,
    sniffed: Sniffed,
    options: &LadderOptions,
    progress: &(dyn Fn(Progress) + Sync),
    spill: Option<SpillFile<'_>>,
) -> Result<Transcoded<EncodedRung>, TranscodeError> {
    validate(options)?;
    let reporter = Reporter::new(progress);
    reporter.decoded(0.0);

    // An MP3 source is described by its frames, exactly as the packager will play it.
    let mp3 = if sniffed.format == SourceFormat::Mp3 {
        let len = usize::try_from(input.len())
            .map_err(|_| TranscodeError::Io("the MP3 is too large to scan".into()))?;
        let mut read = |range| {
            input
                .read_range(range)
                .map_err(|e| ScanError::Io(e.to_string()))
        };
        let package = package_mp3_read(
            len,
            READ_WINDOW_BYTES,
            &mut read,
            None,
            &SegmentOptions::default(),
        )
        .map_err(|error| match error {
            ScanError::Io(e) => TranscodeError::Io(e),
            ScanError::Media(error) => match error {
                MediaError::Empty => TranscodeError::Empty,
                MediaError::TooShort => {
                    TranscodeError::corrupt(SourceFormat::Mp3, "not one complete audio frame")
                }
                other => TranscodeError::corrupt(SourceFormat::Mp3, other.to_string()),
            },
        })?;
        let info = package.info().clone();
        if info.duration > MAX_DURATION_SECONDS {
            return Err(TranscodeError::TooLong {
                limit_seconds: MAX_DURATION_SECONDS,
            });
        }
        Some(SourceInfo {
            format: SourceFormat::Mp3,
            codec: "mp3".into(),
            sample_rate: info.sample_rate,
            channels: info.channels,
            bitrate_kbps: Some(info.bitrate_kbps),
            duration: info.duration,
        })
    } else {
        None
    };
    if let Some(source) = &mp3 {
        let bitrates = plan_bitrates(&options.rungs_kbps, source.sample_rate, source.bitrate_kbps);
        if bitrates.is_empty() {
            // Nothing below the original: the ladder is the original alone, no decoding.
            reporter.decoded(1.0);
            reporter.encoded_all();
            return Ok(Transcoded {
                source: source.clone(),
                sample_rate: source.sample_rate,
                channels: source.channels,
                rungs: Vec::new(),
                keep_original: true,
                decode_ms: 0.0,
                encode_ms: 0.0,
            });
        }
    }

    let mut decoder = Decoder::open(input, sniffed)?;
    let decode_started = Instant::now();
    let Some(first) = decoder.next_chunk()?.map(<[Vec<f32>]>::to_vec) else {
        // No audio at all: `finish` says why.
        return Err(decoder
            .finish()
            .err()
            .unwrap_or(TranscodeError::NoAudio(sniffed.format)));
    };
    let first_decode = decode_started.elapsed();
    let Some((source_rate, source_channels)) = decoder.spec() else {
        return Err(TranscodeError::NoAudio(sniffed.format));
    };

    let (out_rate, out_channels, bitrates, expected_seconds) = match &mp3 {
        Some(source) => (
            source.sample_rate,
            source.channels.clamp(1, 2),
            plan_bitrates(&options.rungs_kbps, source.sample_rate, source.bitrate_kbps),
            Some(source.duration),
        ),
        None => {
            let rate = output_rate(sniffed.format, source_rate);
            (
                rate,
                if source_channels == 1 { 1 } else { 2 },
                plan_bitrates(&options.rungs_kbps, rate, None),
                decoder.declared_seconds(),
            )
        }
    };
    let expected_frames = expected_seconds.map(|seconds| (seconds * f64::from(out_rate)) as u64);
    let encoders = bitrates
        .iter()
        .map(|&kbps| {
            let file = spill
                .map(|make| make().map_err(|e| TranscodeError::Io(e.to_string())))
                .transpose()?;
            RungEncoder::new(kbps, out_rate, out_channels, expected_frames, file)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resampler = if source_rate == out_rate {
        None
    } else {
        Some(StreamResampler::new(
            source_rate,
            out_rate,
            usize::from(out_channels),
        )?)
    };

    let reporter = reporter.with_rungs(encoders.len());
    let encode_started = Instant::now();
    let (decoded, encoded) = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(encoders.len());
        let mut handles = Vec::with_capacity(encoders.len());
        for (index, encoder) in encoders.into_iter().enumerate() {
            let (sender, receiver) = sync_channel::<Arc<Block>>(QUEUE_BLOCKS);
            senders.push(sender);
            let reporter = &reporter;
            handles.push(scope.spawn(move || encode_rung(encoder, &receiver, index, reporter)));
        }
        let producer = Producer::new(senders, usize::from(out_channels));
        let decoded = produce(decoder, first, resampler, producer, &reporter);
        let encoded: Vec<Result<Encoded, TranscodeError>> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(TranscodeError::Encoder("an encoder thread panicked".into()))
                })
            })
            .collect();
        (decoded, encoded)
    });
    let encode_ms = encode_started.elapsed().as_secs_f64() * 1000.0;
    let Some((stats, decode_time)) = decoded? else {
        let failure = encoded.into_iter().find_map(Result::err);
        return Err(failure.unwrap_or_else(|| TranscodeError::Encoder("an encoder stopped".into())));
    };
    let mut rungs = Vec::with_capacity(encoded.len());
    for result in encoded {
        let encoded = result?;
        let header = FrameHeader::parse_slice(encoded.head())
            .ok_or_else(|| TranscodeError::Encoder("LAME produced no MP3 frame".into()))?;
        let bitrate_kbps = header.bitrate_kbps();
        rungs.push(EncodedRung {
            name: format!("{bitrate_kbps}k"),
            bitrate_kbps,
            encoded,
        });
    }
    rungs.sort_by_key(|rung| rung.bitrate_kbps);
    rungs.dedup_by_key(|rung| rung.bitrate_kbps);
    reporter.encoded_all();

    let source = match mp3 {
        Some(source) => source,
        None => SourceInfo {
            format: sniffed.format,
            codec: stats.codec.into(),
            sample_rate: stats.sample_rate,
            channels: u8::try_from(stats.channels).unwrap_or(u8::MAX),
            bitrate_kbps: stats.bitrate_kbps(),
            duration: stats.duration(),
        },
    };
    Ok(Transcoded {
        source,
        sample_rate: out_rate,
        channels: out_channels,
        rungs,
        keep_original: sniffed.format == SourceFormat::Mp3,
        decode_ms: (first_decode + decode_time).as_secs_f64() * 1000.0,
        encode_ms,
    })
}

/// A block of PCM for the encoders: one or two planes in -1..=1, and how far through the
/// input decoding was when it was complete.
struct Block {
    planes: Vec<Vec<f32>>,
    fraction: f32,
}

fn encode_rung(
    mut encoder: RungEncoder,
    receiver: &Receiver<Arc<Block>>,
    index: usize,
    reporter: &Reporter<'_>,
) -> Result<Encoded, TranscodeError> {
    for block in receiver {
        encoder.encode(&block.planes)?;
        reporter.encoded(index, block.fraction);
    }
    encoder.finish()
}

/// Collects output-rate PCM into blocks and hands each to every encoder.
struct Producer {
    senders: Vec<SyncSender<Arc<Block>>>,
    planes: Vec<Vec<f32>>,
    /// Time spent waiting for the encoders to take a block.
    waiting: Duration,
}

/// The encoders are gone: one of them failed (its error is reported from its thread).
struct EncoderGone;

impl Producer {
    fn new(senders: Vec<SyncSender<Arc<Block>>>, channels: usize) -> Self {
        Producer {
            senders,
            planes: vec![Vec::with_capacity(BLOCK_FRAMES); channels],
            waiting: Duration::ZERO,
        }
    }

    /// Appends audio (one slice per output channel), clamped to full scale.
    fn push(&mut self, planes: &[&[f32]], fraction: f32) -> Result<(), EncoderGone> {
        let frames = planes.first().map_or(0, |plane| plane.len());
        let mut done = 0;
        while done < frames {
            let room = BLOCK_FRAMES - self.planes[0].len();
            let take = room.min(frames - done);
            for (block, plane) in self.planes.iter_mut().zip(planes) {
                block.extend(plane[done..done + take].iter().map(|s| s.clamp(-1.0, 1.0)));
            }
            done += take;
            if self.planes[0].len() == BLOCK_FRAMES {
                self.send(fraction)?;
            }
        }
        Ok(())
    }

    fn send(&mut self, fraction: f32) -> Result<(), EncoderGone> {
        if self.planes[0].is_empty() {
            return Ok(());
        }
        let channels = self.planes.len();
        let planes = std::mem::replace(
            &mut self.planes,
            vec![Vec::with_capacity(BLOCK_FRAMES); channels],
        );
        let block = Arc::new(Block { planes, fraction });
        let started = Instant::now();
        for sender in &self.senders {
            sender.send(Arc::clone(&block)).map_err(|_| EncoderGone)?;
        }
        self.waiting += started.elapsed();
        Ok(())
    }
}

/// The decoding side of the pipeline, on the calling thread. Returns the decoder's stats and
/// the time spent decoding (not waiting for the encoders), or `None` if an encoder failed.
fn produce(
    mut decoder: Decoder<'_>,
    first: Vec<Vec<f32>>,
    mut resampler: Option<StreamResampler>,
    mut producer: Producer,
    reporter: &Reporter<'_>,
) -> Result<Option<(DecodeStats, Duration)>, TranscodeError> {
    let started = Instant::now();
    let channels = producer.planes.len();
    let mut scratch = Vec::new();
    let mut outcome: Result<(), EncoderGone> = Ok(());
    let mut feed = |planes: &[Vec<f32>],
                    fraction: f32,
                    producer: &mut Producer,
                    resampler: &mut Option<StreamResampler>|
     -> Result<Result<(), EncoderGone>, TranscodeError> {
        let planes = conform(planes, channels, &mut scratch);
        match resampler {
            None => Ok(producer.push(&planes, fraction)),
            Some(resampler) => {
                let mut gone = Ok(());
                resampler.push(&planes, &mut |out| {
                    if gone.is_ok() {
                        gone = producer.push(out, fraction);
                    }
                    Ok(())
                })?;
                Ok(gone)
            }
        }
    };

    let fraction = decoder.fraction();
    outcome = outcome.and(feed(&first, fraction, &mut producer, &mut resampler)?);
    reporter.decoded(fraction);
    while outcome.is_ok() {
        // Measured before the chunk is read, so the chunk need not be copied out of the
        // decoder: a progress figure one packet behind.
        let fraction = decoder.fraction();
        let Some(chunk) = decoder.next_chunk()? else {
            break;
        };
        outcome = feed(chunk, fraction, &mut producer, &mut resampler)?;
        reporter.decoded(fraction);
    }
    if outcome.is_ok() {
        if let Some(resampler) = resampler.as_mut() {
            let mut gone = Ok(());
            resampler.finish(&mut |out| {
                if gone.is_ok() {
                    gone = producer.push(out, 1.0);
                }
                Ok(())
            })?;
            outcome = gone;
        }
    }
    if outcome.is_ok() {
        outcome = producer.send(1.0);
    }
    let waiting = producer.waiting;
    // Closing the queues tells the encoders to flush.
    drop(producer);
    if outcome.is_err() {
        // An encoder failed: its own error is what the caller sees, not whatever stopping
        // early does to the decoder's end-of-stream checks.
        return Ok(None);
    }
    let stats = decoder.finish()?;
    reporter.decoded(1.0);
    Ok(Some((stats, started.elapsed().saturating_sub(waiting))))
}

/// Calls the progress callback as stages advance, at most once per percent per stage,
/// from whichever thread gets there first.
struct Reporter<'p> {
    callback: &'p (dyn Fn(Progress) + Sync),
    decoded: AtomicU32,
    rungs: Vec<AtomicU32>,
    encoded: AtomicU32,
}

impl<'p> Reporter<'p> {
    fn new(callback: &'p (dyn Fn(Progress) + Sync)) -> Self {
        Reporter {
            callback,
            decoded: AtomicU32::new(0),
            rungs: Vec::new(),
            encoded: AtomicU32::new(0),
        }
    }

    fn with_rungs(self, rungs: usize) -> Self {
        Reporter {
            rungs: (0..rungs).map(|_| AtomicU32::new(0)).collect(),
            ..self
        }
    }

    fn percent(fraction: f32) -> u32 {
        (fraction.clamp(0.0, 1.0) * 100.0) as u32
    }

    fn report(&self, stage: Stage, percent: u32) {
        (self.callback)(Progress {
            stage,
            fraction: percent as f32 / 100.0,
        });
    }

    fn decoded(&self, fraction: f32) {
        let percent = Self::percent(fraction);
        // The first call (0 %) is reported too, as "started".
        let previous = self.decoded.fetch_max(percent + 1, Ordering::Relaxed);
        if percent + 1 > previous {
            self.report(Stage::Decode, percent);
        }
    }

    fn encoded(&self, rung: usize, fraction: f32) {
        if let Some(slot) = self.rungs.get(rung) {
            slot.fetch_max(Self::percent(fraction), Ordering::Relaxed);
        }
        let slowest = self
            .rungs
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .min()
            .unwrap_or(100);
        if slowest > self.encoded.fetch_max(slowest, Ordering::Relaxed) {
            self.report(Stage::Encode, slowest);
        }
    }

    fn encoded_all(&self) {
        if 100 > self.encoded.fetch_max(100, Ordering::Relaxed) {
            self.report(Stage::Encode, 100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rates() {
        use SourceFormat::*;
        assert_eq!(output_rate(Wav, 44_100), 44_100);
        assert_eq!(output_rate(Wav, 48_000), 48_000);
        assert_eq!(output_rate(Flac, 32_000), 32_000);
        assert_eq!(output_rate(Wav, 96_000), 48_000);
        assert_eq!(output_rate(Wav, 16_000), 48_000);
        assert_eq!(output_rate(Wav, 8_000), 48_000);
        assert_eq!(output_rate(Wav, 22_050), 44_100);
        assert_eq!(output_rate(Wav, 88_200), 44_100);
        assert_eq!(output_rate(Wav, 37_800), 44_100);
        assert_eq!(output_rate(Mp3, 22_050), 22_050);
        assert_eq!(output_rate(Mp3, 8_000), 8_000);
    }

    #[test]
    fn bitrates_are_capped_and_cut_below_an_mp3_original() {
        let default = [64, 128, 192];
        assert_eq!(plan_bitrates(&default, 44_100, None), vec![64, 128, 192]);
        assert_eq!(plan_bitrates(&[192, 64, 64], 48_000, None), vec![64, 192]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(192)), vec![64, 128]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(128)), vec![64]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(64)), Vec::<u32>::new());
        assert_eq!(plan_bitrates(&default, 22_050, None), vec![64, 128, 160]);
        assert_eq!(plan_bitrates(&default, 22_050, Some(160)), vec![64, 128]);
        assert_eq!(plan_bitrates(&[8, 16], 44_100, None), vec![32]);
        assert_eq!(plan_bitrates(&default, 11_025, None), vec![64]);
        assert_eq!(plan_bitrates(&[32, 64, 128], 8_000, Some(64)), vec![32]);
    }

    #[test]
    fn options_are_checked() {
        let ok = LadderOptions::default();
        assert!(validate(&ok).is_ok());
        let empty = LadderOptions { rungs_kbps: vec![] };
        assert_eq!(
            validate(&empty).map_err(|e| e.code()),
            Err("invalid-options")
        );
        let odd = LadderOptions {
            rungs_kbps: vec![100],
        };
        assert_eq!(validate(&odd).map_err(|e| e.code()), Err("invalid-options"));
    }
}

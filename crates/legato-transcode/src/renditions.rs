//! Every rendition of a track from one decode: the MP3 ladder (LAME), the AAC-LC rungs
//! (libfdk-aac), the lossless FLAC rung (flacenc) and the analysis (loudness, true peak,
//! waveform).
//!
//! ```text
//!            ┌────────────────────────── calling thread ──────────────────────┐  one thread per rung
//! bytes ──▶ Symphonia ─┬─▶ downmix ──▶ rubato ──▶ blocks ───────────────────────┼─▶ LAME 64k ──▶ MP3
//!                      │                                                        ├─▶ LAME 128k ──▶ MP3
//!                      │                                                        ├─▶ fdk-aac 64k ──▶ AUs
//!                      │                                                        └─▶ fdk-aac 256k ──▶ AUs
//!                      ├─▶ integers (WAV/AIFF PCM only) ──▶ flacenc ──▶ FLAC
//!                      └─▶ EBU R128 meter, waveform ──▶ analysis
//! ```
//!
//! Blocks of PCM at the output rate (shared, reference-counted) go to every encoder
//! ([`Encoder`]: LAME and libfdk-aac alike) through a short bounded queue; decoding and the
//! encoders run at the same time, so memory stays at a few blocks whatever the track's length
//! (the encoded output is kept in memory or, with a spill, written to files as it comes).
//! The lossless rung and the analysis take the samples before any resampling, at the
//! source's rate, on the decoding thread. Nothing is decoded when nothing needs it (an MP3
//! whose ladder has no rung below it, no AAC, no analysis).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use crate::aac::{AacEncoder, AacTrack};
use crate::analyze::Analyzer;
use crate::decode::{DecodeStats, Decoder, Input, conform};
use crate::detect::Sniffed;
use crate::encode::{Encoded, RungEncoder};
use crate::flac_enc::FlacEncoder;
use crate::ladder::{EncodedRung, Reporter, output_rate, plan_bitrates, scan_mp3};
use crate::resample::StreamResampler;
use crate::sink::RungOut;
use crate::{
    Analysis, FlacRung, Fmp4Renditions, MAX_WAVEFORM_POINTS, Progress, SourceFormat, SourceInfo,
    SpillFile, TranscodeError, Transcoded,
};

/// Frames per block handed to the encoders: 16 MPEG-1 frames, about 0.4 s.
const BLOCK_FRAMES: usize = 1152 * 16;
/// Blocks that may wait for the slowest encoder before decoding pauses.
const QUEUE_BLOCKS: usize = 8;

/// What to make of a source, in one decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenditionRequest {
    /// MP3 (LAME CBR) rungs in kbit/s; for an MP3 source only those below its own bitrate are
    /// made (the upload is the top rung). May be empty.
    pub mp3_rungs_kbps: Vec<u32>,
    /// AAC-LC rungs in kbit/s, each one of [`crate::AAC_BITRATES`]. May be empty.
    pub aac_rungs_kbps: Vec<u32>,
    /// A lossless FLAC rung of an integer PCM (WAV, AIFF) source.
    pub lossless: bool,
    /// Waveform points of an analysis (loudness, true peak, waveform) measured from the same
    /// decode; `None` for no analysis.
    pub analysis_points: Option<usize>,
}

/// What [`crate::transcode_renditions`] made. `R` holds an MP3 rung, `D` an fMP4 rung's bytes
/// (in memory, or in files when spilled).
#[derive(Debug)]
pub struct Renditions<R, D> {
    /// The MP3 rungs (and whether the MP3 upload is the top one).
    pub mp3: Transcoded<R>,
    /// The AAC-LC rungs and the lossless one.
    pub fmp4: Fmp4Renditions<D>,
    pub analysis: Option<Analysis>,
    /// Times the source was decoded: 0 or 1.
    pub decodes: u32,
    /// Why the AAC and lossless rungs were not made, when an encoder refused the source (a
    /// sample rate libfdk-aac does not take, say): the MP3 rungs are made all the same.
    pub fmp4_refused: Option<TranscodeError>,
}

/// One encoder of the fan-out: takes blocks of output-rate PCM on a thread of its own.
pub(crate) trait Encoder: Send {
    /// Encodes one block: one plane (mono) or two (stereo) of equal length, in -1..=1.
    fn encode(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError>;
    /// Flushes the encoder and gives what it made.
    fn finish(self: Box<Self>) -> Result<Encoding, TranscodeError>;
}

/// What one encoder made.
pub(crate) enum Encoding {
    Mp3(Encoded),
    Aac(AacTrack<RungOut>),
}

impl Encoder for RungEncoder {
    fn encode(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError> {
        RungEncoder::encode(self, planes)
    }

    fn finish(self: Box<Self>) -> Result<Encoding, TranscodeError> {
        RungEncoder::finish(*self).map(Encoding::Mp3)
    }
}

impl Encoder for AacEncoder {
    fn encode(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError> {
        AacEncoder::encode(self, planes)
    }

    fn finish(self: Box<Self>) -> Result<Encoding, TranscodeError> {
        AacEncoder::finish(*self).map(Encoding::Aac)
    }
}

/// Decodes `input` once and makes everything `request` asks for. See
/// [`crate::transcode_renditions`].
pub(crate) fn run(
    input: Input<'_>,
    sniffed: Sniffed,
    request: &RenditionRequest,
    progress: &(dyn Fn(Progress) + Sync),
    spill: Option<SpillFile<'_>>,
) -> Result<Renditions<EncodedRung, RungOut>, TranscodeError> {
    let started = Instant::now();
    let reporter = Reporter::new(progress);
    reporter.decoded(0.0);
    // An MP3 source is described by its frames, exactly as the packager will play it.
    let mp3 = if sniffed.format == SourceFormat::Mp3 {
        Some(scan_mp3(&input)?)
    } else {
        None
    };
    let mut aac_rungs = request.aac_rungs_kbps.clone();
    aac_rungs.sort_unstable();
    aac_rungs.dedup();
    let lossless_source = matches!(sniffed.format, SourceFormat::Wav | SourceFormat::Aiff);
    if let Some(source) = &mp3 {
        let below = plan_bitrates(
            &request.mp3_rungs_kbps,
            source.sample_rate,
            source.bitrate_kbps,
        );
        if below.is_empty() && aac_rungs.is_empty() && request.analysis_points.is_none() {
            // Nothing to decode for: the ladder is the original alone.
            reporter.decoded(1.0);
            reporter.encoded_all();
            return Ok(Renditions {
                mp3: Transcoded {
                    source: source.clone(),
                    sample_rate: source.sample_rate,
                    channels: source.channels,
                    rungs: Vec::new(),
                    keep_original: true,
                    decode_ms: 0.0,
                    encode_ms: 0.0,
                },
                fmp4: Fmp4Renditions {
                    source: source.clone(),
                    sample_rate: source.sample_rate,
                    channels: source.channels.clamp(1, 2),
                    aac: Vec::new(),
                    flac: None,
                    elapsed_ms: 0.0,
                },
                analysis: None,
                decodes: 0,
                fmp4_refused: None,
            });
        }
    }

    let mut decoder = Decoder::open(input, sniffed)?;
    metrics::counter!(crate::DECODES).increment(1);
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

    let (out_rate, out_channels, mp3_bitrates, expected_seconds) = match &mp3 {
        Some(source) => (
            source.sample_rate,
            source.channels.clamp(1, 2),
            plan_bitrates(
                &request.mp3_rungs_kbps,
                source.sample_rate,
                source.bitrate_kbps,
            ),
            Some(source.duration),
        ),
        None => {
            let rate = output_rate(sniffed.format, source_rate);
            (
                rate,
                if source_channels == 1 { 1 } else { 2 },
                plan_bitrates(&request.mp3_rungs_kbps, rate, None),
                decoder.declared_seconds(),
            )
        }
    };
    let expected_frames = expected_seconds.map(|seconds| (seconds * f64::from(out_rate)) as u64);
    let mut encoders: Vec<Box<dyn Encoder>> = Vec::new();
    for &kbps in &mp3_bitrates {
        let file = spill
            .map(|make| make().map_err(|e| TranscodeError::Io(e.to_string())))
            .transpose()?;
        encoders.push(Box::new(RungEncoder::new(
            kbps,
            out_rate,
            out_channels,
            expected_frames,
            file,
        )?));
    }
    // An fMP4 encoder that refuses the source (its input's fault) leaves the fMP4 rungs out;
    // the MP3 rungs are made all the same.
    let mut fmp4_refused = None;
    let mut aac_encoders = Vec::new();
    for &kbps in &aac_rungs {
        match refusable(
            AacEncoder::new(kbps, out_rate, out_channels, spill),
            &mut fmp4_refused,
        )? {
            Some(encoder) => aac_encoders.push(encoder),
            None => break,
        }
    }
    let mut flac = match decoder.pcm_bits() {
        Some(bits) if request.lossless && lossless_source && source_channels <= 2 => refusable(
            FlacEncoder::new(source_rate, source_channels as u8, bits, spill),
            &mut fmp4_refused,
        )?,
        _ => None,
    };
    if fmp4_refused.is_some() {
        aac_encoders.clear();
        flac = None;
    }
    for encoder in aac_encoders {
        encoders.push(Box::new(encoder));
    }
    let mut analyzer = request
        .analysis_points
        .map(|_| Analyzer::new(first.len(), source_rate))
        .transpose()?;
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
            handles.push(scope.spawn(move || encode(encoder, &receiver, index, reporter)));
        }
        let producer = Producer::new(senders, usize::from(out_channels));
        let taps = Taps {
            flac: flac.as_mut(),
            analyzer: analyzer.as_mut(),
        };
        let decoded = produce(decoder, first, resampler, producer, taps, &reporter);
        let encoded: Vec<Result<Encoding, TranscodeError>> = handles
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
    let mut rungs = Vec::new();
    let mut aac = Vec::new();
    for result in encoded {
        match result? {
            Encoding::Mp3(encoded) => rungs.push(EncodedRung::new(encoded)?),
            Encoding::Aac(track) => aac.push(track),
        }
    }
    rungs.sort_by_key(EncodedRung::bitrate_kbps);
    rungs.dedup_by_key(|rung| rung.bitrate_kbps());
    reporter.encoded_all();
    let flac = flac
        .map(FlacEncoder::finish)
        .transpose()?
        .map(|(data, layout)| FlacRung { data, layout });
    let analysis = analyzer.map(|analyzer| {
        analyzer.finish(
            request
                .analysis_points
                .unwrap_or(0)
                .min(MAX_WAVEFORM_POINTS),
        )
    });

    let decoded_source = SourceInfo {
        format: sniffed.format,
        codec: stats.codec.into(),
        sample_rate: stats.sample_rate,
        channels: u8::try_from(stats.channels).unwrap_or(u8::MAX),
        bitrate_kbps: stats.bitrate_kbps(),
        duration: stats.duration(),
    };
    Ok(Renditions {
        mp3: Transcoded {
            source: mp3.unwrap_or_else(|| decoded_source.clone()),
            sample_rate: out_rate,
            channels: out_channels,
            rungs,
            keep_original: sniffed.format == SourceFormat::Mp3,
            decode_ms: (first_decode + decode_time).as_secs_f64() * 1000.0,
            encode_ms,
        },
        fmp4: Fmp4Renditions {
            source: decoded_source,
            sample_rate: out_rate,
            channels: out_channels,
            aac,
            flac,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        analysis,
        decodes: 1,
        fmp4_refused,
    })
}

/// An encoder, or `None` (with the reason kept in `refused`) when it refuses the input.
fn refusable<T>(
    made: Result<T, TranscodeError>,
    refused: &mut Option<TranscodeError>,
) -> Result<Option<T>, TranscodeError> {
    match made {
        Ok(encoder) => Ok(Some(encoder)),
        Err(e) if e.is_input_error() => {
            refused.get_or_insert(e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A block of PCM for the encoders: one or two planes in -1..=1, and how far through the
/// input decoding was when it was complete.
struct Block {
    planes: Vec<Vec<f32>>,
    fraction: f32,
}

fn encode(
    mut encoder: Box<dyn Encoder>,
    receiver: &Receiver<Arc<Block>>,
    index: usize,
    reporter: &Reporter<'_>,
) -> Result<Encoding, TranscodeError> {
    for block in receiver {
        encoder.encode(&block.planes)?;
        reporter.encoded(index, block.fraction);
    }
    encoder.finish()
}

/// What takes the decoded audio at the source's rate, on the decoding thread.
struct Taps<'a> {
    flac: Option<&'a mut FlacEncoder>,
    analyzer: Option<&'a mut Analyzer>,
}

impl Taps<'_> {
    fn push(&mut self, planes: &[Vec<f32>]) -> Result<(), TranscodeError> {
        if let Some(flac) = self.flac.as_deref_mut() {
            let source: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
            flac.push(&source)?;
        }
        if let Some(analyzer) = self.analyzer.as_deref_mut() {
            analyzer.push(planes)?;
        }
        Ok(())
    }
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
        if self.senders.is_empty() {
            return Ok(());
        }
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
    mut taps: Taps<'_>,
    reporter: &Reporter<'_>,
) -> Result<Option<(DecodeStats, Duration)>, TranscodeError> {
    let started = Instant::now();
    let channels = producer.planes.len();
    let resampling = !producer.senders.is_empty();
    let mut scratch = Vec::new();
    let mut outcome: Result<(), EncoderGone> = Ok(());
    let mut feed = |planes: &[Vec<f32>],
                    fraction: f32,
                    producer: &mut Producer,
                    resampler: &mut Option<StreamResampler>,
                    taps: &mut Taps<'_>|
     -> Result<Result<(), EncoderGone>, TranscodeError> {
        taps.push(planes)?;
        if !resampling {
            return Ok(Ok(()));
        }
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
    outcome = outcome.and(feed(
        &first,
        fraction,
        &mut producer,
        &mut resampler,
        &mut taps,
    )?);
    reporter.decoded(fraction);
    while outcome.is_ok() {
        // Measured before the chunk is read, so the chunk need not be copied out of the
        // decoder: a progress figure one packet behind.
        let fraction = decoder.fraction();
        let Some(chunk) = decoder.next_chunk()? else {
            break;
        };
        outcome = feed(chunk, fraction, &mut producer, &mut resampler, &mut taps)?;
        reporter.decoded(fraction);
    }
    if outcome.is_ok()
        && resampling
        && let Some(resampler) = resampler.as_mut()
    {
        let mut gone = Ok(());
        resampler.finish(&mut |out| {
            if gone.is_ok() {
                gone = producer.push(out, 1.0);
            }
            Ok(())
        })?;
        outcome = gone;
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

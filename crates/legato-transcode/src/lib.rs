//! Any audio in, an adaptive-bitrate ladder of MP3 renditions out, in-process: no ffmpeg (or
//! any other program) at run time.
//!
//! ```text
//!        detect (bytes only) ─▶ Symphonia decode ─┬─▶ downmix ≤ 2 ch ─▶ rubato ─┬─▶ LAME 64k … 192k
//! bytes ─┤                                        │                             └─▶ fdk-aac 64k … 256k
//!        │                                        ├─▶ flacenc (WAV/AIFF integer PCM)
//!        │                                        └─▶ EBU R128 loudness, true peak, waveform
//!        └─ read_tags (lofty): title, artist, album, year, track, cover
//! ```
//!
//! One decode feeds every encoder and the analysis ([`transcode_renditions`]); the other
//! entry points ask the same pipeline for one part.
//!
//! Each rung is a complete CBR MP3 stream for [`legato_media::package_mp3`]; an MP3 upload
//! is kept bit-exact as the top ("original") rung and only lower rungs are encoded from it.
//!
//! # Design choices
//!
//! * **One output rate and channel count for all rungs**, so every rung has the same frame
//!   duration and the packager cuts them at the same boundaries: a player switching rungs
//!   between segments stays in time. An MP3 source keeps its own rate (even MPEG-2's 16–24
//!   kHz) so the encoded rungs also line up with the original's frames; other sources keep
//!   32/44.1/48 kHz or are resampled (see [`transcode`]). Mono stays mono, more than two
//!   channels are downmixed to stereo.
//! * **Decode once, encode every rung at the same time.** Decoded blocks go through short
//!   bounded queues to one LAME encoder thread per rung, so all cores work and memory does
//!   not grow with the track's length (only the MP3 output does).
//! * **Frames that stand alone.** LAME's bit reservoir is off (a frame never borrows bits
//!   from the one before, so a player can start at any segment), no Xing/LAME tag frame is
//!   written (LAME would leave a blank placeholder frame), and the final flush keeps the
//!   tail of the audio. See `encode.rs`.
//! * **Detected from the bytes**, never from a file name or Content-Type; what is not audio
//!   we decode gets an error that names what was found (see [`TranscodeError`]).
//! * **Hostile input is bounded**: at most [`MAX_DURATION_SECONDS`] of audio and
//!   [`MAX_CHANNELS`] channels; a packet that fails to decode is skipped, a run of them or a
//!   file cut short is an error; panics inside the decoders are caught and reported as
//!   corrupt audio.
//! * **Opus through libopus.** Symphonia demuxes Opus (in Ogg and in Matroska/WebM) but has
//!   no decoder of its own: `symphonia-adapter-libopus` puts libopus (built from the source
//!   bundled in `opusic-sys`) in the codec registry every decode uses. Opus decodes at 48
//!   kHz; its pre-skip (the encoder's lookahead) is dropped at the start, and Ogg's last
//!   granule position trims the end (Matroska's `DiscardPadding` is not read: up to one
//!   frame of encoder padding stays at the end).
//! * **Gapless MP3 decoding.** Symphonia trims the encoder delay and padding that a LAME/Xing
//!   tag declares, and our encoder adds LAME's own delay again, so a re-encoded rung starts
//!   where the original does.
//!
//! The only `unsafe` code is one call in `lame_ffi.rs`: the bit-reservoir setting that
//! mp3lame-encoder does not expose.

mod aac;
mod analyze;
mod decode;
mod detect;
mod encode;
mod error;
mod flac_enc;
mod ladder;
mod lame_ffi;
mod renditions;
mod resample;
mod sink;
mod tags;

use std::fmt;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use aac::{AAC_BITRATES, AAC_FRAME_SAMPLES, AacTrack};
pub use error::TranscodeError;
pub use flac_enc::{FLAC_BLOCK_SIZE, FlacLayout};
pub use renditions::{RenditionRequest, Renditions};
pub use sink::SpilledData;

use crate::decode::Input;
use crate::sink::RungOut;

/// The longest audio accepted, in seconds (3 hours).
pub const MAX_DURATION_SECONDS: f64 = 3.0 * 3600.0;
/// The most channels accepted (7.1); more is refused rather than downmixed.
pub const MAX_CHANNELS: usize = 8;
/// The lowest source sample rate accepted, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// The highest source sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Tag text is cut to this many characters.
pub const MAX_TAG_CHARS: usize = 300;
/// A larger embedded cover is dropped.
pub const MAX_COVER_BYTES: usize = 5 * 1024 * 1024;
/// [`analyze`] returns at most this many waveform points.
pub const MAX_WAVEFORM_POINTS: usize = 10_000;
/// The counter (a `metrics` counter, on `/metrics`) of sources opened for decoding: what
/// "decoded once" is measured by.
pub const DECODES: &str = "legato_transcode_decodes_total";

/// The container (or raw stream) format of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// MPEG audio Layer III, MPEG-1, 2 or 2.5.
    Mp3,
    /// RIFF WAVE with PCM (8/16/24/32-bit integer, 32/64-bit float, A-law, µ-law).
    Wav,
    Flac,
    OggVorbis,
    /// An ISO base media file (MP4, M4A, MOV) whose audio track is AAC (or another codec we
    /// decode).
    Mp4Aac,
    /// Raw AAC in ADTS frames.
    Adts,
    /// AIFF or uncompressed AIFF-C.
    Aiff,
    /// Opus in Ogg (`.opus`), decoded at 48 kHz by libopus.
    OggOpus,
    /// A Matroska or WebM file (`.webm`, `.mka`), told by its EBML header; its audio track is
    /// Opus, or another codec we decode (Vorbis, FLAC, AAC, MP3, PCM). A track in any other
    /// codec is refused when it is opened.
    Matroska,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mp3 => "MP3",
            Self::Wav => "WAV",
            Self::Flac => "FLAC",
            Self::OggVorbis => "Ogg Vorbis",
            Self::Mp4Aac => "MP4",
            Self::Adts => "AAC (ADTS)",
            Self::Aiff => "AIFF",
            Self::OggOpus => "Ogg Opus",
            Self::Matroska => "WebM/Matroska",
        })
    }
}

/// What the upload holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub format: SourceFormat,
    /// "mp3", "pcm", "flac", "vorbis", "aac" or "opus".
    pub codec: String,
    pub sample_rate: u32,
    /// Channels of the source, before any downmix.
    pub channels: u8,
    /// Average bitrate of the audio data (packets, not tags or container), rounded. For an
    /// MP3 it is the packager's figure for the original rung.
    pub bitrate_kbps: Option<u32>,
    /// Seconds. For an MP3, the duration of its frames as the packager plays them (encoder
    /// delay and padding included); for other formats, the decoded samples.
    pub duration: f64,
}

/// Identifies the format from the bytes alone (leading ID3v2 tags are skipped).
///
/// This looks at the container: an MP4 whose audio track is not AAC, or a WAV in a codec we
/// do not decode, is only refused by [`transcode`] and [`analyze`].
///
/// # Errors
/// [`TranscodeError::Empty`], [`TranscodeError::NotAudio`] (saying what it looks like) or
/// [`TranscodeError::Unsupported`] (audio we do not decode, e.g. "Ogg Speex").
pub fn detect(data: &[u8]) -> Result<SourceFormat, TranscodeError> {
    sniff(data).map(|sniffed| sniffed.format)
}

/// Identifies the format of a file read through `reader` without holding it: reads its start
/// only (past any ID3v2 tags, of at most [`MAX_LEADING_TAG_BYTES`]), as [`detect`] would see it.
///
/// # Errors
/// The outer `Err` when `reader` fails; the inner as [`detect`], and
/// [`TranscodeError::Unsupported`] for leading tags over the limit.
pub fn detect_reader<R: std::io::Read + std::io::Seek>(
    reader: &mut R,
) -> std::io::Result<Result<SourceFormat, TranscodeError>> {
    Ok(detect::head(reader)?.and_then(|head| detect(&head)))
}

/// Leading ID3v2 tags larger than this are refused by [`detect_reader`] (a cover is at most
/// [`MAX_COVER_BYTES`]).
pub const MAX_LEADING_TAG_BYTES: u64 = 64 * 1024 * 1024;

/// As [`read_tags`], through `reader`: only the tags are read (lofty seeks past the audio).
pub fn read_tags_from<R: std::io::Read + std::io::Seek>(reader: &mut R) -> Tags {
    catch_unwind(AssertUnwindSafe(|| tags::read_tags_from(reader))).unwrap_or_default()
}

/// Descriptive tags of an upload; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub year: Option<i32>,
    pub track: Option<u32>,
    pub disc: Option<u32>,
    /// The album's artist (TPE2, ALBUMARTIST, aART), when the tags carry one.
    pub album_artist: Option<String>,
    /// The first genre named (an ID3v1 genre number is resolved by lofty).
    pub genre: Option<String>,
    pub cover: Option<Cover>,
}

/// An embedded cover image.
#[derive(Clone, PartialEq, Eq)]
pub struct Cover {
    /// "image/jpeg" or "image/png", from the image's own bytes ("image/webp" too for a
    /// folder's art, which an upload carries beside the audio).
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Cover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cover")
            .field("mime", &self.mime)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

/// Reads title, artist, album, year, track number and the cover (front cover preferred,
/// JPEG or PNG only, at most [`MAX_COVER_BYTES`]) from whatever tags the file has. Text is
/// cleaned of control characters and cut to [`MAX_TAG_CHARS`] characters.
///
/// Never fails: a file without tags, or one that cannot be read, gives empty [`Tags`].
pub fn read_tags(data: &[u8]) -> Tags {
    catch_unwind(AssertUnwindSafe(|| tags::read_tags(data))).unwrap_or_default()
}

/// Which rungs to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderOptions {
    /// CBR bitrates in kbit/s, each one LAME encodes: 8, 16, 24, 32, 40, 48, 64, 80, 96, 112,
    /// 128, 160, 192, 224, 256 or 320. Default: 64, 128, 192.
    pub rungs_kbps: Vec<u32>,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            rungs_kbps: vec![64, 128, 192],
        }
    }
}

/// One encoded rendition.
#[derive(Clone, PartialEq, Eq)]
pub struct Rung {
    /// "64k", "128k"...
    pub name: String,
    pub bitrate_kbps: u32,
    /// A complete CBR MP3 stream: audio frames only (no ID3 tag, no Xing/LAME tag frame).
    pub mp3: Vec<u8>,
}

impl fmt::Debug for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rung")
            .field("name", &self.name)
            .field("bitrate_kbps", &self.bitrate_kbps)
            .field("mp3", &format_args!("{} bytes", self.mp3.len()))
            .finish()
    }
}

/// One encoded rendition written to a file by [`transcode_file_spilled`].
#[derive(Debug)]
pub struct SpilledRung {
    /// "64k", "128k"...
    pub name: String,
    pub bitrate_kbps: u32,
    /// A complete CBR MP3 stream as [`Rung::mp3`], from the file's start.
    pub file: File,
    /// Bytes of MP3 in `file`.
    pub len: u64,
}

/// The result of [`transcode`] (rungs in memory) or [`transcode_file_spilled`] (rungs in
/// files).
#[derive(Debug, Clone, PartialEq)]
pub struct Transcoded<R = Rung> {
    pub source: SourceInfo,
    /// The sample rate of every encoded rung (and of the original, for an MP3 source).
    pub sample_rate: u32,
    /// The channel count of every encoded rung: 1 or 2.
    pub channels: u8,
    /// Encoded rungs, ascending by bitrate. Does not include the MP3 original.
    pub rungs: Vec<R>,
    /// True for an MP3 source: the caller packages the uploaded bytes as the top rung.
    pub keep_original: bool,
    /// Time spent decoding, downmixing and resampling (not waiting for the encoders), ms.
    pub decode_ms: f64,
    /// Wall time from the encoders' start to the last one's end, ms. Decoding runs at the
    /// same time, so the two overlap.
    pub encode_ms: f64,
}

/// A stage of [`transcode`], for [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Decode,
    Encode,
}

/// How far a stage has come: `fraction` from 0 to 1, in whole percents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub fraction: f32,
}

/// Decodes the upload once and encodes every rung of the ladder in parallel.
///
/// * **Rungs**: the requested bitrates, ascending. For an MP3 source only those below the
///   source's average bitrate are made ([`Transcoded::keep_original`] is set: the upload
///   itself is the top rung); if none is below it, nothing is decoded at all. Bitrates are
///   brought into what LAME allows at the output rate (32–320 kbit/s at 32–48 kHz, 8–160 at
///   16–24 kHz, 8–64 at 8–12 kHz).
/// * **Output rate**: an MP3 source's own rate; otherwise 32, 44.1 or 48 kHz as the source
///   has, else 48 kHz from a multiple of 8 kHz, else 44.1 kHz (resampled with rubato).
/// * **Channels**: mono stays mono, more than two are downmixed to stereo.
///
/// `progress` is called (from this thread and the encoder threads) at most once per percent
/// of each stage: decoding as the input is read, encoding as all rungs have encoded what
/// was read. The two stages run at the same time.
///
/// # Errors
/// Those of [`detect`], then [`TranscodeError::Corrupt`], [`TranscodeError::NoAudio`],
/// [`TranscodeError::TooLong`], [`TranscodeError::TooManyChannels`],
/// [`TranscodeError::UnsupportedSampleRate`] or [`TranscodeError::Unsupported`] (a codec
/// inside the container) for the input, and [`TranscodeError::InvalidOptions`] or
/// [`TranscodeError::Encoder`] for the server's side.
pub fn transcode(
    data: &[u8],
    options: &LadderOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Transcoded, TranscodeError> {
    let sniffed = sniff(data)?;
    guarded(sniffed.format, || {
        mp3_only(Input::Bytes(data), sniffed, options, progress, None)
    })?
    .map_rungs(ladder::EncodedRung::into_memory)
}

/// A new, empty file for a rung (a temporary file, typically).
pub type SpillFile<'a> = &'a (dyn Fn() -> std::io::Result<File> + Sync);

/// As [`transcode_file`], with each rung written to its own file (from `spill`) as it is
/// encoded rather than kept in memory: memory stays at a few blocks whatever the length, the
/// rungs included.
///
/// # Errors
/// As [`transcode_file`]; [`TranscodeError::Io`] also when a rung cannot be written.
pub fn transcode_file_spilled(
    file: &File,
    options: &LadderOptions,
    progress: &(dyn Fn(Progress) + Sync),
    spill: SpillFile<'_>,
) -> Result<Transcoded<SpilledRung>, TranscodeError> {
    from_file(file, |input, sniffed| {
        mp3_only(input, sniffed, options, progress, Some(spill))
    })?
    .map_rungs(ladder::EncodedRung::into_file)
}

impl<R> Transcoded<R> {
    /// The same result with each rung converted by `convert` (the first error stops it).
    ///
    /// # Errors
    /// The first error of `convert`.
    pub fn map_rungs<S>(
        self,
        convert: impl FnMut(R) -> Result<S, TranscodeError>,
    ) -> Result<Transcoded<S>, TranscodeError> {
        Ok(Transcoded {
            source: self.source,
            sample_rate: self.sample_rate,
            channels: self.channels,
            rungs: self
                .rungs
                .into_iter()
                .map(convert)
                .collect::<Result<_, _>>()?,
            keep_original: self.keep_original,
            decode_ms: self.decode_ms,
            encode_ms: self.encode_ms,
        })
    }
}

/// As [`transcode`], reading the upload from `file` as decoding goes rather than from
/// memory, so that memory stays at a few blocks of audio whatever the file's size (only the
/// encoded rungs grow). An MP3's frames are scanned a window at a time.
///
/// # Errors
/// As [`transcode`], and [`TranscodeError::Io`] when the file cannot be read.
pub fn transcode_file(
    file: &File,
    options: &LadderOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Transcoded, TranscodeError> {
    from_file(file, |input, sniffed| {
        mp3_only(input, sniffed, options, progress, None)?
            .map_rungs(ladder::EncodedRung::into_memory)
    })
}

/// Which fMP4 renditions [`transcode_fmp4`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Options {
    /// AAC-LC bitrates in kbit/s, each one of [`AAC_BITRATES`]. Default: 64, 128, 256
    /// (Apple's HLS authoring spec's stereo AAC-LC ladder tops out at 160 for most content;
    /// 256 is the iTunes Plus rate, for listeners on good links).
    pub aac_rungs_kbps: Vec<u32>,
    /// Whether to encode a lossless FLAC rung from an integer PCM (WAV, AIFF) upload.
    pub lossless: bool,
}

impl Default for Fmp4Options {
    fn default() -> Self {
        Fmp4Options {
            aac_rungs_kbps: vec![64, 128, 256],
            lossless: true,
        }
    }
}

/// The result of [`transcode_fmp4`]; the encoded bytes in memory (`Vec<u8>`) or, from
/// [`transcode_fmp4_file_spilled`], in files ([`SpilledData`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Fmp4Renditions<D = Vec<u8>> {
    pub source: SourceInfo,
    /// The sample rate of the AAC rungs (the FLAC rung keeps the source's).
    pub sample_rate: u32,
    /// The channel count of every rung: 1 or 2.
    pub channels: u8,
    /// AAC-LC rungs, ascending by bitrate, each with its encoder delay for the edit list.
    pub aac: Vec<AacTrack<D>>,
    /// A complete FLAC stream of the source's samples, bit for bit, for a WAV or AIFF upload
    /// of integer PCM (8, 16 or 24-bit, mono or stereo) when asked for; `None` otherwise. A
    /// FLAC upload is not re-encoded: package its own frames
    /// ([`legato_media::flac::scan_flac`]).
    pub flac: Option<FlacRung<D>>,
    /// Wall time of decoding and encoding, ms.
    pub elapsed_ms: f64,
}

/// Decodes the upload once and encodes the AAC-LC rungs (libfdk-aac, in parallel) and, for
/// a WAV or AIFF upload, a lossless FLAC rung (flacenc), for packaging as fragmented MP4
/// ([`legato_media::fmp4`]). The output rate and channels follow the MP3 ladder's rules
/// (see [`transcode`]), so the renditions of a track share its timeline.
///
/// # Errors
/// The input errors of [`transcode`]; [`TranscodeError::InvalidOptions`] for a bitrate that
/// is not in [`AAC_BITRATES`]; [`TranscodeError::Encoder`] if an encoder fails.
pub fn transcode_fmp4(
    data: &[u8],
    options: &Fmp4Options,
) -> Result<Fmp4Renditions, TranscodeError> {
    fmp4_from_bytes(data, options, None)?.map_data(RungOut::into_memory)
}

fn fmp4_from_bytes(
    data: &[u8],
    options: &Fmp4Options,
    spill: Option<SpillFile<'_>>,
) -> Result<Fmp4Renditions<RungOut>, TranscodeError> {
    check_aac_rungs(options)?;
    let sniffed = sniff(data)?;
    guarded(sniffed.format, || {
        fmp4_only(Input::Bytes(data), sniffed, options, spill)
    })
}

/// The MP3 ladder alone, from the one pipeline; with `spill`, each rung in a file of its own.
fn mp3_only(
    input: Input<'_>,
    sniffed: detect::Sniffed,
    options: &LadderOptions,
    progress: &(dyn Fn(Progress) + Sync),
    spill: Option<SpillFile<'_>>,
) -> Result<Transcoded<ladder::EncodedRung>, TranscodeError> {
    ladder::validate(options)?;
    let request = RenditionRequest {
        mp3_rungs_kbps: options.rungs_kbps.clone(),
        ..RenditionRequest::default()
    };
    Ok(renditions::run(input, sniffed, &request, progress, spill)?.mp3)
}

/// The fMP4 rungs alone, from the one pipeline.
fn fmp4_only(
    input: Input<'_>,
    sniffed: detect::Sniffed,
    options: &Fmp4Options,
    spill: Option<SpillFile<'_>>,
) -> Result<Fmp4Renditions<RungOut>, TranscodeError> {
    let request = RenditionRequest {
        aac_rungs_kbps: options.aac_rungs_kbps.clone(),
        lossless: options.lossless,
        ..RenditionRequest::default()
    };
    let made = renditions::run(input, sniffed, &request, &|_| {}, spill)?;
    match made.fmp4_refused {
        Some(refused) => Err(refused),
        None => Ok(made.fmp4),
    }
}

/// As [`transcode_fmp4`], with each rendition written to its own file (from `spill`) as it
/// is encoded.
///
/// # Errors
/// As [`transcode_fmp4`]; [`TranscodeError::Io`] also when a rendition cannot be written.
pub fn transcode_fmp4_spilled(
    data: &[u8],
    options: &Fmp4Options,
    spill: SpillFile<'_>,
) -> Result<Fmp4Renditions<SpilledData>, TranscodeError> {
    fmp4_from_bytes(data, options, Some(spill))?.map_data(RungOut::into_file)
}

/// As [`transcode_fmp4_file`], with each rendition written to its own file (from `spill`)
/// as it is encoded: memory stays at a few blocks of audio whatever the track's length.
///
/// # Errors
/// As [`transcode_fmp4_file`]; [`TranscodeError::Io`] also when a rendition cannot be
/// written.
pub fn transcode_fmp4_file_spilled(
    file: &File,
    options: &Fmp4Options,
    spill: SpillFile<'_>,
) -> Result<Fmp4Renditions<SpilledData>, TranscodeError> {
    check_aac_rungs(options)?;
    from_file(file, |input, sniffed| {
        fmp4_only(input, sniffed, options, Some(spill))
    })?
    .map_data(RungOut::into_file)
}

/// The lossless rung: the FLAC stream and where its frames are (so it need not be scanned).
#[derive(Debug, Clone, PartialEq)]
pub struct FlacRung<D = Vec<u8>> {
    pub data: D,
    pub layout: FlacLayout,
}

impl<D> Fmp4Renditions<D> {
    /// The same renditions with their data converted by `convert`.
    ///
    /// # Errors
    /// The first error of `convert`.
    pub fn map_data<E>(
        self,
        mut convert: impl FnMut(D) -> Result<E, TranscodeError>,
    ) -> Result<Fmp4Renditions<E>, TranscodeError> {
        Ok(Fmp4Renditions {
            source: self.source,
            sample_rate: self.sample_rate,
            channels: self.channels,
            aac: self
                .aac
                .into_iter()
                .map(|track| track.map_data(&mut convert))
                .collect::<Result<_, _>>()?,
            flac: self
                .flac
                .map(|rung| {
                    Ok::<_, TranscodeError>(FlacRung {
                        data: convert(rung.data)?,
                        layout: rung.layout,
                    })
                })
                .transpose()?,
            elapsed_ms: self.elapsed_ms,
        })
    }
}

/// As [`transcode_fmp4`], reading the upload from `file` as decoding goes, so memory holds
/// the encoded rungs and a few blocks of audio, not the decoded source.
///
/// # Errors
/// As [`transcode_fmp4`], and [`TranscodeError::Io`] when the file cannot be read.
pub fn transcode_fmp4_file(
    file: &File,
    options: &Fmp4Options,
) -> Result<Fmp4Renditions, TranscodeError> {
    check_aac_rungs(options)?;
    from_file(file, |input, sniffed| {
        fmp4_only(input, sniffed, options, None)
    })?
    .map_data(RungOut::into_memory)
}

fn check_aac_rungs(options: &Fmp4Options) -> Result<(), TranscodeError> {
    match options
        .aac_rungs_kbps
        .iter()
        .find(|kbps| !AAC_BITRATES.contains(kbps))
    {
        Some(bad) => Err(TranscodeError::InvalidOptions(format!(
            "{bad} kbit/s is not an AAC-LC rung; use one of {AAC_BITRATES:?}"
        ))),
        None => Ok(()),
    }
}

/// Loudness, true peak and waveform of an upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// EBU R128 integrated loudness in LUFS; `None` for silence.
    pub loudness_lufs: Option<f64>,
    /// True peak (4× oversampled) in dBTP; `None` for silence.
    pub true_peak_dbtp: Option<f64>,
    /// `points` peak amplitudes from 0 to 1, evenly over the whole track.
    pub peaks: Vec<f32>,
}

/// Decodes the upload (again: this is separate from [`transcode`] so that an MP3 passthrough
/// need not wait for it) and measures it: EBU R128 integrated loudness, true peak, and a
/// waveform of `points` peaks (at most [`MAX_WAVEFORM_POINTS`]).
///
/// What is measured is what the rungs carry: the audio downmixed to at most two channels.
///
/// # Errors
/// The input errors of [`transcode`].
pub fn analyze(data: &[u8], points: usize) -> Result<Analysis, TranscodeError> {
    let sniffed = sniff(data)?;
    guarded(sniffed.format, || {
        analyze::analyze(Input::Bytes(data), sniffed, points)
    })
}

/// As [`analyze`], reading the upload from `file` as decoding goes.
///
/// # Errors
/// As [`analyze`], and [`TranscodeError::Io`] when the file cannot be read.
pub fn analyze_file(file: &File, points: usize) -> Result<Analysis, TranscodeError> {
    from_file(file, |input, sniffed| {
        analyze::analyze(input, sniffed, points)
    })
}

/// Decodes the upload in `file` once (as it is read) and makes everything `request` asks
/// for: the MP3 ladder (see [`transcode`] for its rules), the AAC-LC and lossless rungs (see
/// [`transcode_fmp4`]) and the analysis (see [`analyze`]), every encoder fed by the same
/// decode and resample. Each rung is written to its own file (from `spill`) as it is
/// encoded, so memory stays at a few blocks of audio whatever the track's length. An MP3
/// whose ladder has no rung below it, with no AAC rung and no analysis asked for, is not
/// decoded at all. ([`transcode`], [`transcode_fmp4`] and their `_file` forms give parts of
/// this in memory, from the same pipeline.)
///
/// # Errors
/// The input errors of [`transcode`]; [`TranscodeError::InvalidOptions`] for a rung no
/// encoder makes; [`TranscodeError::Encoder`] or [`TranscodeError::Io`] for the server's side.
pub fn transcode_renditions(
    file: &File,
    request: &RenditionRequest,
    progress: &(dyn Fn(Progress) + Sync),
    spill: SpillFile<'_>,
) -> Result<Renditions<SpilledRung, SpilledData>, TranscodeError> {
    ladder::check_bitrates(&request.mp3_rungs_kbps)?;
    check_aac_rungs(&Fmp4Options {
        aac_rungs_kbps: request.aac_rungs_kbps.clone(),
        lossless: request.lossless,
    })?;
    let made = from_file(file, |input, sniffed| {
        renditions::run(input, sniffed, request, progress, Some(spill))
    })?;
    Ok(Renditions {
        mp3: made.mp3.map_rungs(ladder::EncodedRung::into_file)?,
        fmp4: made.fmp4.map_data(RungOut::into_file)?,
        analysis: made.analysis,
        decodes: made.decodes,
        fmp4_refused: made.fmp4_refused,
    })
}

/// Sniffs the upload in `file` from its start and hands it to `streamed`, which reads the
/// file as it needs (an MP3 too: its frames are scanned a window at a time).
fn from_file<T>(
    file: &File,
    streamed: impl FnOnce(Input<'_>, detect::Sniffed) -> Result<T, TranscodeError>,
) -> Result<T, TranscodeError> {
    let unreadable = |e: std::io::Error| TranscodeError::Io(e.to_string());
    let len = file.metadata().map_err(unreadable)?.len();
    let input = Input::File { file, len };
    let head = detect::head(&mut input.window(0)).map_err(unreadable)??;
    let sniffed = sniff(&head)?;
    guarded(sniffed.format, || streamed(input, sniffed))
}

/// [`detect::sniff`], with a panic (a bug) taken as "not audio we know".
fn sniff(data: &[u8]) -> Result<detect::Sniffed, TranscodeError> {
    catch_unwind(|| detect::sniff(data)).unwrap_or(Err(TranscodeError::NotAudio(
        "no audio format we know was found in it",
    )))
}

/// Runs `work`, turning a panic inside a decoder (a bug, but one that hostile input can
/// reach) into a [`TranscodeError::Corrupt`] rather than unwinding into the caller.
fn guarded<T>(
    format: SourceFormat,
    work: impl FnOnce() -> Result<T, TranscodeError>,
) -> Result<T, TranscodeError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(TranscodeError::corrupt(
            format,
            "the decoder failed on malformed data",
        ))
    })
}

//! Decoding with Symphonia, to planar `f32` with at most two channels.
//!
//! The container reader is chosen from the sniffed format (no second guess by a probe), and
//! it reads the bytes after the leading tags (for MP3 also without the trailing ones), so no
//! tag parser runs here: tags are lofty's job ([`crate::tags`]).
//!
//! Hostile input is bounded: at most [`MAX_CHANNELS`] channels and
//! [`MAX_DURATION_SECONDS`] of audio, sample rates within
//! [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`]. A packet that fails to decode is skipped (a
//! damaged frame in the middle of a song should not lose the song), but a run of
//! [`MAX_CONSECUTIVE_ERRORS`] such packets is corruption, and so is a container that
//! declares more audio than it holds.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use symphonia::core::audio::Channels;
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::default::formats::{
    AdtsReader, AiffReader, FlacReader, IsoMp4Reader, MkvReader, MpaReader, OggReader, WavReader,
};
use symphonia_adapter_libopus::OpusDecoder;

use crate::detect::Sniffed;
use crate::{
    MAX_CHANNELS, MAX_DURATION_SECONDS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SourceFormat,
    TranscodeError,
};

/// Packets in a row that may fail to decode before the file counts as corrupt.
pub(crate) const MAX_CONSECUTIVE_ERRORS: u32 = 32;

/// How much of the declared length may be missing before a file counts as cut short: a
/// little slack for containers whose declared length includes priming or padding.
const TRUNCATION_SLACK_SECONDS: f64 = 0.5;
const TRUNCATION_SLACK_FRACTION: f64 = 0.01;

/// Symphonia's decoders of the codecs we accept, and libopus for Opus (Symphonia demuxes Opus
/// but has no decoder of its own).
static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut codecs = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut codecs);
    codecs.register_audio_decoder::<OpusDecoder>();
    codecs
});

/// The rate Opus is decoded at: its own, whatever rate the container or header names (that
/// is the rate of the encoder's input, for information).
const OPUS_RATE: u32 = 48_000;

/// Where [`Decoder::open`] reads an upload from.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    /// The whole upload in memory.
    Bytes(&'a [u8]),
    /// An upload in a file, read as the decoder goes (positioned reads: the file's own
    /// offset is never used), so memory does not grow with its size.
    File { file: &'a File, len: u64 },
}

impl<'a> Input<'a> {
    /// How many bytes there are.
    pub fn len(self) -> u64 {
        match self {
            Input::Bytes(data) => data.len() as u64,
            Input::File { len, .. } => len,
        }
    }

    /// Bytes `range`, read at once (for scanning a window of an MP3).
    pub fn read_range(self, range: std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
        match self {
            Input::Bytes(data) => data.get(range).map(<[u8]>::to_vec).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past the end")
            }),
            Input::File { file, .. } => {
                let mut bytes = vec![0u8; range.len()];
                file.read_exact_at(&mut bytes, range.start as u64)?;
                Ok(bytes)
            }
        }
    }

    /// The byte range of an MP3 between its tags (see [`legato_media::tags::audio_range`]).
    pub fn mp3_audio_range(self) -> std::io::Result<std::ops::Range<u64>> {
        let len = usize::try_from(self.len()).unwrap_or(usize::MAX);
        let range =
            legato_media::tags::audio_range_read(len, legato_media::READ_WINDOW_BYTES, &mut |r| {
                self.read_range(r)
            })?;
        Ok(range.start as u64..range.end as u64)
    }

    /// A reader over the bytes of `range`.
    pub fn range(self, range: std::ops::Range<u64>) -> Window<'a> {
        match self.window(range.start) {
            Window::Bytes(cursor) => {
                let bytes = cursor.into_inner();
                let len = usize::try_from(range.end.saturating_sub(range.start))
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                Window::Bytes(Cursor::new(&bytes[..len]))
            }
            Window::File {
                file, start, len, ..
            } => Window::File {
                file,
                start,
                len: len.min(range.end.saturating_sub(range.start)),
                position: 0,
            },
        }
    }

    /// A reader over the bytes from `start` to the end.
    pub fn window(self, start: u64) -> Window<'a> {
        match self {
            Input::Bytes(data) => {
                let start = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
                Window::Bytes(Cursor::new(&data[start..]))
            }
            Input::File { file, len } => Window::File {
                file,
                start: start.min(len),
                len: len.saturating_sub(start),
                position: 0,
            },
        }
    }
}

/// A readable, seekable window on an [`Input`].
pub(crate) enum Window<'a> {
    Bytes(Cursor<&'a [u8]>),
    File {
        file: &'a File,
        start: u64,
        len: u64,
        position: u64,
    },
}

impl Window<'_> {
    fn len(&self) -> u64 {
        match self {
            Window::Bytes(cursor) => cursor.get_ref().len() as u64,
            Window::File { len, .. } => *len,
        }
    }

    fn position(&self) -> u64 {
        match self {
            Window::Bytes(cursor) => cursor.position(),
            Window::File { position, .. } => *position,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Window::Bytes(cursor) => cursor.read(buf),
            Window::File {
                file,
                start,
                len,
                position,
            } => {
                let left = len.saturating_sub(*position);
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                if take == 0 {
                    return Ok(0);
                }
                let read = file.read_at(&mut buf[..take], *start + *position)?;
                *position += read as u64;
                Ok(read)
            }
        }
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Window::Bytes(cursor) => cursor.seek(pos),
            Window::File { len, position, .. } => {
                let target = match pos {
                    SeekFrom::Start(offset) => Some(offset),
                    SeekFrom::End(delta) => len.checked_add_signed(delta),
                    SeekFrom::Current(delta) => position.checked_add_signed(delta),
                };
                *position = target.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "seek before the start of the file",
                    )
                })?;
                Ok(*position)
            }
        }
    }
}

/// The input as a Symphonia source that publishes how far it has been read.
struct Tracked<'a> {
    window: Window<'a>,
    position: Arc<AtomicU64>,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.window.read(buf)?;
        self.position
            .store(self.window.position(), Ordering::Relaxed);
        Ok(read)
    }
}

impl Seek for Tracked<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let position = self.window.seek(pos)?;
        self.position.store(position, Ordering::Relaxed);
        Ok(position)
    }
}

impl MediaSource for Tracked<'_> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.window.len())
    }
}

/// What the decoder learned about the source by the end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodeStats {
    pub codec: &'static str,
    pub sample_rate: u32,
    /// Channels of the source, before any downmix.
    pub channels: usize,
    /// Frames (samples per channel) decoded, after gapless trimming.
    pub frames: u64,
    /// Sum of the sizes of the packets of the track (to work out an average bitrate).
    pub packet_bytes: u64,
    /// Packets skipped because they failed to decode.
    pub skipped_packets: u64,
}

impl DecodeStats {
    pub fn duration(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate.max(1))
    }

    pub fn bitrate_kbps(&self) -> Option<u32> {
        let duration = self.duration();
        (duration > 0.0)
            .then(|| (self.packet_bytes as f64 * 8.0 / duration / 1000.0).round() as u32)
    }
}

/// A decoder for one file, yielding planar `f32` chunks of one or two channels.
pub(crate) struct Decoder<'a> {
    format: SourceFormat,
    reader: Box<dyn FormatReader + 'a>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    codec: &'static str,
    position: Arc<AtomicU64>,
    len: u64,
    declared_frames: Option<u64>,
    /// The sample rate and channel count of the first decoded buffer.
    spec: Option<(u32, usize)>,
    mixer: Mixer,
    planes: Vec<Vec<f32>>,
    mixed: Vec<Vec<f32>>,
    frames: u64,
    max_frames: u64,
    packet_bytes: u64,
    skipped: u64,
    consecutive_errors: u32,
    ended_early: Option<String>,
    /// The bit depth of integer PCM of at most 24 bits (what a lossless rung can carry).
    pcm_bits: Option<u8>,
    /// Decoded frames still to drop at the start: an Opus stream's pre-skip.
    skip_frames: u64,
}

impl<'a> Decoder<'a> {
    /// Opens the container and the decoder of its default audio track.
    pub fn open(input: Input<'a>, sniffed: Sniffed) -> Result<Self, TranscodeError> {
        let format = sniffed.format;
        let window = if format == SourceFormat::Mp3 {
            // Without the tags at either end; the Xing/Info frame stays (gapless trimming).
            let range = input
                .mp3_audio_range()
                .map_err(|e| TranscodeError::Io(e.to_string()))?;
            input.range(range)
        } else {
            input.window(sniffed.start as u64)
        };
        let len = window.len();
        let position = Arc::new(AtomicU64::new(0));
        let source = Tracked {
            window,
            position: Arc::clone(&position),
        };
        let stream = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
        let options = FormatOptions::default();
        let opened: Result<Box<dyn FormatReader + 'a>, SymphoniaError> = match format {
            SourceFormat::Mp3 => MpaReader::try_new(stream, options).map(|r| Box::new(r) as _),
            SourceFormat::Wav => WavReader::try_new(stream, options).map(|r| Box::new(r) as _),
            SourceFormat::Flac => FlacReader::try_new(stream, options).map(|r| Box::new(r) as _),
            SourceFormat::OggVorbis | SourceFormat::OggOpus => {
                OggReader::try_new(stream, options).map(|r| Box::new(r) as _)
            }
            SourceFormat::Matroska => MkvReader::try_new(stream, options).map(|r| Box::new(r) as _),
            SourceFormat::Mp4Aac => {
                IsoMp4Reader::try_new(stream, options).map(|r| Box::new(r) as _)
            }
            SourceFormat::Adts => AdtsReader::try_new(stream, options).map(|r| Box::new(r) as _),
            SourceFormat::Aiff => AiffReader::try_new(stream, options).map(|r| Box::new(r) as _),
        };
        let reader = opened.map_err(|error| open_error(format, &error))?;

        let track = reader.default_track(TrackType::Audio).ok_or(match format {
            SourceFormat::Mp4Aac => {
                TranscodeError::NotAudio("looks like an MP4 file without an audio track (video?)")
            }
            SourceFormat::Matroska => TranscodeError::NotAudio(
                "looks like a WebM/Matroska file without an audio track (video?)",
            ),
            _ => TranscodeError::NoAudio(format),
        })?;
        let mut params = track
            .codec_params
            .as_ref()
            .and_then(|params| params.audio())
            .ok_or(TranscodeError::NoAudio(format))?
            .clone();
        let mut skip_frames = 0;
        if params.codec == CODEC_ID_OPUS {
            params.sample_rate = Some(OPUS_RATE);
            skip_frames = take_opus_pre_skip(&mut params.extra_data);
        }
        let params = &params;
        let codec = codec_name(params.codec).ok_or_else(|| {
            TranscodeError::Unsupported(format!("{} in {format}", codec_description(params.codec)))
        })?;
        if let Some(channels) = &params.channels {
            check_channels(channels.count())?;
            // The libopus adapter decodes mono and stereo streams only (not the multistream
            // mapping of surround Opus).
            if params.codec == CODEC_ID_OPUS && channels.count() > 2 {
                return Err(TranscodeError::Unsupported(format!(
                    "Opus with more than two channels ({} in {format})",
                    channels.count()
                )));
            }
        }
        if let Some(rate) = params.sample_rate {
            check_sample_rate(rate)?;
        }
        let declared_frames = track.num_frames.filter(|&frames| frames > 0);
        if let (Some(frames), Some(rate)) = (declared_frames, params.sample_rate) {
            if frames as f64 / f64::from(rate) > MAX_DURATION_SECONDS {
                return Err(TranscodeError::TooLong {
                    limit_seconds: MAX_DURATION_SECONDS,
                });
            }
        }
        let track_id = track.id;
        let pcm_bits = integer_pcm_bits(params.codec);
        let decoder = CODECS
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|error| match error {
                SymphoniaError::Unsupported(what) => TranscodeError::Unsupported(format!(
                    "{} in {format} ({what})",
                    codec_description(params.codec)
                )),
                other => TranscodeError::corrupt(format, other.to_string()),
            })?;
        Ok(Decoder {
            format,
            reader,
            decoder,
            track_id,
            codec,
            position,
            len,
            declared_frames,
            spec: None,
            mixer: Mixer::default(),
            planes: Vec::new(),
            mixed: Vec::new(),
            frames: 0,
            max_frames: u64::MAX,
            packet_bytes: 0,
            skipped: 0,
            consecutive_errors: 0,
            ended_early: None,
            pcm_bits,
            skip_frames,
        })
    }

    /// How far through the file decoding is, from 0 to 1.
    pub fn fraction(&self) -> f32 {
        let fraction = match self.declared_frames {
            Some(declared) => self.frames as f64 / declared as f64,
            None => self.position.load(Ordering::Relaxed) as f64 / self.len.max(1) as f64,
        };
        fraction.clamp(0.0, 1.0) as f32
    }

    /// The length the container declares, in seconds (known after the first chunk).
    pub fn declared_seconds(&self) -> Option<f64> {
        let (rate, _) = self.spec?;
        Some(self.declared_frames? as f64 / f64::from(rate))
    }

    /// The bit depth of the source if it is integer PCM of 8, 16 or 24 bits (whose samples
    /// the `f32` planes hold exactly), else `None`.
    pub fn pcm_bits(&self) -> Option<u8> {
        self.pcm_bits
    }

    /// The sample rate and channel count of the source (known after the first chunk).
    pub fn spec(&self) -> Option<(u32, usize)> {
        self.spec
    }

    /// The next chunk of audio as one or two planes of equal length (never empty), or `None`
    /// at the end of the track.
    pub fn next_chunk(&mut self) -> Result<Option<&[Vec<f32>]>, TranscodeError> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) | Err(SymphoniaError::ResetRequired) => return Ok(None),
                Err(SymphoniaError::IoError(error))
                    if error.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.ended_early = Some("the data ends in the middle of a packet".into());
                    return Ok(None);
                }
                Err(error) => {
                    // A container that cannot go on after plenty of audio (a second of it, or
                    // most of the file): keep what was decoded (the truncation check at the
                    // end still applies where the container declares its length).
                    let rate = self.spec.map_or(u64::MAX, |(rate, _)| u64::from(rate));
                    let read =
                        self.position.load(Ordering::Relaxed) as f64 / self.len.max(1) as f64;
                    if self.frames > 0 && (self.frames >= rate || read >= 0.9) {
                        self.ended_early = Some(error.to_string());
                        return Ok(None);
                    }
                    return Err(TranscodeError::corrupt(self.format, error.to_string()));
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            self.packet_bytes += packet.data.len() as u64;
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))
                    if self.consecutive_errors < MAX_CONSECUTIVE_ERRORS =>
                {
                    self.consecutive_errors += 1;
                    self.skipped += 1;
                    continue;
                }
                Err(SymphoniaError::Unsupported(what)) => {
                    return Err(TranscodeError::Unsupported(format!(
                        "{} ({what})",
                        self.format
                    )));
                }
                Err(error) => return Err(TranscodeError::corrupt(self.format, error.to_string())),
            };
            self.consecutive_errors = 0;
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let rate = decoded.spec().rate();
            let channels = decoded.spec().channels().clone();
            let count = channels.count();
            match self.spec {
                None => {
                    check_sample_rate(rate)?;
                    check_channels(count)?;
                    self.spec = Some((rate, count));
                    self.max_frames = (MAX_DURATION_SECONDS * f64::from(rate)) as u64;
                }
                Some((first_rate, _)) if first_rate != rate => {
                    return Err(TranscodeError::Unsupported(format!(
                        "Audio whose sample rate changes part way ({first_rate} Hz, then {rate} Hz)"
                    )));
                }
                Some(_) => check_channels(count)?,
            }
            decoded.copy_to_vecs_planar::<f32>(&mut self.planes);
            let skip = usize::try_from(self.skip_frames)
                .unwrap_or(usize::MAX)
                .min(frames);
            self.skip_frames -= skip as u64;
            for plane in &mut self.planes {
                plane.drain(..skip.min(plane.len()));
                for sample in plane.iter_mut() {
                    if !sample.is_finite() {
                        *sample = 0.0;
                    }
                }
            }
            let frames = frames - skip;
            if frames == 0 {
                continue;
            }
            self.frames += frames as u64;
            if self.frames > self.max_frames {
                return Err(TranscodeError::TooLong {
                    limit_seconds: MAX_DURATION_SECONDS,
                });
            }
            if count <= 2 {
                self.planes.truncate(count.max(1));
                return Ok(Some(&self.planes));
            }
            self.mixer.set_layout(&channels);
            self.mixer.mix(&self.planes, &mut self.mixed);
            return Ok(Some(&self.mixed));
        }
    }

    /// Checks the end of the stream: some audio was decoded, and not much less than the
    /// container declared.
    pub fn finish(self) -> Result<DecodeStats, TranscodeError> {
        let Some((sample_rate, channels)) = self.spec else {
            return Err(match self.ended_early {
                Some(why) => TranscodeError::corrupt(self.format, why),
                None if self.skipped > 0 => {
                    TranscodeError::corrupt(self.format, "no packet could be decoded")
                }
                None => TranscodeError::NoAudio(self.format),
            });
        };
        // MPEG audio declares no reliable length (a Xing count, or an estimate), so a short
        // MP3 is accepted as it is, like the packager accepts its frames.
        if let Some(declared) = self
            .declared_frames
            .filter(|_| self.format != SourceFormat::Mp3)
        {
            let rate = f64::from(sample_rate);
            let missing = declared.saturating_sub(self.frames) as f64 / rate;
            let slack =
                TRUNCATION_SLACK_SECONDS.max(declared as f64 / rate * TRUNCATION_SLACK_FRACTION);
            if missing > slack {
                return Err(TranscodeError::corrupt(
                    self.format,
                    format!(
                        "it ends after {:.1} s of the {:.1} s it declares",
                        self.frames as f64 / rate,
                        declared as f64 / rate
                    ),
                ));
            }
        }
        Ok(DecodeStats {
            codec: self.codec,
            sample_rate,
            channels,
            frames: self.frames,
            packet_bytes: self.packet_bytes,
            skipped_packets: self.skipped,
        })
    }
}

/// The pre-skip of an Opus identification header (`OpusHead`, the extra data of an Opus
/// track in Ogg and in Matroska): the decoder output to drop at the start (the encoder's
/// lookahead), in 48 kHz frames. It is zeroed in the header: the libopus adapter drops it
/// from the first packet only, which is too little when the packets are shorter than the
/// pre-skip (2.5 or 5 ms frames), so the decoder loop drops it instead, across packets.
fn take_opus_pre_skip(extra_data: &mut Option<Box<[u8]>>) -> u64 {
    match extra_data.as_deref_mut() {
        Some(head) if head.starts_with(b"OpusHead") && head.len() >= 12 => {
            let pre_skip = u16::from_le_bytes([head[10], head[11]]);
            head[10..12].fill(0);
            u64::from(pre_skip)
        }
        _ => 0,
    }
}

/// Conforms a decoded chunk to the output channel count: mono to both sides, or stereo
/// averaged to mono (a stream that changes its channel mode part way).
/// The container width of integer PCM codecs of at most 24 bits.
fn integer_pcm_bits(codec: AudioCodecId) -> Option<u8> {
    match codec {
        CODEC_ID_PCM_S24LE
        | CODEC_ID_PCM_S24LE_PLANAR
        | CODEC_ID_PCM_S24BE
        | CODEC_ID_PCM_S24BE_PLANAR
        | CODEC_ID_PCM_U24LE
        | CODEC_ID_PCM_U24LE_PLANAR
        | CODEC_ID_PCM_U24BE
        | CODEC_ID_PCM_U24BE_PLANAR => Some(24),
        CODEC_ID_PCM_S16LE
        | CODEC_ID_PCM_S16LE_PLANAR
        | CODEC_ID_PCM_S16BE
        | CODEC_ID_PCM_S16BE_PLANAR
        | CODEC_ID_PCM_U16LE
        | CODEC_ID_PCM_U16LE_PLANAR
        | CODEC_ID_PCM_U16BE
        | CODEC_ID_PCM_U16BE_PLANAR => Some(16),
        CODEC_ID_PCM_S8 | CODEC_ID_PCM_S8_PLANAR | CODEC_ID_PCM_U8 | CODEC_ID_PCM_U8_PLANAR => {
            Some(8)
        }
        _ => None,
    }
}

pub(crate) fn conform<'a>(
    planes: &'a [Vec<f32>],
    channels: usize,
    scratch: &'a mut Vec<f32>,
) -> Vec<&'a [f32]> {
    match (planes, channels) {
        ([mono], 2) => vec![mono.as_slice(), mono.as_slice()],
        ([left, right, ..], 1) => {
            scratch.clear();
            scratch.extend(left.iter().zip(right).map(|(l, r)| (l + r) * 0.5));
            vec![scratch.as_slice()]
        }
        _ => planes.iter().take(channels).map(Vec::as_slice).collect(),
    }
}

fn open_error(format: SourceFormat, error: &SymphoniaError) -> TranscodeError {
    match error {
        SymphoniaError::Unsupported(what) => {
            TranscodeError::Unsupported(format!("This kind of {format} file ({what})"))
        }
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            TranscodeError::corrupt(format, "it ends before its first audio")
        }
        other => TranscodeError::corrupt(format, other.to_string()),
    }
}

pub(crate) fn check_channels(count: usize) -> Result<(), TranscodeError> {
    if count > MAX_CHANNELS {
        return Err(TranscodeError::TooManyChannels {
            found: count,
            max: MAX_CHANNELS,
        });
    }
    Ok(())
}

pub(crate) fn check_sample_rate(rate: u32) -> Result<(), TranscodeError> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(TranscodeError::UnsupportedSampleRate(rate))
    }
}

/// Our name of a codec we decode, or `None` for one we do not.
fn codec_name(codec: AudioCodecId) -> Option<&'static str> {
    match codec {
        CODEC_ID_MP3 => Some("mp3"),
        CODEC_ID_AAC => Some("aac"),
        CODEC_ID_FLAC => Some("flac"),
        CODEC_ID_VORBIS => Some("vorbis"),
        CODEC_ID_OPUS => Some("opus"),
        _ if (CODEC_ID_PCM_S32LE..=CODEC_ID_PCM_MULAW).contains(&codec) => Some("pcm"),
        _ => None,
    }
}

/// A readable name of a codec, for messages about the ones we do not decode.
fn codec_description(codec: AudioCodecId) -> &'static str {
    match codec {
        CODEC_ID_ALAC => "ALAC (Apple Lossless)",
        CODEC_ID_OPUS => "Opus",
        CODEC_ID_MP1 => "MPEG Layer I audio",
        CODEC_ID_MP2 => "MPEG Layer II audio",
        CODEC_ID_AC3 => "AC-3",
        CODEC_ID_EAC3 => "E-AC-3",
        CODEC_ID_WAVPACK => "WavPack",
        CODEC_ID_SPEEX => "Speex",
        CODEC_ID_DCA => "DTS",
        _ if (CODEC_ID_ADPCM_G722..=CODEC_ID_ADPCM_IMA_QT).contains(&codec) => "ADPCM audio",
        _ => "Audio in a codec we do not decode",
    }
}

/// Downmixes more than two channels to stereo.
///
/// Front left and right go to their side at full weight; centre, surround, top and wide
/// channels at -3 dB to their side (or -6 dB to both, for the centred ones); LFE is dropped.
/// The weights are then scaled so that no output can exceed full scale (like swresample does
/// for integer output): quieter, but never clipped.
#[derive(Debug, Default)]
struct Mixer {
    layout: Option<Channels>,
    /// (left, right) weight of each input channel, in plane order.
    weights: Vec<(f32, f32)>,
}

impl Mixer {
    fn set_layout(&mut self, channels: &Channels) {
        if self.layout.as_ref() == Some(channels) {
            return;
        }
        self.weights = stereo_weights(channels);
        self.layout = Some(channels.clone());
    }

    fn mix(&self, planes: &[Vec<f32>], out: &mut Vec<Vec<f32>>) {
        let frames = planes.first().map_or(0, Vec::len);
        out.resize_with(2, Vec::new);
        for plane in out.iter_mut() {
            plane.clear();
            plane.resize(frames, 0.0);
        }
        let [left, right] = out.as_mut_slice() else {
            return;
        };
        for (plane, &(wl, wr)) in planes.iter().zip(&self.weights) {
            if wl != 0.0 {
                for (out, sample) in left.iter_mut().zip(plane) {
                    *out += wl * sample;
                }
            }
            if wr != 0.0 {
                for (out, sample) in right.iter_mut().zip(plane) {
                    *out += wr * sample;
                }
            }
        }
    }
}

fn stereo_weights(channels: &Channels) -> Vec<(f32, f32)> {
    const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let mut weights: Vec<(f32, f32)> = match channels {
        Channels::Positioned(positions) => (0..32u32)
            .filter(|bit| positions.bits() & (1 << bit) != 0)
            .map(|bit| match bit {
                0 => (1.0, 0.0),                                 // front left
                1 => (0.0, 1.0),                                 // front right
                3 | 18 => (0.0, 0.0),                            // LFE
                4 | 6 | 9 | 12 | 15 | 19 | 22 | 24 => (H, 0.0),  // left-hand
                5 | 7 | 10 | 14 | 17 | 20 | 23 | 25 => (0.0, H), // right-hand
                2 => (H, H),                                     // front centre
                _ => (0.5, 0.5),                                 // other centred channels
            })
            .collect(),
        Channels::Ambisonic(_) => (0..channels.count())
            .map(|acn| if acn == 0 { (1.0, 1.0) } else { (0.0, 0.0) })
            .collect(),
        _ => (0..channels.count())
            .map(|index| {
                if index % 2 == 0 {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            })
            .collect(),
    };
    let (sum_left, sum_right) = weights
        .iter()
        .fold((0.0f32, 0.0f32), |(l, r), &(wl, wr)| (l + wl, r + wr));
    let scale = 1.0 / sum_left.max(sum_right).max(1.0);
    for (wl, wr) in &mut weights {
        *wl *= scale;
        *wr *= scale;
    }
    weights
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;
    use symphonia::core::audio::Position;

    #[test]
    fn five_one_downmix_never_exceeds_full_scale() {
        let layout = Channels::Positioned(
            Position::FRONT_LEFT
                | Position::FRONT_RIGHT
                | Position::FRONT_CENTER
                | Position::LFE1
                | Position::REAR_LEFT
                | Position::REAR_RIGHT,
        );
        let weights = stereo_weights(&layout);
        assert_eq!(weights.len(), 6);
        assert_eq!(weights[3], (0.0, 0.0), "LFE is dropped");
        let left: f32 = weights.iter().map(|w| w.0).sum();
        let right: f32 = weights.iter().map(|w| w.1).sum();
        assert!((left - 1.0).abs() < 1e-6 && (right - 1.0).abs() < 1e-6);
        assert!(weights[0].0 > weights[2].0, "front left outweighs centre");

        let mut mixer = Mixer::default();
        mixer.set_layout(&layout);
        let planes = vec![vec![1.0f32; 4]; 6];
        let mut out = Vec::new();
        mixer.mix(&planes, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].iter().all(|&s| (s - 1.0).abs() < 1e-6));
    }

    #[test]
    fn discrete_channels_alternate_sides() {
        let weights = stereo_weights(&Channels::Discrete(4));
        assert_eq!(
            weights,
            vec![(0.5, 0.0), (0.0, 0.5), (0.5, 0.0), (0.0, 0.5)]
        );
    }

    #[test]
    fn limits() {
        assert!(check_channels(MAX_CHANNELS).is_ok());
        assert_eq!(
            check_channels(MAX_CHANNELS + 1).unwrap_err().code(),
            "too-many-channels"
        );
        assert!(check_sample_rate(44_100).is_ok());
        assert_eq!(
            check_sample_rate(0).unwrap_err().code(),
            "unsupported-sample-rate"
        );
    }
}

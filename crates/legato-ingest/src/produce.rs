//! Planning and producing the renditions of one source, and laying them out as chunks: the
//! CPU-bound part of processing, run on the blocking pool.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legato_media::fmp4::{Cut, Fmp4Track};
use legato_media::original::Remainder;
use legato_media::{
    Package, READ_WINDOW_BYTES, SegmentOptions, VariantEntry, master_playlist, package_mp3,
    package_mp3_like, package_mp3_read,
};
use legato_store::{Chunk, ChunkSource, StoreError, Track, TrackStatus, Variant};
use legato_transcode::{Progress, RenditionRequest, SourceFormat};

use crate::error::IngestError;
use crate::formats::source_format_of;
use crate::layout::{self, Generation};
use crate::spool::Spooled;

/// Waveform points measured per track.
pub(crate) const WAVEFORM_POINTS: usize = 400;
/// The transcoder's measures as the store keeps them (nothing that is not a number).
pub(crate) fn stored(a: legato_transcode::Analysis) -> legato_store::Analysis {
    legato_store::Analysis {
        loudness_lufs: a.loudness_lufs.filter(|v| v.is_finite()),
        true_peak_dbtp: a.true_peak_dbtp.filter(|v| v.is_finite()),
        peaks: a.peaks,
    }
}

/// The rendition that is an MP3 upload's own frames.
const ORIGINAL: &str = "original";
/// The one rendition made of a non-MP3 upload when no ladder is configured.
const FALLBACK_KBPS: u32 = 192;

/// A track's source while it is processed, in a temporary file (the upload's spool, or
/// read back from the store by [`crate::jobs`]), read as decoding goes.
impl Spooled {
    /// The format, from the bytes.
    fn detect(&self) -> Result<SourceFormat, IngestError> {
        Ok(legato_transcode::detect_reader(&mut self.reader()).map_err(unreadable)??)
    }

    fn tags(&self) -> legato_transcode::Tags {
        legato_transcode::read_tags_from(&mut self.reader())
    }

    /// The bytes, read into memory.
    fn into_bytes(self) -> Result<Arc<Vec<u8>>, IngestError> {
        let mut data = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut self.reader(), &mut data).map_err(unreadable)?;
        Ok(Arc::new(data))
    }
}

fn unreadable(err: std::io::Error) -> IngestError {
    IngestError::Transcode(legato_transcode::TranscodeError::Io(err.to_string()))
}

/// The CPU-bound part of processing, run on the blocking pool: plan the renditions from
/// the probed input, produce them, lay them out as chunks.
pub(crate) struct BuildJob {
    pub audio: Spooled,
    pub ladder: Vec<u32>,
    /// AAC-LC rungs (fMP4), kbit/s.
    pub aac_ladder: Vec<u32>,
    /// Whether to make a lossless FLAC rung (fMP4) of a lossless upload.
    pub lossless: bool,
    pub segment_seconds: f64,
    pub generation: Generation,
    /// The art of the upload's folder ([`layout::FOLDER_COVER`]): the cover when the audio
    /// has none in its tags.
    pub folder_cover: Option<legato_transcode::Cover>,
    /// Whether to measure loudness, true peak and waveform in the same decode.
    pub analysis: bool,
}

/// What a build made: the track to publish and its chunks, produced lazily; `names`
/// fills up with the name of each chunk as the store pulls it.
pub(crate) struct Built {
    pub track: Track,
    pub chunks: ChunkSource,
    pub names: Arc<std::sync::Mutex<Vec<String>>>,
    pub decode_ms: f64,
    pub encode_ms: f64,
    /// Loudness, true peak and waveform, when the build measured them.
    pub analysis: Option<legato_store::Analysis>,
}

/// One rendition ready to be stored.
struct Rendition {
    name: String,
    mp3: RungBytes,
    package: Package,
}

/// One fragmented-MP4 rendition ready to be stored: an AAC-LC rung or the lossless FLAC one.
struct Fmp4Rendition {
    /// `aac128k` or `flac`.
    name: String,
    /// Average kbit/s.
    bitrate_kbps: u32,
    track: Fmp4Track,
    /// The coded frames `track` describes: an uploaded FLAC in memory, or an encoder's
    /// output in its temporary file, read back a segment at a time.
    frames: RungBytes,
}

impl Fmp4Rendition {
    fn codecs(&self) -> &'static str {
        self.track.info().codec.codecs()
    }
}

/// The AAC-LC rungs worth making of a source: all of `ladder` for a lossless one; for a
/// lossy one those at or below its bitrate (a rung above it would spend bits on the
/// source's artefacts), and the lowest whatever the source's bitrate.
pub(crate) fn aac_rungs_for(
    ladder: &[u32],
    format: SourceFormat,
    source_kbps: Option<u32>,
) -> Vec<u32> {
    let mut rungs = ladder.to_vec();
    rungs.sort_unstable();
    rungs.dedup();
    let lossless = matches!(
        format,
        SourceFormat::Wav | SourceFormat::Aiff | SourceFormat::Flac
    );
    match source_kbps {
        Some(kbps) if !lossless => {
            let lowest = rungs.first().copied();
            rungs.retain(|&r| r <= kbps);
            if rungs.is_empty() {
                rungs.extend(lowest);
            }
            rungs
        }
        _ => rungs,
    }
}

/// The renditions the settings ask for that a ready track does not have yet: what a
/// follow-up reprocessing of it makes. An MP3 ladder rung is named by its bitrate (`128k`),
/// an AAC rung `aac128k`, the lossless rung `flac`.
pub(crate) fn coming(config: &crate::IngestConfig, track: &Track) -> Vec<String> {
    let format = track
        .source
        .as_ref()
        .and_then(|s| source_format_of(&s.format))
        .unwrap_or(SourceFormat::Mp3);
    let lossless_source = matches!(
        format,
        SourceFormat::Wav | SourceFormat::Aiff | SourceFormat::Flac
    );
    // An MP3 gets the rungs below its own bitrate; it is the rung above them.
    let mp3_source_kbps = (format == SourceFormat::Mp3)
        .then_some(track.bitrate)
        .flatten();
    let mut planned: Vec<String> = config
        .ladder_kbps
        .iter()
        .filter(|&&kbps| mp3_source_kbps.is_none_or(|source| kbps < source))
        .map(|kbps| format!("{kbps}k"))
        .collect();
    planned.extend(
        aac_rungs_for(&config.aac_ladder_kbps, format, track.bitrate)
            .iter()
            .map(|kbps| format!("aac{kbps}k")),
    );
    if config.lossless && lossless_source {
        planned.push("flac".into());
    }
    planned.dedup();
    planned.retain(|name| !track.variants.iter().any(|v| &v.name == name));
    if track.variants.is_empty() && format != SourceFormat::Mp3 {
        // One rendition, named by no variant: the first rung of a decoded upload.
        let first: Vec<String> = first_rungs(config)
            .iter()
            .map(|kbps| format!("{kbps}k"))
            .collect();
        planned.retain(|name| !first.contains(name));
    }
    planned
}

/// The first rendition of an upload that must be decoded (WAV, FLAC, AAC, Vorbis): one MP3
/// rung, what every HLS player plays, encoded from one decode: the ladder's rung nearest
/// 128 kbit/s from below (its lowest when every rung is above). Without a ladder, the
/// fallback rung. Its follow-up makes the rest.
pub(crate) fn first_rungs(config: &crate::IngestConfig) -> Vec<u32> {
    let ladder = &config.ladder_kbps;
    ladder
        .iter()
        .copied()
        .filter(|&kbps| kbps <= 128)
        .max()
        .or_else(|| ladder.iter().copied().min())
        .into_iter()
        .collect()
}

/// Where a rendition's coded frames are (MP3, or AAC/FLAC for an fMP4 rung): the upload (or
/// a rung of an MP3 upload) in memory; an encoded rung in the temporary file it was written
/// to as it was encoded, read back a window or a segment at a time, so that memory does not
/// grow with the track's length.
#[derive(Clone)]
enum RungBytes {
    Memory(Arc<Vec<u8>>),
    File { file: Arc<std::fs::File>, len: u64 },
}

impl RungBytes {
    /// An MP3 upload's own frames, where the upload is.
    fn of_source(audio: &Spooled) -> Self {
        RungBytes::File {
            file: audio.shared_file(),
            len: audio.len(),
        }
    }

    fn len(&self) -> u64 {
        match self {
            RungBytes::Memory(data) => data.len() as u64,
            RungBytes::File { len, .. } => *len,
        }
    }

    /// Scans and plans the MP3, cut like `reference` when there is one.
    fn package(
        &self,
        reference: Option<&Package>,
        options: &SegmentOptions,
    ) -> Result<Package, IngestError> {
        match (self, reference) {
            (RungBytes::Memory(data), None) => Ok(package_mp3(data, options)?),
            (RungBytes::Memory(data), Some(reference)) => {
                Ok(package_mp3_like(data, reference, options)?)
            }
            (RungBytes::File { file, len }, reference) => {
                let len = usize::try_from(*len)
                    .map_err(|_| IngestError::Internal("an encoded rung is too large".into()))?;
                let mut read = |range| read_range(file, range).map_err(unreadable);
                package_mp3_read(len, READ_WINDOW_BYTES, &mut read, reference, options)
            }
        }
    }

    /// The segments of `package` (made from these bytes), muxed as the store pulls them.
    fn into_segments(
        self,
        package: Package,
    ) -> Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>> + Send> {
        match self {
            RungBytes::Memory(data) => Box::new(package.into_segments(ArcBytes(data)).map(Ok)),
            file @ RungBytes::File { .. } => Box::new(
                package.into_segments_read(move |range| file.window(range).map(Cow::into_owned)),
            ),
        }
    }

    /// Bytes `range` of the frames: borrowed from memory, read back from the temporary file.
    fn window(&self, range: std::ops::Range<usize>) -> Result<Cow<'_, [u8]>, StoreError> {
        match self {
            RungBytes::Memory(data) => data
                .get(range)
                .map(Cow::Borrowed)
                .ok_or_else(|| StoreError::Source("a segment lies outside its rendition".into())),
            RungBytes::File { file, .. } => read_range(file, range).map(Cow::Owned).map_err(|e| {
                StoreError::Source(format!(
                    "cannot read an encoded rung back from its temporary file: {e}"
                ))
            }),
        }
    }
}

/// Bytes `range` of `file`, with a positioned read (the file is shared).
fn read_range(file: &std::fs::File, range: std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; range.len()];
    file.read_exact_at(&mut bytes, range.start as u64)?;
    Ok(bytes)
}

/// What the source is, as the track describes it.
struct SourceDescription {
    codec: String,
    sample_rate: u32,
    channels: u8,
    bitrate_kbps: Option<u32>,
}

impl BuildJob {
    pub fn build(self, mut track: Track) -> Result<Built, IngestError> {
        let options = SegmentOptions {
            target_seconds: self.segment_seconds,
        };
        let format = self.audio.detect()?;
        let tags = self.audio.tags();
        let size = self.audio.len();
        let id = track.id;
        // An MP3's frames are packaged as they are, read a window at a time from where the
        // upload is; anything else is decoded from there.
        let audio = self.audio;
        let mp3 = (format == SourceFormat::Mp3).then(|| RungBytes::of_source(&audio));

        // Plan: without a ladder an MP3 is only repackaged; anything else needs one rendition.
        let rungs_kbps = match (self.ladder.is_empty(), format) {
            (true, SourceFormat::Mp3) => Vec::new(),
            (true, _) => vec![FALLBACK_KBPS],
            (false, _) => self.ladder.clone(),
        };

        // Produce, from one decode: the MP3 rungs, the fMP4 rungs and the analysis. The
        // reference rendition (first) sets the cut points: the original when there is one.
        let mut renditions = Vec::new();
        // An MP3 is scanned first: its own frames are the top rung, and its bitrate says which
        // rungs are worth making.
        let original = match &mp3 {
            Some(mp3) => Some(mp3.package(None, &options)?),
            None => None,
        };
        let original_kbps = original.as_ref().map(|p| p.info().bitrate_kbps);
        let lossless_source = matches!(
            format,
            SourceFormat::Wav | SourceFormat::Aiff | SourceFormat::Flac
        );
        // A lossy source other than an MP3 tells its bitrate only once decoded: every AAC
        // rung is encoded, and those above the source's bitrate are dropped after.
        let aac_rungs = aac_rungs_for(
            &self.aac_ladder,
            format,
            if lossless_source { None } else { original_kbps },
        );
        let own_flac = self.lossless && format == SourceFormat::Flac;
        let request = RenditionRequest {
            mp3_rungs_kbps: rungs_kbps,
            aac_rungs_kbps: aac_rungs,
            lossless: self.lossless && !own_flac,
            analysis_points: self.analysis.then_some(WAVEFORM_POINTS),
        };
        let last_logged = std::sync::Mutex::new(Instant::now());
        let progress = move |p: Progress| {
            if let Ok(mut last) = last_logged.lock()
                && last.elapsed() >= Duration::from_secs(5)
            {
                *last = Instant::now();
                tracing::info!(%id, stage = ?p.stage, percent = (p.fraction * 100.0).round(), "ingest progress");
            }
        };
        // The file is decoded as it is read, and its rungs are written to temporary files
        // as they are encoded.
        let spill = tempfile::tempfile;
        // An MP3 with nothing to make beside its own frames is not read again.
        let nothing_to_make = original.is_some()
            && request.mp3_rungs_kbps.is_empty()
            && request.aac_rungs_kbps.is_empty()
            && request.analysis_points.is_none();
        let made = if nothing_to_make {
            Ok(None)
        } else {
            legato_transcode::transcode_renditions(audio.file(), &request, &progress, &spill)
                .map(Some)
        };
        let made = match made {
            Ok(made) => made,
            // An MP3 the decoder refuses still plays as it is: its own frames need no decoder.
            Err(e) if e.is_input_error() && original.is_some() => {
                tracing::warn!(%id, error = %e, "only the original rendition: the decoder refused this MP3");
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(refused) = made.as_ref().and_then(|m| m.fmp4_refused.as_ref()) {
            tracing::warn!(%id, error = %refused, "no AAC or FLAC renditions: the fMP4 encoder refused this source");
        }
        if let (Some(mp3), Some(package)) = (&mp3, original) {
            renditions.push(Rendition {
                name: ORIGINAL.into(),
                mp3: mp3.clone(),
                package,
            });
        }
        let (rungs, fmp4, analysis, described, times) = match made {
            Some(made) => (
                made.mp3.rungs,
                Some(made.fmp4),
                made.analysis,
                (made.decodes > 0).then_some(made.mp3.source),
                (made.mp3.decode_ms, made.mp3.encode_ms),
            ),
            None => (Vec::new(), None, None, None, (0.0, 0.0)),
        };
        // The highest rung is the reference when there is no original.
        for rung in rungs.into_iter().rev() {
            let mp3 = RungBytes::File {
                file: Arc::new(rung.file),
                len: rung.len,
            };
            let package = mp3.package(renditions.first().map(|r| &r.package), &options)?;
            renditions.push(Rendition {
                name: rung.name,
                mp3,
                package,
            });
        }
        if renditions.is_empty() {
            return Err(IngestError::Internal(
                "the transcoder produced no rendition".into(),
            ));
        }
        let source = match (&mp3, described) {
            (None, Some(info)) => SourceDescription {
                codec: info.codec,
                sample_rate: info.sample_rate,
                channels: info.channels,
                bitrate_kbps: info.bitrate_kbps,
            },
            // An MP3 is described by its frames, as it plays.
            _ => {
                let info = renditions[0].package.info();
                SourceDescription {
                    codec: "mp3".into(),
                    sample_rate: info.sample_rate,
                    channels: info.channels,
                    bitrate_kbps: Some(info.bitrate_kbps),
                }
            }
        };
        let (decode_ms, encode_ms) = times;

        // The fMP4 rungs are cut where the reference's segments end, so a player switches
        // between any two renditions at the same instants (within a frame).
        let instants =
            legato_media::cmaf_plan::instants_of(&renditions[0].package.segment_durations());
        let keep_aac = aac_rungs_for(&self.aac_ladder, format, source.bitrate_kbps);
        let fmp4 = fmp4_renditions(fmp4, &keep_aac, own_flac.then_some(&audio), &instants)?;
        let reference_info = renditions[0].package.info().clone();
        track.duration = reference_info.duration;
        track.segments = u32::try_from(renditions[0].package.segment_count()).unwrap_or(u32::MAX);
        track.codec = Some(source.codec);
        track.bitrate = source.bitrate_kbps.or(Some(reference_info.bitrate_kbps));
        track.sample_rate = Some(source.sample_rate);
        track.channels = Some(source.channels);
        track.size = Some(size);
        track.status = TrackStatus::Ready;
        track.error = None;
        // A reprocessing fills in what tags an older version did not read (album artist,
        // genre, track and disc numbers); what the track has is kept.
        track.album = track.album.or_else(|| tags.album.clone());
        track.year = track.year.or(tags.year);
        track.album_artist = track.album_artist.or_else(|| tags.album_artist.clone());
        track.genre = track.genre.or_else(|| tags.genre.clone());
        track.track_number = track.track_number.or(tags.track);
        track.disc_number = track.disc_number.or(tags.disc);
        // Lowest bandwidth first in the master playlist.
        renditions.sort_by_key(|r| r.package.info().bitrate_kbps);

        // Lay out.
        let cover = tags.cover.or(self.folder_cover);
        let chunks = lay_out(&mut track, renditions, fmp4, cover, &self.generation);
        if let Some(kept) = track.source.as_ref().and_then(|s| s.remainder.as_ref())
            && *kept != self.generation.remainder()
        {
            // The source lives in the renditions being replaced: publishing would lose it.
            return Err(IngestError::Internal(
                "the new renditions cannot keep this MP3's source; the track is left as it is"
                    .into(),
            ));
        }
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = names.clone();
        let chunks: ChunkSource = Box::new(chunks.inspect(move |chunk| {
            if let (Ok(chunk), Ok(mut names)) = (chunk, recorded.lock()) {
                names.push(chunk.name.clone());
            }
        }));
        Ok(Built {
            track,
            chunks,
            names,
            decode_ms,
            encode_ms,
            analysis: analysis.map(stored),
        })
    }
}

/// The fMP4 renditions of a source, packaged from what the one decode encoded: the AAC-LC
/// rungs in `keep_aac` and, for a lossless upload, the FLAC rung (a FLAC upload's own frames,
/// bit-exact; WAV/AIFF encoded losslessly). Ascending by bitrate, FLAC last. A source the fMP4
/// side cannot take (a FLAC file our frame scanner refuses, say) keeps its MP3 renditions:
/// the rung is left out with a warning rather than failing a track that plays.
fn fmp4_renditions(
    encoded: Option<legato_transcode::Fmp4Renditions<legato_transcode::SpilledData>>,
    keep_aac: &[u32],
    own_flac: Option<&Spooled>,
    instants: &[f64],
) -> Result<Vec<Fmp4Rendition>, IngestError> {
    let mut out = Vec::new();
    let (aac, flac) = encoded.map_or((Vec::new(), None), |e| (e.aac, e.flac));
    for aac in aac {
        if !keep_aac.contains(&aac.bitrate_kbps) {
            continue;
        }
        let track = legato_media::fmp4::aac_track(
            aac.audio_specific_config,
            aac.sample_rate,
            aac.channels,
            &aac.frame_lens,
            aac.priming,
            aac.valid_samples,
            aac.bitrate_kbps,
            Cut::At(instants),
        )?;
        out.push(Fmp4Rendition {
            name: format!("aac{}k", aac.bitrate_kbps),
            bitrate_kbps: aac.bitrate_kbps,
            track,
            frames: RungBytes::File {
                file: Arc::new(aac.data.file),
                len: aac.data.len,
            },
        });
    }
    if let Some(flac) = flac {
        out.push(encoded_flac_rendition(flac, instants)?);
    }
    if let Some(audio) = own_flac {
        let data = audio.clone().into_bytes()?;
        out.extend(flac_rendition(data, instants));
    }
    Ok(out)
}

/// The lossless rung of a WAV/AIFF encoded to FLAC: the encoder told where its frames are.
fn encoded_flac_rendition(
    flac: legato_transcode::FlacRung<legato_transcode::SpilledData>,
    instants: &[f64],
) -> Result<Fmp4Rendition, IngestError> {
    let legato_transcode::FlacRung { data: flac, layout } = flac;
    let Some(stream_info) = legato_media::flac::StreamInfo::parse(&layout.stream_info) else {
        return Err(IngestError::Internal(
            "the FLAC encoder wrote a STREAMINFO we cannot read".into(),
        ));
    };
    let mut frames = Vec::with_capacity(layout.frame_lens.len());
    let mut at = layout.header_len;
    for &len in &layout.frame_lens {
        frames.push(at..at + len as usize);
        at += len as usize;
    }
    let data_len = usize::try_from(flac.len)
        .map_err(|_| IngestError::Internal("an encoded rung is too large".into()))?;
    let track = legato_media::fmp4::flac_frames_track(
        stream_info,
        frames,
        layout.frame_samples.clone(),
        data_len,
        Cut::At(instants),
    )?;
    Ok(Fmp4Rendition {
        name: "flac".into(),
        bitrate_kbps: track.info().avg_bitrate / 1000,
        track,
        frames: RungBytes::File {
            file: Arc::new(flac.file),
            len: flac.len,
        },
    })
}

/// The lossless rung of a FLAC stream's frames; `None` (with a warning) if they cannot be
/// carried.
fn flac_rendition(data: Arc<Vec<u8>>, instants: &[f64]) -> Option<Fmp4Rendition> {
    match legato_media::fmp4::flac_track(&data, Cut::At(instants)) {
        Ok(track) => {
            let kbps = track.info().avg_bitrate / 1000;
            Some(Fmp4Rendition {
                name: "flac".into(),
                bitrate_kbps: kbps,
                track,
                frames: RungBytes::Memory(data),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "no lossless rendition: the FLAC frames cannot be carried");
            None
        }
    }
}

/// The chunks of a track's renditions, named by `generation`; fills in the track's
/// playlist, variants and cover.
fn lay_out(
    track: &mut Track,
    mut renditions: Vec<Rendition>,
    fmp4: Vec<Fmp4Rendition>,
    cover: Option<legato_transcode::Cover>,
    generation: &Generation,
) -> ChunkSource {
    let mut chunks: Vec<ChunkSource> = Vec::new();
    track.playlist = generation.playlist();
    track.variants = Vec::new();
    track.cover = None;
    if let Some(cover) = cover {
        let name = generation.cover(cover.mime);
        track.cover = Some(name.clone());
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(name, cover.bytes)))));
    }
    if renditions.len() == 1 && fmp4.is_empty() {
        let only = renditions.remove(0);
        let names = generation.clone();
        let segments = (0..only.package.segment_count()).map(|i| names.segment(i));
        chunks.extend(source_in_segments(
            track,
            &only,
            segments.collect(),
            generation,
        ));
        let playlist = only.package.media_playlist(&|i| names.segment(i));
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
            track.playlist.clone(),
            playlist,
        )))));
        let names = generation.clone();
        chunks.push(Box::new(
            only.mp3
                .into_segments(only.package)
                .enumerate()
                .map(move |(i, bytes)| Ok(Chunk::new(names.segment(i), bytes?))),
        ));
    } else {
        let mut entries = Vec::new();
        let mut media = Vec::new();
        for rendition in renditions {
            let (bandwidth, average_bandwidth) = rendition.package.bandwidths();
            let playlist_name = generation.variant_playlist(&rendition.name);
            let names = generation.clone();
            let rung = rendition.name.clone();
            let playlist = rendition
                .package
                .media_playlist(&|i| names.variant_segment(&rung, i));
            let segments = (0..rendition.package.segment_count())
                .map(|i| names.variant_segment(&rung, i))
                .collect();
            media.extend(source_in_segments(track, &rendition, segments, generation));
            entries.push(VariantEntry {
                uri: playlist_name.clone(),
                bandwidth,
                average_bandwidth,
                codecs: legato_media::CODECS_MP3.to_owned(),
            });
            track.variants.push(Variant {
                name: rendition.name.clone(),
                bitrate: rendition.package.info().bitrate_kbps,
                bandwidth,
                average_bandwidth,
                codecs: legato_media::CODECS_MP3.to_owned(),
                playlist: playlist_name.clone(),
            });
            media.push(
                Box::new(std::iter::once(Ok(Chunk::new(playlist_name, playlist)))) as ChunkSource,
            );
            media.push(Box::new(
                rendition
                    .mp3
                    .into_segments(rendition.package)
                    .enumerate()
                    .map(move |(i, bytes)| Ok(Chunk::new(names.variant_segment(&rung, i), bytes?))),
            ));
        }
        // Standards players pick from the AAC rungs and the lossless one first (Apple's
        // authoring spec has no MP3; video.js refuses it); MP3 comes last. Legacy players
        // get the MP3 rungs alone (`mp3.m3u8`, which `outputlist.m3u8` answers).
        let mut every = Vec::new();
        for rendition in fmp4 {
            every.push(lay_out_fmp4(track, rendition, generation, &mut media));
        }
        if !every.is_empty() {
            chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
                generation.mp3_playlist(),
                master_playlist(&entries),
            )))));
        }
        every.extend(entries);
        chunks.push(Box::new(std::iter::once(Ok(Chunk::new(
            track.playlist.clone(),
            master_playlist(&every),
        )))));
        chunks.extend(media);
    }
    Box::new(chunks.into_iter().flatten())
}

/// The chunks of one fMP4 rendition (init segment, media playlist, media segments written
/// as the store pulls them) into `media`; records the variant on the track and returns its
/// master playlist entry.
fn lay_out_fmp4(
    track: &mut Track,
    rendition: Fmp4Rendition,
    generation: &Generation,
    media: &mut Vec<ChunkSource>,
) -> VariantEntry {
    let name = rendition.name.clone();
    let codecs = rendition.codecs().to_owned();
    let (bandwidth, average_bandwidth) = rendition.track.bandwidths().unwrap_or_default();
    let playlist_name = generation.variant_playlist(&name);
    let init_name = generation.fmp4_init(&name);
    let playlist = rendition
        .track
        .media_playlist(&init_name, &|i| generation.fmp4_segment(&name, i));
    track.variants.push(Variant {
        name: name.clone(),
        bitrate: rendition.bitrate_kbps,
        bandwidth,
        average_bandwidth,
        codecs: codecs.clone(),
        playlist: playlist_name.clone(),
    });
    let init = rendition.track.init_segment();
    media.push(Box::new(std::iter::once(
        init.map(|bytes| Chunk::new(init_name, bytes))
            .map_err(|e| StoreError::Source(format!("cannot write an init segment: {e}"))),
    )));
    media.push(Box::new(std::iter::once(Ok(Chunk::new(
        playlist_name.clone(),
        playlist,
    )))));
    let names = generation.clone();
    let Fmp4Rendition {
        track: fmp4_track,
        frames,
        ..
    } = rendition;
    media.push(Box::new((0..fmp4_track.segment_count()).map(move |i| {
        let outside = || StoreError::Source("an fMP4 segment lies outside its frames".into());
        let window = frames.window(fmp4_track.segment_byte_range(i).ok_or_else(outside)?)?;
        fmp4_track
            .media_segment_window(&window, i)
            .map(|bytes| Chunk::new(names.fmp4_segment(&name, i), bytes))
            .ok_or_else(outside)
    })));
    VariantEntry {
        uri: playlist_name,
        bandwidth,
        average_bandwidth,
        codecs,
    }
}

/// For the `original` rendition of an MP3: the source is kept as these segments plus a
/// remainder chunk (its tags and whatever else is not a frame), so its audio is not stored
/// twice; the track's source then names the remainder (see [`legato_media::original`]).
/// `None` for any other rendition, or when the remainder would be larger than a source piece.
fn source_in_segments(
    track: &mut Track,
    rendition: &Rendition,
    segments: Vec<String>,
    generation: &Generation,
) -> Option<ChunkSource> {
    let source = track.source.as_mut()?;
    if rendition.name != ORIGINAL || source.format != "mp3" {
        return None;
    }
    let len = usize::try_from(rendition.mp3.len()).ok()?;
    // Tags larger than a piece (a huge cover) leave the source to be stored in pieces.
    let remainder = Remainder::of_read(
        len,
        &rendition.package,
        segments,
        layout::SOURCE_PIECE_BYTES,
        &mut |range| rendition.mp3.window(range).ok().map(Cow::into_owned),
    )?;
    let bytes = remainder.to_bytes();
    if remainder.len != source.size || bytes.len() > layout::SOURCE_PIECE_BYTES {
        return None;
    }
    let name = generation.remainder();
    source.pieces = 0;
    source.remainder = Some(name.clone());
    Some(Box::new(std::iter::once(Ok(Chunk::new(name, bytes)))))
}

/// Shared audio bytes for the lazy segment muxer.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| IngestError::Internal(format!("an ingest task failed: {e}")))?
}

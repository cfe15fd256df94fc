//! Fragmented MP4 (CMAF-style) audio for HLS: one init segment and media segments of whole
//! coded frames, carried bit-exact (AAC-LC access units, FLAC frames).
//!
//! ```text
//! init.mp4  ftyp  moov ─ mvhd
//!                      ├ trak ─ tkhd, edts/elst (priming, length), mdia ─ mdhd, hdlr,
//!                      │        minf ─ smhd, dinf, stbl ─ stsd ─ mp4a+esds │ fLaC+dfLa
//!                      └ mvex ─ mehd, trex
//! segN.m4s  styp  moof ─ mfhd (N+1), traf ─ tfhd, tfdt, trun (duration+size per sample)
//!           mdat  (the frames, back to back)
//! ```
//!
//! # Design choices
//!
//! * **Boxes from `mp4-atom`** (0.17): typed structs for every box here, `esds` and `dfLa`
//!   included, encoders that compute sizes and versions, a fuzzed decoder for our own tests
//!   of what we write, builds on stable, MIT/Apache. Only the `mdat` header (8 bytes) is
//!   written by hand, so the payload is copied once rather than twice.
//! * **The media timescale is the sample rate**, so every duration is an exact integer:
//!   `tfdt` is the number of samples before the segment, running on across segments, and
//!   each `trun` entry carries its frame's sample count.
//! * **Encoder delay and padding in the edit list.** A single edit starting at the priming
//!   (e.g. 2048 samples for libfdk-aac) and lasting the source's length (movie timescale =
//!   sample rate too) tells a decoder which samples to present, so the track plays back the
//!   source's exact length: the fMP4 answer to "MP3 decodes 33–46 ms longer". `mehd` and the
//!   playlist's durations give the same presentation length. For decoders that ignore edit
//!   lists in fragmented files (ffmpeg 5.1, so mpv and other ffmpeg-based players), an AAC
//!   track's init segment also carries Apple's `iTunSMPB` gapless comment (priming,
//!   padding, length), from which ffmpeg skips the priming. mp4-atom 0.17 has no iTunes
//!   `----` item, so those boxes are the one part of the init segment written by hand.
//! * **Every sample is a sync sample** (`trex` default flags: depends on no other sample), so
//!   each segment decodes on its own: `#EXT-X-INDEPENDENT-SEGMENTS` holds.
//! * **Pure**: no I/O; errors, never panics, for any input ([`MediaError::UnpackableTrack`]).

use std::ops::Range;

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Audio, Codec, Dfla, Dinf, Dref, DrefEntry, Edts, Elst, ElstEntry, Encode, Esds, FixedPoint,
    Flac, FlacMetadataBlock, FourCC, Ftyp, Hdlr, Mdhd, Mdia, Mehd, Mfhd, Minf, Moof, Moov, Mp4a,
    Mvex, Mvhd, Smhd, Stbl, Stsd, Styp, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url, u24,
};

use crate::cmaf_plan::{self, Timeline};
use crate::error::MediaError;
use crate::flac::StreamInfo as FlacStreamInfo;
use crate::playlist::{self, PlaylistEntry};

/// The one track's ID.
const TRACK_ID: u32 = 1;
/// `trex` default sample flags: `sample_depends_on = 2` (an I-frame, in effect), not a
/// non-sync sample.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// The codec of a track and its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC-LC, with its MPEG-4 AudioSpecificConfig.
    AacLc { audio_specific_config: Vec<u8> },
    /// FLAC, with its STREAMINFO.
    Flac { stream_info: FlacStreamInfo },
}

impl AudioCodec {
    /// The RFC 6381 `CODECS` value for a playlist.
    pub fn codecs(&self) -> &'static str {
        match self {
            AudioCodec::AacLc { .. } => playlist::CODECS_AAC_LC,
            AudioCodec::Flac { .. } => playlist::CODECS_FLAC,
        }
    }
}

/// What the init segment says about a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub codec: AudioCodec,
    pub sample_rate: u32,
    pub channels: u8,
    /// Samples per channel at the start that are encoder delay (0 for FLAC).
    pub priming: u32,
    /// Samples per channel of source audio after the priming: the presentation length.
    pub valid_samples: u64,
    /// Average and peak bit/s of the codec, for the `esds` (0 if unknown).
    pub avg_bitrate: u32,
    pub max_bitrate: u32,
}

/// A track of coded frames, planned into segments, ready to be written.
///
/// It holds positions, not bytes: the frames live in a buffer the caller keeps (the encoder's
/// output, or the uploaded FLAC file) and passes to [`media_segment`](Self::media_segment).
#[derive(Debug, Clone)]
pub struct Fmp4Track {
    info: TrackInfo,
    /// Byte range of each frame in the caller's buffer.
    frames: Vec<Range<usize>>,
    /// Samples per channel of each frame.
    frame_samples: Vec<u32>,
    /// Decode time of the start of each frame, and the end (one more entry).
    starts: Vec<u64>,
    segments: Vec<Range<usize>>,
    data_len: usize,
}

/// Where to cut segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut<'a> {
    /// At most this many seconds each (the last may reach 1.25 times it).
    Target(f64),
    /// At the frame boundaries nearest these presentation instants (seconds, ascending), e.g.
    /// where another rendition's segments end ([`crate::cmaf_plan::instants_of`]).
    At(&'a [f64]),
}

impl Fmp4Track {
    /// Describes a track whose frame `i` is `data[frames[i]]` and lasts `frame_samples[i]`
    /// samples, and plans its segments.
    ///
    /// # Errors
    /// [`MediaError::UnpackableTrack`] if the frames and durations differ in number, a range
    /// lies outside `data_len`, there are no frames, the rate or channels are 0, the priming
    /// and source length exceed the frames' samples, or a frame is larger than 4 GiB;
    /// [`MediaError::InvalidSegmentTarget`] for a bad target.
    pub fn new(
        info: TrackInfo,
        frames: Vec<Range<usize>>,
        frame_samples: Vec<u32>,
        data_len: usize,
        cut: Cut<'_>,
    ) -> Result<Fmp4Track, MediaError> {
        if frames.is_empty() || frames.len() != frame_samples.len() {
            return Err(MediaError::UnpackableTrack(
                "there must be one duration per frame, and at least one frame",
            ));
        }
        if info.sample_rate == 0 || info.channels == 0 {
            return Err(MediaError::UnpackableTrack(
                "the sample rate and channel count must be above 0",
            ));
        }
        if frames
            .iter()
            .any(|range| range.start > range.end || range.end > data_len)
            || frames
                .iter()
                .any(|range| u32::try_from(range.len()).is_err())
        {
            return Err(MediaError::UnpackableTrack(
                "a frame lies outside the data or is larger than 4 GiB",
            ));
        }
        let mut starts = Vec::with_capacity(frame_samples.len() + 1);
        let mut total = 0u64;
        starts.push(0);
        for &samples in &frame_samples {
            total += u64::from(samples);
            starts.push(total);
        }
        if u64::from(info.priming).saturating_add(info.valid_samples) > total {
            return Err(MediaError::UnpackableTrack(
                "the priming and source length are longer than the frames",
            ));
        }
        let timeline = Timeline {
            frame_samples: &frame_samples,
            sample_rate: info.sample_rate,
            priming: u64::from(info.priming),
            valid_samples: info.valid_samples,
        };
        let segments = match cut {
            Cut::Target(seconds) => {
                crate::SegmentOptions {
                    target_seconds: seconds,
                }
                .validate()?;
                cmaf_plan::plan_by_target(&timeline, seconds)
            }
            Cut::At(instants) => cmaf_plan::plan_at_instants(&timeline, instants),
        };
        Ok(Fmp4Track {
            info,
            frames,
            frame_samples,
            starts,
            segments,
            data_len,
        })
    }

    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Frames (indices) of each segment.
    pub fn plan(&self) -> &[Range<usize>] {
        &self.segments
    }

    fn timeline(&self) -> Timeline<'_> {
        Timeline {
            frame_samples: &self.frame_samples,
            sample_rate: self.info.sample_rate,
            priming: u64::from(self.info.priming),
            valid_samples: self.info.valid_samples,
        }
    }

    /// Presentation durations of the segments in samples; they add up to the source's length.
    pub fn segment_samples(&self) -> Vec<u64> {
        cmaf_plan::segment_samples(&self.timeline(), &self.segments)
    }

    /// Presentation durations of the segments in seconds.
    pub fn segment_durations(&self) -> Vec<f64> {
        let rate = f64::from(self.info.sample_rate);
        self.segment_samples()
            .into_iter()
            .map(|samples| samples as f64 / rate)
            .collect()
    }

    /// The presentation length in seconds (the source's).
    pub fn duration(&self) -> f64 {
        self.info.valid_samples as f64 / f64::from(self.info.sample_rate)
    }

    /// The init segment (`ftyp` + `moov`).
    ///
    /// # Errors
    /// [`MediaError::UnpackableTrack`] if the codec configuration cannot be written (e.g. an
    /// AudioSpecificConfig of more than 127 bytes, or a rate over 1,048,575 Hz for FLAC).
    pub fn init_segment(&self) -> Result<Vec<u8>, MediaError> {
        let info = &self.info;
        let rate = info.sample_rate;
        let total_decode = self.starts.last().copied().unwrap_or(0);
        let ftyp = Ftyp {
            major_brand: FourCC::new(b"iso6"),
            minor_version: 0,
            compatible_brands: vec![
                FourCC::new(b"iso6"),
                FourCC::new(b"cmfc"),
                FourCC::new(b"mp41"),
            ],
        };
        let moov = Moov {
            mvhd: Mvhd {
                timescale: rate,
                duration: info.valid_samples,
                rate: FixedPoint::new(1, 0),
                volume: FixedPoint::new(1, 0),
                next_track_id: TRACK_ID + 1,
                ..Mvhd::default()
            },
            mvex: Some(Mvex {
                mehd: Some(Mehd {
                    fragment_duration: info.valid_samples,
                }),
                trex: vec![Trex {
                    track_id: TRACK_ID,
                    default_sample_description_index: 1,
                    default_sample_duration: self.frame_samples.first().copied().unwrap_or(0),
                    default_sample_size: 0,
                    default_sample_flags: SYNC_SAMPLE_FLAGS,
                }],
            }),
            trak: vec![Trak {
                tkhd: Tkhd {
                    track_id: TRACK_ID,
                    duration: info.valid_samples,
                    enabled: true,
                    in_movie: true,
                    volume: FixedPoint::new(1, 0),
                    ..Tkhd::default()
                },
                edts: Some(Edts {
                    elst: Some(Elst {
                        entries: vec![ElstEntry {
                            segment_duration: info.valid_samples,
                            media_time: Some(u64::from(info.priming)),
                            media_rate: FixedPoint::new(1, 0),
                        }],
                    }),
                }),
                mdia: Mdia {
                    mdhd: Mdhd {
                        timescale: rate,
                        duration: total_decode,
                        language: "und".to_owned(),
                        ..Mdhd::default()
                    },
                    hdlr: Hdlr {
                        handler: FourCC::new(b"soun"),
                        name: "Legato audio".to_owned(),
                    },
                    minf: Minf {
                        smhd: Some(Smhd::default()),
                        dinf: Dinf {
                            dref: Dref {
                                entries: vec![DrefEntry::Url(Url::default())],
                            },
                        },
                        stbl: Stbl {
                            stsd: Stsd {
                                codecs: vec![self.sample_entry()?],
                            },
                            ..Stbl::default()
                        },
                        ..Minf::default()
                    },
                },
                ..Trak::default()
            }],
            ..Moov::default()
        };
        let mut out = Vec::with_capacity(1024);
        ftyp.encode(&mut out).map_err(box_error)?;
        let moov_start = out.len();
        moov.encode(&mut out).map_err(box_error)?;
        if let AudioCodec::AacLc { .. } = info.codec {
            // After the trak: ffmpeg applies it to the last track it has read.
            let padding = total_decode.saturating_sub(u64::from(info.priming) + info.valid_samples);
            out.extend(itunes_gapless_udta(
                info.priming,
                padding,
                info.valid_samples,
            ));
            let moov_len = u32::try_from(out.len() - moov_start)
                .map_err(|_| MediaError::UnpackableTrack("the moov box is too large"))?;
            if let Some(size) = out.get_mut(moov_start..moov_start + 4) {
                size.copy_from_slice(&moov_len.to_be_bytes());
            }
        }
        Ok(out)
    }

    fn sample_entry(&self) -> Result<Codec, MediaError> {
        let info = &self.info;
        // The 16.16 sample rate field holds rates up to 65535 Hz; above that it is 0 and the
        // decoder configuration (and timescale) carries the rate, as the FLAC-in-MP4 and
        // CMAF specifications say.
        let audio = Audio {
            data_reference_index: 1,
            channel_count: u16::from(info.channels),
            sample_size: 16,
            sample_rate: FixedPoint::new(u16::try_from(info.sample_rate).unwrap_or(0), 0),
        };
        Ok(match &info.codec {
            AudioCodec::AacLc {
                audio_specific_config,
            } => {
                let config = audio_specific_config;
                if config.len() < 2 || config.len() > 127 {
                    return Err(MediaError::UnpackableTrack(
                        "the AAC AudioSpecificConfig must be 2 to 127 bytes",
                    ));
                }
                let (first, second) = (config[0], config[1]);
                Codec::Mp4a(Mp4a {
                    audio: Audio {
                        sample_size: 16,
                        ..audio
                    },
                    esds: Esds {
                        es_desc: EsDescriptor {
                            es_id: 0,
                            dec_config: DecoderConfig {
                                // 0x40: MPEG-4 audio; 5: audio stream.
                                object_type_indication: 0x40,
                                stream_type: 5,
                                up_stream: 0,
                                buffer_size_db: u24::from([0, 0x18, 0]),
                                max_bitrate: info.max_bitrate,
                                avg_bitrate: info.avg_bitrate,
                                dec_specific: Some(DecoderSpecific {
                                    profile: first >> 3,
                                    freq_index: ((first & 0x7) << 1) | (second >> 7),
                                    chan_conf: (second >> 3) & 0xF,
                                    raw: config.clone(),
                                }),
                            },
                            ..EsDescriptor::default()
                        },
                    },
                    btrt: None,
                    taic: None,
                })
            }
            AudioCodec::Flac { stream_info } => {
                if stream_info.sample_rate > 0xF_FFFF {
                    return Err(MediaError::UnpackableTrack(
                        "FLAC sample rates go up to 1,048,575 Hz",
                    ));
                }
                let bytes = |value: u32| {
                    let [_, a, b, c] = value.min(0xFF_FFFF).to_be_bytes();
                    u24::from([a, b, c])
                };
                Codec::Flac(Flac {
                    audio: Audio {
                        sample_size: u16::from(stream_info.bits_per_sample),
                        ..audio
                    },
                    dfla: Dfla {
                        blocks: vec![FlacMetadataBlock::StreamInfo {
                            minimum_block_size: stream_info.min_block_size,
                            maximum_block_size: stream_info.max_block_size,
                            minimum_frame_size: bytes(stream_info.min_frame_size),
                            maximum_frame_size: bytes(stream_info.max_frame_size),
                            sample_rate: stream_info.sample_rate,
                            num_channels_minus_one: stream_info.channels.saturating_sub(1),
                            bits_per_sample_minus_one: stream_info
                                .bits_per_sample
                                .saturating_sub(1),
                            number_of_interchannel_samples: stream_info.total_samples
                                & 0xF_FFFF_FFFF,
                            md5_checksum: stream_info.md5.to_vec(),
                        }],
                    },
                })
            }
        })
    }

    /// Media segment `index` (`styp` + `moof` + `mdat`) over the caller's `data` (the buffer
    /// the frame ranges point into). `None` if there is no such segment or `data` is not as
    /// long as the buffer described.
    pub fn media_segment(&self, data: &[u8], index: usize) -> Option<Vec<u8>> {
        if data.len() != self.data_len {
            return None;
        }
        let window = data.get(self.segment_byte_range(index)?)?;
        self.media_segment_window(window, index)
    }

    /// The bytes of the caller's buffer that segment `index` carries (its frames are
    /// contiguous): what to read when the frames live in a file.
    pub fn segment_byte_range(&self, index: usize) -> Option<Range<usize>> {
        let range = self.segments.get(index)?;
        let first = self.frames.get(range.start)?;
        let last = self.frames.get(range.end.checked_sub(1)?)?;
        Some(first.start..last.end)
    }

    /// As [`media_segment`](Self::media_segment), from only the bytes of
    /// [`segment_byte_range`](Self::segment_byte_range); `None` if `window` is not that long.
    pub fn media_segment_window(&self, window: &[u8], index: usize) -> Option<Vec<u8>> {
        let bytes = self.segment_byte_range(index)?;
        if window.len() != bytes.len() {
            return None;
        }
        let (mut out, frames) = self.segment_head(index)?;
        for frame in frames {
            out.extend_from_slice(window.get(frame.start - bytes.start..frame.end - bytes.start)?);
        }
        Some(out)
    }

    /// Everything of segment `index` before its payload (`styp`, `moof`, the `mdat` header),
    /// with room for the payload, and the frames the payload is made of.
    fn segment_head(&self, index: usize) -> Option<(Vec<u8>, &[Range<usize>])> {
        let range = self.segments.get(index)?.clone();
        let frames = self.frames.get(range.clone())?;
        let samples = self.frame_samples.get(range.clone())?;
        let payload_len: usize = frames.iter().map(ExactSizeIterator::len).sum();
        // One duration for every sample (AAC, fixed-size FLAC blocks but the last) goes once
        // in the tfhd: 4 bytes less per sample, 2 % of a 64 kbit/s AAC stream.
        let uniform = samples
            .first()
            .filter(|&&first| samples.iter().all(|&d| d == first));
        let entries = frames
            .iter()
            .zip(samples)
            .map(|(frame, &duration)| TrunEntry {
                duration: if uniform.is_some() {
                    None
                } else {
                    Some(duration)
                },
                size: u32::try_from(frame.len()).ok(),
                flags: None,
                cts: None,
            })
            .collect();
        let mut moof = Moof {
            mfhd: Mfhd {
                sequence_number: u32::try_from(index + 1).ok()?,
            },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: TRACK_ID,
                    default_sample_duration: uniform.copied(),
                    default_base_is_moof: true,
                    ..Tfhd::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: *self.starts.get(range.start)?,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: TrunSamples::Explicit(entries),
                }],
                ..Traf::default()
            }],
        };
        // The data offset counts from the start of the moof to the first payload byte, past
        // the mdat header; the moof's size does not depend on the offset's value.
        let mut probe = Vec::new();
        moof.encode(&mut probe).ok()?;
        let offset = i32::try_from(probe.len() + MDAT_HEADER_LEN).ok()?;
        if let Some(trun) = moof.traf.first_mut().and_then(|traf| traf.trun.first_mut()) {
            trun.data_offset = Some(offset);
        }
        let styp = Styp {
            major_brand: FourCC::new(b"msdh"),
            minor_version: 0,
            compatible_brands: vec![FourCC::new(b"msdh"), FourCC::new(b"cmfs")],
        };
        let mut out = Vec::with_capacity(64 + probe.len() + MDAT_HEADER_LEN + payload_len);
        styp.encode(&mut out).ok()?;
        moof.encode(&mut out).ok()?;
        let mdat_len = u32::try_from(MDAT_HEADER_LEN + payload_len).ok()?;
        out.extend_from_slice(&mdat_len.to_be_bytes());
        out.extend_from_slice(b"mdat");
        Some((out, frames))
    }

    /// Bytes of media segment `index` as served, without writing its payload.
    fn segment_len(&self, index: usize) -> Option<u64> {
        let (head, frames) = self.segment_head(index)?;
        let payload: usize = frames.iter().map(ExactSizeIterator::len).sum();
        Some((head.len() + payload) as u64)
    }

    /// Playlist entries: the presentation duration of each segment.
    fn playlist_entries(&self) -> Vec<PlaylistEntry> {
        self.segment_durations()
            .into_iter()
            .map(|duration| PlaylistEntry {
                duration,
                discontinuity: false,
                audio_bytes: None,
            })
            .collect()
    }

    /// Media playlist text (`#EXT-X-VERSION:7`, `#EXT-X-MAP:URI="<init_uri>"`).
    pub fn media_playlist(&self, init_uri: &str, segment_uri: &dyn Fn(usize) -> String) -> String {
        playlist::fmp4_media_playlist(&self.playlist_entries(), init_uri, segment_uri)
    }

    /// Peak and average bit/s of the media segments as served (boxes included) over their
    /// presentation durations, for BANDWIDTH and AVERAGE-BANDWIDTH. Measured by writing each
    /// segment's boxes (the payload's length is known); `None` if a segment cannot be written.
    pub fn bandwidths(&self) -> Option<(u64, u64)> {
        let durations = self.segment_durations();
        let mut peak = 0.0f64;
        let mut total_bytes = 0u64;
        for (index, duration) in durations.iter().enumerate() {
            let bytes = self.segment_len(index)?;
            total_bytes += bytes;
            // A segment of almost nothing (all padding) would give an absurd peak.
            if *duration >= 0.5 {
                peak = peak.max(bytes as f64 * 8.0 / duration);
            }
        }
        let total = self.duration();
        let average = if total > 0.0 {
            total_bytes as f64 * 8.0 / total
        } else {
            0.0
        };
        Some((peak.max(average).ceil() as u64, average.ceil() as u64))
    }
}

/// `udta/meta/ilst/----` holding Apple's `iTunSMPB` gapless comment: priming, padding and
/// valid samples in hexadecimal, as iTunes writes them.
fn itunes_gapless_udta(priming: u32, padding: u64, valid: u64) -> Vec<u8> {
    fn boxed(kind: &[u8; 4], full: bool, body: &[u8]) -> Vec<u8> {
        let header = if full { 12 } else { 8 };
        let mut out = Vec::with_capacity(header + body.len());
        let len = u32::try_from(header + body.len()).unwrap_or(u32::MAX);
        out.extend(len.to_be_bytes());
        out.extend(kind);
        if full {
            out.extend([0; 4]); // version and flags
        }
        out.extend(body);
        out
    }
    let value = format!(
        " 00000000 {priming:08X} {:08X} {valid:016X} 00000000 00000000 00000000 00000000 \
         00000000 00000000 00000000 00000000",
        padding.min(u64::from(u32::MAX))
    );
    let mut data = vec![0, 0, 0, 1, 0, 0, 0, 0]; // type 1 (UTF-8), locale 0
    data.extend(value.as_bytes());
    let mut item = boxed(b"mean", true, b"com.apple.iTunes");
    item.extend(boxed(b"name", true, b"iTunSMPB"));
    item.extend(boxed(b"data", false, &data));
    let ilst = boxed(b"ilst", false, &boxed(b"----", false, &item));
    // hdlr: pre_defined, handler "mdir", reserved "appl" and 8 zero bytes, empty name.
    let mut hdlr = vec![0, 0, 0, 0];
    hdlr.extend(b"mdirappl");
    hdlr.extend([0; 9]);
    let mut meta = boxed(b"hdlr", true, &hdlr);
    meta.extend(ilst);
    boxed(b"udta", false, &boxed(b"meta", true, &meta))
}

/// An `mdat` header with a 32-bit size.
const MDAT_HEADER_LEN: usize = 8;

fn box_error(_: mp4_atom::Error) -> MediaError {
    MediaError::UnpackableTrack("a box could not be written")
}

/// The file name of fMP4 media segment `index`: "seg000.m4s", "seg001.m4s", …
pub fn segment_name(index: usize) -> String {
    format!("seg{index:03}.m4s")
}

/// The init segment's file name.
pub const INIT_NAME: &str = "init.mp4";

/// Describes an AAC-LC track of `frame_lens.len()` access units of 1024 samples, back to back
/// in a buffer of `data_len` bytes, and plans its segments.
///
/// # Errors
/// Those of [`Fmp4Track::new`].
#[allow(
    clippy::too_many_arguments,
    reason = "each is one fact of the encoded track"
)]
pub fn aac_track(
    audio_specific_config: Vec<u8>,
    sample_rate: u32,
    channels: u8,
    frame_lens: &[u32],
    priming: u32,
    valid_samples: u64,
    bitrate_kbps: u32,
    cut: Cut<'_>,
) -> Result<Fmp4Track, MediaError> {
    let mut frames = Vec::with_capacity(frame_lens.len());
    let mut at = 0usize;
    for &len in frame_lens {
        let end = at.saturating_add(len as usize);
        frames.push(at..end);
        at = end;
    }
    let bitrate = bitrate_kbps.saturating_mul(1000);
    let info = TrackInfo {
        codec: AudioCodec::AacLc {
            audio_specific_config,
        },
        sample_rate,
        channels,
        priming,
        valid_samples,
        avg_bitrate: bitrate,
        max_bitrate: bitrate,
    };
    Fmp4Track::new(info, frames, vec![1024; frame_lens.len()], at, cut)
}

/// Describes FLAC frames whose layout is known already (an encoder's output): frame `i` is
/// `frames[i]` of a buffer of `data_len` bytes and holds `frame_samples[i]` samples.
///
/// # Errors
/// Those of [`Fmp4Track::new`].
pub fn flac_frames_track(
    stream_info: FlacStreamInfo,
    frames: Vec<Range<usize>>,
    frame_samples: Vec<u32>,
    data_len: usize,
    cut: Cut<'_>,
) -> Result<Fmp4Track, MediaError> {
    let total: u64 = frame_samples.iter().map(|&n| u64::from(n)).sum();
    let info = flac_info(stream_info, &frames, total);
    Fmp4Track::new(info, frames, frame_samples, data_len, cut)
}

/// Scans a FLAC file and describes its frames, carried as they are, as an fMP4 track.
///
/// # Errors
/// Those of [`crate::flac::scan_flac`] and [`Fmp4Track::new`].
pub fn flac_track(data: &[u8], cut: Cut<'_>) -> Result<Fmp4Track, MediaError> {
    let scan = crate::flac::scan_flac(data)?;
    let frames: Vec<Range<usize>> = scan.frames.iter().map(crate::flac::Frame::range).collect();
    let samples = scan.frames.iter().map(|frame| frame.samples).collect();
    let info = flac_info(scan.info, &frames, scan.total_samples);
    Fmp4Track::new(info, frames, samples, data.len(), cut)
}

/// What the init segment says of FLAC frames holding `total` samples per channel.
fn flac_info(stream_info: FlacStreamInfo, frames: &[Range<usize>], total: u64) -> TrackInfo {
    let bytes: u64 = frames.iter().map(|frame| frame.len() as u64).sum();
    let rate = stream_info.sample_rate;
    let seconds = total as f64 / f64::from(rate.max(1));
    let bitrate = if seconds > 0.0 {
        (bytes as f64 * 8.0 / seconds).min(f64::from(u32::MAX)) as u32
    } else {
        0
    };
    TrackInfo {
        codec: AudioCodec::Flac {
            stream_info: FlacStreamInfo {
                total_samples: total,
                ..stream_info
            },
        },
        sample_rate: rate,
        channels: stream_info.channels,
        priming: 0,
        valid_samples: total,
        avg_bitrate: bitrate,
        max_bitrate: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use mp4_atom::{Any, ReadFrom};

    use super::*;

    fn track() -> (Fmp4Track, Vec<u8>) {
        // 100 access units of 3..=102 bytes, each byte its unit's index.
        let lens: Vec<u32> = (3..103).collect();
        let data: Vec<u8> = lens
            .iter()
            .enumerate()
            .flat_map(|(index, &len)| std::iter::repeat_n(index as u8, len as usize))
            .collect();
        let valid = 100 * 1024 - 2048 - 300;
        let track = aac_track(
            vec![0x12, 0x10],
            44_100,
            2,
            &lens,
            2048,
            valid,
            128,
            Cut::Target(0.5),
        )
        .unwrap();
        (track, data)
    }

    #[test]
    fn segments_carry_their_frames_at_the_data_offset_with_a_running_tfdt() {
        let (track, data) = track();
        assert!(track.segment_count() > 3);
        let mut decode_time = 0;
        for (index, range) in track.plan().iter().enumerate() {
            let segment = track.media_segment(&data, index).unwrap();
            let mut reader = segment.as_slice();
            let mut moof_start = 0;
            let mut moof = None;
            while !reader.is_empty() {
                let at = segment.len() - reader.len();
                match Any::read_from(&mut reader).unwrap() {
                    Any::Moof(found) => {
                        moof_start = at;
                        moof = Some(found);
                    }
                    Any::Styp(_) | Any::Mdat(_) => {}
                    other => panic!("unexpected box {other:?}"),
                }
            }
            let moof = moof.unwrap();
            assert_eq!(moof.mfhd.sequence_number as usize, index + 1);
            let traf = &moof.traf[0];
            assert_eq!(
                traf.tfdt.as_ref().unwrap().base_media_decode_time,
                decode_time
            );
            let trun = &traf.trun[0];
            assert_eq!(trun.samples.len(), range.len());
            decode_time += 1024 * range.len() as u64;
            // The first sample's bytes are where the data offset points.
            let first = moof_start + trun.data_offset.unwrap() as usize;
            let expected = &data[track.frames[range.start].clone()];
            assert_eq!(&segment[first..first + expected.len()], expected);
        }
        assert_eq!(
            track.segment_samples().iter().sum::<u64>(),
            track.info().valid_samples
        );
    }

    #[test]
    fn the_init_segment_decodes_with_its_edit_list() {
        let (track, _) = track();
        let init = track.init_segment().unwrap();
        let mut reader = init.as_slice();
        assert!(matches!(Any::read_from(&mut reader).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::read_from(&mut reader).unwrap() else {
            panic!("no moov")
        };
        let trak = &moov.trak[0];
        let edit = &trak.edts.as_ref().unwrap().elst.as_ref().unwrap().entries[0];
        assert_eq!(edit.media_time, Some(2048));
        assert_eq!(edit.segment_duration, track.info().valid_samples);
        assert_eq!(trak.mdia.mdhd.timescale, 44_100);
        let Codec::Mp4a(mp4a) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not mp4a")
        };
        let specific = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
        assert_eq!(
            (specific.profile, specific.freq_index, specific.chan_conf),
            (2, 4, 2)
        );
        assert!(init.windows(8).any(|w| w == b"iTunSMPB"));
    }

    #[test]
    fn bad_descriptions_are_refused() {
        let cut = Cut::Target(1.0);
        assert!(aac_track(vec![0x12, 0x10], 44_100, 2, &[], 0, 0, 128, cut).is_err());
        assert!(aac_track(vec![0x12, 0x10], 0, 2, &[10], 0, 0, 128, cut).is_err());
        assert!(aac_track(vec![0x12, 0x10], 44_100, 2, &[10], 1000, 100, 128, cut).is_err());
        let (track, data) = track();
        assert!(track.media_segment(&data[1..], 0).is_none());
        assert!(track.media_segment(&data, 999).is_none());
        let bad = aac_track(vec![0x12], 44_100, 2, &[10], 0, 1024, 128, cut).unwrap();
        assert!(bad.init_segment().is_err());
    }
}

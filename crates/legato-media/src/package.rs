//! From MP3 bytes to an HLS package: scan, plan, then mux segment by segment on demand.

use std::ops::Range;

use crate::error::MediaError;
use crate::mpeg::{Layer, MpegVersion};
use crate::playlist::{self, PlaylistEntry};
use crate::scan::{Frame, scan_mp3};
use crate::segment::{PlannedSegment, plan_segments};
use crate::ts::{MAX_PES_PAYLOAD_LEN, StreamType, TsMuxer};

/// The PTS of the first sample: 1.4 s, as ffmpeg does.
///
/// The PCR is the media time itself (0 at the first sample), so it runs 1.4 s ahead of the
/// PTS. A PES holds at most a second of audio, so in the transport's clock model its last
/// byte arrives before its first sample is due.
pub const FIRST_PTS: u64 = 126_000;

/// Audio per PES: at most this many seconds...
const MAX_PES_SECONDS: u64 = 1;
/// ...and at most this many bytes (well under the 16-bit PES length limit).
const MAX_PES_BYTES: usize = 32 * 1024;
const _: () = assert!(MAX_PES_BYTES <= MAX_PES_PAYLOAD_LEN);

/// How to cut the track into segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentOptions {
    /// The longest a segment may be, in seconds (the last one may reach 1.25 times this).
    pub target_seconds: f64,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            target_seconds: 10.0,
        }
    }
}

impl SegmentOptions {
    /// Checks the options, e.g. when a configuration is loaded.
    ///
    /// # Errors
    /// [`MediaError::InvalidSegmentTarget`] unless the target is finite and above 0.
    pub fn validate(&self) -> Result<(), MediaError> {
        if self.target_seconds.is_finite() && self.target_seconds > 0.0 {
            Ok(())
        } else {
            Err(MediaError::InvalidSegmentTarget(self.target_seconds))
        }
    }
}

/// What a listener (or a catalogue) wants to know about the audio.
///
/// Format fields describe the first audio frame; a file whose format changes part way
/// (rare: concatenated files) has discontinuities in its playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub sample_rate: u32,
    pub channels: u8,
    /// Average over the whole stream, rounded to whole kbit/s.
    pub bitrate_kbps: u32,
    /// Number of audio frames (the Xing/Info/VBRI frame is not counted).
    pub frames: usize,
    /// Seconds, exact to the sample.
    pub duration: f64,
    pub mpeg_version: MpegVersion,
    pub layer: Layer,
    /// Sum of the audio frames' lengths in bytes.
    pub audio_bytes: u64,
}

/// A scanned and planned track, ready to be muxed.
///
/// It holds the frame positions, not the input bytes: give those again to
/// [`into_segments`](Package::into_segments) or [`segment_ts`](Package::segment_ts).
#[derive(Debug, Clone)]
pub struct Package {
    info: StreamInfo,
    frames: Vec<Frame>,
    segments: Vec<PlannedSegment>,
    input_len: usize,
}

/// Scans `data` as MP3 and plans its HLS segments.
///
/// # Errors
/// [`MediaError::InvalidSegmentTarget`] for bad options; otherwise the errors of
/// [`scan_mp3`].
/// Packages another rendition of the track `reference` was made from, cut at the same
/// instants (same frames per segment) when the formats line up, else by `options`.
pub fn package_mp3_like(
    data: &[u8],
    reference: &Package,
    options: &SegmentOptions,
) -> Result<Package, MediaError> {
    options.validate()?;
    let scan = scan_mp3(data)?;
    let segments = crate::segment::plan_like(&scan.frames, &reference.segments)
        .unwrap_or_else(|| plan_segments(&scan.frames, options.target_seconds));
    let info = stream_info(&scan.frames)?;
    Ok(Package {
        info,
        frames: scan.frames,
        segments,
        input_len: data.len(),
    })
}

pub fn package_mp3(data: &[u8], options: &SegmentOptions) -> Result<Package, MediaError> {
    options.validate()?;
    let scan = scan_mp3(data)?;
    let segments = plan_segments(&scan.frames, options.target_seconds);
    let info = stream_info(&scan.frames)?;
    Ok(Package {
        info,
        frames: scan.frames,
        segments,
        input_len: data.len(),
    })
}

/// Bytes read at a time by [`package_mp3_read`].
pub const READ_WINDOW_BYTES: usize = 1 << 20;

/// As [`package_mp3`] (or [`package_mp3_like`] with a `reference`), for `len` bytes of MP3
/// that `read` gives a range at a time (at most `window` bytes), so the whole input is never
/// in memory: an encoder's output, or an upload in its temporary file. The tags at either
/// end are measured first (see [`crate::tags::audio_range_read`]); each window of audio
/// between them is scanned on its own, resuming after the last whole frame of the one
/// before.
///
/// # Errors
/// Those of `read`, and those of [`package_mp3`]; a window of `window` bytes that holds no
/// frame is [`MediaError::NotMpegAudio`].
pub fn package_mp3_read<E: From<MediaError>>(
    len: usize,
    window: usize,
    read: &mut dyn FnMut(Range<usize>) -> Result<Vec<u8>, E>,
    reference: Option<&Package>,
    options: &SegmentOptions,
) -> Result<Package, E> {
    options.validate()?;
    if len == 0 {
        return Err(MediaError::Empty.into());
    }
    // The tags at either end are measured first, so that the windows hold only audio (and
    // a cover of any size in an ID3v2 tag is skipped unread).
    let audio = crate::tags::audio_range_read(len, window, read)?;
    let mut frames = Vec::new();
    let mut at = audio.start;
    while at < audio.end {
        let end = at.saturating_add(window.max(1)).min(audio.end);
        let bytes = read(at..end)?;
        let scan = scan_mp3(&bytes)?;
        let mut found: Vec<Frame> = scan
            .info_frame
            .filter(|_| at > audio.start)
            .into_iter()
            .collect();
        found.extend(scan.frames);
        if end < audio.end {
            // The last frame may go on in the next window (or be a false header near the end).
            found.pop();
        }
        let Some(last) = found.last() else {
            return Err(MediaError::NotMpegAudio.into());
        };
        let next = at + last.range().end;
        frames.extend(found.into_iter().map(|frame| Frame {
            offset: frame.offset + at,
            ..frame
        }));
        at = if end < audio.end { next } else { audio.end };
    }
    let segments = reference
        .and_then(|reference| crate::segment::plan_like(&frames, &reference.segments))
        .unwrap_or_else(|| plan_segments(&frames, options.target_seconds));
    let info = stream_info(&frames)?;
    Ok(Package {
        info,
        frames,
        segments,
        input_len: len,
    })
}

fn stream_info(frames: &[Frame]) -> Result<StreamInfo, MediaError> {
    let first = frames.first().ok_or(MediaError::NotMpegAudio)?.header;
    // Sum samples per run of one sample rate and convert each run once.
    let mut duration = 0.0;
    let mut run_rate = first.sample_rate();
    let mut run_samples = 0u64;
    for frame in frames {
        let rate = frame.header.sample_rate();
        if rate != run_rate {
            duration += run_samples as f64 / f64::from(run_rate);
            run_rate = rate;
            run_samples = 0;
        }
        run_samples += u64::from(frame.header.samples());
    }
    duration += run_samples as f64 / f64::from(run_rate);

    let audio_bytes: u64 = frames.iter().map(|frame| frame.len as u64).sum();
    let bitrate_kbps = (audio_bytes as f64 * 8.0 / duration / 1000.0).round() as u32;
    Ok(StreamInfo {
        sample_rate: first.sample_rate(),
        channels: first.channels(),
        bitrate_kbps,
        frames: frames.len(),
        duration,
        mpeg_version: first.version(),
        layer: first.layer(),
        audio_bytes,
    })
}

impl Package {
    /// Peak and average bit/s of the muxed segments, for a master playlist's BANDWIDTH and
    /// AVERAGE-BANDWIDTH. Computed from the frames with the MPEG-TS overhead bounded from
    /// above (188/184 per packet plus PES headers and stuffing), so never under the real peak.
    pub fn bandwidths(&self) -> (u64, u64) {
        const OVERHEAD: f64 = 1.06;
        let mut peak = 0.0f64;
        let mut bytes_total = 0u64;
        for segment in &self.segments {
            let bytes: u64 = self
                .frames
                .get(segment.frames.clone())
                .map_or(0, |frames| frames.iter().map(|f| f.len as u64).sum());
            bytes_total += bytes;
            let duration = segment.duration();
            if duration > 0.0 {
                peak = peak.max(bytes as f64 * 8.0 * OVERHEAD / duration);
            }
        }
        let average = if self.info.duration > 0.0 {
            bytes_total as f64 * 8.0 * OVERHEAD / self.info.duration
        } else {
            0.0
        };
        (peak.ceil() as u64, average.ceil() as u64)
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Segment durations in seconds, exact to the sample.
    pub fn segment_durations(&self) -> Vec<f64> {
        self.segments.iter().map(PlannedSegment::duration).collect()
    }

    /// `#EXT-X-TARGETDURATION` of the playlist.
    pub fn target_duration(&self) -> u64 {
        playlist::target_duration(&self.playlist_entries())
    }

    /// The audio frames, in order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The segment plan.
    pub fn plan(&self) -> &[PlannedSegment] {
        &self.segments
    }

    /// Media playlist text; `segment_uri(i)` gives the URI of segment i (relative, e.g.
    /// "seg000.ts", see [`segment_name`](crate::segment_name)).
    pub fn media_playlist(&self, segment_uri: &dyn Fn(usize) -> String) -> String {
        playlist::media_playlist(&self.playlist_entries(), segment_uri)
    }

    fn playlist_entries(&self) -> Vec<PlaylistEntry> {
        self.segments
            .iter()
            .map(|segment| PlaylistEntry {
                duration: segment.duration(),
                discontinuity: segment.discontinuity,
                audio_bytes: Some(
                    self.frames
                        .get(segment.frames.clone())
                        .map_or(0, |frames| frames.iter().map(|f| f.len as u64).sum()),
                ),
            })
            .collect()
    }

    /// Muxes the segments one at a time, in order; `data` must be the bytes given to
    /// [`package_mp3`]. Owning `data` lets the iterator be `'static + Send` when `D` is
    /// `Vec<u8>` or `Arc<[u8]>`.
    ///
    /// If `data` is not as long as the packaged input, it cannot be that input and the
    /// iterator yields nothing.
    pub fn into_segments<D: AsRef<[u8]>>(self, data: D) -> Segments<D> {
        let end = if data.as_ref().len() == self.input_len {
            self.segments.len()
        } else {
            0
        };
        Segments {
            package: self,
            data,
            muxer: TsMuxer::new(),
            next: 0,
            end,
        }
    }

    /// Muxes segment `index` alone, byte for byte as [`into_segments`](Self::into_segments)
    /// yields it (the continuity counters are worked out from the segments before it).
    /// `None` if there is no such segment or `data` is not the packaged input.
    pub fn segment_ts(&self, data: &[u8], index: usize) -> Option<Vec<u8>> {
        if data.len() != self.input_len {
            return None;
        }
        let segment = self.segments.get(index)?;
        let mut muxer = TsMuxer::new();
        for earlier in self.segments.get(..index)? {
            muxer.skip_tables(StreamType::for_version(earlier.format.version));
            for group in pes_groups(&self.frames, earlier) {
                muxer.skip_pes(group.payload_len);
            }
        }
        Some(mux_segment(&mut muxer, data, 0, &self.frames, segment))
    }
}

impl Package {
    /// Muxes the segments one at a time, in order, reading each segment's frames through
    /// `read` (a byte range of the packaged input) as it goes: only one segment's audio is
    /// in memory. Yields exactly what [`into_segments`](Self::into_segments) does, or the
    /// error of `read`.
    pub fn into_segments_read<E, F>(self, read: F) -> ReadSegments<F>
    where
        F: FnMut(Range<usize>) -> Result<Vec<u8>, E>,
    {
        ReadSegments {
            package: self,
            read,
            muxer: TsMuxer::new(),
            next: 0,
        }
    }
}

/// The MPEG-TS segments of a [`Package`], muxed lazily from ranges read on demand.
#[derive(Debug)]
pub struct ReadSegments<F> {
    package: Package,
    read: F,
    muxer: TsMuxer,
    next: usize,
}

impl<E, F: FnMut(Range<usize>) -> Result<Vec<u8>, E>> Iterator for ReadSegments<F> {
    type Item = Result<Vec<u8>, E>;

    fn next(&mut self) -> Option<Self::Item> {
        let segment = self.package.segments.get(self.next)?;
        self.next += 1;
        let frames = self.package.frames.get(segment.frames.clone())?;
        let span = frames.first()?.offset..frames.last()?.range().end;
        let base = span.start;
        Some(
            (self.read)(span).map(|data| {
                mux_segment(&mut self.muxer, &data, base, &self.package.frames, segment)
            }),
        )
    }
}

/// The MPEG-TS segments of a [`Package`], muxed lazily.
#[derive(Debug)]
pub struct Segments<D> {
    package: Package,
    data: D,
    muxer: TsMuxer,
    next: usize,
    end: usize,
}

impl<D: AsRef<[u8]>> Iterator for Segments<D> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.next >= self.end {
            return None;
        }
        let segment = self.package.segments.get(self.next)?;
        self.next += 1;
        Some(mux_segment(
            &mut self.muxer,
            self.data.as_ref(),
            0,
            &self.package.frames,
            segment,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl<D: AsRef<[u8]>> ExactSizeIterator for Segments<D> {}

/// The frames that share one PES packet.
struct PesGroup {
    /// Indices into the track's frames.
    frames: Range<usize>,
    /// Samples of the segment before the group.
    samples_before: u64,
    payload_len: usize,
}

/// Groups a segment's frames into PES packets of at most a second and 32 KiB.
fn pes_groups(frames: &[Frame], segment: &PlannedSegment) -> Vec<PesGroup> {
    let max_samples = MAX_PES_SECONDS * u64::from(segment.format.sample_rate);
    let mut groups: Vec<PesGroup> = Vec::new();
    let mut samples_before = 0u64;
    let mut group_samples = 0u64;
    let segment_frames = frames.get(segment.frames.clone()).unwrap_or_default();
    for (offset, frame) in segment_frames.iter().enumerate() {
        let index = segment.frames.start + offset;
        let samples = u64::from(frame.header.samples());
        let fits = groups.last().is_some_and(|group| {
            group.frames.end == index
                && group_samples + samples <= max_samples
                && group.payload_len + frame.len <= MAX_PES_BYTES
        });
        match groups.last_mut() {
            Some(group) if fits => {
                group.frames.end = index + 1;
                group.payload_len += frame.len;
                group_samples += samples;
            }
            _ => {
                groups.push(PesGroup {
                    frames: index..index + 1,
                    samples_before,
                    payload_len: frame.len,
                });
                group_samples = samples;
            }
        }
        samples_before += samples;
    }
    groups
}

/// Muxes one segment; `data` holds the input from byte `base` on (at least the segment's
/// frames).
fn mux_segment(
    muxer: &mut TsMuxer,
    data: &[u8],
    base: usize,
    frames: &[Frame],
    segment: &PlannedSegment,
) -> Vec<u8> {
    let groups = pes_groups(frames, segment);
    let audio_len: usize = groups.iter().map(|group| group.payload_len).sum();
    // About 3.3 % of overhead at 128 kbit/s (more at lower rates); headroom avoids regrowing.
    let mut out = Vec::with_capacity(audio_len + audio_len / 16 + 4 * crate::ts::PACKET_LEN);
    muxer.write_tables(&mut out, StreamType::for_version(segment.format.version));

    let mut payload = Vec::with_capacity(MAX_PES_BYTES);
    for group in groups {
        payload.clear();
        for frame in frames.get(group.frames).unwrap_or_default() {
            let range = frame.range();
            let bytes = data.get(range.start.saturating_sub(base)..range.end.saturating_sub(base));
            payload.extend_from_slice(bytes.unwrap_or_default());
        }
        let ticks = segment.ticks_at(group.samples_before);
        muxer.write_pes(&mut out, FIRST_PTS.saturating_add(ticks), ticks, &payload);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use std::sync::Arc;

    use super::*;
    use crate::mpeg::FrameHeader;
    use crate::segment::samples_to_ticks;
    use crate::test_support::*;
    use crate::ts::PACKET_LEN;
    use crate::ts::demux::demux;

    /// `seconds` of CBR MPEG-1 Layer III at `kbps` and 44.1 kHz, padded like an encoder
    /// does so the average is exact, with ID3 tags around it.
    fn cbr_song(bitrate_index: u8, seconds: f64) -> Vec<u8> {
        let bits = HeaderBits {
            bitrate_index,
            ..HeaderBits::default()
        };
        let kbps = FrameHeader::parse(header_bytes(bits))
            .unwrap()
            .bitrate_kbps();
        let count = (seconds * 44_100.0 / 1152.0).ceil() as usize;
        let exact_len = 144.0 * f64::from(kbps) * 1000.0 / 44_100.0;
        let mut data = id3v2_tag(4000, false);
        let mut written = 0.0;
        for i in 0..count {
            let padding = (written + exact_len.floor()) < exact_len * (i + 1) as f64 - 0.5;
            let frame = frame_with(HeaderBits { padding, ..bits }, (i % 251) as u8);
            written += frame.len() as f64;
            data.extend(frame);
        }
        data.extend(id3v1_tag());
        data
    }

    fn audio_of(package: &Package, data: &[u8], range: Range<usize>) -> Vec<u8> {
        package.frames()[range]
            .iter()
            .flat_map(|frame| frame.bytes(data).unwrap().to_vec())
            .collect()
    }

    #[test]
    fn stream_info_describes_the_audio() {
        let data = cbr_song(9, 60.0);
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let info = package.info();
        assert_eq!(info.sample_rate, 44_100);
        assert_eq!(info.channels, 2);
        assert_eq!(info.bitrate_kbps, 128);
        assert_eq!(info.frames, 2297);
        assert!((info.duration - 2297.0 * 1152.0 / 44_100.0).abs() < 1e-9);
        assert_eq!(info.mpeg_version, MpegVersion::Mpeg1);
        assert_eq!(info.layer, Layer::Three);
        let frame_bytes: usize = package.frames().iter().map(|f| f.len).sum();
        assert_eq!(info.audio_bytes, frame_bytes as u64);
        assert_eq!(package.segment_count(), 6);
        let total: f64 = package.segment_durations().iter().sum();
        assert!((total - info.duration).abs() < 1e-9);
    }

    #[test]
    fn segments_carry_exactly_the_frames_with_exact_timestamps() {
        let data = cbr_song(9, 45.0);
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let plan = package.plan().to_vec();
        let segments: Vec<Vec<u8>> = package.clone().into_segments(data.clone()).collect();
        assert_eq!(segments.len(), plan.len());

        for (segment, planned) in segments.iter().zip(&plan) {
            assert_eq!(segment.len() % PACKET_LEN, 0);
            assert!(segment.chunks(PACKET_LEN).all(|packet| packet[0] == 0x47));
            let demuxed = demux(segment).unwrap();
            assert_eq!(demuxed.pids[..2], [0x0000, 0x1000], "PAT and PMT first");
            let payload: Vec<u8> = demuxed.pes.iter().flat_map(|p| p.payload.clone()).collect();
            assert_eq!(payload, audio_of(&package, &data, planned.frames.clone()));

            // PTS of each PES = samples before it; PES of at most one second.
            let mut samples = planned.run_samples_before;
            let mut frames = package.frames()[planned.frames.clone()].iter();
            for pes in &demuxed.pes {
                assert_eq!(pes.pts, FIRST_PTS + samples_to_ticks(samples, 44_100));
                assert_eq!(pes.pcr + FIRST_PTS, pes.pts);
                let mut consumed = 0;
                while consumed < pes.payload.len() {
                    let frame = frames.next().unwrap();
                    consumed += frame.len;
                    samples += 1152;
                }
                assert_eq!(consumed, pes.payload.len(), "PES ends on a frame boundary");
                assert!(pes.payload.len() <= MAX_PES_BYTES);
            }
        }

        // Counters run on across segments: the concatenation demuxes without a gap.
        let all = demux(&segments.concat()).unwrap();
        let payload: Vec<u8> = all.pes.iter().flat_map(|p| p.payload.clone()).collect();
        assert_eq!(
            payload,
            audio_of(&package, &data, 0..package.frames().len())
        );
        assert!(all.pes.windows(2).all(|w| w[0].pts < w[1].pts));
    }

    #[test]
    fn container_overhead_is_under_four_percent_at_128_kbps() {
        let data = cbr_song(9, 240.0);
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let audio_bytes = package.info().audio_bytes as f64;
        let ts_bytes: usize = package.into_segments(data).map(|s| s.len()).sum();
        let overhead = ts_bytes as f64 / audio_bytes - 1.0;
        eprintln!(
            "MPEG-TS overhead at 128 kbit/s, 4 min: {:.3} %",
            overhead * 100.0
        );
        assert!(overhead < 0.04, "overhead {overhead}");
    }

    #[test]
    fn any_segment_can_be_muxed_alone() {
        let data = cbr_song(14, 70.0);
        let package = package_mp3(
            &data,
            &SegmentOptions {
                target_seconds: 6.0,
            },
        )
        .unwrap();
        let in_order: Vec<Vec<u8>> = package.clone().into_segments(data.as_slice()).collect();
        for (index, segment) in in_order.iter().enumerate() {
            assert_eq!(package.segment_ts(&data, index).as_ref(), Some(segment));
        }
        assert_eq!(package.segment_ts(&data, in_order.len()), None);
        assert_eq!(package.segment_ts(&data[1..], 0), None);
    }

    #[test]
    fn packaging_from_reads_gives_the_same_package_and_segments() {
        // An encoder's kind of stream: frames only, no tags.
        let data: Vec<u8> = (0..2000)
            .flat_map(|i| frame_with(HeaderBits::default(), (i % 251) as u8))
            .collect();
        let options = SegmentOptions {
            target_seconds: 4.0,
        };
        let whole = package_mp3(&data, &options).unwrap();
        let expected: Vec<Vec<u8>> = whole.clone().into_segments(data.as_slice()).collect();
        for window in [5_000, 65_536, READ_WINDOW_BYTES] {
            let mut largest = 0;
            let mut read = |range: Range<usize>| {
                largest = largest.max(range.len());
                Ok::<_, MediaError>(data[range].to_vec())
            };
            let read_package =
                package_mp3_read(data.len(), window, &mut read, None, &options).unwrap();
            assert!(largest <= window);
            assert_eq!(read_package.frames(), whole.frames(), "window {window}");
            assert_eq!(read_package.plan(), whole.plan());
            assert_eq!(read_package.info(), whole.info());
            let segments: Vec<Vec<u8>> = read_package
                .into_segments_read(|range: Range<usize>| Ok::<_, MediaError>(data[range].to_vec()))
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(segments, expected, "window {window}");
        }
        // Cut like a reference, as package_mp3_like does.
        let like = package_mp3_like(&data, &whole, &options).unwrap();
        let read_like = package_mp3_read(
            data.len(),
            10_000,
            &mut |range: Range<usize>| Ok::<_, MediaError>(data[range].to_vec()),
            Some(&whole),
            &options,
        )
        .unwrap();
        assert_eq!(read_like.plan(), like.plan());
        // A read error comes through; so does input that is not MP3.
        let failing = package_mp3_read(
            data.len(),
            10_000,
            &mut |_: Range<usize>| Err(MediaError::Empty),
            None,
            &options,
        );
        assert_eq!(failing.unwrap_err(), MediaError::Empty);
        let noise = vec![0x55u8; 50_000];
        let not_mp3 = package_mp3_read(
            noise.len(),
            10_000,
            &mut |range: Range<usize>| Ok::<_, MediaError>(noise[range].to_vec()),
            None,
            &options,
        );
        assert!(not_mp3.is_err());
    }

    #[test]
    fn an_upload_with_tags_packaged_from_reads_is_the_one_packaged_in_memory() {
        use crate::test_support::{ape_tag, id3v1_tag, id3v2_tag};
        // A large cover in the ID3v2 tag, junk between frames, tags at the end.
        let mut data = id3v2_tag(300_000, false);
        data.extend((0..800).flat_map(|i| frame_with(HeaderBits::default(), (i % 251) as u8)));
        data.extend([0x00u8; 77]);
        data.extend((0..800).flat_map(|i| frame_with(HeaderBits::default(), (i % 13) as u8)));
        data.extend(ape_tag(3, true));
        data.extend(id3v1_tag());
        let options = SegmentOptions::default();
        let whole = package_mp3(&data, &options).unwrap();
        for window in [70_000, READ_WINDOW_BYTES] {
            let mut largest = 0;
            let read_package = package_mp3_read(
                data.len(),
                window,
                &mut |range: Range<usize>| {
                    largest = largest.max(range.len());
                    Ok::<_, MediaError>(data[range].to_vec())
                },
                None,
                &options,
            )
            .unwrap();
            assert!(largest <= window);
            assert_eq!(read_package.frames(), whole.frames(), "window {window}");
            assert_eq!(read_package.plan(), whole.plan());
            assert_eq!(read_package.info(), whole.info());
        }
    }

    #[test]
    fn segments_iterator_is_exact_size_and_static() {
        fn assert_static_send<T: Send + 'static>(_: &T) {}
        let data: Arc<[u8]> = cbr_song(9, 25.0).into();
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let mut segments = package.clone().into_segments(Arc::clone(&data));
        assert_static_send(&segments);
        assert_eq!(segments.len(), 3);
        segments.next();
        assert_eq!(segments.len(), 2);
        // Other bytes than the packaged ones give nothing rather than garbage.
        assert_eq!(package.into_segments(vec![0u8; 10]).count(), 0);
    }

    #[test]
    fn playlist_lists_every_segment() {
        let data = cbr_song(9, 25.0);
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let text = package.media_playlist(&|i| crate::segment_name(i));
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"));
        assert!(text.contains("seg002.ts\n#EXT-X-ENDLIST\n"));
        assert_eq!(text.matches("#EXTINF:").count(), package.segment_count());
        assert_eq!(package.target_duration(), 10);
    }

    #[test]
    fn options_and_inputs_are_validated() {
        for target in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let options = SegmentOptions {
                target_seconds: target,
            };
            let err = package_mp3(&cbr_song(9, 1.0), &options).unwrap_err();
            assert_eq!(err.code(), "invalid-segment-target");
        }
        let options = SegmentOptions::default();
        assert_eq!(package_mp3(&[], &options).unwrap_err(), MediaError::Empty);
        assert_eq!(
            package_mp3(b"hello", &options).unwrap_err(),
            MediaError::NotMpegAudio
        );
    }

    #[test]
    fn segment_names_grow_past_three_digits() {
        assert_eq!(crate::segment_name(0), "seg000.ts");
        assert_eq!(crate::segment_name(42), "seg042.ts");
        assert_eq!(crate::segment_name(1234), "seg1234.ts");
    }
}

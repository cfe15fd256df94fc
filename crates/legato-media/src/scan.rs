//! Finds the MPEG audio frames in an MP3 file.
//!
//! The scanner strips the tags ([`crate::tags`]), then walks the frames header to header.
//! While in sync it trusts a header that continues the stream (same version, layer and sample
//! rate, like decoders do). Anything else has to prove itself before it is taken for audio:
//!
//! * to accept a file at all, [`MIN_CONSECUTIVE_FRAMES`] frames must follow each other
//!   exactly (or every frame up to the end of the data, for a shorter file), so random bytes
//!   are not mistaken for MP3;
//! * after junk, or where the stream's format changes, a header counts only if another
//!   header of the same stream starts exactly one frame length later (or its frame ends the
//!   data).
//!
//! A last frame cut short is dropped. The first frame holding a Xing/Info or VBRI header
//! describes the file rather than carrying audio, so it is kept apart in
//! [`Mp3Scan::info_frame`].

use std::ops::Range;

use crate::error::MediaError;
use crate::mpeg::{FrameHeader, Layer};
use crate::tags;

/// How many back-to-back frames make a file MP3 (unless the file has fewer frames in all).
pub const MIN_CONSECUTIVE_FRAMES: usize = 3;

/// How many back-to-back frames confirm a header found after junk or a format change.
const RESYNC_CONSECUTIVE_FRAMES: usize = 2;

/// One MPEG audio frame of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame's first byte in the input given to [`scan_mp3`].
    pub offset: usize,
    /// Length in bytes, header included (always `header.frame_len()`).
    pub len: usize,
    pub header: FrameHeader,
}

impl Frame {
    /// The byte range of the frame in the input.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset.saturating_add(self.len)
    }

    /// The frame's bytes, or `None` if `data` is not the input that was scanned.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        data.get(self.range())
    }
}

/// The result of [`scan_mp3`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp3Scan {
    /// The audio frames in order; never empty.
    pub frames: Vec<Frame>,
    /// The Xing/Info/VBRI header frame, if the stream starts with one.
    pub info_frame: Option<Frame>,
    /// The part of the input between the leading and trailing tags.
    pub audio_range: Range<usize>,
    /// Bytes inside `audio_range` that belong to no frame (junk, truncated frames).
    pub skipped_bytes: usize,
}

/// Scans `data` for MPEG audio frames.
///
/// # Errors
/// [`MediaError::Empty`] for no bytes, [`MediaError::TooShort`] when MPEG audio starts but
/// no complete audio frame is there, [`MediaError::NotMpegAudio`] otherwise when no frame
/// is found.
pub fn scan_mp3(data: &[u8]) -> Result<Mp3Scan, MediaError> {
    if data.is_empty() {
        return Err(MediaError::Empty);
    }
    let audio_range = tags::audio_range(data);
    let audio = data.get(audio_range.clone()).unwrap_or_default();
    let base = audio_range.start;

    let mut frames: Vec<Frame> = Vec::new();
    let mut info_frame = None;
    let mut skipped_bytes = 0usize;
    // The header of the last accepted frame while in sync.
    let mut synced: Option<FrameHeader> = None;
    let mut pos = 0usize;

    while pos < audio.len() {
        let header = audio.get(pos..).and_then(FrameHeader::parse_slice);
        let accepted = header.filter(|header| match synced {
            Some(previous) if header.same_stream_as(&previous) => frame_fits(audio, pos, header),
            _ => {
                let required = if frames.is_empty() && info_frame.is_none() {
                    MIN_CONSECUTIVE_FRAMES
                } else {
                    RESYNC_CONSECUTIVE_FRAMES
                };
                chain_confirms(audio, pos, header, required)
            }
        });

        if let Some(header) = accepted {
            let len = header.frame_len();
            let frame = Frame {
                offset: base + pos,
                len,
                header,
            };
            let is_first = frames.is_empty() && info_frame.is_none();
            if is_first && is_info_frame(audio.get(pos..pos + len).unwrap_or_default(), &header) {
                info_frame = Some(frame);
            } else {
                frames.push(frame);
            }
            synced = Some(header);
            pos += len;
            continue;
        }

        // Out of sync. A concatenated file may bring its own ID3v2 tag along.
        let was_synced = synced.take().is_some();
        if was_synced {
            if let Some(tag_len) = audio.get(pos..).and_then(tags::id3v2_len) {
                skipped_bytes += tag_len;
                pos += tag_len;
                continue;
            }
        }
        let next_sync = audio
            .get(pos + 1..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .map_or(audio.len(), |at| pos + 1 + at);
        skipped_bytes += next_sync - pos;
        pos = next_sync;
    }

    if frames.is_empty() {
        let starts_like_mpeg =
            FrameHeader::parse_slice(audio).is_some_and(|header| header.frame_len() > audio.len());
        return Err(if info_frame.is_some() || starts_like_mpeg {
            MediaError::TooShort
        } else {
            MediaError::NotMpegAudio
        });
    }
    Ok(Mp3Scan {
        frames,
        info_frame,
        audio_range,
        skipped_bytes,
    })
}

fn frame_fits(audio: &[u8], pos: usize, header: &FrameHeader) -> bool {
    pos.checked_add(header.frame_len())
        .is_some_and(|end| end <= audio.len())
}

/// Whether `required` complete frames of one stream follow each other from `pos`, or the
/// frames from `pos` run to the end of the data (the last one possibly cut short).
fn chain_confirms(audio: &[u8], pos: usize, first: &FrameHeader, required: usize) -> bool {
    if !frame_fits(audio, pos, first) {
        return false;
    }
    let mut end = pos + first.frame_len();
    for _ in 1..required {
        if end == audio.len() {
            return true;
        }
        let Some(next) = audio.get(end..).and_then(FrameHeader::parse_slice) else {
            return false;
        };
        if !next.same_stream_as(first) {
            return false;
        }
        if !frame_fits(audio, end, &next) {
            // The stream ends in a truncated frame: everything before it is all there is.
            return true;
        }
        end += next.frame_len();
    }
    true
}

/// Whether a Layer III frame is a Xing/Info (LAME, after the side information) or VBRI
/// (Fraunhofer, at a fixed offset) header rather than audio.
pub fn is_info_frame(frame: &[u8], header: &FrameHeader) -> bool {
    if header.layer() != Layer::Three {
        return false;
    }
    let tag_at = |at: usize| frame.get(at..at + 4);
    let xing_at = FrameHeader::LEN + header.side_info_len();
    // Encoders disagree on whether the CRC shifts the tag, so look in both places.
    let xing = [xing_at, xing_at + 2]
        .into_iter()
        .filter_map(tag_at)
        .any(|tag| tag == b"Xing" || tag == b"Info");
    xing || tag_at(36) == Some(b"VBRI".as_slice())
}

/// Where to cut back-to-back MPEG audio frames (a segment's audio payload) so that they start
/// at `seconds` into them: the byte offset of the first frame starting at or after that
/// instant (`audio.len()` when none does), and when that frame starts. Frames are walked by
/// their headers; bytes that are not a whole frame stop the walk, and are kept.
pub fn cut_at(audio: &[u8], seconds: f64) -> (usize, f64) {
    let mut offset = 0usize;
    let mut at = 0.0f64;
    // Within a microsecond of the instant, a frame starts at it.
    while at < seconds - 1e-6 {
        let Some(header) = audio.get(offset..).and_then(FrameHeader::parse_slice) else {
            break;
        };
        let end = offset.saturating_add(header.frame_len());
        if end > audio.len() {
            break;
        }
        offset = end;
        at += f64::from(header.samples()) / f64::from(header.sample_rate());
    }
    (offset, at)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::test_support::*;

    fn offsets(scan: &Mp3Scan) -> Vec<usize> {
        scan.frames.iter().map(|f| f.offset).collect()
    }

    /// Concatenates parts and returns the data with the offsets at which each part starts.
    fn layout(parts: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut starts = Vec::new();
        let mut data = Vec::new();
        for part in parts {
            starts.push(data.len());
            data.extend(part);
        }
        (data, starts)
    }

    #[test]
    fn a_cut_starts_at_the_first_frame_at_or_after_the_instant() {
        // 44.1 kHz MPEG-1 Layer III: 1152 samples, 26.122 ms, 417 bytes a frame.
        let parts = frames(HeaderBits::default(), 10);
        let (data, starts) = layout(&parts);
        let frame = 1152.0 / 44_100.0;
        assert_eq!(cut_at(&data, 0.0), (0, 0.0));
        let (offset, at) = cut_at(&data, 3.5 * frame);
        assert_eq!(offset, starts[4]);
        assert!((at - 4.0 * frame).abs() < 1e-9, "{at}");
        // On a frame's start, to within a microsecond: that frame; a millisecond after it:
        // the next one.
        assert_eq!(cut_at(&data, 2.0 * frame - 1e-9).0, starts[2]);
        assert_eq!(cut_at(&data, 2.0 * frame + 1e-9).0, starts[2]);
        assert_eq!(cut_at(&data, 2.0 * frame + 1e-3).0, starts[3]);
        // Past the end: nothing left.
        assert_eq!(cut_at(&data, 100.0).0, data.len());
        // A damaged frame stops the walk, and is kept.
        let mut damaged = data.clone();
        damaged[starts[2]] = 0;
        assert_eq!(cut_at(&damaged, 5.0 * frame).0, starts[2]);
        assert_eq!(cut_at(&[], 1.0), (0, 0.0));
        assert_eq!(cut_at(&data[..starts[1] + 10], 5.0 * frame).0, starts[1]);
    }

    #[test]
    fn plain_frames_are_all_found() {
        let parts = frames(HeaderBits::default(), 10);
        let (data, starts) = layout(&parts);
        let scan = scan_mp3(&data).unwrap();
        assert_eq!(offsets(&scan), starts);
        assert_eq!(scan.skipped_bytes, 0);
        assert!(scan.frames.iter().all(|f| f.len == 417));
    }

    #[test]
    fn tags_around_the_audio_are_skipped() {
        for footer in [false, true] {
            let mut parts = vec![id3v2_tag(1000, footer), id3v2_tag(20, false)];
            parts.extend(frames(HeaderBits::default(), 5));
            parts.push(ape_tag(2, true));
            parts.push(lyrics3v2_tag("words"));
            parts.push(id3v1_tag());
            let (data, starts) = layout(&parts);
            let scan = scan_mp3(&data).unwrap();
            assert_eq!(offsets(&scan), starts[2..7]);
            assert_eq!(scan.skipped_bytes, 0);
        }
    }

    #[test]
    fn junk_between_frames_is_skipped() {
        let bits = HeaderBits::default();
        let parts = vec![
            b"junk at the start".to_vec(),
            frame(bits),
            frame(bits),
            frame(bits),
            vec![0xFF, 0xFB, 0x00, 0x12, 0xFF], // looks like a sync, is not a header
            frame(bits),
            frame(bits),
            // A header of another stream (48 kHz) with no successor.
            b"\xFF\xFB\x94\x64 is not followed by a frame".to_vec(),
            frame(bits),
            frame(bits),
        ];
        let (data, starts) = layout(&parts);
        let scan = scan_mp3(&data).unwrap();
        let expected: Vec<usize> = [1, 2, 3, 5, 6, 8, 9].iter().map(|&i| starts[i]).collect();
        assert_eq!(offsets(&scan), expected);
        assert_eq!(
            scan.skipped_bytes,
            parts[0].len() + parts[4].len() + parts[7].len()
        );
    }

    #[test]
    fn xing_info_and_vbri_frames_are_not_audio() {
        let bits = HeaderBits::default();
        let mono = HeaderBits {
            channel_mode: 0b11,
            version: 0b10,
            bitrate_index: 8,
            ..bits
        };
        for (info, bits) in [
            (xing_frame(bits, b"Xing"), bits),
            (xing_frame(bits, b"Info"), bits),
            (xing_frame(mono, b"Xing"), mono),
            (vbri_frame(bits), bits),
        ] {
            let mut parts = vec![id3v2_tag(10, false), info];
            parts.extend(frames(bits, 4));
            let (data, starts) = layout(&parts);
            let scan = scan_mp3(&data).unwrap();
            assert_eq!(scan.info_frame.map(|f| f.offset), Some(starts[1]));
            assert_eq!(offsets(&scan), starts[2..]);
        }
        // Only the first frame can be an info frame.
        let parts = vec![frame(bits), xing_frame(bits, b"Xing"), frame(bits)];
        let scan = scan_mp3(&concat(&parts)).unwrap();
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.info_frame, None);
    }

    #[test]
    fn a_truncated_last_frame_is_dropped() {
        let mut data = concat(&frames(HeaderBits::default(), 4));
        data.truncate(data.len() - 100);
        let scan = scan_mp3(&data).unwrap();
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.skipped_bytes, 317);

        // Two frames and a cut third are still a (short) file.
        let mut data = concat(&frames(HeaderBits::default(), 3));
        data.truncate(data.len() - 1);
        assert_eq!(scan_mp3(&data).unwrap().frames.len(), 2);
    }

    #[test]
    fn short_files_need_every_frame_to_line_up() {
        let one = frame(HeaderBits::default());
        assert_eq!(scan_mp3(&one).unwrap().frames.len(), 1);
        let two = concat(&frames(HeaderBits::default(), 2));
        assert_eq!(scan_mp3(&two).unwrap().frames.len(), 2);
        // Two frames then junk: not enough evidence.
        let mut two_and_junk = two.clone();
        two_and_junk.extend(b"trailing junk that is not a tag");
        assert_eq!(scan_mp3(&two_and_junk), Err(MediaError::NotMpegAudio));
    }

    #[test]
    fn sample_rate_changes_are_followed() {
        let first = HeaderBits::default();
        let second = HeaderBits {
            sample_rate_index: 1,
            ..first
        };
        let mut parts = frames(first, 3);
        parts.extend(frames(second, 3));
        let (data, starts) = layout(&parts);
        let scan = scan_mp3(&data).unwrap();
        assert_eq!(offsets(&scan), starts);
        assert_eq!(scan.frames[3].header.sample_rate(), 48_000);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(scan_mp3(&[]), Err(MediaError::Empty));
        assert_eq!(
            scan_mp3(&id3v2_tag(100, false)),
            Err(MediaError::NotMpegAudio)
        );
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let random: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        assert_eq!(scan_mp3(&random), Err(MediaError::NotMpegAudio));
        assert_eq!(scan_mp3(&[0xFF; 4096]), Err(MediaError::NotMpegAudio));

        let cut = &frame(HeaderBits::default())[..200];
        assert_eq!(scan_mp3(cut), Err(MediaError::TooShort));
        let only_xing = xing_frame(HeaderBits::default(), b"Xing");
        assert_eq!(scan_mp3(&only_xing), Err(MediaError::TooShort));
    }
}

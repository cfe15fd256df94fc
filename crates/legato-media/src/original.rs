//! An MP3 upload kept without storing its audio twice.
//!
//! The `original` rendition of an MP3 carries every audio frame of the upload, bit for bit,
//! in MPEG-TS segments. What the segments do not hold is small: the tags (ID3v2 with its
//! cover, ID3v1, APE), the Xing/Info frame, junk between frames, a last frame cut short. A
//! [`Remainder`] keeps exactly those bytes with their offsets, and the names of the segments
//! in order; the upload is the segments' audio payloads with the remainder's bytes put back
//! in their places ([`Rebuilder`]).
//!
//! ```text
//! upload  = [ID3v2][Info][frame][frame]…[frame][junk][frame]…[frame][ID3v1]
//! stored  =  gap    gap  └──── segment 0 ────┘  gap  └─ segment N ─┘ gap
//! ```

use thiserror::Error;

use crate::package::Package;
use crate::ts::{AUDIO_PID, PACKET_LEN};

/// Identifies the serialized form (and its version).
const MAGIC: &[u8; 8] = b"LGMREST1";

/// Why the stored pieces do not give back an MP3.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the stored MP3 cannot be rebuilt: {0}")]
pub struct RebuildError(pub &'static str);

/// Bytes of the upload that are in no segment, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// What, beside its `original` segments, gives back an MP3 upload byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remainder {
    /// Length of the upload.
    pub len: u64,
    /// The segments holding the frames, in order (chunk names, as the caller names them).
    pub segments: Vec<String>,
    /// In order of offset, never touching each other.
    pub gaps: Vec<Gap>,
}

impl Remainder {
    /// The remainder of `data` once `package` (made from `data`) is muxed into segments
    /// named `segments`. `None` if `data` is not what was packaged, or the segments do not
    /// carry the frames in file order (every MP3 the scanner accepts does).
    pub fn of(data: &[u8], package: &Package, segments: Vec<String>) -> Option<Remainder> {
        Self::of_read(data.len(), package, segments, usize::MAX, &mut |range| {
            data.get(range).map(<[u8]>::to_vec)
        })
    }

    /// As [`Remainder::of`], for `len` bytes that `read` gives a range at a time (an upload
    /// in its temporary file). `None` too when the bytes outside the frames are more than
    /// `max_gap_bytes`: then nothing is read.
    pub fn of_read(
        len: usize,
        package: &Package,
        segments: Vec<String>,
        max_gap_bytes: usize,
        read: &mut dyn FnMut(std::ops::Range<usize>) -> Option<Vec<u8>>,
    ) -> Option<Remainder> {
        if segments.len() != package.segment_count() {
            return None;
        }
        let mut gaps = Vec::new();
        let mut at = 0usize;
        let mut next_frame = 0usize;
        for planned in package.plan() {
            if planned.frames.start != next_frame {
                return None;
            }
            next_frame = planned.frames.end;
            for frame in package.frames().get(planned.frames.clone())? {
                if frame.offset < at {
                    return None;
                }
                if frame.offset > at {
                    gaps.push(at..frame.offset);
                }
                at = frame.range().end;
            }
        }
        if next_frame != package.frames().len() || at > len {
            return None;
        }
        if at < len {
            gaps.push(at..len);
        }
        if gaps.iter().map(ExactSizeIterator::len).sum::<usize>() > max_gap_bytes {
            return None;
        }
        let gaps = gaps
            .into_iter()
            .map(|range| {
                let bytes = read(range.clone()).filter(|b| b.len() == range.len())?;
                Some(Gap {
                    offset: range.start as u64,
                    bytes,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Remainder {
            len: len as u64,
            segments,
            gaps,
        })
    }

    /// Bytes of the upload kept here (not in segments).
    pub fn gap_bytes(&self) -> u64 {
        self.gaps.iter().map(|g| g.bytes.len() as u64).sum()
    }

    /// The stored form: a magic, the length, the segment names and the gaps, big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let names: usize = self.segments.iter().map(|s| 2 + s.len()).sum();
        let gaps: usize = self.gaps.iter().map(|g| 12 + g.bytes.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 16 + names + gaps);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&(self.segments.len() as u32).to_be_bytes());
        for name in &self.segments {
            let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name);
        }
        out.extend_from_slice(&(self.gaps.len() as u32).to_be_bytes());
        for gap in &self.gaps {
            out.extend_from_slice(&gap.offset.to_be_bytes());
            out.extend_from_slice(&(gap.bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&gap.bytes);
        }
        out
    }

    /// Reads the stored form back, checking that it describes one file.
    ///
    /// # Errors
    /// [`RebuildError`] for anything but the output of [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Remainder, RebuildError> {
        let mut reader = Reader(bytes);
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(RebuildError("the remainder has an unknown format"));
        }
        let len = reader.u64()?;
        let count = reader.u32()?;
        // Each name takes at least two bytes: a count beyond that is a damaged header.
        let mut segments = Vec::with_capacity((count as usize).min(reader.0.len() / 2));
        for _ in 0..count {
            let name_len = usize::from(reader.u16()?);
            let name = std::str::from_utf8(reader.take(name_len)?)
                .map_err(|_| RebuildError("a segment name is not UTF-8"))?;
            segments.push(name.to_owned());
        }
        let count = reader.u32()?;
        let mut gaps: Vec<Gap> = Vec::with_capacity((count as usize).min(reader.0.len() / 12));
        for _ in 0..count {
            let offset = reader.u64()?;
            let gap_len = reader.u32()? as usize;
            let bytes = reader.take(gap_len)?.to_vec();
            let end_of_last = gaps.last().map_or(0, |g| g.offset + g.bytes.len() as u64);
            if (!gaps.is_empty() && offset <= end_of_last)
                || offset.saturating_add(bytes.len() as u64) > len
            {
                return Err(RebuildError("the remainder's gaps are out of order"));
            }
            gaps.push(Gap { offset, bytes });
        }
        if !reader.0.is_empty() {
            return Err(RebuildError("the remainder has trailing bytes"));
        }
        Ok(Remainder {
            len,
            segments,
            gaps,
        })
    }

    /// Puts the upload back together from the segments' audio, given in order.
    pub fn into_rebuilder(self) -> Rebuilder {
        Rebuilder {
            remainder: self,
            written: 0,
            next_gap: 0,
        }
    }
}

/// Interleaves the segments' audio with the remainder's gaps, as the audio arrives.
#[derive(Debug)]
pub struct Rebuilder {
    remainder: Remainder,
    written: u64,
    next_gap: usize,
}

impl Rebuilder {
    /// The segments to read, in order.
    pub fn segments(&self) -> &[String] {
        &self.remainder.segments
    }

    /// Appends to `out` the upload's bytes that `audio` (the next audio payload bytes of the
    /// segments) completes.
    ///
    /// # Errors
    /// [`RebuildError`] when there is more audio than the upload held.
    pub fn push(&mut self, mut audio: &[u8], out: &mut Vec<u8>) -> Result<(), RebuildError> {
        loop {
            self.gaps_due(out);
            if audio.is_empty() {
                return Ok(());
            }
            let until_gap = self
                .remainder
                .gaps
                .get(self.next_gap)
                .map_or(self.remainder.len, |gap| gap.offset)
                .saturating_sub(self.written);
            let take = audio
                .len()
                .min(usize::try_from(until_gap).unwrap_or(usize::MAX));
            if take == 0 {
                return Err(RebuildError("the segments hold more audio than the upload"));
            }
            out.extend_from_slice(&audio[..take]);
            self.written += take as u64;
            audio = &audio[take..];
        }
    }

    /// Appends what follows the last audio and checks that the whole upload was given back.
    ///
    /// # Errors
    /// [`RebuildError`] when the segments held less audio than the upload.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), RebuildError> {
        self.gaps_due(out);
        if self.written == self.remainder.len && self.next_gap == self.remainder.gaps.len() {
            Ok(())
        } else {
            Err(RebuildError("the segments hold less audio than the upload"))
        }
    }

    fn gaps_due(&mut self, out: &mut Vec<u8>) {
        while let Some(gap) = self.remainder.gaps.get(self.next_gap)
            && gap.offset == self.written
        {
            out.extend_from_slice(&gap.bytes);
            self.written += gap.bytes.len() as u64;
            self.next_gap += 1;
        }
    }
}

/// Appends to `out` the audio payload of an MPEG-TS segment made by this crate's muxer: the
/// PES payloads of the audio PID, in order.
///
/// # Errors
/// [`RebuildError`] when `ts` is not whole packets or a PES header is malformed.
pub fn ts_audio_payload(ts: &[u8], out: &mut Vec<u8>) -> Result<(), RebuildError> {
    if ts.len() % PACKET_LEN != 0 {
        return Err(RebuildError("a segment is not a whole number of packets"));
    }
    for packet in ts.chunks_exact(PACKET_LEN) {
        if packet[0] != 0x47 {
            return Err(RebuildError("a segment packet has no sync byte"));
        }
        let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
        if pid != AUDIO_PID {
            continue;
        }
        let unit_start = packet[1] & 0x40 != 0;
        let control = (packet[3] >> 4) & 0x3;
        let mut payload = &packet[4..];
        if control & 0x2 != 0 {
            let field = usize::from(*payload.first().unwrap_or(&0));
            payload = payload
                .get(1 + field..)
                .ok_or(RebuildError("an adaptation field overruns its packet"))?;
        }
        if control & 0x1 == 0 {
            continue;
        }
        if unit_start {
            // Start code (3), stream id, length (2), flags (2), header data length, header.
            if payload.get(..3) != Some(&[0, 0, 1]) {
                return Err(RebuildError("a PES does not start with its start code"));
            }
            let header_len = 9 + usize::from(*payload.get(8).unwrap_or(&0));
            payload = payload
                .get(header_len..)
                .ok_or(RebuildError("a PES header overruns its packet"))?;
        }
        out.extend_from_slice(payload);
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RebuildError> {
        if self.0.len() < n {
            return Err(RebuildError("the remainder is cut short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RebuildError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u16(&mut self) -> Result<u16, RebuildError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, RebuildError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, RebuildError> {
        self.array().map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::test_support::*;
    use crate::{SegmentOptions, package_mp3};

    /// An MP3 with everything the segments leave out: ID3v2, an Info frame, junk between
    /// frames, a frame cut short at the end and ID3v1.
    fn awkward_mp3() -> Vec<u8> {
        let mut data = id3v2_tag(3000, false);
        data.extend(xing_frame(HeaderBits::default(), b"Info"));
        for i in 0..400 {
            data.extend(frame_with(HeaderBits::default(), (i % 251) as u8));
            if i == 200 {
                data.extend_from_slice(b"some junk between frames");
            }
        }
        data.extend(&frame_with(HeaderBits::default(), 7)[..100]);
        data.extend(id3v1_tag());
        data
    }

    /// [`awkward_mp3`], packaged with default options, and its remainder.
    fn packaged_awkward_mp3() -> (Vec<u8>, Package, Remainder) {
        let data = awkward_mp3();
        let package = package_mp3(&data, &SegmentOptions::default()).unwrap();
        let names = (0..package.segment_count())
            .map(crate::segment_name)
            .collect();
        let remainder = Remainder::of(&data, &package, names).unwrap();
        (data, package, remainder)
    }

    fn rebuild(remainder: &Remainder, segments: &[Vec<u8>], block: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rebuilder = remainder.clone().into_rebuilder();
        for segment in segments {
            let mut audio = Vec::new();
            ts_audio_payload(segment, &mut audio).unwrap();
            for piece in audio.chunks(block) {
                rebuilder.push(piece, &mut out).unwrap();
            }
        }
        rebuilder.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn segments_and_remainder_give_back_the_upload_byte_for_byte() {
        let data = awkward_mp3();
        let options = SegmentOptions {
            target_seconds: 3.0,
        };
        let package = package_mp3(&data, &options).unwrap();
        let names: Vec<String> = (0..package.segment_count())
            .map(crate::segment_name)
            .collect();
        let remainder = Remainder::of(&data, &package, names.clone()).unwrap();
        // Tags and Info frame, the junk, the cut frame and ID3v1.
        assert_eq!(remainder.gaps.len(), 3);
        let audio: u64 = package.info().audio_bytes;
        assert_eq!(remainder.gap_bytes() + audio, data.len() as u64);

        let stored = Remainder::from_bytes(&remainder.to_bytes()).unwrap();
        assert_eq!(stored, remainder);
        assert_eq!(stored.segments, names);

        let segments: Vec<Vec<u8>> = package.into_segments(data.as_slice()).collect();
        for block in [1, 7, 4096, usize::MAX] {
            assert_eq!(rebuild(&stored, &segments, block), data, "block {block}");
        }
    }

    #[test]
    fn missing_or_extra_audio_is_an_error_not_a_wrong_file() {
        let (data, package, remainder) = packaged_awkward_mp3();
        let segments: Vec<Vec<u8>> = package.into_segments(data.as_slice()).collect();
        let mut audio = Vec::new();
        for segment in &segments {
            ts_audio_payload(segment, &mut audio).unwrap();
        }

        let mut out = Vec::new();
        let mut short = remainder.clone().into_rebuilder();
        short.push(&audio[..audio.len() - 1], &mut out).unwrap();
        assert!(short.finish(&mut out).is_err());

        let mut out = Vec::new();
        let mut long = remainder.into_rebuilder();
        long.push(&audio, &mut out).unwrap();
        assert!(long.push(&[0], &mut out).is_err());

        assert!(ts_audio_payload(&segments[0][..100], &mut Vec::new()).is_err());
    }

    #[test]
    fn a_damaged_remainder_is_refused_without_panicking() {
        let (data, package, remainder) = packaged_awkward_mp3();
        let bytes = remainder.to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                Remainder::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut swapped = bytes.clone();
        swapped[0] = b'X';
        assert!(Remainder::from_bytes(&swapped).is_err());
        let mut longer = bytes;
        longer.push(0);
        assert!(Remainder::from_bytes(&longer).is_err());
        assert!(Remainder::of(&data[1..], &package, Vec::new()).is_none());
    }
}

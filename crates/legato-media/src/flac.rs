//! FLAC frames of a native FLAC stream, found without decoding, so that an upload's frames
//! can be carried bit-exact into fragmented MP4 (one FLAC frame is one MP4 sample).
//!
//! A FLAC frame has no length field: it ends where the next one starts. Its 14-bit sync code
//! (`0xFFF8`/`0xFFF9`) can also occur inside compressed audio, so a frame is only taken to
//! end at a position where both checks of the format hold:
//!
//! * the CRC-16 of the frame so far is 0 (a frame ends with the CRC-16 of its own bytes, and a
//!   CRC over data followed by its own big-endian CRC is 0), computed incrementally in one pass;
//! * a frame header starts there whose CRC-8 is right, whose sample rate, channels and bit
//!   depth agree with STREAMINFO, and whose frame or sample number follows on.
//!
//! The last frame ends at the end of the data, or, if tags follow it, at the first position
//! where its CRC-16 holds and the frames' samples add up to STREAMINFO's total.
//!
//! Nothing here allocates by a size read from the file; the frame list grows by frames found.

use std::ops::Range;

use crate::error::MediaError;

/// The FLAC stream marker.
pub const MAGIC: &[u8; 4] = b"fLaC";
/// Length of a STREAMINFO block's body.
pub const STREAMINFO_LEN: usize = 34;
/// The longest frame header: sync (2), codes (2), a 7-byte coded number, a 16-bit block size,
/// a 16-bit sample rate and the CRC-8.
const MAX_HEADER_LEN: usize = 16;

/// The STREAMINFO metadata block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    pub min_block_size: u16,
    pub max_block_size: u16,
    pub min_frame_size: u32,
    pub max_frame_size: u32,
    pub sample_rate: u32,
    pub channels: u8,
    pub bits_per_sample: u8,
    /// Samples per channel in the stream; 0 means unknown.
    pub total_samples: u64,
    pub md5: [u8; 16],
}

impl StreamInfo {
    /// Parses the 34-byte body of a STREAMINFO block.
    pub fn parse(body: &[u8]) -> Option<StreamInfo> {
        let body: &[u8; STREAMINFO_LEN] = body.get(..STREAMINFO_LEN)?.try_into().ok()?;
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, ..] = *body;
        let packed = u64::from_be_bytes(body.get(10..18)?.try_into().ok()?);
        let info = StreamInfo {
            min_block_size: u16::from_be_bytes([b0, b1]),
            max_block_size: u16::from_be_bytes([b2, b3]),
            min_frame_size: u32::from_be_bytes([0, b4, b5, b6]),
            max_frame_size: u32::from_be_bytes([0, b7, b8, b9]),
            sample_rate: (packed >> 44) as u32,
            channels: ((packed >> 41) & 0x7) as u8 + 1,
            bits_per_sample: ((packed >> 36) & 0x1F) as u8 + 1,
            total_samples: packed & 0xF_FFFF_FFFF,
            md5: body.get(18..34)?.try_into().ok()?,
        };
        // A block size under 16 is invalid (except a last frame); 0 Hz has no timeline.
        (info.sample_rate > 0 && info.min_block_size >= 16 && info.max_block_size >= 16)
            .then_some(info)
    }

    /// The 34-byte body, as written in a STREAMINFO block (and in an MP4 `dfLa` box).
    pub fn to_bytes(&self) -> [u8; STREAMINFO_LEN] {
        let mut out = [0u8; STREAMINFO_LEN];
        let packed = (u64::from(self.sample_rate & 0xF_FFFF) << 44)
            | (u64::from(self.channels.saturating_sub(1) & 0x7) << 41)
            | (u64::from(self.bits_per_sample.saturating_sub(1) & 0x1F) << 36)
            | (self.total_samples & 0xF_FFFF_FFFF);
        let [_, min0, min1, min2] = self.min_frame_size.to_be_bytes();
        let [_, max0, max1, max2] = self.max_frame_size.to_be_bytes();
        let parts: [&[u8]; 6] = [
            &self.min_block_size.to_be_bytes(),
            &self.max_block_size.to_be_bytes(),
            &[min0, min1, min2],
            &[max0, max1, max2],
            &packed.to_be_bytes(),
            &self.md5,
        ];
        let mut at = 0;
        for part in parts {
            if let Some(slot) = out.get_mut(at..at + part.len()) {
                slot.copy_from_slice(part);
            }
            at += part.len();
        }
        out
    }
}

/// A frame header, as far as packaging needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Samples per channel in the frame.
    pub block_size: u32,
    /// `None` when the header refers to STREAMINFO.
    pub sample_rate: Option<u32>,
    pub channels: u8,
    /// `None` when the header refers to STREAMINFO.
    pub bits_per_sample: Option<u8>,
    /// Variable block size streams number samples, fixed ones number frames.
    pub variable_block_size: bool,
    /// The frame number (fixed block size) or first sample number (variable).
    pub number: u64,
    /// Header length in bytes, CRC-8 included.
    pub len: usize,
}

impl FrameHeader {
    /// Parses a frame header at the start of `data`, checking its CRC-8. `None` if there is
    /// none (no sync code, a reserved value, or a wrong CRC).
    pub fn parse(data: &[u8]) -> Option<FrameHeader> {
        let (&b0, &b1, &b2, &b3) = (data.first()?, data.get(1)?, data.get(2)?, data.get(3)?);
        if b0 != 0xFF || b1 & 0xFE != 0xF8 || b3 & 1 != 0 {
            return None;
        }
        let variable_block_size = b1 & 1 == 1;
        let (block_code, rate_code) = (b2 >> 4, b2 & 0xF);
        let (channel_code, size_code) = (b3 >> 4, (b3 >> 1) & 0x7);
        let channels = match channel_code {
            0..=7 => channel_code + 1,
            8..=10 => 2,
            _ => return None,
        };
        let bits_per_sample = match size_code {
            0 => None,
            1 => Some(8),
            2 => Some(12),
            4 => Some(16),
            5 => Some(20),
            6 => Some(24),
            7 => Some(32),
            _ => return None,
        };
        let mut at = 4;
        let (number, coded_len) = coded_number(data.get(at..)?)?;
        // Frame numbers are coded in up to 6 bytes (31 bits), sample numbers up to 7 (36).
        if !variable_block_size && coded_len > 6 {
            return None;
        }
        at += coded_len;
        let block_size = match block_code {
            0 => return None,
            1 => 192,
            2..=5 => 576 << (block_code - 2),
            6 => {
                at += 1;
                u32::from(*data.get(at - 1)?) + 1
            }
            7 => {
                at += 2;
                u32::from(u16::from_be_bytes([*data.get(at - 2)?, *data.get(at - 1)?])) + 1
            }
            _ => 256 << (block_code - 8),
        };
        let sample_rate = match rate_code {
            0 => None,
            1 => Some(88_200),
            2 => Some(176_400),
            3 => Some(192_000),
            4 => Some(8_000),
            5 => Some(16_000),
            6 => Some(22_050),
            7 => Some(24_000),
            8 => Some(32_000),
            9 => Some(44_100),
            10 => Some(48_000),
            11 => Some(96_000),
            12 => {
                at += 1;
                Some(u32::from(*data.get(at - 1)?) * 1000)
            }
            13 | 14 => {
                at += 2;
                let value = u32::from(u16::from_be_bytes([*data.get(at - 2)?, *data.get(at - 1)?]));
                Some(if rate_code == 13 { value } else { value * 10 })
            }
            _ => return None,
        };
        if sample_rate == Some(0) {
            return None;
        }
        let crc = *data.get(at)?;
        if crc8(data.get(..at)?) != crc {
            return None;
        }
        Some(FrameHeader {
            block_size,
            sample_rate,
            channels,
            bits_per_sample,
            variable_block_size,
            number,
            len: at + 1,
        })
    }

    /// Whether the header agrees with STREAMINFO (a header may leave rate and depth to it).
    fn fits(&self, info: &StreamInfo) -> bool {
        self.sample_rate.is_none_or(|rate| rate == info.sample_rate)
            && self
                .bits_per_sample
                .is_none_or(|bits| bits == info.bits_per_sample)
            && self.channels == info.channels
            && self.block_size <= u32::from(info.max_block_size)
    }
}

/// FLAC's "UTF-8"-coded frame or sample number: the value and its length in bytes.
fn coded_number(data: &[u8]) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let extra = match first.leading_ones() {
        0 => return Some((u64::from(first), 1)),
        // 10xxxxxx is a continuation byte, and more than 7 bytes does not exist.
        1 | 8 => return None,
        ones => ones as usize - 1,
    };
    // The first byte keeps the bits after its run of ones and a zero (none for 0xFE).
    let mut value = u64::from(first) & (0x7F >> (extra + 1));
    for index in 1..=extra {
        let byte = *data.get(index)?;
        if byte & 0xC0 != 0x80 {
            return None;
        }
        value = (value << 6) | u64::from(byte & 0x3F);
    }
    Some((value, extra + 1))
}

/// CRC-8 of frame headers: polynomial x^8 + x^2 + x + 1, initial value 0.
pub fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |crc, &byte| {
        let mut crc = crc ^ byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// CRC-16 table for polynomial x^16 + x^15 + x^2 + 1, initial value 0 (no reflection).
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = (index as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

fn crc16_step(crc: u16, byte: u8) -> u16 {
    let index = usize::from((crc >> 8) as u8 ^ byte);
    (crc << 8) ^ CRC16_TABLE.get(index).copied().unwrap_or(0)
}

/// CRC-16 of frames (the value stored at the end of each frame).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0, |crc, &byte| crc16_step(crc, byte))
}

/// One FLAC frame of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset in the input.
    pub offset: usize,
    /// Length in bytes, header and CRC-16 included.
    pub len: usize,
    /// Samples per channel.
    pub samples: u32,
}

impl Frame {
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset.saturating_add(self.len)
    }

    /// The frame's bytes in `data`, if `data` is long enough.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        data.get(self.range())
    }
}

/// What [`scan_flac`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlacScan {
    pub info: StreamInfo,
    pub frames: Vec<Frame>,
    /// Samples per channel in all frames (equal to `info.total_samples` when that is known).
    pub total_samples: u64,
}

/// Finds the STREAMINFO and every frame of a native FLAC stream (a leading ID3v2 tag is
/// skipped, trailing tags are ignored).
///
/// # Errors
/// [`MediaError::Empty`]; [`MediaError::NotFlac`] without the `fLaC` marker and a
/// STREAMINFO block; [`MediaError::CorruptFlac`] (with the byte offset) where a frame header
/// is missing or a frame fails its CRC, or where the frames' samples disagree with
/// STREAMINFO's total; [`MediaError::TooShort`] when there is no frame at all.
pub fn scan_flac(data: &[u8]) -> Result<FlacScan, MediaError> {
    if data.is_empty() {
        return Err(MediaError::Empty);
    }
    let start = crate::tags::id3v2_len(data).unwrap_or(0);
    let stream = data.get(start..).unwrap_or_default();
    if stream.get(..4) != Some(MAGIC.as_slice()) {
        return Err(MediaError::NotFlac);
    }
    // Metadata blocks: 1 byte (last flag, type), 3 bytes length, body; STREAMINFO first.
    let mut at = start + 4;
    let mut info = None;
    loop {
        let header = data.get(at..at + 4).ok_or(MediaError::NotFlac)?;
        let [flags, l0, l1, l2] = [header[0], header[1], header[2], header[3]];
        let len = u32::from_be_bytes([0, l0, l1, l2]) as usize;
        let body = data.get(at + 4..at + 4 + len).ok_or(MediaError::NotFlac)?;
        if info.is_none() {
            if flags & 0x7F != 0 || len != STREAMINFO_LEN {
                return Err(MediaError::NotFlac);
            }
            info = Some(StreamInfo::parse(body).ok_or(MediaError::NotFlac)?);
        }
        at += 4 + len;
        if flags & 0x80 != 0 {
            break;
        }
    }
    let info = info.ok_or(MediaError::NotFlac)?;
    let frames = scan_frames(data, at, &info)?;
    let total_samples = frames.iter().map(|f| u64::from(f.samples)).sum();
    if info.total_samples != 0 && total_samples != info.total_samples {
        return Err(MediaError::CorruptFlac {
            offset: data.len() as u64,
        });
    }
    Ok(FlacScan {
        info,
        frames,
        total_samples,
    })
}

/// Tags that may follow a FLAC stream's last frame (ID3v1, APEv2, ID3v2).
const TRAILERS: [&[u8]; 3] = [b"TAG", b"APETAGEX", b"ID3"];

fn scan_frames(data: &[u8], first: usize, info: &StreamInfo) -> Result<Vec<Frame>, MediaError> {
    let mut frames = Vec::new();
    let mut at = first;
    let mut samples_before = 0u64;
    let corrupt = |offset: usize| MediaError::CorruptFlac {
        offset: offset as u64,
    };
    let mut expected: Option<(bool, u64)> = None;
    while at < data.len() {
        let header = FrameHeader::parse(data.get(at..).unwrap_or_default())
            .filter(|header| header.fits(info))
            .filter(|header| {
                expected.is_none_or(|next| next == (header.variable_block_size, header.number))
            })
            .ok_or_else(|| corrupt(at))?;
        let next_number = |header: &FrameHeader| {
            if header.variable_block_size {
                header.number.saturating_add(u64::from(header.block_size))
            } else {
                header.number.saturating_add(1)
            }
        };
        let follows = next_number(&header);
        let samples_after = samples_before + u64::from(header.block_size);
        let complete = info.total_samples != 0 && samples_after == info.total_samples;

        // Walk the frame with a running CRC-16; the smallest frame is a header and a CRC.
        let mut crc = 0u16;
        let mut end = None;
        let mut first_fit = None;
        let mut index = at;
        for &byte in data.get(at..).unwrap_or_default() {
            crc = crc16_step(crc, byte);
            index += 1;
            if crc != 0 || index < at + header.len + 2 {
                continue;
            }
            if index == data.len() {
                end = Some(index);
                break;
            }
            let next_fits = data
                .get(index..index + MAX_HEADER_LEN.min(data.len() - index))
                .and_then(FrameHeader::parse)
                .is_some_and(|next| {
                    next.fits(info)
                        && (next.variable_block_size, next.number)
                            == (header.variable_block_size, follows)
                });
            if next_fits {
                end = Some(index);
                break;
            }
            // A CRC-16 can hold by chance inside the last frame; where a tag follows the
            // real end, that end wins over the first fit.
            let rest = data.get(index..).unwrap_or_default();
            if complete && TRAILERS.iter().any(|tag| rest.starts_with(tag)) {
                end = Some(index);
                break;
            }
            if complete && first_fit.is_none() {
                first_fit = Some(index);
            }
        }
        let end = match end.or(first_fit) {
            Some(end) => end,
            // A last frame cut short is dropped when every whole frame before it is intact
            // only if nothing says more should be there; otherwise it is an error.
            None => return Err(corrupt(at)),
        };
        frames.push(Frame {
            offset: at,
            len: end - at,
            samples: header.block_size,
        });
        samples_before = samples_after;
        expected = Some((header.variable_block_size, follows));
        if complete {
            // Every declared sample is in: what follows is trailing tags.
            break;
        }
        at = end;
    }
    if frames.is_empty() {
        return Err(MediaError::TooShort);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn crcs_match_the_reference_check_values() {
        // The "check" values of CRC-8/SMBUS and CRC-16/UMTS (FLAC's two CRCs).
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }

    #[test]
    fn coded_numbers_decode() {
        assert_eq!(coded_number(&[0x05]), Some((5, 1)));
        assert_eq!(coded_number(&[0xC2, 0x80]), Some((0x80, 2)));
        assert_eq!(coded_number(&[0xE0, 0xA0, 0x80]), Some((0x800, 3)));
        assert_eq!(coded_number(&[0x80]), None);
        assert_eq!(coded_number(&[0xC2, 0x00]), None);
        assert_eq!(coded_number(&[0xFF, 0x80]), None);
        assert_eq!(
            coded_number(&[0xFE, 0x80 | 0x3F, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF]),
            Some(((1 << 36) - 1, 7))
        );
    }

    #[test]
    fn streaminfo_round_trips() {
        let info = StreamInfo {
            min_block_size: 4096,
            max_block_size: 4096,
            min_frame_size: 14,
            max_frame_size: 0xABCDE,
            sample_rate: 44_100,
            channels: 2,
            bits_per_sample: 24,
            total_samples: 123_456_789,
            md5: [7; 16],
        };
        assert_eq!(StreamInfo::parse(&info.to_bytes()), Some(info));
    }

    #[test]
    fn header_needs_a_right_crc8() {
        // Fixed block size, 4096 samples (code 12), 44.1 kHz (9), stereo (1), 16 bit (4),
        // frame 0.
        let mut header = vec![0xFF, 0xF8, 0xC9, 0x18, 0x00];
        header.push(crc8(&header));
        let parsed = FrameHeader::parse(&header).unwrap();
        assert_eq!(parsed.block_size, 4096);
        assert_eq!(parsed.sample_rate, Some(44_100));
        assert_eq!(parsed.channels, 2);
        assert_eq!(parsed.bits_per_sample, Some(16));
        assert_eq!(parsed.len, 6);
        header[5] ^= 1;
        assert_eq!(FrameHeader::parse(&header), None);
    }

    #[test]
    fn not_flac_is_refused() {
        assert_eq!(scan_flac(b""), Err(MediaError::Empty));
        assert_eq!(scan_flac(b"RIFF....WAVE"), Err(MediaError::NotFlac));
        assert_eq!(scan_flac(b"fLaC\x80\x00\x00\x22"), Err(MediaError::NotFlac));
    }
}

//! Builders for synthetic MP3 data shared by the unit tests.

#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

use crate::mpeg::FrameHeader;

/// The raw fields of a frame header, to build valid and invalid headers alike.
#[derive(Debug, Clone, Copy)]
pub struct HeaderBits {
    pub version: u8,
    pub layer: u8,
    pub crc: bool,
    pub bitrate_index: u8,
    pub sample_rate_index: u8,
    pub padding: bool,
    pub channel_mode: u8,
}

impl Default for HeaderBits {
    /// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo.
    fn default() -> Self {
        HeaderBits {
            version: 0b11,
            layer: 0b01,
            crc: false,
            bitrate_index: 9,
            sample_rate_index: 0,
            padding: false,
            channel_mode: 0b01,
        }
    }
}

pub fn header_bytes(bits: HeaderBits) -> [u8; 4] {
    [
        0xFF,
        0xE0 | (bits.version & 3) << 3 | (bits.layer & 3) << 1 | u8::from(!bits.crc),
        (bits.bitrate_index & 0xF) << 4
            | (bits.sample_rate_index & 3) << 2
            | u8::from(bits.padding) << 1,
        (bits.channel_mode & 3) << 6,
    ]
}

/// A whole frame: the header and a payload of `fill` bytes up to its frame length.
pub fn frame_with(bits: HeaderBits, fill: u8) -> Vec<u8> {
    let header = header_bytes(bits);
    let len = FrameHeader::parse(header).unwrap().frame_len();
    let mut frame = vec![fill; len];
    frame[..4].copy_from_slice(&header);
    frame
}

pub fn frame(bits: HeaderBits) -> Vec<u8> {
    frame_with(bits, 0)
}

/// `count` frames of the same kind, each payload filled with its index so frames differ.
pub fn frames(bits: HeaderBits, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| frame_with(bits, (i % 200) as u8))
        .collect()
}

/// A LAME-style Xing (or "Info") header frame.
pub fn xing_frame(bits: HeaderBits, magic: &[u8; 4]) -> Vec<u8> {
    let mut frame = frame(bits);
    let header = FrameHeader::parse_slice(&frame).unwrap();
    let at = 4 + header.side_info_len();
    frame[at..at + 4].copy_from_slice(magic);
    frame
}

/// A Fraunhofer VBRI header frame.
pub fn vbri_frame(bits: HeaderBits) -> Vec<u8> {
    let mut frame = frame(bits);
    frame[36..40].copy_from_slice(b"VBRI");
    frame
}

pub fn id3v2_tag(body_len: usize, footer: bool) -> Vec<u8> {
    let size = [
        (body_len >> 21 & 0x7F) as u8,
        (body_len >> 14 & 0x7F) as u8,
        (body_len >> 7 & 0x7F) as u8,
        (body_len & 0x7F) as u8,
    ];
    let flags = if footer { 0x10 } else { 0 };
    let mut tag = vec![b'I', b'D', b'3', 4, 0, flags];
    tag.extend(size);
    // A body that even contains a frame sync, which must not be taken for audio.
    tag.extend((0..body_len).map(|i| if i % 7 == 0 { 0xFF } else { 0xFB }));
    if footer {
        tag.extend([b'3', b'D', b'I', 4, 0, flags]);
        tag.extend(size);
    }
    tag
}

pub fn id3v1_tag() -> Vec<u8> {
    let mut tag = vec![0u8; 128];
    tag[..3].copy_from_slice(b"TAG");
    tag[3..10].copy_from_slice(b"A title");
    tag
}

/// An APEv2 tag with `items` small items, with or without its header.
pub fn ape_tag(items: u32, with_header: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..items {
        body.extend(5u32.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        body.extend(format!("Key{i}\0value").as_bytes());
    }
    let size = (body.len() + 32) as u32;
    let block = |is_header: bool| {
        let mut flags = 1u32 << 31;
        if is_header {
            flags |= 1 << 29;
        }
        if !with_header {
            flags = 0;
        }
        let mut out = b"APETAGEX".to_vec();
        out.extend(2000u32.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(items.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend([0u8; 8]);
        out
    };
    let mut tag = Vec::new();
    if with_header {
        tag.extend(block(true));
    }
    tag.extend(body);
    tag.extend(block(false));
    tag
}

pub fn lyrics3v2_tag(lyrics: &str) -> Vec<u8> {
    let mut tag = b"LYRICSBEGIN".to_vec();
    tag.extend(b"LYR");
    tag.extend(format!("{:05}", lyrics.len()).as_bytes());
    tag.extend(lyrics.as_bytes());
    let size = tag.len();
    tag.extend(format!("{size:06}").as_bytes());
    tag.extend(b"LYRICS200");
    tag
}

pub fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

//! MPEG audio frame headers: MPEG-1 (ISO 11172-3), MPEG-2 LSF (ISO 13818-3) and the
//! unofficial but common MPEG-2.5, Layers I, II and III.
//!
//! A header is four bytes; everything else about a frame (its length, how many samples it
//! decodes to, where the Layer III side information ends) follows from it.

/// The MPEG audio version of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpegVersion {
    /// MPEG-1: 32, 44.1 and 48 kHz.
    Mpeg1,
    /// MPEG-2 low sampling frequencies: 16, 22.05 and 24 kHz.
    Mpeg2,
    /// MPEG-2.5: 8, 11.025 and 12 kHz.
    Mpeg25,
}

/// The MPEG audio layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Layer I: 384 samples per frame.
    One,
    /// Layer II (MP2): 1152 samples per frame.
    Two,
    /// Layer III (MP3): 1152 samples per frame for MPEG-1, 576 for MPEG-2 and 2.5.
    Three,
}

/// How the channels of a frame are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelMode {
    Stereo,
    JointStereo,
    DualChannel,
    Mono,
}

impl ChannelMode {
    /// Number of decoded channels: 1 for mono, 2 otherwise.
    pub fn channels(self) -> u8 {
        match self {
            Self::Mono => 1,
            Self::Stereo | Self::JointStereo | Self::DualChannel => 2,
        }
    }
}

/// Bitrates in kbit/s by bitrate index; index 0 (free format) and 15 (bad) are 0 = invalid.
const BITRATES_V1_L1: [u16; 16] = [
    0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0,
];
const BITRATES_V1_L2: [u16; 16] = [
    0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0,
];
const BITRATES_V1_L3: [u16; 16] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
];
const BITRATES_V2_L1: [u16; 16] = [
    0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0,
];
const BITRATES_V2_L23: [u16; 16] = [
    0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0,
];

/// Sample rates in Hz by sample-rate index; index 3 is reserved.
const SAMPLE_RATES_V1: [u32; 3] = [44_100, 48_000, 32_000];
const SAMPLE_RATES_V2: [u32; 3] = [22_050, 24_000, 16_000];
const SAMPLE_RATES_V25: [u32; 3] = [11_025, 12_000, 8_000];

/// The bitrate table for a version and layer, indexed by the header's bitrate index.
pub fn bitrate_table(version: MpegVersion, layer: Layer) -> &'static [u16; 16] {
    match (version, layer) {
        (MpegVersion::Mpeg1, Layer::One) => &BITRATES_V1_L1,
        (MpegVersion::Mpeg1, Layer::Two) => &BITRATES_V1_L2,
        (MpegVersion::Mpeg1, Layer::Three) => &BITRATES_V1_L3,
        (MpegVersion::Mpeg2 | MpegVersion::Mpeg25, Layer::One) => &BITRATES_V2_L1,
        (MpegVersion::Mpeg2 | MpegVersion::Mpeg25, Layer::Two | Layer::Three) => &BITRATES_V2_L23,
    }
}

/// The sample rates of a version, indexed by the header's sample-rate index.
pub fn sample_rate_table(version: MpegVersion) -> &'static [u32; 3] {
    match version {
        MpegVersion::Mpeg1 => &SAMPLE_RATES_V1,
        MpegVersion::Mpeg2 => &SAMPLE_RATES_V2,
        MpegVersion::Mpeg25 => &SAMPLE_RATES_V25,
    }
}

/// A parsed, valid MPEG audio frame header.
///
/// Only [`FrameHeader::parse`] makes one, so every value is in the tables: the sample rate is
/// never 0 and the frame length is always at least a header long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    version: MpegVersion,
    layer: Layer,
    crc_protected: bool,
    bitrate_kbps: u16,
    sample_rate: u32,
    padding: bool,
    channel_mode: ChannelMode,
    frame_len: u16,
}

impl FrameHeader {
    /// Length of a header in bytes.
    pub const LEN: usize = 4;

    /// Parses the four bytes at the start of a frame.
    ///
    /// Returns `None` for anything that is not a usable header: no 11-bit sync, reserved
    /// version or layer, free-format (index 0) or bad (index 15) bitrate, reserved sample rate.
    pub fn parse(bytes: [u8; 4]) -> Option<FrameHeader> {
        let word = u32::from_be_bytes(bytes);
        if word & 0xFFE0_0000 != 0xFFE0_0000 {
            return None;
        }
        let version = match (word >> 19) & 0b11 {
            0b00 => MpegVersion::Mpeg25,
            0b10 => MpegVersion::Mpeg2,
            0b11 => MpegVersion::Mpeg1,
            _ => return None,
        };
        let layer = match (word >> 17) & 0b11 {
            0b01 => Layer::Three,
            0b10 => Layer::Two,
            0b11 => Layer::One,
            _ => return None,
        };
        let crc_protected = (word >> 16) & 1 == 0;
        let bitrate_index = ((word >> 12) & 0xF) as usize;
        let sample_rate_index = ((word >> 10) & 0b11) as usize;
        let padding = (word >> 9) & 1 == 1;
        let channel_mode = match (word >> 6) & 0b11 {
            0b00 => ChannelMode::Stereo,
            0b01 => ChannelMode::JointStereo,
            0b10 => ChannelMode::DualChannel,
            _ => ChannelMode::Mono,
        };

        let bitrate_kbps = bitrate_table(version, layer)
            .get(bitrate_index)
            .copied()
            .filter(|&kbps| kbps != 0)?;
        let sample_rate = sample_rate_table(version).get(sample_rate_index).copied()?;
        let frame_len = compute_frame_len(version, layer, bitrate_kbps, sample_rate, padding);

        Some(FrameHeader {
            version,
            layer,
            crc_protected,
            bitrate_kbps,
            sample_rate,
            padding,
            channel_mode,
            frame_len,
        })
    }

    /// Parses the header at the start of `bytes`, if there are four bytes and they form one.
    pub fn parse_slice(bytes: &[u8]) -> Option<FrameHeader> {
        let header: [u8; 4] = bytes.get(..Self::LEN)?.try_into().ok()?;
        Self::parse(header)
    }

    pub fn version(&self) -> MpegVersion {
        self.version
    }

    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// Whether a 16-bit CRC follows the header.
    pub fn crc_protected(&self) -> bool {
        self.crc_protected
    }

    pub fn bitrate_kbps(&self) -> u32 {
        u32::from(self.bitrate_kbps)
    }

    /// Sample rate in Hz; never 0.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Whether the frame carries one extra slot (4 bytes in Layer I, 1 byte otherwise).
    pub fn padding(&self) -> bool {
        self.padding
    }

    pub fn channel_mode(&self) -> ChannelMode {
        self.channel_mode
    }

    pub fn channels(&self) -> u8 {
        self.channel_mode.channels()
    }

    /// Length of the whole frame in bytes, header included.
    pub fn frame_len(&self) -> usize {
        usize::from(self.frame_len)
    }

    /// Number of PCM samples (per channel) the frame decodes to.
    pub fn samples(&self) -> u32 {
        match (self.layer, self.version) {
            (Layer::One, _) => 384,
            (Layer::Two, _) | (Layer::Three, MpegVersion::Mpeg1) => 1152,
            (Layer::Three, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
        }
    }

    /// Length of the Layer III side information that follows the header (and its CRC);
    /// 0 for Layers I and II. A Xing/Info tag sits right after it.
    pub fn side_info_len(&self) -> usize {
        let mono = self.channel_mode == ChannelMode::Mono;
        match (self.layer, self.version, mono) {
            (Layer::One | Layer::Two, _, _) => 0,
            (Layer::Three, MpegVersion::Mpeg1, false) => 32,
            (Layer::Three, MpegVersion::Mpeg1, true) => 17,
            (Layer::Three, MpegVersion::Mpeg2 | MpegVersion::Mpeg25, false) => 17,
            (Layer::Three, MpegVersion::Mpeg2 | MpegVersion::Mpeg25, true) => 9,
        }
    }

    /// Whether `other` can continue the same stream: same version, layer and sample rate.
    /// Bitrate (VBR), padding and channel mode may change from frame to frame.
    pub fn same_stream_as(&self, other: &FrameHeader) -> bool {
        self.version == other.version
            && self.layer == other.layer
            && self.sample_rate == other.sample_rate
    }
}

/// Frame length in bytes from ISO 11172-3 §2.4.3.1 and ISO 13818-3 §2.4.3.1.
///
/// The largest possible frame (MPEG-2.5 Layer II, 160 kbit/s, 8 kHz, padded) is 2881 bytes, so
/// the result always fits a `u16`.
fn compute_frame_len(
    version: MpegVersion,
    layer: Layer,
    bitrate_kbps: u16,
    sample_rate: u32,
    padding: bool,
) -> u16 {
    let bits_per_second = u32::from(bitrate_kbps) * 1000;
    let pad = u32::from(padding);
    let len = match (layer, version) {
        // Layer I counts in 4-byte slots: the division happens before the multiplication.
        (Layer::One, _) => (12 * bits_per_second / sample_rate + pad) * 4,
        (Layer::Two, _) | (Layer::Three, MpegVersion::Mpeg1) => {
            144 * bits_per_second / sample_rate + pad
        }
        // Layer III LSF frames hold half the samples, so half the bytes.
        (Layer::Three, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => {
            72 * bits_per_second / sample_rate + pad
        }
    };
    u16::try_from(len).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::test_support::{HeaderBits, header_bytes};

    const VERSIONS: [(MpegVersion, u8); 3] = [
        (MpegVersion::Mpeg1, 0b11),
        (MpegVersion::Mpeg2, 0b10),
        (MpegVersion::Mpeg25, 0b00),
    ];
    const LAYERS: [(Layer, u8); 3] = [(Layer::One, 0b11), (Layer::Two, 0b10), (Layer::Three, 0b01)];

    /// Independent restatement of the standard tables, row by row.
    fn expected_bitrate(version: MpegVersion, layer: Layer, index: usize) -> u32 {
        let row: [u32; 14] = match (version, layer) {
            (MpegVersion::Mpeg1, Layer::One) => [
                32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
            ],
            (MpegVersion::Mpeg1, Layer::Two) => [
                32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
            ],
            (MpegVersion::Mpeg1, Layer::Three) => [
                32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ],
            (_, Layer::One) => [
                32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
            ],
            (_, _) => [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        };
        row[index - 1]
    }

    fn expected_sample_rate(version: MpegVersion, index: usize) -> u32 {
        let base = [44_100, 48_000, 32_000][index];
        match version {
            MpegVersion::Mpeg1 => base,
            MpegVersion::Mpeg2 => base / 2,
            MpegVersion::Mpeg25 => base / 4,
        }
    }

    #[test]
    fn every_layer_three_header_has_the_formula_length_and_samples() {
        let mut checked = 0;
        for (version, version_bits) in VERSIONS {
            for sample_rate_index in 0..3 {
                for bitrate_index in 1..15 {
                    for padding in [false, true] {
                        let bytes = header_bytes(HeaderBits {
                            version: version_bits,
                            layer: 0b01,
                            bitrate_index: bitrate_index as u8,
                            sample_rate_index: sample_rate_index as u8,
                            padding,
                            ..HeaderBits::default()
                        });
                        let header = FrameHeader::parse(bytes);
                        let Some(header) = header else {
                            panic!("rejected {version:?} {bitrate_index} {sample_rate_index}");
                        };
                        let kbps = expected_bitrate(version, Layer::Three, bitrate_index);
                        let rate = expected_sample_rate(version, sample_rate_index);
                        let coefficient = if version == MpegVersion::Mpeg1 {
                            144
                        } else {
                            72
                        };
                        let len = coefficient * kbps * 1000 / rate + u32::from(padding);
                        let samples = if version == MpegVersion::Mpeg1 {
                            1152
                        } else {
                            576
                        };

                        assert_eq!(header.version(), version);
                        assert_eq!(header.layer(), Layer::Three);
                        assert_eq!(header.bitrate_kbps(), kbps);
                        assert_eq!(header.sample_rate(), rate);
                        assert_eq!(header.padding(), padding);
                        assert_eq!(header.frame_len(), len as usize, "{header:?}");
                        assert_eq!(header.samples(), samples);
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 3 * 14 * 2);
    }

    #[test]
    fn every_layer_one_and_two_header_has_the_formula_length_and_samples() {
        for (version, version_bits) in VERSIONS {
            for (layer, layer_bits) in [LAYERS[0], LAYERS[1]] {
                for sample_rate_index in 0..3 {
                    for bitrate_index in 1..15 {
                        for padding in [false, true] {
                            let bytes = header_bytes(HeaderBits {
                                version: version_bits,
                                layer: layer_bits,
                                bitrate_index: bitrate_index as u8,
                                sample_rate_index: sample_rate_index as u8,
                                padding,
                                ..HeaderBits::default()
                            });
                            let header = FrameHeader::parse(bytes).unwrap();
                            let bps = expected_bitrate(version, layer, bitrate_index) * 1000;
                            let rate = expected_sample_rate(version, sample_rate_index);
                            let pad = u32::from(padding);
                            let (len, samples) = match layer {
                                Layer::One => ((12 * bps / rate + pad) * 4, 384),
                                _ => (144 * bps / rate + pad, 1152),
                            };
                            assert_eq!(header.frame_len(), len as usize, "{header:?}");
                            assert_eq!(header.samples(), samples);
                            assert_eq!(header.side_info_len(), 0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn well_known_frames() {
        // 128 kbit/s, 44.1 kHz, MPEG-1 Layer III, joint stereo: the most common MP3 frame.
        let header = FrameHeader::parse([0xFF, 0xFB, 0x90, 0x64]).unwrap();
        assert_eq!(header.frame_len(), 417);
        assert_eq!(header.channel_mode(), ChannelMode::JointStereo);
        assert_eq!(header.channels(), 2);
        assert!(!header.crc_protected());
        assert_eq!(header.side_info_len(), 32);
        // Padded: 418 bytes.
        assert_eq!(
            FrameHeader::parse([0xFF, 0xFB, 0x92, 0x64])
                .unwrap()
                .frame_len(),
            418
        );
        // MPEG-1 Layer II, 192 kbit/s, 48 kHz: 144 * 192000 / 48000 = 576.
        let mp2 = FrameHeader::parse([0xFF, 0xFD, 0xA4, 0x00]).unwrap();
        assert_eq!(
            (mp2.layer(), mp2.frame_len(), mp2.samples()),
            (Layer::Two, 576, 1152)
        );
        // MPEG-1 Layer I, 384 kbit/s, 44.1 kHz, padded: (12 * 384000 / 44100 + 1) * 4 = 420.
        let mp1 = FrameHeader::parse([0xFF, 0xFF, 0xC2, 0x00]).unwrap();
        assert_eq!(
            (mp1.layer(), mp1.frame_len(), mp1.samples()),
            (Layer::One, 420, 384)
        );
        // MPEG-2 Layer III, mono, 64 kbit/s, 22.05 kHz: 72 * 64000 / 22050 = 208.
        let lsf = FrameHeader::parse([0xFF, 0xF3, 0x80, 0xC0]).unwrap();
        assert_eq!(
            (lsf.frame_len(), lsf.samples(), lsf.channels()),
            (208, 576, 1)
        );
        assert_eq!(lsf.side_info_len(), 9);
    }

    #[test]
    fn invalid_headers_are_rejected() {
        let valid = HeaderBits::default();
        assert!(FrameHeader::parse(header_bytes(valid)).is_some());
        let invalid = [
            HeaderBits {
                bitrate_index: 0,
                ..valid
            },
            HeaderBits {
                bitrate_index: 15,
                ..valid
            },
            HeaderBits {
                sample_rate_index: 3,
                ..valid
            },
            HeaderBits {
                version: 0b01,
                ..valid
            },
            HeaderBits {
                layer: 0b00,
                ..valid
            },
        ];
        for bits in invalid {
            assert_eq!(FrameHeader::parse(header_bytes(bits)), None, "{bits:?}");
        }
        // Sync broken in either byte.
        assert_eq!(FrameHeader::parse([0xFE, 0xFB, 0x90, 0x64]), None);
        assert_eq!(FrameHeader::parse([0xFF, 0xDB, 0x90, 0x64]), None);
        assert_eq!(FrameHeader::parse([0; 4]), None);
        assert_eq!(FrameHeader::parse_slice(&[0xFF, 0xFB, 0x90]), None);
    }

    #[test]
    fn crc_flag_and_stream_compatibility() {
        let protected = FrameHeader::parse([0xFF, 0xFA, 0x90, 0x64]).unwrap();
        assert!(protected.crc_protected());
        let vbr = FrameHeader::parse([0xFF, 0xFB, 0xE0, 0xC4]).unwrap();
        assert!(protected.same_stream_as(&vbr));
        let other_rate = FrameHeader::parse([0xFF, 0xFB, 0x94, 0x64]).unwrap();
        assert!(!protected.same_stream_as(&other_rate));
    }
}

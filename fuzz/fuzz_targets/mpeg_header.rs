//! `FrameHeader::parse` over any four bytes, checked against an independent reading of the
//! header bits and the frame-length formulas of ISO 11172-3 and ISO 13818-3, computed in
//! `u64` so that nothing can overflow or saturate unnoticed.

#![no_main]

use legato_media::mpeg::{FrameHeader, Layer, MpegVersion, bitrate_table, sample_rate_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(&[b0, b1, b2, b3]) = data.get(..4) else {
        assert_eq!(FrameHeader::parse_slice(data), None);
        return;
    };
    let parsed = FrameHeader::parse([b0, b1, b2, b3]);
    assert_eq!(FrameHeader::parse_slice(data), parsed);

    let word = u32::from_be_bytes([b0, b1, b2, b3]);
    let sync = word >> 21 == 0x7FF;
    let version = match (word >> 19) & 3 {
        0 => Some(MpegVersion::Mpeg25),
        2 => Some(MpegVersion::Mpeg2),
        3 => Some(MpegVersion::Mpeg1),
        _ => None,
    };
    let layer = match (word >> 17) & 3 {
        1 => Some(Layer::Three),
        2 => Some(Layer::Two),
        3 => Some(Layer::One),
        _ => None,
    };
    let bitrate_index = ((word >> 12) & 0xF) as usize;
    let rate_index = ((word >> 10) & 3) as usize;
    let usable = sync
        && version.is_some()
        && layer.is_some()
        && (1..=14).contains(&bitrate_index)
        && rate_index != 3;
    assert_eq!(parsed.is_some(), usable, "{data:02x?}");
    let (Some(header), Some(version), Some(layer)) = (parsed, version, layer) else {
        return;
    };

    assert_eq!(header.version(), version);
    assert_eq!(header.layer(), layer);
    assert_eq!(header.crc_protected(), (word >> 16) & 1 == 0);
    assert_eq!(header.padding(), (word >> 9) & 1 == 1);
    assert_eq!(header.channels(), if (word >> 6) & 3 == 3 { 1 } else { 2 });
    let kbps = u64::from(bitrate_table(version, layer)[bitrate_index]);
    let rate = u64::from(sample_rate_table(version)[rate_index]);
    assert_eq!(u64::from(header.bitrate_kbps()), kbps);
    assert_eq!(u64::from(header.sample_rate()), rate);
    assert!(kbps > 0 && rate > 0);

    let samples = match (layer, version) {
        (Layer::One, _) => 384,
        (Layer::Two, _) | (Layer::Three, MpegVersion::Mpeg1) => 1152,
        (Layer::Three, _) => 576,
    };
    assert_eq!(header.samples(), samples);

    let pad = u64::from(header.padding());
    let expected_len = match layer {
        Layer::One => (12 * kbps * 1000 / rate + pad) * 4,
        // Bytes = samples / 8 * bitrate / rate: 144 for 1152 samples, 72 for 576.
        _ => u64::from(samples) / 8 * kbps * 1000 / rate + pad,
    };
    assert_eq!(header.frame_len() as u64, expected_len, "{header:?}");
    assert!(
        header.frame_len() < usize::from(u16::MAX),
        "saturated: {header:?}"
    );
    // A frame always has room for its header, CRC and Layer III side information, so the
    // scanner and the Xing/Info check never look before the frame's own bytes.
    let crc = if header.crc_protected() { 2 } else { 0 };
    assert!(header.frame_len() >= FrameHeader::LEN + crc + header.side_info_len());

    // A header continues its own stream, and the duration of a frame is finite and short.
    assert!(header.same_stream_as(&header));
    let seconds = f64::from(header.samples()) / f64::from(header.sample_rate());
    assert!(seconds.is_finite() && seconds > 0.0 && seconds < 0.2);
});

//! The FLAC scanner on any bytes, and the fMP4 packager on whatever it finds. Beyond "no
//! panic": frames lie within the data, in order, without overlapping, each starting with a
//! header whose CRC-8 holds and ending with a CRC-16 that holds; their samples add up; and
//! the segments carry exactly the frames' bytes, with presentation durations adding up to the
//! stream's length.

#![no_main]

use legato_media::flac::{FrameHeader, crc16, scan_flac};
use legato_media::fmp4::{Cut, flac_track};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Also with a valid-looking start, so the fuzzer reaches the frame walk quickly.
    let mut prefixed = b"fLaC\x80\x00\x00\x22\x10\x00\x10\x00\x00\x00\x00\x00\x00\x00\x0a\xc4\x42\xf0\x00\x00\x00\x00".to_vec();
    prefixed.extend_from_slice(&[0; 16]);
    prefixed.extend_from_slice(data);
    for input in [data, prefixed.as_slice()] {
        check(input);
    }
});

fn check(data: &[u8]) {
    let Ok(scan) = scan_flac(data) else { return };
    let mut end = 0;
    let mut samples = 0u64;
    for frame in &scan.frames {
        assert!(frame.offset >= end, "frames overlap or go backwards");
        let bytes = frame.bytes(data).expect("a frame lies within the data");
        let header = FrameHeader::parse(bytes).expect("a frame starts with a valid header");
        assert_eq!(header.block_size, frame.samples);
        assert_eq!(crc16(bytes), 0, "a frame ends with its own CRC-16");
        end = frame.offset + frame.len;
        samples += u64::from(frame.samples);
    }
    assert_eq!(samples, scan.total_samples);

    let Ok(track) = flac_track(data, Cut::Target(1.0)) else { return };
    assert!(track.init_segment().is_ok() || scan.info.sample_rate > 0xF_FFFF);
    let mut carried = 0usize;
    for index in 0..track.segment_count() {
        let segment = track.media_segment(data, index).expect("every planned segment is written");
        carried += segment.len();
    }
    let payload: usize = scan.frames.iter().map(|frame| frame.len).sum();
    assert!(carried >= payload);
    assert_eq!(track.segment_samples().iter().sum::<u64>(), scan.total_samples);
}

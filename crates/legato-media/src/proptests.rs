//! Property tests over random streams of valid frames, junk and arbitrary bytes.

#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

use proptest::collection::vec;
use proptest::prelude::*;

use crate::mpeg::FrameHeader;
use crate::scan::scan_mp3;
use crate::segment::{StreamFormat, samples_to_ticks};
use crate::test_support::{HeaderBits, frame_with, header_bytes};
use crate::ts::demux::demux;
use crate::{FIRST_PTS, MediaError, SegmentOptions, package_mp3};

/// A stretch of frames of one format, maybe preceded by junk.
#[derive(Debug, Clone)]
struct Block {
    junk_before: Vec<u8>,
    format: HeaderBits,
    /// (bitrate index, padding) of each frame.
    frames: Vec<(u8, bool)>,
}

fn format() -> impl Strategy<Value = HeaderBits> {
    (
        prop_oneof![Just(0b11u8), Just(0b10), Just(0b00)],
        prop_oneof![4 => Just(0b01u8), 1 => Just(0b10), 1 => Just(0b11)],
        0u8..3,
        0u8..4,
        any::<bool>(),
    )
        .prop_map(
            |(version, layer, sample_rate_index, channel_mode, crc)| HeaderBits {
                version,
                layer,
                sample_rate_index,
                channel_mode,
                crc,
                ..HeaderBits::default()
            },
        )
}

/// Junk never holds 0xFF, so it cannot fake a frame sync.
fn junk(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(0u8..0xFF, 0..max)
}

fn block(min_frames: usize) -> impl Strategy<Value = Block> {
    (
        junk(40),
        format(),
        vec((1u8..15, any::<bool>()), min_frames..40),
    )
        .prop_map(|(junk_before, format, frames)| Block {
            junk_before,
            format,
            frames,
        })
}

/// Blocks: the first long enough to be recognised (3 frames), later ones long enough to
/// resync on (2 frames); plus trailing junk.
fn stream() -> impl Strategy<Value = (Vec<Block>, Vec<u8>)> {
    (block(3), vec(block(2), 0..6), junk(40)).prop_map(|(first, rest, trailing)| {
        let mut blocks = vec![first];
        blocks.extend(rest);
        (blocks, trailing)
    })
}

/// The file bytes, and each audio frame's bytes with its header.
fn build(blocks: &[Block], trailing: &[u8]) -> (Vec<u8>, Vec<(Vec<u8>, FrameHeader)>) {
    let mut data = Vec::new();
    let mut frames = Vec::new();
    for block in blocks {
        data.extend(&block.junk_before);
        for (i, &(bitrate_index, padding)) in block.frames.iter().enumerate() {
            let bits = HeaderBits {
                bitrate_index,
                padding,
                ..block.format
            };
            let frame = frame_with(bits, (i % 0x7F) as u8 + 1);
            data.extend(&frame);
            frames.push((frame, FrameHeader::parse(header_bytes(bits)).unwrap()));
        }
    }
    data.extend(trailing);
    (data, frames)
}

/// Ticks from the start of the track of every frame, worked out from the frames alone.
fn expected_ticks(frames: &[(Vec<u8>, FrameHeader)]) -> Vec<u64> {
    let mut ticks = Vec::new();
    let mut run_format = None;
    let mut run_start = 0;
    let mut run_samples = 0;
    let mut run_rate = 1;
    for (_, header) in frames {
        let format = StreamFormat::from(header);
        if run_format != Some(format) {
            run_start += samples_to_ticks(run_samples, run_rate);
            run_format = Some(format);
            run_samples = 0;
            run_rate = header.sample_rate();
        }
        ticks.push(run_start + samples_to_ticks(run_samples, run_rate));
        run_samples += u64::from(header.samples());
    }
    ticks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_frame_arrives_once_with_continuous_timestamps(
        (blocks, trailing) in stream(),
        target in prop_oneof![Just(10.0), 0.05f64..4.0],
    ) {
        let (data, frames) = build(&blocks, &trailing);
        let audio: Vec<u8> = frames.iter().flat_map(|(bytes, _)| bytes.clone()).collect();

        let scan = scan_mp3(&data).unwrap();
        prop_assert_eq!(scan.frames.len(), frames.len());

        let package = package_mp3(&data, &SegmentOptions { target_seconds: target }).unwrap();
        let durations = package.segment_durations();
        let total: f64 = durations.iter().sum();
        let duration = package.info().duration;
        prop_assert!((total - duration).abs() <= 1e-9 * duration.max(1.0), "{total} vs {duration}");
        prop_assert!(durations.iter().all(|&d| d > 0.0));

        let segments: Vec<Vec<u8>> = package.clone().into_segments(&data[..]).collect();
        prop_assert_eq!(segments.len(), package.segment_count());
        let demuxed = demux(&segments.concat()).unwrap();
        let payload: Vec<u8> = demuxed.pes.iter().flat_map(|pes| pes.payload.clone()).collect();
        prop_assert_eq!(payload, audio);

        // Each PES is stamped with the time of its first frame.
        let ticks = expected_ticks(&frames);
        let mut frame_index = 0;
        for pes in &demuxed.pes {
            prop_assert_eq!(pes.pts, FIRST_PTS + ticks[frame_index]);
            let mut consumed = 0;
            while consumed < pes.payload.len() {
                consumed += frames[frame_index].0.len();
                frame_index += 1;
            }
            prop_assert_eq!(consumed, pes.payload.len());
        }
        prop_assert_eq!(frame_index, frames.len());
        prop_assert!(demuxed.pes.windows(2).all(|w| w[0].pts < w[1].pts));

        // The playlist matches the plan.
        let playlist = package.media_playlist(&|i| crate::segment_name(i));
        prop_assert_eq!(playlist.matches("#EXTINF:").count(), segments.len());
        let discontinuities = package.plan().iter().filter(|s| s.discontinuity).count();
        prop_assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY\n").count(), discontinuities);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..4096)) {
        check_whatever_comes(&data)?;
    }

    #[test]
    fn damaged_streams_never_panic(
        (blocks, trailing) in stream(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..30),
        cut in any::<prop::sample::Index>(),
    ) {
        let (mut data, _) = build(&blocks, &trailing);
        for (at, byte) in damage {
            let at = at.index(data.len());
            data[at] = byte;
        }
        data.truncate(cut.index(data.len() + 1));
        check_whatever_comes(&data)?;
    }
}

/// Packages and muxes anything; when it is accepted, the TS must be valid and carry exactly
/// the frames the scanner found.
fn check_whatever_comes(data: &[u8]) -> Result<(), TestCaseError> {
    let options = SegmentOptions {
        target_seconds: 0.5,
    };
    match package_mp3(data, &options) {
        Ok(package) => {
            let expected: Vec<u8> = package
                .frames()
                .iter()
                .flat_map(|frame| frame.bytes(data).unwrap().to_vec())
                .collect();
            let _ = package.media_playlist(&|i| crate::segment_name(i));
            let ts: Vec<u8> = package.into_segments(data).flatten().collect();
            let demuxed = demux(&ts).map_err(TestCaseError::fail)?;
            let payload: Vec<u8> = demuxed
                .pes
                .iter()
                .flat_map(|pes| pes.payload.clone())
                .collect();
            prop_assert_eq!(payload, expected);
        }
        Err(MediaError::Empty) => prop_assert!(data.is_empty()),
        Err(_) => {}
    }
    Ok(())
}

/// FLAC streams built from frames with constant subframes (valid headers, CRC-8 and CRC-16).
mod flac {
    use super::*;
    use crate::flac::{StreamInfo, crc8, crc16, scan_flac};
    use crate::fmp4::{Cut, flac_track};

    /// FLAC's coded frame number.
    fn coded(number: u32) -> Vec<u8> {
        match number {
            0..=0x7F => vec![number as u8],
            0x80..=0x7FF => vec![0xC0 | (number >> 6) as u8, 0x80 | (number & 0x3F) as u8],
            _ => vec![
                0xE0 | (number >> 12) as u8,
                0x80 | ((number >> 6) & 0x3F) as u8,
                0x80 | (number & 0x3F) as u8,
            ],
        }
    }

    /// A stereo 16-bit 44.1 kHz frame of `block` samples, both channels at `value`.
    fn frame(number: u32, block: u16, value: i16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xF8, 0x79, 0x18];
        out.extend(coded(number));
        out.extend((block - 1).to_be_bytes());
        out.push(crc8(&out));
        for _ in 0..2 {
            out.push(0x00); // constant subframe, no wasted bits
            out.extend(value.to_be_bytes());
        }
        let crc = crc16(&out);
        out.extend(crc.to_be_bytes());
        out
    }

    fn stream(blocks: &[(u16, i16)], declare_total: bool) -> (Vec<u8>, Vec<usize>) {
        let total: u64 = blocks.iter().map(|&(block, _)| u64::from(block)).sum();
        let info = StreamInfo {
            min_block_size: 16,
            max_block_size: u16::MAX,
            min_frame_size: 0,
            max_frame_size: 0,
            sample_rate: 44_100,
            channels: 2,
            bits_per_sample: 16,
            total_samples: if declare_total { total } else { 0 },
            md5: [0; 16],
        };
        let mut out = b"fLaC\x80\x00\x00\x22".to_vec();
        out.extend(info.to_bytes());
        let mut offsets = Vec::new();
        for (number, &(block, value)) in blocks.iter().enumerate() {
            offsets.push(out.len());
            out.extend(frame(number as u32, block, value));
        }
        (out, offsets)
    }

    fn blocks() -> impl Strategy<Value = Vec<(u16, i16)>> {
        vec((16u16..=8192, any::<i16>()), 1..40)
    }

    proptest! {
        #[test]
        fn every_frame_is_found(blocks in blocks(), declare in any::<bool>(), tag in any::<bool>()) {
            let (mut data, offsets) = stream(&blocks, declare);
            let payload_end = data.len();
            if tag && declare {
                // An ID3v1 tag after the last frame: found as trailing bytes, not a frame.
                data.extend(b"TAG");
                data.extend([b' '; 125]);
            }
            let scan = scan_flac(&data).unwrap();
            let found: Vec<usize> = scan.frames.iter().map(|frame| frame.offset).collect();
            prop_assert_eq!(&found, &offsets);
            prop_assert_eq!(scan.frames.last().map(|f| f.offset + f.len), Some(payload_end));
            let total: u64 = blocks.iter().map(|&(block, _)| u64::from(block)).sum();
            prop_assert_eq!(scan.total_samples, total);

            // Packaged: durations add up, and the segments carry every frame byte.
            let track = flac_track(&data, Cut::Target(0.5)).unwrap();
            prop_assert_eq!(track.segment_samples().iter().sum::<u64>(), total);
            prop_assert!(track.init_segment().is_ok());
            let carried: usize = (0..track.segment_count())
                .map(|index| track.media_segment(&data, index).unwrap().len())
                .sum();
            prop_assert!(carried >= payload_end - offsets[0]);
        }

        #[test]
        fn damaged_flac_never_panics(blocks in blocks(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let (mut data, _) = stream(&blocks, true);
            let index = at.index(data.len());
            data[index] = byte;
            if let Ok(scan) = scan_flac(&data) {
                for frame in &scan.frames {
                    prop_assert_eq!(crc16(frame.bytes(&data).unwrap()), 0);
                }
                let _ = flac_track(&data, Cut::Target(1.0));
            }
        }

        #[test]
        fn arbitrary_bytes_after_the_marker_never_panic(tail in vec(any::<u8>(), 0..2000)) {
            let mut data = b"fLaC".to_vec();
            data.extend(tail);
            let _ = scan_flac(&data);
            let _ = flac_track(&data, Cut::Target(1.0));
        }

        #[test]
        fn any_track_description_is_packaged_or_refused(
            lens in vec(0u32..3000, 0..60),
            samples in 1u32..5000,
            priming in 0u32..5000,
            valid in 0u64..200_000,
            target in 0.01f64..20.0,
        ) {
            let track = crate::fmp4::aac_track(vec![0x12, 0x10], 44_100, 2, &lens, priming, valid, 128, Cut::Target(target));
            let _ = samples;
            if let Ok(track) = track {
                let data = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
                prop_assert_eq!(track.segment_samples().iter().sum::<u64>(), valid);
                prop_assert!(track.init_segment().is_ok());
                for index in 0..track.segment_count() {
                    prop_assert!(track.media_segment(&data, index).is_some());
                }
            }
        }
    }
}

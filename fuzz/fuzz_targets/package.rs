//! The whole media pipeline on any bytes with a fuzzed segment target: `package_mp3`, then
//! every segment muxed (`into_segments`, and `segment_ts` alone), then the media playlist.
//!
//! Input: `[mode, hi, lo, audio...]`. The target is `(u16(hi, lo) + 1) / 2000 * (1 + mode % 4)`
//! seconds (0.5 ms to about 131 s); with `mode == 0xFF` it is instead the `f64` whose bits are
//! the next eight bytes, so NaN, infinities, zero and negatives are tried too.
//!
//! Invariants: bad targets are refused; otherwise packaging fails exactly when scanning does;
//! the plan covers every frame once, in order; every segment is whole 188-byte packets each
//! starting with 0x47; a segment muxed alone equals the same segment muxed in order; the
//! segment durations sum to `info().duration` within 1e-6 s; the playlist parses back with
//! one entry per segment.

#![no_main]

use legato_media::scan::scan_mp3;
use legato_media::{MediaError, SegmentOptions, package_mp3, segment_name};
use libfuzzer_sys::fuzz_target;

const PACKET_LEN: usize = 188;

fuzz_target!(|data: &[u8]| {
    let Some((&[mode, hi, lo], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (target_seconds, audio) = match rest.split_first_chunk::<8>() {
        Some((bits, audio)) if mode == 0xFF => (f64::from_be_bytes(*bits), audio),
        _ => {
            let steps = f64::from(u16::from_be_bytes([hi, lo])) + 1.0;
            (steps / 2000.0 * f64::from(1 + mode % 4), rest)
        }
    };
    let options = SegmentOptions { target_seconds };
    let result = package_mp3(audio, &options);

    if !(target_seconds.is_finite() && target_seconds > 0.0) {
        assert!(
            matches!(result, Err(MediaError::InvalidSegmentTarget(_))),
            "{target_seconds}: {result:?}"
        );
        return;
    }
    let scan = scan_mp3(audio);
    let package = match (result, scan) {
        (Ok(package), Ok(scan)) => {
            assert_eq!(package.frames(), scan.frames.as_slice());
            package
        }
        (Err(error), Err(scan_error)) => {
            assert_eq!(error, scan_error);
            return;
        }
        (result, scan) => panic!("package {result:?} but scan {scan:?}"),
    };

    // The stream as a whole.
    let info = package.info().clone();
    let frames = package.frames();
    assert_eq!(info.frames, frames.len());
    assert_eq!(
        info.audio_bytes,
        frames.iter().map(|frame| frame.len as u64).sum::<u64>()
    );
    assert!(info.duration.is_finite() && info.duration > 0.0, "{info:?}");

    // The plan: every frame once, in order, in non-empty segments of bounded length.
    let plan = package.plan();
    assert!(!plan.is_empty());
    assert_eq!(package.segment_count(), plan.len());
    assert!(!plan[0].discontinuity);
    let mut next_frame = 0;
    for segment in plan {
        assert_eq!(segment.frames.start, next_frame, "{plan:?}");
        assert!(segment.frames.end > segment.frames.start, "{plan:?}");
        next_frame = segment.frames.end;
        let duration = segment.duration();
        assert!(duration.is_finite() && duration > 0.0);
        assert!(
            duration <= target_seconds * 1.25 + 1e-9 || segment.frames.len() == 1,
            "segment of {duration} s for a target of {target_seconds} s"
        );
    }
    assert_eq!(next_frame, frames.len());
    let durations = package.segment_durations();
    let total: f64 = durations.iter().sum();
    assert!(
        (total - info.duration).abs() <= 1e-6,
        "segments sum to {total} s, the stream lasts {} s",
        info.duration
    );

    // The segments, muxed in order and one by one.
    let segments: Vec<Vec<u8>> = package.clone().into_segments(audio).collect();
    assert_eq!(segments.len(), plan.len());
    let mut ts_bytes = 0u64;
    for segment in &segments {
        assert!(!segment.is_empty());
        assert_eq!(
            segment.len() % PACKET_LEN,
            0,
            "segment of {} bytes",
            segment.len()
        );
        assert!(segment.chunks(PACKET_LEN).all(|packet| packet[0] == 0x47));
        ts_bytes += segment.len() as u64;
    }
    assert!(ts_bytes > info.audio_bytes);
    for index in [0, segments.len() / 2, segments.len() - 1] {
        assert_eq!(
            package.segment_ts(audio, index).as_ref(),
            Some(&segments[index]),
            "segment {index} muxed alone differs"
        );
    }
    assert_eq!(package.segment_ts(audio, segments.len()), None);
    let mut longer = audio.to_vec();
    longer.push(0);
    assert_eq!(package.clone().into_segments(longer).count(), 0);

    // The playlist parses back with one entry per segment.
    let text = package.media_playlist(&segment_name);
    let playlist = match m3u8_rs::parse_media_playlist_res(text.as_bytes()) {
        Ok(playlist) => playlist,
        Err(error) => panic!("unparsable playlist ({error:?}):\n{text}"),
    };
    assert!(playlist.end_list);
    assert_eq!(playlist.segments.len(), segments.len());
    assert_eq!(playlist.target_duration, package.target_duration());
    for (index, (entry, duration)) in playlist.segments.iter().zip(&durations).enumerate() {
        assert_eq!(entry.uri, segment_name(index));
        assert_eq!(entry.discontinuity, plan[index].discontinuity);
        // EXTINF is an f32: within 1e-6 relative of the exact duration.
        let listed = f64::from(entry.duration);
        assert!(
            (listed - duration).abs() <= duration * 1e-6 + 1e-9,
            "{listed} vs {duration}"
        );
        assert!(listed <= playlist.target_duration as f64 + 1e-6);
    }
});

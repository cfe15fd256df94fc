//! MP3 uploads: the original is kept, lower rungs are encoded at its rate and frame grid.

use legato_media::{MpegVersion, SegmentOptions, package_mp3};
use legato_transcode::{LadderOptions, SourceFormat, detect, transcode};

use crate::util::{assert_same_segments, check_ladder, tone_file, walk_frames};

fn original_and_rungs(mp3: &[u8]) -> Vec<Vec<f64>> {
    let options = SegmentOptions {
        target_seconds: 1.0,
    };
    let transcoded = transcode(mp3, &LadderOptions::default(), &|_| {}).unwrap();
    let mut plans = vec![package_mp3(mp3, &options).unwrap().segment_durations()];
    for rung in &transcoded.rungs {
        plans.push(
            package_mp3(&rung.mp3, &options)
                .unwrap()
                .segment_durations(),
        );
    }
    plans
}

#[test]
fn mpeg1_original_is_kept_and_lower_rungs_share_its_frames() {
    let mp3 = tone_file(
        3.0,
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "192k"],
        "mp3",
    );
    assert_eq!(detect(&mp3).unwrap(), SourceFormat::Mp3);
    let transcoded = transcode(&mp3, &LadderOptions::default(), &|_| {}).unwrap();
    assert!(transcoded.keep_original);
    assert_eq!(transcoded.source.codec, "mp3");
    assert_eq!(transcoded.source.bitrate_kbps, Some(192));
    let bitrates: Vec<u32> = transcoded.rungs.iter().map(|r| r.bitrate_kbps).collect();
    assert_eq!(
        bitrates,
        [64, 128],
        "no rung at or above the original's 192 kbit/s"
    );
    assert_eq!((transcoded.sample_rate, transcoded.channels), (44_100, 2));
    check_ladder(&transcoded, 3.0);

    let original = package_mp3(&mp3, &SegmentOptions::default()).unwrap();
    let rung = walk_frames(&transcoded.rungs[0].mp3, 64);
    assert!(
        rung.count.abs_diff(original.info().frames) <= 2,
        "{} frames in the rung, {} in the original",
        rung.count,
        original.info().frames
    );
    assert_same_segments(&original_and_rungs(&mp3));
}

#[test]
fn mpeg2_original_keeps_its_low_rate() {
    let mp3 = tone_file(
        3.0,
        22_050,
        2,
        &["-c:a", "libmp3lame", "-b:a", "160k"],
        "mp3",
    );
    let transcoded = transcode(&mp3, &LadderOptions::default(), &|_| {}).unwrap();
    assert_eq!(transcoded.sample_rate, 22_050);
    let bitrates: Vec<u32> = transcoded.rungs.iter().map(|r| r.bitrate_kbps).collect();
    assert_eq!(bitrates, [64, 128]);
    for rung in &transcoded.rungs {
        assert_eq!(
            walk_frames(&rung.mp3, rung.bitrate_kbps).version,
            MpegVersion::Mpeg2
        );
    }
    check_ladder(&transcoded, 3.0);
    assert_same_segments(&original_and_rungs(&mp3));
}

#[test]
fn an_original_at_the_lowest_rung_needs_no_encoding() {
    let mp3 = tone_file(
        1.0,
        44_100,
        1,
        &["-c:a", "libmp3lame", "-b:a", "64k"],
        "mp3",
    );
    let transcoded = transcode(&mp3, &LadderOptions::default(), &|_| {}).unwrap();
    assert!(transcoded.keep_original);
    assert!(transcoded.rungs.is_empty());
    assert_eq!(transcoded.decode_ms, 0.0);
    assert_eq!(transcoded.channels, 1);
}

#[test]
fn a_damaged_frame_in_the_middle_is_skipped() {
    let mut mp3 = tone_file(
        3.0,
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "192k"],
        "mp3",
    );
    let middle = mp3.len() / 2;
    for byte in &mut mp3[middle..middle + 700] {
        *byte = 0x5A;
    }
    let transcoded = transcode(
        &mp3,
        &LadderOptions {
            rungs_kbps: vec![64],
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(transcoded.rungs.len(), 1);
    assert!(transcoded.source.duration > 2.5);
}

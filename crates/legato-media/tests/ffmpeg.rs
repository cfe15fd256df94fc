//! Checks against a real encoder and a real demuxer: ffmpeg makes an MP3, we package it, and
//! ffmpeg reads our MPEG-TS back. `make test` installs ffmpeg; without it this test fails.

use legato_media::{SegmentOptions, package_mp3, segment_name};
use legato_test_support::audio::tone_file;
use legato_test_support::ffmpeg;

#[test]
fn a_lame_encoded_file_is_packaged_and_reads_back_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let mp3 = std::fs::read(tone_file(
        25.0,
        440,
        44_100,
        1,
        "mp3",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    ))
    .unwrap();

    let package = package_mp3(&mp3, &SegmentOptions::default()).unwrap();
    let info = package.info().clone();
    assert_eq!(
        (info.sample_rate, info.channels, info.bitrate_kbps),
        (44_100, 1, 128)
    );
    // 25 s plus LAME's encoder delay and padding, in whole 1152-sample frames.
    assert!(
        (info.duration - 25.0).abs() < 0.1,
        "duration {}",
        info.duration
    );
    assert_eq!(package.segment_count(), 3);
    let durations = package.segment_durations();
    assert!(
        durations[..2].iter().all(|&d| d > 9.9 && d <= 10.0),
        "{durations:?}"
    );
    let audio: Vec<u8> = package
        .frames()
        .iter()
        .flat_map(|frame| frame.bytes(&mp3).unwrap().to_vec())
        .collect();

    std::fs::write(
        dir.join("index.m3u8"),
        package.media_playlist(&|i| segment_name(i)),
    )
    .unwrap();
    let mut all = Vec::new();
    for (index, segment) in package.into_segments(mp3).enumerate() {
        std::fs::write(dir.join(segment_name(index)), &segment).unwrap();
        all.extend(segment);
    }
    std::fs::write(dir.join("all.ts"), &all).unwrap();

    // ffprobe sees MP3 audio starting at 1.4 s in the first segment...
    let probe = ffmpeg::probe(&[
        "-show_entries",
        "stream=codec_name,sample_rate:format=start_time",
        "-of",
        "default=noprint_wrappers=1",
        &at("seg000.ts"),
    ]);
    assert!(probe.contains("codec_name=mp3"), "{probe}");
    assert!(probe.contains("sample_rate=44100"), "{probe}");
    assert!(probe.contains("start_time=1.400000"), "{probe}");

    // ...reads the playlist to its end without a complaint...
    let complaints = ffmpeg::complaints(&["-i", &at("index.m3u8"), "-f", "null", "-"]);
    assert_eq!(complaints, "");

    // ...and copies exactly our frames back out of the transport stream.
    let copied = ffmpeg::mp3_frames(&at("all.ts"));
    assert!(
        copied == audio,
        "{} bytes copied, {} expected",
        copied.len(),
        audio.len()
    );
}

//! Checks against a real encoder and a real demuxer: ffmpeg makes an MP3, we package it, and
//! ffmpeg reads our MPEG-TS back. `make test` installs ffmpeg; without it this test fails.

#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use legato_media::{SegmentOptions, package_mp3, segment_name};

const FFMPEG: &str = "/usr/bin/ffmpeg";
const FFPROBE: &str = "/usr/bin/ffprobe";

/// A scratch directory removed when the test ends, however it ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("legato-media-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_lame_encoded_file_is_packaged_and_reads_back_bit_exact() {
    assert!(
        Path::new(FFMPEG).exists() && Path::new(FFPROBE).exists(),
        "{FFMPEG} and {FFPROBE} are needed: `make test` installs them"
    );
    let scratch = ScratchDir::new("ffmpeg");
    let dir = scratch.0.as_path();
    run(
        FFMPEG,
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=25",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "x.mp3",
        ],
        dir,
    );
    let mp3 = std::fs::read(dir.join("x.mp3")).unwrap();

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
    let probe = run(
        FFPROBE,
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate:format=start_time",
            "-of",
            "default=noprint_wrappers=1",
            "seg000.ts",
        ],
        dir,
    );
    let probe = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.contains("codec_name=mp3"), "{probe}");
    assert!(probe.contains("sample_rate=44100"), "{probe}");
    assert!(probe.contains("start_time=1.400000"), "{probe}");

    // ...reads the playlist to its end without a complaint...
    let decoded = run(
        FFMPEG,
        &["-v", "error", "-i", "index.m3u8", "-f", "null", "-"],
        dir,
    );
    assert_eq!(String::from_utf8_lossy(&decoded.stderr), "");

    // ...and copies exactly our frames back out of the transport stream.
    run(
        FFMPEG,
        &[
            "-v",
            "error",
            "-i",
            "all.ts",
            "-c:a",
            "copy",
            "-f",
            "mp3",
            "-write_xing",
            "0",
            "-id3v2_version",
            "0",
            "copied.mp3",
        ],
        dir,
    );
    let copied = std::fs::read(dir.join("copied.mp3")).unwrap();
    assert!(
        copied == audio,
        "{} bytes copied, {} expected",
        copied.len(),
        audio.len()
    );
}

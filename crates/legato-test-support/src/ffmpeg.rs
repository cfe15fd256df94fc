//! ffmpeg as the tests' independent tool: it makes test inputs and plays what Legato serves
//! (a playlist URL, a file, bytes on stdin), so a test checks our output with a decoder that
//! is not ours. Every call runs quiet (`-v error`, no stdin) and fails the test with ffmpeg's
//! own message when ffmpeg fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The ffmpeg binary: `$FFMPEG`, else Debian's `/usr/bin/ffmpeg`. Tests that need it fail
/// with how to install it (the test command does), never pass without checking.
pub fn ffmpeg() -> &'static Path {
    static FFMPEG: OnceLock<PathBuf> = OnceLock::new();
    FFMPEG.get_or_init(|| locate("FFMPEG", "/usr/bin/ffmpeg"))
}

/// The ffprobe binary beside it: `$FFPROBE`, else `/usr/bin/ffprobe`.
pub fn ffprobe() -> &'static Path {
    static FFPROBE: OnceLock<PathBuf> = OnceLock::new();
    FFPROBE.get_or_init(|| locate("FFPROBE", "/usr/bin/ffprobe"))
}

fn locate(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        Command::new(&path)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "`{}` does not run: the tests need it to make inputs and to play what the server \
         answers (apt-get install ffmpeg, as scripts/test.sh does, or set {variable})",
        path.display()
    );
    path
}

/// Runs ffmpeg quietly with `args`, failing the test with its message when it fails.
fn succeed(args: &[&str]) -> std::process::Output {
    let output = Command::new(ffmpeg())
        .args(["-hide_banner", "-v", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs ffmpeg with `args` (inputs, options and an output, `-` for stdout) and returns its
/// standard output.
pub fn run(args: &[&str]) -> Vec<u8> {
    succeed(args).stdout
}

/// Runs ffmpeg with `args` followed by an output file with extension `ext` in a temporary
/// folder, and returns that file's bytes.
pub fn make(args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("out.{ext}"));
    let out_arg = out.to_string_lossy().into_owned();
    run(&[args, &[out_arg.as_str()]].concat());
    std::fs::read(&out).unwrap()
}

/// Runs ffprobe with `args` and returns its standard output as text.
pub fn probe(args: &[&str]) -> String {
    let output = Command::new(ffprobe())
        .args(["-hide_banner", "-v", "error"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What ffmpeg plays from `input` (a URL, a playlist, a file) as signed 16-bit little-endian
/// PCM, resampled to `rate` with `channels` channels.
pub fn play_pcm(input: &str, channels: u8, rate: u32) -> Vec<u8> {
    run(&[
        "-i",
        input,
        "-f",
        "s16le",
        "-ac",
        &channels.to_string(),
        "-ar",
        &rate.to_string(),
        "-",
    ])
}

/// Seconds of audio ffmpeg plays from `input` (decoded to mono at 8 kHz: a 1/8000 s
/// resolution, cheap for long tracks).
pub fn played_seconds(input: &str) -> f64 {
    let pcm = play_pcm(input, 1, 8_000);
    pcm.len() as f64 / 2.0 / 8_000.0
}

/// Samples per channel that ffmpeg decodes from `input` at its own rate, with `channels`
/// channels.
pub fn decoded_samples(input: &str, channels: u8) -> usize {
    let pcm = run(&["-i", input, "-f", "s16le", "-c:a", "pcm_s16le", "-"]);
    pcm.len() / 2 / usize::from(channels)
}

/// Decodes `data` (fed on stdin) with ffmpeg to interleaved 16-bit samples at its own rate
/// and channels.
pub fn decode_bytes(data: &[u8]) -> Vec<i16> {
    let mut child = Command::new(ffmpeg())
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            "pipe:0",
            "-f",
            "s16le",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        // ffmpeg may stop reading early on bad input; that shows in its exit status.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "ffmpeg could not decode: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

/// The MPEG audio frames of an MP3 file or stream, as ffmpeg copies them out: no tags, no
/// Xing/Info frame.
pub fn mp3_frames(input: &str) -> Vec<u8> {
    run(&[
        "-i",
        input,
        "-map",
        "0:a",
        "-c",
        "copy",
        "-f",
        "mp3",
        "-id3v2_version",
        "0",
        "-write_xing",
        "0",
        "-",
    ])
}

/// Runs ffmpeg with `args` (`-v error`) and returns what it logged (its standard error):
/// empty when it read and wrote everything without a complaint. Fails the test when ffmpeg
/// fails.
pub fn complaints(args: &[&str]) -> String {
    String::from_utf8_lossy(&succeed(args).stderr).into_owned()
}

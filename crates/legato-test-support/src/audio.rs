//! Test audio made by ffmpeg from a sine, cached by its arguments in the target folder, so
//! each file is made once per build however many tests use it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The ffmpeg binary (Debian's); tests that need it fail with this message without it.
pub fn ffmpeg() -> &'static str {
    let path = "/usr/bin/ffmpeg";
    assert!(
        Path::new(path).exists(),
        "ffmpeg is needed to make test audio: apt-get install ffmpeg"
    );
    path
}

/// Where generated audio is kept: `$CARGO_TARGET_TMPDIR`-like, under the system's temp dir
/// unless `LEGATO_TEST_AUDIO` says otherwise.
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("LEGATO_TEST_AUDIO")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("legato-test-audio"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tone of `seconds` at `hz`, encoded by ffmpeg with `codec_args` into a file with
/// `extension`; returns its path (cached).
pub fn tone_file(
    seconds: f64,
    hz: u32,
    sample_rate: u32,
    channels: u8,
    extension: &str,
    codec_args: &[&str],
) -> PathBuf {
    let key = format!(
        "tone-{seconds}-{hz}-{sample_rate}-{channels}-{}",
        codec_args.join("_").replace([' ', ':', '=', '/'], "")
    );
    let path = cache_dir().join(format!("{key}.{extension}"));
    if path.exists() {
        return path;
    }
    static UNIQUE: AtomicUsize = AtomicUsize::new(0);
    let unique = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let tmp = cache_dir().join(format!(
        "{key}.{}-{unique}.tmp.{extension}",
        std::process::id()
    ));
    let status = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency={hz}:duration={seconds}:sample_rate={sample_rate}"
        ))
        .args(["-ac", &channels.to_string()])
        .args(codec_args)
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make {key}.{extension}");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A 128 kbit/s stereo 44.1 kHz MP3 tone of `seconds`: its path.
pub fn mp3_file(seconds: f64) -> PathBuf {
    tone_file(
        seconds,
        440,
        44_100,
        2,
        "mp3",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    )
}

/// A 128 kbit/s stereo 44.1 kHz MP3 tone of `seconds`.
pub fn mp3(seconds: f64) -> Vec<u8> {
    std::fs::read(mp3_file(seconds)).unwrap()
}

/// A 16-bit stereo 44.1 kHz WAV tone of `seconds` (10 MB a minute).
pub fn wav(seconds: f64) -> PathBuf {
    tone_file(seconds, 440, 44_100, 2, "wav", &["-c:a", "pcm_s16le"])
}

/// `mp3` with an ID3v1 tag of its own at its end (comment `copy n`): the same song in another
/// file. The server answers an upload of a file it has already with that track, so a test
/// that needs several tracks of one song uploads such copies.
pub fn another_copy(mp3: &[u8], n: u32) -> Vec<u8> {
    let mut tag = [0u8; 128];
    tag[..3].copy_from_slice(b"TAG");
    let comment = format!("copy {n}");
    let len = comment.len().min(30);
    tag[97..97 + len].copy_from_slice(&comment.as_bytes()[..len]);
    tag[127] = 0xff; // no genre
    [mp3, &tag].concat()
}

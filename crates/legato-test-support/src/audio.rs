//! Test audio made by ffmpeg (sines, `aevalsrc` expressions, a tagged MP3 with a cover),
//! cached by its arguments in the target folder, so each file is made once per build
//! however many tests use it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::ffmpeg::ffmpeg;

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
    let input = format!("sine=frequency={hz}:duration={seconds}:sample_rate={sample_rate}");
    let channels = channels.to_string();
    cached(&key, extension, |out| {
        let args = [
            &["-f", "lavfi", "-i", &input, "-ac", &channels][..],
            codec_args,
        ]
        .concat();
        crate::ffmpeg::run(&[&args[..], &[out]].concat());
    })
}

/// The file named `key`.`extension` in [`cache_dir`], made by `make` (given the path to
/// write) when it is not there yet. `make` writes a file of its own that is renamed into
/// place once complete, so tests of other threads and processes never see half a file.
fn cached(key: &str, extension: &str, make: impl FnOnce(&str)) -> PathBuf {
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
    make(&tmp.to_string_lossy());
    assert!(tmp.exists(), "ffmpeg did not make {key}.{extension}");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A short, file-name-safe digest of `parts` (stable for a given toolchain: a change only
/// makes a cached file again).
fn digest(parts: &[&str]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Audio of `seconds` at `sample_rate` computed by ffmpeg's `aevalsrc` from `expression`
/// (one expression per channel, separated by `|`: `0.7*sin(2*PI*440*t)|0.7*sin(2*PI*660*t)`),
/// encoded with `codec_args` into a file with `extension`; returns its path (cached).
pub fn aevalsrc_file(
    expression: &str,
    seconds: f64,
    sample_rate: u32,
    extension: &str,
    codec_args: &[&str],
) -> PathBuf {
    let input = format!("aevalsrc={expression}:s={sample_rate}:d={seconds}");
    let key = format!(
        "aevalsrc-{seconds}-{sample_rate}-{}",
        digest(&[&[input.as_str()][..], codec_args].concat())
    );
    cached(&key, extension, |out| {
        let args = [&["-f", "lavfi", "-i", &input][..], codec_args].concat();
        crate::ffmpeg::run(&[&args[..], &[out]].concat());
    })
}

/// A mono 44.1 kHz MP3 tone (440 Hz) of `seconds` at `kbps` (`"128k"`) with an ID3v2.3 tag
/// holding `tags` (`title`, `artist`, `album`, `date`...) and a 32x32 red PNG front cover
/// (cached).
pub fn tagged_mp3(seconds: f64, kbps: &str, tags: &[(&str, &str)]) -> Vec<u8> {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pair_refs: Vec<&str> = pairs.iter().map(String::as_str).collect();
    let key = format!(
        "tagged-{seconds}-{kbps}-{}",
        digest(&[&pair_refs[..], &["cover:red-32x32"][..]].concat())
    );
    let cover = cached("cover-red-32x32", "png", |out| {
        crate::ffmpeg::run(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=32x32",
            "-frames:v",
            "1",
            out,
        ]);
    });
    let cover = cover.to_string_lossy().into_owned();
    let path = cached(&key, "mp3", |out| {
        let sine = format!("sine=frequency=440:duration={seconds}");
        let mut args: Vec<&str> = vec![
            "-f",
            "lavfi",
            "-i",
            &sine,
            "-i",
            &cover,
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "libmp3lame",
            "-b:a",
            kbps,
            "-c:v",
            "png",
            "-id3v2_version",
            "3",
        ];
        for pair in &pair_refs {
            args.extend(["-metadata", pair]);
        }
        args.extend(["-metadata:s:v", "comment=Cover (front)", out]);
        crate::ffmpeg::run(&args);
    });
    std::fs::read(path).unwrap()
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

//! The fMP4 renditions end to end: AAC-LC rungs (libfdk-aac) and the lossless FLAC rung
//! (flacenc, or an upload's own frames), packaged by `legato_media::fmp4`, written with a
//! media playlist to a temporary directory and decoded by ffmpeg through that playlist, as a
//! player would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use legato_media::fmp4::{self, Cut, Fmp4Track};
use legato_transcode::{AacTrack, Fmp4Options, transcode_fmp4};

use crate::util::make;

const RATE: u32 = 44_100;

/// A stereo source with content in every frame (two tones and a little noise), as 16-bit
/// WAV, `seconds` long.
fn source_wav(seconds: f64) -> Vec<u8> {
    let path = legato_test_support::audio::aevalsrc_file(
        "0.5*sin(2*PI*440*t)+0.05*(random(0)-0.5)|0.5*sin(2*PI*554*t)",
        seconds,
        RATE,
        "wav",
        &["-c:a", "pcm_s16le"],
    );
    std::fs::read(path).unwrap()
}

/// The interleaved samples of a 16-bit stereo WAV, as ffmpeg decodes it.
fn pcm_of(path: &Path) -> Vec<i16> {
    legato_test_support::ffmpeg::run(&[
        "-i",
        &path.to_string_lossy(),
        "-f",
        "s16le",
        "-ac",
        "2",
        "-",
    ])
    .chunks_exact(2)
    .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
    .collect()
}

/// Writes the init segment, every media segment and the media playlist into `dir`; returns
/// the playlist's path.
fn write_hls(dir: &Path, track: &Fmp4Track, data: &[u8]) -> PathBuf {
    std::fs::write(dir.join(fmp4::INIT_NAME), track.init_segment().unwrap()).unwrap();
    for index in 0..track.segment_count() {
        let segment = track.media_segment(data, index).unwrap();
        std::fs::write(dir.join(fmp4::segment_name(index)), segment).unwrap();
    }
    let playlist = dir.join("index.m3u8");
    std::fs::write(
        &playlist,
        track.media_playlist(fmp4::INIT_NAME, &fmp4::segment_name),
    )
    .unwrap();
    playlist
}

fn aac_package(rung: &AacTrack, cut: Cut<'_>) -> Fmp4Track {
    fmp4::aac_track(
        rung.audio_specific_config.clone(),
        rung.sample_rate,
        rung.channels,
        &rung.frame_lens,
        rung.priming,
        rung.valid_samples,
        rung.bitrate_kbps,
        cut,
    )
    .unwrap()
}

/// Decodes an AAC track through its playlist with ffmpeg, then trims the end as the edit list
/// says. ffmpeg 5.1 ignores edit lists in fragmented MP4 but skips the priming that the
/// `iTunSMPB` comment declares, so it gives the source within one AAC frame (the padding of
/// the last access unit is left): checked here. The end is then cut to the edit list's
/// duration, as read by mp4box.js when node is there, as a player that honours it does.
fn decode_aac(rung: &AacTrack, cut: Cut<'_>) -> Vec<i16> {
    let track = aac_package(rung, cut);
    let dir = tempfile::tempdir().unwrap();
    let playlist = write_hls(dir.path(), &track, &rung.data);
    let raw = pcm_of(&playlist);
    let padding =
        rung.frame_lens.len() as u64 * 1024 - u64::from(rung.priming) - rung.valid_samples;
    assert_eq!(
        raw.len() as u64 / 2,
        rung.valid_samples + padding,
        "ffmpeg skips the priming and decodes the rest"
    );
    assert!(padding < 1024, "within one AAC frame of the source");
    let (skip, keep) = match mp4box_modules() {
        Some(modules) => {
            let read = mp4box_read(&modules, dir.path(), 0);
            let edit = &read["init"]["elst"][0];
            assert_eq!(edit["mediaTime"], rung.priming);
            (0, edit["duration"].as_u64().unwrap() as usize)
        }
        None => (0, rung.valid_samples as usize),
    };
    raw[skip * 2..(skip + keep) * 2].to_vec()
}

#[test]
fn aac_rungs_decode_through_their_playlist_to_the_source_length() {
    let seconds = 12.5;
    let wav = source_wav(seconds);
    let source_frames = (seconds * f64::from(RATE)) as u64;
    let renditions = transcode_fmp4(&wav, &Fmp4Options::default()).unwrap();
    assert_eq!(
        renditions
            .aac
            .iter()
            .map(|rung| rung.bitrate_kbps)
            .collect::<Vec<_>>(),
        [64, 128, 256]
    );
    for rung in &renditions.aac {
        assert_eq!(rung.valid_samples, source_frames);
        assert_eq!(rung.priming, 2048, "libfdk-aac's AAC-LC delay at 44.1 kHz");
        // Every source sample is in an access unit, and no access unit is all padding.
        let units = rung.frame_lens.len() as u64;
        assert!(units * 1024 >= source_frames + 2048 && (units - 1) * 1024 < source_frames + 2048);
        let track = aac_package(rung, Cut::Target(4.0));
        let samples: u64 = track.segment_samples().iter().sum();
        assert_eq!(
            samples, source_frames,
            "playlist durations add up to the source"
        );
        let decoded = decode_aac(rung, Cut::Target(4.0)).len() as u64 / 2;
        assert_eq!(decoded, source_frames, "{} kbit/s", rung.bitrate_kbps);
    }
}

/// The lag (in samples, within ±`range`) at which `decoded` best matches `source` over
/// `window` (left channel), by least squared difference.
fn best_lag(decoded: &[i16], source: &[i16], window: std::ops::Range<usize>, range: i64) -> i64 {
    (-range..=range)
        .min_by_key(|&lag| {
            window
                .clone()
                .map(|n| {
                    let d = i64::from(decoded[n * 2]);
                    let s = source[((n as i64 + lag) as usize) * 2];
                    (d - i64::from(s)).pow(2)
                })
                .sum::<i64>()
        })
        .unwrap()
}

#[test]
fn consecutive_tracks_join_without_gap_or_overlap() {
    let wav = source_wav(8.0);
    let (_source_dir, source_path) = crate::util::temp_file(&wav, "wav");
    let source = pcm_of(&source_path);
    // A cut that is not on an AAC frame boundary, as between two album tracks.
    let cut = 3 * 44_100 + 517;
    let part = |filter: String| {
        make(
            &[
                "-i",
                source_path.to_str().unwrap(),
                "-af",
                &filter,
                "-c:a",
                "pcm_s16le",
            ],
            "wav",
        )
    };
    let first = part(format!("atrim=end_sample={cut}"));
    let second = part(format!("atrim=start_sample={cut},asetpts=PTS-STARTPTS"));
    let options = Fmp4Options {
        aac_rungs_kbps: vec![256],
        lossless: true,
    };
    let mut joined_aac = Vec::new();
    let mut joined_flac = Vec::new();
    for part in [&first, &second] {
        let renditions = transcode_fmp4(part, &options).unwrap();
        joined_aac.extend(decode_aac(&renditions.aac[0], Cut::Target(2.0)));
        let flac = renditions.flac.unwrap().data;
        let track = fmp4::flac_track(&flac, Cut::Target(2.0)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        joined_flac.extend(pcm_of(&write_hls(dir.path(), &track, &flac)));
    }
    assert!(
        joined_flac == source,
        "the lossless rungs join into the source exactly"
    );
    assert_eq!(
        joined_aac.len(),
        source.len(),
        "no samples lost or added at the joint"
    );
    // Where each track starts, and across the joint, the audio lines up with the source.
    let frames = source.len() / 2;
    for window in [
        200..4200,
        cut - 2000..cut + 2000,
        cut..cut + 4000,
        frames - 4100..frames - 100,
    ] {
        let lag = best_lag(&joined_aac, &source, window.clone(), 48);
        assert!(lag.abs() <= 1, "{lag} samples off around {window:?}");
    }
}

/// The cache of test tools outside the clone (as scripts/test.sh sets it).
fn tools_dir() -> PathBuf {
    std::env::var_os("LEGATO_TOOLS").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/legato-tools")
        },
        PathBuf::from,
    )
}

/// mp4box.js 0.5.4 installed into the tools cache (once); `None` when node is absent.
///
/// The tests of this binary run on parallel threads and may ask at once, so the install runs
/// once per process; it goes into a fresh directory that is renamed into place when complete,
/// so another test process never sees a half-installed package.
fn mp4box_modules() -> Option<PathBuf> {
    static MODULES: OnceLock<Option<PathBuf>> = OnceLock::new();
    MODULES.get_or_init(install_mp4box).clone()
}

fn install_mp4box() -> Option<PathBuf> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return None;
    }
    let dir = tools_dir().join("mp4box-0.5.4");
    if !dir.join("node_modules/mp4box/package.json").exists() {
        std::fs::create_dir_all(tools_dir()).unwrap();
        let staging = tempfile::tempdir_in(tools_dir()).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg("--prefix")
            .arg(staging.path())
            .arg("mp4box@0.5.4")
            .status()
            .expect("node is installed but npm does not run");
        assert!(status.success(), "npm install mp4box@0.5.4 failed");
        // A directory left by an interrupted install of the old kind is replaced.
        if dir.exists() && !dir.join("node_modules/mp4box/package.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let staged = staging.keep();
        if std::fs::rename(&staged, &dir).is_err() {
            // Another process put its complete copy there first.
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    Some(dir.join("node_modules"))
}

/// What mp4box.js read from the init segment and each media segment in `dir`.
fn mp4box_read(modules: &Path, dir: &Path, segments: usize) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mp4box-check.js");
    let output = Command::new("node")
        .arg(script)
        .arg(dir.join(fmp4::INIT_NAME))
        .args((0..segments).map(|index| dir.join(fmp4::segment_name(index))))
        .env("NODE_PATH", modules)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "mp4box.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// mediainfo's audio track for the init segment followed by every media segment.
fn mediainfo_audio(dir: &Path, track: &Fmp4Track) -> serde_json::Value {
    let mut joined = std::fs::read(dir.join(fmp4::INIT_NAME)).unwrap();
    for index in 0..track.segment_count() {
        joined.extend(std::fs::read(dir.join(fmp4::segment_name(index))).unwrap());
    }
    let path = dir.join("joined.mp4");
    std::fs::write(&path, joined).unwrap();
    let output = Command::new("mediainfo")
        .args(["--Output=JSON"])
        .arg(&path)
        .output()
        .expect("mediainfo is required by these tests: apt-get install mediainfo (scripts/test.sh does)");
    assert!(output.status.success(), "mediainfo failed");
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    info["media"]["track"]
        .as_array()
        .unwrap()
        .iter()
        .find(|track| track["@type"] == "Audio")
        .cloned()
        .expect("mediainfo sees an audio track")
}

/// Both independent parsers read every segment of `track` as we planned it.
fn check_with_parsers(dir: &Path, track: &Fmp4Track, codec: &str, priming: u64) {
    let info = mediainfo_audio(dir, track);
    let frames: usize = track.plan().iter().map(|range| range.len()).sum();
    assert_eq!(
        info["Format"],
        if codec == "fLaC" { "FLAC" } else { "AAC" },
        "{info}"
    );
    assert_eq!(info["FrameCount"], frames.to_string(), "{info}");
    assert_eq!(info["SamplingRate"], track.info().sample_rate.to_string());

    let Some(modules) = mp4box_modules() else {
        eprintln!("skipping the mp4box.js check: node is not installed");
        return;
    };
    let read = mp4box_read(&modules, dir, track.segment_count());
    // mp4box.js 0.5.4 knows no iTunes `ilst` (the `iTunSMPB` comment): its one expected
    // warning. Anything else it logs is a failure.
    let unexpected: Vec<&serde_json::Value> = read["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| {
            !message
                .as_str()
                .is_some_and(|text| text.ends_with("Unknown box type: 'ilst'"))
        })
        .collect();
    assert!(unexpected.is_empty(), "mp4box.js logged {unexpected:?}");
    assert_eq!(read["init"]["codec"], codec, "{read}");
    assert_eq!(read["init"]["fragmented"], true);
    assert_eq!(read["init"]["timescale"], track.info().sample_rate);
    assert_eq!(
        read["init"]["elst"],
        serde_json::json!([{ "duration": track.info().valid_samples, "mediaTime": priming }])
    );
    let mut decode_time = 0u64;
    for (index, (segment, range)) in read["segments"]
        .as_array()
        .unwrap()
        .iter()
        .zip(track.plan())
        .enumerate()
    {
        assert_eq!(segment["sequence"], index + 1, "{segment}");
        assert_eq!(segment["tfdt"], decode_time, "tfdt runs on: {segment}");
        assert_eq!(segment["samples"], range.len(), "{segment}");
        assert_eq!(segment["bytes"], segment["mdat"], "{segment}");
        decode_time += segment["duration"].as_u64().unwrap();
    }
    assert_eq!(
        read["segments"].as_array().unwrap().len(),
        track.segment_count()
    );
}

#[test]
fn independent_parsers_read_every_aac_and_flac_segment() {
    let wav = source_wav(9.0);
    let renditions = transcode_fmp4(
        &wav,
        &Fmp4Options {
            aac_rungs_kbps: vec![128],
            lossless: true,
        },
    )
    .unwrap();
    let rung = &renditions.aac[0];
    let track = aac_package(rung, Cut::Target(3.0));
    let dir = tempfile::tempdir().unwrap();
    write_hls(dir.path(), &track, &rung.data);
    check_with_parsers(dir.path(), &track, "mp4a.40.2", u64::from(rung.priming));

    let flac = renditions
        .flac
        .expect("a WAV source gets a lossless rung")
        .data;
    let track = fmp4::flac_track(&flac, Cut::Target(3.0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_hls(dir.path(), &track, &flac);
    check_with_parsers(dir.path(), &track, "fLaC", 0);
}

#[test]
fn flac_rung_decodes_to_the_source_samples_exactly() {
    let wav = source_wav(7.3);
    let (_source_dir, source_path) = crate::util::temp_file(&wav, "wav");
    let source = pcm_of(&source_path);
    let renditions = transcode_fmp4(
        &wav,
        &Fmp4Options {
            aac_rungs_kbps: Vec::new(),
            lossless: true,
        },
    )
    .unwrap();
    let flac = renditions.flac.expect("a lossless rung").data;
    let track = fmp4::flac_track(&flac, Cut::Target(2.0)).unwrap();
    assert_eq!(track.info().valid_samples as usize, source.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let playlist = write_hls(dir.path(), &track, &flac);
    let decoded = pcm_of(&playlist);
    assert_eq!(decoded.len(), source.len(), "exact length in samples");
    assert!(decoded == source, "decoded PCM differs from the source");
    assert_eq!(hash(&decoded), hash(&source));
}

fn hash(samples: &[i16]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    samples.hash(&mut hasher);
    hasher.finish()
}

/// The `mdat` payload of a media segment (top-level boxes walked by their sizes).
fn mdat_payload(segment: &[u8]) -> &[u8] {
    let mut at = 0;
    while at + 8 <= segment.len() {
        let size = u32::from_be_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        if &segment[at + 4..at + 8] == b"mdat" {
            return &segment[at + 8..at + size];
        }
        at += size;
    }
    panic!("no mdat in the segment");
}

#[test]
fn a_flac_upload_is_carried_byte_for_byte() {
    let wav = source_wav(6.1);
    let (_source_dir, source_path) = crate::util::temp_file(&wav, "wav");
    let upload = make(
        &["-i", source_path.to_str().unwrap(), "-c:a", "flac"],
        "flac",
    );
    let scan = legato_media::flac::scan_flac(&upload).unwrap();
    let track = fmp4::flac_track(&upload, Cut::Target(2.0)).unwrap();
    assert!(track.segment_count() >= 3);
    let mut carried = Vec::new();
    for index in 0..track.segment_count() {
        carried.extend_from_slice(mdat_payload(&track.media_segment(&upload, index).unwrap()));
    }
    let first = scan.frames.first().unwrap().offset;
    let last = scan.frames.last().unwrap();
    assert!(
        carried == upload[first..last.offset + last.len],
        "the frames in the segments are the upload's own"
    );
    let dir = tempfile::tempdir().unwrap();
    let playlist = write_hls(dir.path(), &track, &upload);
    assert!(pcm_of(&playlist) == pcm_of(&source_path));
}

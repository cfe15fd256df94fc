//! Inputs made with ffmpeg at test time, ffmpeg as an independent decoder (both through
//! `legato_test_support`), and an MPEG audio frame walker.

use std::path::PathBuf;

use legato_media::scan::is_info_frame;
use legato_media::{FrameHeader, MpegVersion, SegmentOptions, package_mp3};
use legato_transcode::Transcoded;

pub use legato_test_support::ffmpeg::make;

/// Writes `bytes` to a temporary file (to give ffmpeg as an input) and returns its path with
/// the directory that owns it.
pub fn temp_file(bytes: &[u8], ext: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(format!("in.{ext}"));
    std::fs::write(&path, bytes).expect("write temporary file");
    (dir, path)
}

/// The `aevalsrc` expression of a loud, distinct tone per channel (440 Hz left, 660 Hz
/// right).
fn tone_expression(channels: u32) -> &'static str {
    if channels == 1 {
        "0.7*sin(2*PI*440*t)"
    } else {
        "0.7*sin(2*PI*440*t)|0.7*sin(2*PI*660*t)"
    }
}

/// The ffmpeg input arguments of that tone, `seconds` long at `rate`.
pub fn tone(seconds: f64, rate: u32, channels: u32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!(
            "aevalsrc={}:s={rate}:d={seconds}",
            tone_expression(channels)
        ),
    ]
}

/// That tone encoded with `codec_args` into a file with extension `ext` (made once, cached
/// by legato-test-support).
pub fn tone_file(
    seconds: f64,
    rate: u32,
    channels: u32,
    codec_args: &[&str],
    ext: &str,
) -> Vec<u8> {
    let path = legato_test_support::audio::aevalsrc_file(
        tone_expression(channels),
        seconds,
        rate,
        ext,
        codec_args,
    );
    std::fs::read(path).expect("read the cached tone")
}

/// Decodes `data` with ffmpeg to interleaved 16-bit samples; returns (samples, channels,
/// rate) of its first MP3 frame header.
pub fn ffmpeg_decode(data: &[u8]) -> (Vec<i16>, u32, u32) {
    let samples = legato_test_support::ffmpeg::decode_bytes(data);
    let header = FrameHeader::parse_slice(data).expect("an MP3 frame header at the start");
    (samples, u32::from(header.channels()), header.sample_rate())
}

/// What walking an MP3 stream frame by frame found.
#[derive(Debug)]
pub struct Frames {
    pub count: usize,
    pub sample_rate: u32,
    pub channels: u8,
    pub version: MpegVersion,
    pub samples_per_frame: u32,
}

/// Walks `mp3` from its first byte, header to header, checking that it is nothing but
/// Layer III audio frames of one bitrate: no Xing/Info/VBRI tag frame, no junk, and every
/// frame decodable on its own (`main_data_begin` = 0: no bit reservoir).
pub fn walk_frames(mp3: &[u8], bitrate_kbps: u32) -> Frames {
    let first = FrameHeader::parse_slice(mp3).expect("the stream starts with a frame header");
    let mut offset = 0;
    let mut count = 0;
    while offset < mp3.len() {
        let header = FrameHeader::parse_slice(&mp3[offset..])
            .unwrap_or_else(|| panic!("no frame header at byte {offset} (frame {count})"));
        assert!(
            header.same_stream_as(&first),
            "frame {count} changes the stream format"
        );
        assert_eq!(
            header.bitrate_kbps(),
            bitrate_kbps,
            "frame {count} is not CBR"
        );
        let frame = &mp3[offset..(offset + header.frame_len()).min(mp3.len())];
        assert_eq!(
            frame.len(),
            header.frame_len(),
            "frame {count} is cut short"
        );
        assert!(
            !is_info_frame(frame, &header),
            "frame {count} is a Xing/Info/VBRI tag frame, not audio"
        );
        let side_info = 4 + if header.crc_protected() { 2 } else { 0 };
        let main_data_begin = match header.version() {
            MpegVersion::Mpeg1 => {
                (u16::from(frame[side_info]) << 1) | u16::from(frame[side_info + 1] >> 7)
            }
            MpegVersion::Mpeg2 | MpegVersion::Mpeg25 => u16::from(frame[side_info]),
        };
        assert_eq!(
            main_data_begin, 0,
            "frame {count} borrows from the bit reservoir (main_data_begin {main_data_begin})"
        );
        offset += header.frame_len();
        count += 1;
    }
    Frames {
        count,
        sample_rate: first.sample_rate(),
        channels: first.channels(),
        version: first.version(),
        samples_per_frame: first.samples(),
    }
}

/// LAME's delay: its encoder delay (576 samples) plus the decoder's (529).
const LAME_DELAY: u32 = 1105;

/// Checks every rung of a ladder: frames (see [`walk_frames`]) at the ladder's rate and
/// channel count, the same number in every rung, audio from the very first frame, decoded
/// by ffmpeg to the source's duration within LAME's delay and padding (two MPEG-1 frames;
/// for the 576-sample frames of MPEG-2, the 1105-sample delay and one frame),
/// and cut by the packager into segments of identical durations.
pub fn check_ladder(transcoded: &Transcoded, source_seconds: f64) {
    assert!(!transcoded.rungs.is_empty(), "no rungs");
    let bitrates: Vec<u32> = transcoded
        .rungs
        .iter()
        .map(|rung| rung.bitrate_kbps)
        .collect();
    let mut sorted = bitrates.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(bitrates, sorted, "rungs ascend by bitrate");

    let mut frame_counts = Vec::new();
    let mut plans = Vec::new();
    for rung in &transcoded.rungs {
        assert_eq!(rung.name, format!("{}k", rung.bitrate_kbps));
        let frames = walk_frames(&rung.mp3, rung.bitrate_kbps);
        assert_eq!(frames.sample_rate, transcoded.sample_rate, "{}", rung.name);
        assert_eq!(frames.channels, transcoded.channels, "{}", rung.name);
        frame_counts.push(frames.count);

        let (samples, channels, rate) = ffmpeg_decode(&rung.mp3);
        assert_eq!(rate, transcoded.sample_rate);
        let decoded_frames = samples.len() / channels as usize;
        let decoded_seconds = decoded_frames as f64 / f64::from(rate);
        let slack_samples =
            (2 * frames.samples_per_frame).max(LAME_DELAY + frames.samples_per_frame);
        let extra = decoded_seconds - source_seconds;
        assert!(
            (0.0..=f64::from(slack_samples) / f64::from(rate) + 1e-9).contains(&extra),
            "{}: decodes to {decoded_seconds:.4} s for {source_seconds:.4} s of source",
            rung.name
        );
        // The source is loud from its first sample: after LAME's delay (576 + 529 samples)
        // the first frame's worth of output must be loud too, not a silent placeholder.
        let delay = (LAME_DELAY as usize).min(decoded_frames);
        let first_frame = &samples[delay * channels as usize
            ..((delay + frames.samples_per_frame as usize) * channels as usize).min(samples.len())];
        let peak = first_frame
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(
            peak > 8_000,
            "{}: the first frame after the encoder delay is silent (peak {peak})",
            rung.name
        );

        let package = package_mp3(
            &rung.mp3,
            &SegmentOptions {
                target_seconds: 1.0,
            },
        )
        .expect("the packager takes the rung");
        assert_eq!(package.info().frames, frames.count, "{}", rung.name);
        plans.push(package.segment_durations());
    }
    let (min, max) = (
        frame_counts.iter().min().copied().unwrap_or(0),
        frame_counts.iter().max().copied().unwrap_or(0),
    );
    assert!(max - min <= 1, "frame counts differ: {frame_counts:?}");
    assert_same_segments(&plans);
}

/// Segment plans of several variants: identical durations, except possibly the last segment.
pub fn assert_same_segments(plans: &[Vec<f64>]) {
    let Some(first) = plans.first() else { return };
    for plan in plans {
        assert!(
            plan.len().abs_diff(first.len()) <= 1,
            "segment counts differ: {} and {}",
            first.len(),
            plan.len()
        );
        let common = plan.len().min(first.len()).saturating_sub(1);
        assert_eq!(
            plan[..common],
            first[..common],
            "segment durations differ before the last segment"
        );
    }
}

/// A canonical RIFF WAVE file of 16-bit PCM from interleaved samples.
pub fn wav_s16(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("small test data");
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend(b"RIFF");
    wav.extend((36 + data_len).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(1u16.to_le_bytes());
    wav.extend(channels.to_le_bytes());
    wav.extend(rate.to_le_bytes());
    wav.extend((rate * u32::from(channels) * 2).to_le_bytes());
    wav.extend((channels * 2).to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(b"data");
    wav.extend(data_len.to_le_bytes());
    for sample in samples {
        wav.extend(sample.to_le_bytes());
    }
    wav
}

/// Interleaved 16-bit samples of a sine per channel (channel `c` at `base * (c + 1)` Hz).
pub fn sine_s16(rate: u32, channels: u16, seconds: f64, amplitude: f64) -> Vec<i16> {
    let frames = (seconds * f64::from(rate)) as usize;
    let mut samples = Vec::with_capacity(frames * usize::from(channels));
    for n in 0..frames {
        for c in 0..channels {
            let freq = 220.0 * f64::from(c + 1);
            let value = (std::f64::consts::TAU * freq * n as f64 / f64::from(rate)).sin();
            samples.push((value * amplitude * 32767.0) as i16);
        }
    }
    samples
}

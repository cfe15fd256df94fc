//! Opus in Ogg and in WebM/Matroska, decoded by libopus through Symphonia's codec registry:
//! detected from the bytes, decoded to the length ffmpeg decodes (pre-skip and end trim
//! honoured), at 48 kHz, into the same MP3 ladder, AAC rungs and analysis as every format.

use legato_test_support::ffmpeg;
use legato_transcode::{
    Fmp4Options, LadderOptions, SourceFormat, analyze, detect, transcode, transcode_fmp4,
};

use crate::util::{check_ladder, ffmpeg_decode, temp_file, tone_file};

/// A 6-second loud stereo tone (440 Hz left, 660 Hz right) in Opus at 96 kbit/s, in a file
/// with extension `ext` (`opus`: Ogg; `webm`, `mka`: Matroska), in frames of `frame_ms`.
fn opus_tone_in(ext: &str, frame_ms: &str) -> Vec<u8> {
    let args = [
        "-c:a",
        "libopus",
        "-b:a",
        "96k",
        "-frame_duration",
        frame_ms,
    ];
    tone_file(6.0, 48_000, 2, &args, ext)
}

/// [`opus_tone_in`] in libopus's default 20 ms frames.
fn opus_tone(ext: &str) -> Vec<u8> {
    opus_tone_in(ext, "20")
}

/// What ffmpeg makes of a file: the samples per channel it decodes at 48 kHz, and the
/// duration its demuxer reports.
fn ffmpeg_view(data: &[u8], ext: &str) -> (usize, f64) {
    let (_dir, path) = temp_file(data, ext);
    let path = path.to_string_lossy();
    let samples = ffmpeg::decoded_samples(&path, 2);
    let duration: f64 = ffmpeg::probe(&[
        "-show_entries",
        "format=duration",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
        &path,
    ])
    .trim()
    .parse()
    .unwrap();
    (samples, duration)
}

/// The pre-skip of the first Opus identification header in a file (Ogg or Matroska).
fn pre_skip(data: &[u8]) -> usize {
    let at = data
        .windows(8)
        .position(|w| w == b"OpusHead")
        .expect("an OpusHead");
    usize::from(u16::from_le_bytes([data[at + 10], data[at + 11]]))
}

/// The frequency of the left channel of interleaved stereo samples, from its zero crossings.
fn left_frequency(samples: &[i16], rate: u32) -> f64 {
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let crossings = left
        .windows(2)
        .filter(|pair| (pair[0] < 0) != (pair[1] < 0))
        .count();
    crossings as f64 / 2.0 / (left.len() as f64 / f64::from(rate))
}

#[test]
fn ogg_and_webm_opus_decode_to_their_length_into_the_ladder() {
    // (extension, frame length in ms, format, whether the end is exact: Ogg's last granule
    // position gives it; Symphonia's Matroska reader does not read the last block's
    // DiscardPadding, so the encoder's padding of the last frame is left there). libopus's
    // pre-skip is 312 samples in 20 ms frames, 120 in 5 ms ones.
    let cases = [
        ("opus", 20, SourceFormat::OggOpus, true),
        ("opus", 5, SourceFormat::OggOpus, true),
        ("webm", 20, SourceFormat::Matroska, false),
        ("webm", 5, SourceFormat::Matroska, false),
        ("mka", 20, SourceFormat::Matroska, false),
    ];
    for (ext, frame_ms, format, exact_end) in cases {
        let data = opus_tone_in(ext, &frame_ms.to_string());
        let frame = frame_ms * 48;
        let what = format!("{ext} ({frame_ms} ms)");
        assert_eq!(detect(&data).unwrap(), format, "{what}");
        let transcoded = transcode(&data, &LadderOptions::default(), &|_| {}).unwrap();
        let source = &transcoded.source;
        assert_eq!(source.format, format, "{what}");
        assert_eq!(source.codec, "opus", "{what}");
        assert_eq!(source.sample_rate, 48_000, "{what}");
        assert_eq!(source.channels, 2, "{what}");
        let bitrate = source.bitrate_kbps.unwrap();
        // libopus's VBR around the 96 kbit/s asked for.
        assert!((64..=160).contains(&bitrate), "{what}: {bitrate} kbit/s");

        // The pre-skip (the encoder's lookahead) is dropped at the start, and the end is
        // where the container says: the samples ffmpeg decodes, and its duration.
        let (ffmpeg_samples, ffmpeg_seconds) = ffmpeg_view(&data, ext);
        let ours = (source.duration * 48_000.0).round() as usize;
        if exact_end {
            assert_eq!(ours, ffmpeg_samples, "{what}: samples decoded");
        } else {
            // Every frame less the pre-skip: within one frame of ffmpeg's.
            let pre_skip = pre_skip(&data);
            assert_eq!(
                (ours + pre_skip) % frame,
                0,
                "{what}: {ours} samples decoded"
            );
            assert!(
                (ffmpeg_samples..ffmpeg_samples + frame).contains(&ours),
                "{what}: {ours} samples decoded, ffmpeg decodes {ffmpeg_samples}"
            );
        }
        assert!(
            (source.duration - ffmpeg_seconds).abs() <= 0.020,
            "{what}: {} s decoded, ffmpeg says {ffmpeg_seconds} s",
            source.duration
        );
        assert!((source.duration - 6.0).abs() <= 0.020, "{what}");

        // Opus's 48 kHz is kept; every rung checks out, and carries the 440 Hz tone.
        assert_eq!(
            (transcoded.sample_rate, transcoded.channels),
            (48_000, 2),
            "{what}"
        );
        let bitrates: Vec<u32> = transcoded.rungs.iter().map(|r| r.bitrate_kbps).collect();
        assert_eq!(bitrates, [64, 128, 192], "{what}");
        check_ladder(&transcoded, source.duration);
        let (samples, _, rate) = ffmpeg_decode(&transcoded.rungs[1].mp3);
        let hz = left_frequency(&samples, rate);
        assert!((430.0..=450.0).contains(&hz), "{what}: {hz} Hz");
    }
}

#[test]
fn a_pre_skip_longer_than_a_packet_is_dropped_across_packets() {
    let data = opus_tone("webm");
    let decoded = |data: &[u8]| {
        let transcoded = transcode(
            data,
            &LadderOptions {
                rungs_kbps: vec![64],
            },
            &|_| {},
        );
        (transcoded.unwrap().source.duration * 48_000.0).round() as usize
    };
    let before = decoded(&data);
    // The same file with a pre-skip of three 20 ms frames more in its OpusHead (Matroska's
    // CodecPrivate, under no checksum).
    let at = data.windows(8).position(|w| w == b"OpusHead").unwrap() + 10;
    let pre_skip = u16::from_le_bytes([data[at], data[at + 1]]);
    assert_eq!(pre_skip, 312);
    let mut longer = data.clone();
    longer[at..at + 2].copy_from_slice(&(pre_skip + 3 * 960).to_le_bytes());
    assert_eq!(decoded(&longer), before - 3 * 960);
}

#[test]
fn opus_gets_aac_rungs_and_an_analysis() {
    for ext in ["opus", "webm"] {
        let data = opus_tone(ext);
        let options = Fmp4Options {
            aac_rungs_kbps: vec![64, 128],
            lossless: true,
        };
        let renditions = transcode_fmp4(&data, &options).unwrap();
        assert_eq!(renditions.sample_rate, 48_000, "{ext}");
        assert!(
            renditions.flac.is_none(),
            "{ext}: Opus is lossy, no FLAC rung"
        );
        let rungs: Vec<u32> = renditions.aac.iter().map(|a| a.bitrate_kbps).collect();
        assert_eq!(rungs, [64, 128], "{ext}");
        for aac in &renditions.aac {
            let seconds = aac.valid_samples as f64 / 48_000.0;
            assert!(
                (seconds - renditions.source.duration).abs() < 1e-9,
                "{ext}: {seconds} s of AAC for {} s of source",
                renditions.source.duration
            );
        }

        let analysis = analyze(&data, 120).unwrap();
        assert_eq!(analysis.peaks.len(), 120);
        // Sines at 0.7 of full scale, one in each channel.
        assert!(
            analysis.peaks.iter().all(|&p| (0.65..0.8).contains(&p)),
            "{ext}: {:?}",
            analysis.peaks
        );
        let lufs = analysis.loudness_lufs.unwrap();
        assert!((-5.0..=-1.0).contains(&lufs), "{ext}: {lufs} LUFS");
    }
}

#[test]
fn mono_opus_stays_mono() {
    let data = tone_file(2.0, 48_000, 1, &["-c:a", "libopus", "-b:a", "48k"], "opus");
    let transcoded = transcode(
        &data,
        &LadderOptions {
            rungs_kbps: vec![64],
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(transcoded.source.channels, 1);
    assert_eq!((transcoded.sample_rate, transcoded.channels), (48_000, 1));
    check_ladder(&transcoded, transcoded.source.duration);
}

#[test]
fn what_opus_and_matroska_hold_that_we_do_not_decode_is_named() {
    // Surround Opus (the multistream mapping): recognised, refused by name.
    let surround = legato_test_support::audio::tone_file(
        1.0,
        440,
        48_000,
        6,
        "opus",
        &["-c:a", "libopus", "-b:a", "192k"],
    );
    let surround = std::fs::read(surround).unwrap();
    assert_eq!(detect(&surround).unwrap(), SourceFormat::OggOpus);
    let error = transcode(&surround, &LadderOptions::default(), &|_| {}).unwrap_err();
    assert_eq!(error.code(), "unsupported-format");
    assert_eq!(
        error.to_string(),
        "Opus with more than two channels (6 in Ogg Opus) is not supported yet"
    );

    // A Matroska file is detected as such whatever its audio; AC-3 is refused on opening.
    let ac3 = legato_test_support::audio::tone_file(1.0, 440, 48_000, 2, "mka", &["-c:a", "ac3"]);
    let ac3 = std::fs::read(ac3).unwrap();
    assert_eq!(detect(&ac3).unwrap(), SourceFormat::Matroska);
    let error = transcode(&ac3, &LadderOptions::default(), &|_| {}).unwrap_err();
    assert_eq!(error.code(), "unsupported-format");
    assert_eq!(
        error.to_string(),
        "AC-3 in WebM/Matroska is not supported yet"
    );
    assert_eq!(analyze(&ac3, 10).unwrap_err(), error);
}

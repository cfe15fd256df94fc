//! Every input format we accept, to a checked ladder.

use legato_transcode::{LadderOptions, SourceFormat, detect, transcode};

use crate::util::{check_ladder, sine_s16, tone_file, wav_s16};

fn ladder(data: &[u8]) -> legato_transcode::Transcoded {
    transcode(data, &LadderOptions::default(), &|_| {}).unwrap()
}

#[test]
fn wav_in_every_sample_format_and_common_rates() {
    // (codec, source rate, channels, expected output rate)
    let cases = [
        ("pcm_s16le", 44_100, 2, 44_100),
        ("pcm_s24le", 48_000, 2, 48_000),
        ("pcm_s32le", 96_000, 2, 48_000),
        ("pcm_f32le", 22_050, 1, 44_100),
    ];
    for (codec, rate, channels, out_rate) in cases {
        let wav = tone_file(2.0, rate, channels, &["-c:a", codec], "wav");
        assert_eq!(detect(&wav).unwrap(), SourceFormat::Wav);
        let transcoded = ladder(&wav);
        let source = &transcoded.source;
        assert_eq!(source.format, SourceFormat::Wav, "{codec}");
        assert_eq!(source.codec, "pcm");
        assert_eq!(source.sample_rate, rate);
        assert_eq!(u32::from(source.channels), channels);
        assert!(
            (source.duration - 2.0).abs() < 1e-6,
            "{codec}: {}",
            source.duration
        );
        assert!(!transcoded.keep_original);
        assert_eq!(transcoded.sample_rate, out_rate, "{codec} at {rate} Hz");
        assert_eq!(u32::from(transcoded.channels), channels);
        let bitrates: Vec<u32> = transcoded.rungs.iter().map(|r| r.bitrate_kbps).collect();
        assert_eq!(bitrates, [64, 128, 192]);
        check_ladder(&transcoded, source.duration);
    }
}

#[test]
fn compressed_and_other_containers() {
    // (codec arguments, extension, format, codec name)
    let cases: [(&[&str], &str, SourceFormat, &str); 5] = [
        (&["-c:a", "flac"], "flac", SourceFormat::Flac, "flac"),
        (
            &["-c:a", "libvorbis", "-q:a", "4"],
            "ogg",
            SourceFormat::OggVorbis,
            "vorbis",
        ),
        (
            &["-c:a", "aac", "-b:a", "128k"],
            "m4a",
            SourceFormat::Mp4Aac,
            "aac",
        ),
        (
            &["-c:a", "aac", "-b:a", "128k", "-f", "adts"],
            "aac",
            SourceFormat::Adts,
            "aac",
        ),
        (&["-c:a", "pcm_s16be"], "aiff", SourceFormat::Aiff, "pcm"),
    ];
    for (args, ext, format, codec) in cases {
        let data = tone_file(2.0, 44_100, 2, args, ext);
        assert_eq!(detect(&data).unwrap(), format, "{ext}");
        let transcoded = ladder(&data);
        assert_eq!(transcoded.source.format, format);
        assert_eq!(transcoded.source.codec, codec, "{ext}");
        assert_eq!(transcoded.sample_rate, 44_100);
        assert_eq!(transcoded.channels, 2);
        // AAC decoders differ by a frame of priming at most; the others are exact.
        let slack = if codec == "aac" { 0.05 } else { 1e-6 };
        assert!(
            (transcoded.source.duration - 2.0).abs() <= slack,
            "{ext}: {}",
            transcoded.source.duration
        );
        let bitrate = transcoded.source.bitrate_kbps.unwrap();
        assert!(bitrate > 8, "{ext}: {bitrate} kbit/s");
        check_ladder(&transcoded, transcoded.source.duration);
    }
}

#[test]
fn surround_is_downmixed_to_stereo_and_mono_stays_mono() {
    let surround = wav_s16(48_000, 6, &sine_s16(48_000, 6, 1.0, 0.5));
    let transcoded = transcode(
        &surround,
        &LadderOptions {
            rungs_kbps: vec![128],
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(transcoded.source.channels, 6);
    assert_eq!(transcoded.channels, 2);
    check_ladder(&transcoded, 1.0);

    let mono = wav_s16(32_000, 1, &sine_s16(32_000, 1, 1.0, 0.5));
    let transcoded = transcode(
        &mono,
        &LadderOptions {
            rungs_kbps: vec![64],
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!((transcoded.sample_rate, transcoded.channels), (32_000, 1));
    check_ladder(&transcoded, 1.0);
}

#[test]
fn odd_rates_are_resampled_to_44100_or_48000() {
    for (rate, expected) in [(8_000, 48_000), (11_025, 44_100), (37_800, 44_100)] {
        let wav = wav_s16(rate, 2, &sine_s16(rate, 2, 1.0, 0.5));
        let transcoded = transcode(
            &wav,
            &LadderOptions {
                rungs_kbps: vec![96],
            },
            &|_| {},
        )
        .unwrap();
        assert_eq!(transcoded.sample_rate, expected, "{rate} Hz");
        check_ladder(&transcoded, 1.0);
    }
}

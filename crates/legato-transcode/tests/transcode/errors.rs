//! What is not audio we decode: an error that names what was found, with a stable code, from
//! every entry point, and never a panic.

use legato_transcode::{LadderOptions, TranscodeError, analyze, detect, read_tags, transcode};

use crate::util::{make, sine_s16, tone_file, wav_s16};

/// The error of every entry point, checked to agree; `detect` may accept what only decoding
/// can refuse.
fn refused(data: &[u8]) -> TranscodeError {
    let error = transcode(data, &LadderOptions::default(), &|_| {}).unwrap_err();
    let analysed = analyze(data, 100).unwrap_err();
    assert_eq!(error, analysed);
    if let Err(detected) = detect(data) {
        assert_eq!(detected, error);
    }
    assert!(read_tags(data).cover.is_none());
    error
}

#[test]
fn empty_file() {
    let error = refused(b"");
    assert_eq!(error.code(), "empty-file");
    assert_eq!(error.to_string(), "the file is empty");
}

#[test]
fn ogg_speex_is_named() {
    let speex = tone_file(1.0, 16_000, 1, &["-c:a", "libspeex"], "spx");
    let error = refused(&speex);
    assert_eq!(error.code(), "unsupported-format");
    assert_eq!(error.to_string(), "Ogg Speex is not supported yet");
}

#[test]
fn mp2_is_named() {
    let mp2 = tone_file(1.0, 44_100, 2, &["-c:a", "mp2"], "mp2");
    let error = refused(&mp2);
    assert_eq!(error.code(), "unsupported-format");
    assert_eq!(
        error.to_string(),
        "MPEG Layer II audio (MP2) is not supported yet"
    );
}

#[test]
fn images_and_text_are_not_audio() {
    let png = make(
        &["-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1"],
        "png",
    );
    let error = refused(&png);
    assert_eq!(error.code(), "not-audio");
    assert_eq!(
        error.to_string(),
        "not an audio file: looks like a PNG image"
    );

    let jpeg = make(
        &["-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1"],
        "jpg",
    );
    assert_eq!(
        refused(&jpeg).to_string(),
        "not an audio file: looks like a JPEG image"
    );

    let error = refused("Track list:\n1. Intro\n2. Outro — fin\n".as_bytes());
    assert_eq!(error.code(), "not-audio");
    assert_eq!(error.to_string(), "not an audio file: looks like text");
}

#[test]
fn random_bytes_are_not_audio() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_eq!(refused(&noise).code(), "not-audio");
}

#[test]
fn truncated_flac_is_corrupt() {
    let flac = tone_file(3.0, 44_100, 2, &["-c:a", "flac"], "flac");
    let half = refused(&flac[..flac.len() / 2]);
    assert_eq!(half.code(), "corrupt-audio");
    assert!(
        half.to_string()
            .starts_with("the FLAC file is damaged or cut short: it ends after"),
        "{half}"
    );

    // Cut inside the metadata: not one audio frame.
    let head = refused(&flac[..60]);
    assert_eq!(head.code(), "corrupt-audio", "{head}");
}

#[test]
fn wav_without_samples_or_with_too_many_channels() {
    let empty = wav_s16(44_100, 2, &[]);
    assert_eq!(refused(&empty).code(), "no-audio");

    let wide = wav_s16(44_100, 12, &sine_s16(44_100, 12, 0.1, 0.5));
    let error = refused(&wide);
    assert_eq!(error.code(), "too-many-channels");
    assert_eq!(
        error.to_string(),
        "the audio has 12 channels; at most 8 are supported"
    );
}

#[test]
fn wav_declaring_more_than_it_holds_is_cut_short() {
    let mut wav = wav_s16(44_100, 2, &sine_s16(44_100, 2, 2.0, 0.5));
    wav.truncate(wav.len() / 3);
    assert_eq!(refused(&wav).code(), "corrupt-audio");
}

#[test]
fn bad_options_are_the_servers_fault() {
    let wav = wav_s16(44_100, 1, &sine_s16(44_100, 1, 0.2, 0.5));
    for rungs_kbps in [vec![], vec![100]] {
        let error = transcode(&wav, &LadderOptions { rungs_kbps }, &|_| {}).unwrap_err();
        assert_eq!(error.code(), "invalid-options");
        assert!(!error.is_input_error());
    }
}

#[test]
fn sample_rates_out_of_range() {
    let slow = wav_s16(1_000, 1, &sine_s16(1_000, 1, 0.5, 0.5));
    let error = refused(&slow);
    assert_eq!(error.code(), "unsupported-sample-rate");
    assert_eq!(
        error.to_string(),
        "a sample rate of 1000 Hz is not supported"
    );
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_decoding() {
    // A header for 4 hours of 8 kHz mono, with a second of it present.
    let mut wav = wav_s16(8_000, 1, &sine_s16(8_000, 1, 1.0, 0.5));
    let declared = 4 * 3600 * 8_000 * 2u32;
    wav[40..44].copy_from_slice(&declared.to_le_bytes());
    wav[4..8].copy_from_slice(&(declared + 36).to_le_bytes());
    let error = refused(&wav);
    assert_eq!(error.code(), "too-long");
    assert_eq!(
        error.to_string(),
        "the audio is longer than the limit of 180 minutes"
    );
}

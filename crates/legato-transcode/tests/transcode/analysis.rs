//! Loudness (EBU R128), true peak and waveform.

use legato_transcode::analyze;

use crate::util::{make, sine_s16, wav_s16};

fn full_scale_sine(channels: &str) -> Vec<u8> {
    make(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc={channels}:s=48000:d=3"),
            "-c:a",
            "pcm_f32le",
        ],
        "wav",
    )
}

#[test]
fn a_full_scale_sine_measures_as_bs1770_says() {
    // 1 kHz at 0 dBFS: -3.01 LUFS in one channel (K-weighting adds ~0.7 dB at 1 kHz and the
    // -0.691 offset takes it off again), +3 dB with the same signal in two.
    let mono = analyze(&full_scale_sine("sin(2*PI*1000*t)"), 400).unwrap();
    let lufs = mono.loudness_lufs.unwrap();
    assert!((-3.3..=-2.7).contains(&lufs), "mono: {lufs} LUFS");
    let peak = mono.true_peak_dbtp.unwrap();
    assert!((-0.3..=0.3).contains(&peak), "mono: {peak} dBTP");
    assert_eq!(mono.peaks.len(), 400);
    assert!(mono.peaks.iter().all(|&p| p > 0.99 && p <= 1.0));

    let stereo = analyze(&full_scale_sine("sin(2*PI*1000*t)|sin(2*PI*1000*t)"), 10).unwrap();
    let lufs = stereo.loudness_lufs.unwrap();
    assert!((-0.3..=0.3).contains(&lufs), "stereo: {lufs} LUFS");
}

#[test]
fn silence_has_no_loudness_and_a_flat_waveform() {
    let silence = wav_s16(44_100, 2, &vec![0; 44_100 * 2]);
    let analysis = analyze(&silence, 50).unwrap();
    assert_eq!(analysis.loudness_lufs, None);
    assert_eq!(analysis.true_peak_dbtp, None);
    assert_eq!(analysis.peaks, vec![0.0; 50]);
}

#[test]
fn the_waveform_follows_the_track() {
    // One second of silence, then one second of a half-scale sine.
    let mut samples = vec![0i16; 44_100];
    samples.extend(sine_s16(44_100, 1, 1.0, 0.5));
    let analysis = analyze(&wav_s16(44_100, 1, &samples), 100).unwrap();
    assert!(analysis.peaks[..49].iter().all(|&p| p == 0.0));
    assert!(
        analysis.peaks[51..]
            .iter()
            .all(|&p| (0.45..0.55).contains(&p))
    );
    let lufs = analysis.loudness_lufs.unwrap();
    assert!((-13.0..=-8.0).contains(&lufs), "{lufs} LUFS");
}

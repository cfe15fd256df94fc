//! Benchmark of the fMP4 rungs (see bench/fmp4.sh, which builds this in release and runs it):
//!
//! * wall time of the AAC-LC ladder (64/128/256 kbit/s, libfdk-aac, one decode) against
//!   ffmpeg's native `aac` encoder making the same three rungs from one decode;
//! * fMP4 container overhead: init + media segments over the raw access units (AAC) or the
//!   FLAC frames (lossless rung), with 10 s segments.
//!
//!   fmp4_bench SOURCE.wav [RUNS]
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark: a failure is a crash with its message"
)]

use std::process::Command;
use std::time::Instant;

use legato_media::fmp4::{self, Cut, Fmp4Track};
use legato_transcode::{Fmp4Options, transcode_fmp4};

fn main() {
    let mut args = std::env::args().skip(1);
    let source = args.next().expect("usage: fmp4_bench SOURCE.wav [RUNS]");
    let runs: usize = args.next().map_or(3, |runs| runs.parse().unwrap());
    let wav = std::fs::read(&source).unwrap();
    let aac_only = Fmp4Options {
        aac_rungs_kbps: vec![64, 128, 256],
        lossless: false,
    };

    let mut ours = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let renditions = transcode_fmp4(&wav, &aac_only).unwrap();
        ours.push(started.elapsed().as_secs_f64());
        assert_eq!(renditions.aac.len(), 3);
    }
    let dir = std::env::temp_dir().join(format!("legato-fmp4-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i", &source])
            .args(["-filter_complex", "asplit=3[a][b][c]"])
            .args(["-map", "[a]", "-c:a", "aac", "-b:a", "64k"])
            .arg(dir.join("64.m4a"))
            .args(["-map", "[b]", "-c:a", "aac", "-b:a", "128k"])
            .arg(dir.join("128.m4a"))
            .args(["-map", "[c]", "-c:a", "aac", "-b:a", "256k"])
            .arg(dir.join("256.m4a"))
            .status()
            .unwrap();
        theirs.push(started.elapsed().as_secs_f64());
        assert!(status.success());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (ours, theirs) = (median(&mut ours), median(&mut theirs));
    println!("AAC ladder 64/128/256 kbit/s, median of {runs} runs:");
    println!("  legato (libfdk-aac, 1 decode, 3 threads): {ours:.3} s");
    println!("  ffmpeg (native aac, 1 decode, asplit=3):  {theirs:.3} s");
    println!("  ratio: {:.2}x ffmpeg's wall time", ours / theirs);

    println!("fMP4 container overhead, 10 s segments (init + segments over raw frames):");
    let renditions = transcode_fmp4(&wav, &Fmp4Options::default()).unwrap();
    for rung in &renditions.aac {
        let track = fmp4::aac_track(
            rung.audio_specific_config.clone(),
            rung.sample_rate,
            rung.channels,
            &rung.frame_lens,
            rung.priming,
            rung.valid_samples,
            rung.bitrate_kbps,
            Cut::Target(10.0),
        )
        .unwrap();
        report(
            &format!("AAC {} kbit/s", rung.bitrate_kbps),
            &track,
            &rung.data,
            rung.data.len(),
        );
    }
    if let Some(flac) = renditions.flac.as_ref().map(|rung| &rung.data) {
        let scan = legato_media::flac::scan_flac(flac).unwrap();
        let raw: usize = scan.frames.iter().map(|frame| frame.len).sum();
        let track = fmp4::flac_track(flac, Cut::Target(10.0)).unwrap();
        report("FLAC (lossless)", &track, flac, raw);
    }
}

fn report(name: &str, track: &Fmp4Track, data: &[u8], raw: usize) {
    let mut total = track.init_segment().unwrap().len();
    for index in 0..track.segment_count() {
        total += track.media_segment(data, index).unwrap().len();
    }
    let (peak, average) = track.bandwidths().unwrap();
    println!(
        "  {name}: {raw} bytes of frames, {total} bytes served in {} segments: +{:.3} % \
         (BANDWIDTH {peak}, AVERAGE-BANDWIDTH {average})",
        track.segment_count(),
        (total - raw) as f64 * 100.0 / raw as f64
    );
}

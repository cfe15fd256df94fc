//! Encodes the default three-rung ladder (64, 128, 192 kbit/s) of an audio file and prints
//! the wall time, for side-by-side runs against ffmpeg:
//!
//! ```text
//! cargo run --release -p legato-transcode --example ladder_bench -- in.wav [out-dir]
//! ffmpeg -i in.wav -map 0 -c:a libmp3lame -b:a 64k a.mp3 -map 0 -c:a libmp3lame -b:a 128k b.mp3 \
//!        -map 0 -c:a libmp3lame -b:a 192k c.mp3
//! ```
//!
//! With an output directory, the rungs are written there as `<name>.mp3`. With
//! `LADDER_BENCH_ANALYZE=1`, the separate analysis pass (loudness, true peak, waveform) is
//! timed too, after the ladder.

use std::process::ExitCode;
use std::time::Instant;

use legato_transcode::{LadderOptions, analyze, transcode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: ladder_bench <audio file> [output directory]");
        return ExitCode::FAILURE;
    };
    let out_dir = args.next();
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(error) => {
            eprintln!("cannot read {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let result = transcode(&data, &LadderOptions::default(), &|_| {});
    let wall = started.elapsed();
    let transcoded = match result {
        Ok(transcoded) => transcoded,
        Err(error) => {
            eprintln!("{path}: {error} ({})", error.code());
            return ExitCode::FAILURE;
        }
    };
    let source = &transcoded.source;
    println!(
        "source: {} {} {} Hz {} ch {:.1} s; rungs at {} Hz {} ch",
        source.format,
        source.codec,
        source.sample_rate,
        source.channels,
        source.duration,
        transcoded.sample_rate,
        transcoded.channels
    );
    for rung in &transcoded.rungs {
        println!("  {:>5}: {} bytes", rung.name, rung.mp3.len());
        if let Some(dir) = &out_dir {
            let file = std::path::Path::new(dir).join(format!("{}.mp3", rung.name));
            if let Err(error) = std::fs::write(&file, &rung.mp3) {
                eprintln!("cannot write {}: {error}", file.display());
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "decode {:.0} ms, encode {:.0} ms, wall {:.3} s ({} threads available)",
        transcoded.decode_ms,
        transcoded.encode_ms,
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    if std::env::var_os("LADDER_BENCH_ANALYZE").is_some_and(|v| v == "1") {
        let started = Instant::now();
        match analyze(&data, 400) {
            Ok(analysis) => println!(
                "analysis: {:?} LUFS, {:?} dBTP, {} peaks, wall {:.3} s",
                analysis.loudness_lufs,
                analysis.true_peak_dbtp,
                analysis.peaks.len(),
                started.elapsed().as_secs_f64()
            ),
            Err(error) => {
                eprintln!("{path}: analysis failed: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

//! Damaged uploads: every entry point returns (an error or a result), never panics, never
//! hangs. Deterministic mutations of small valid files: flipped bytes, zeroed runs, cuts.

use legato_transcode::{LadderOptions, analyze, detect, read_tags, transcode};

use crate::util::tone_file;

/// xorshift64: reproducible "random" numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(data: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = data.to_vec();
    match rng.below(3) {
        0 => {
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = rng.below(data.len());
            let len = (1 + rng.below(256)).min(data.len() - at);
            data[at..at + len].fill(0);
        }
        _ => data.truncate(rng.below(data.len())),
    }
    data
}

#[test]
fn mutated_files_fail_cleanly() {
    let inputs: [(&[&str], &str); 9] = [
        (&["-c:a", "pcm_s16le"], "wav"),
        (&["-c:a", "flac"], "flac"),
        (&["-c:a", "libvorbis"], "ogg"),
        (&["-c:a", "libopus"], "opus"),
        (&["-c:a", "libopus"], "webm"),
        (&["-c:a", "aac"], "m4a"),
        (&["-c:a", "aac", "-f", "adts"], "aac"),
        (&["-c:a", "libmp3lame"], "mp3"),
        (&["-c:a", "pcm_s24be"], "aiff"),
    ];
    let options = LadderOptions {
        rungs_kbps: vec![32],
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (args, ext) in inputs {
        let original = tone_file(0.5, 44_100, 2, args, ext);
        for round in 0..24 {
            let data = mutate(&original, &mut rng);
            let _ = detect(&data);
            let _ = read_tags(&data);
            let what = format!("{ext} mutation {round} ({} bytes)", data.len());
            match transcode(&data, &options, &|_| {}) {
                Ok(transcoded) => assert!(!transcoded.rungs.is_empty(), "{what}"),
                Err(error) => {
                    assert!(error.is_input_error(), "{what}: {error}");
                    assert_ne!(
                        error.to_string().rsplit(": ").next(),
                        Some("the decoder failed on malformed data"),
                        "{what}: a decoder panicked"
                    );
                }
            }
            if let Ok(analysis) = analyze(&data, 50) {
                assert_eq!(analysis.peaks.len(), 50, "{what}");
            }
        }
    }
}

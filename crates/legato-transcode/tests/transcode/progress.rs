//! Progress reports and stage timings.

use std::sync::Mutex;

use legato_transcode::{LadderOptions, Progress, Stage, transcode};

use crate::util::tone_file;

#[test]
fn both_stages_report_up_to_completion() {
    let flac = tone_file(3.0, 44_100, 2, &["-c:a", "flac"], "flac");
    let events = Mutex::new(Vec::<Progress>::new());
    let transcoded = transcode(&flac, &LadderOptions::default(), &|progress| {
        events.lock().unwrap().push(progress);
    })
    .unwrap();
    let events = events.into_inner().unwrap();
    for stage in [Stage::Decode, Stage::Encode] {
        let fractions: Vec<f32> = events
            .iter()
            .filter(|event| event.stage == stage)
            .map(|event| event.fraction)
            .collect();
        assert!(fractions.len() >= 2, "{stage:?}: {fractions:?}");
        assert!(
            fractions.windows(2).all(|pair| pair[0] < pair[1]),
            "{stage:?}: {fractions:?}"
        );
        assert!(fractions.iter().all(|f| (0.0..=1.0).contains(f)));
        assert_eq!(fractions.last(), Some(&1.0), "{stage:?}");
    }
    assert_eq!(events.first().map(|event| event.stage), Some(Stage::Decode));
    assert!(transcoded.decode_ms > 0.0 && transcoded.encode_ms > 0.0);
}

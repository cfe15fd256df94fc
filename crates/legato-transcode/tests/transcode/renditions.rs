//! Every rendition from one decode gives what the separate passes give: the same MP3 rungs,
//! the same AAC and FLAC rungs, the same analysis.

use std::io::{Read, Seek, Write};

use legato_transcode::{
    Fmp4Options, LadderOptions, RenditionRequest, analyze, transcode, transcode_fmp4,
    transcode_renditions,
};

use crate::util::tone_file;

fn file_of(bytes: &[u8]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file
}

fn read_back(mut file: std::fs::File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn one_decode_makes_what_three_passes_made() {
    let request = RenditionRequest {
        mp3_rungs_kbps: vec![64, 128],
        aac_rungs_kbps: vec![64, 128],
        lossless: true,
        analysis_points: Some(100),
    };
    // A WAV (lossless rung too, resampled from 96 kHz), an MP3 (rungs below its own only)
    // and an Ogg Vorbis.
    let cases: [(&[&str], u32, &str); 3] = [
        (&["-c:a", "pcm_s16le"], 96_000, "wav"),
        (&["-c:a", "libmp3lame", "-b:a", "160k"], 44_100, "mp3"),
        (&["-c:a", "libvorbis", "-q:a", "4"], 48_000, "ogg"),
    ];
    for (args, rate, ext) in cases {
        let data = tone_file(3.0, rate, 2, args, ext);
        let made =
            transcode_renditions(&file_of(&data), &request, &|_| {}, &tempfile::tempfile).unwrap();
        assert_eq!(made.decodes, 1, "{ext}");
        assert!(made.fmp4_refused.is_none(), "{ext}");

        let ladder = transcode(
            &data,
            &LadderOptions {
                rungs_kbps: request.mp3_rungs_kbps.clone(),
            },
            &|_| {},
        )
        .unwrap();
        assert_eq!(made.mp3.source, ladder.source, "{ext}");
        assert_eq!(made.mp3.keep_original, ladder.keep_original, "{ext}");
        assert_eq!(made.mp3.rungs.len(), ladder.rungs.len(), "{ext}");
        for (spilled, in_memory) in made.mp3.rungs.into_iter().zip(&ladder.rungs) {
            assert_eq!(spilled.name, in_memory.name, "{ext}");
            assert!(
                read_back(spilled.file) == in_memory.mp3,
                "{ext}: {}",
                in_memory.name
            );
        }

        let fmp4 = transcode_fmp4(
            &data,
            &Fmp4Options {
                aac_rungs_kbps: request.aac_rungs_kbps.clone(),
                lossless: request.lossless,
            },
        )
        .unwrap();
        assert_eq!(made.fmp4.aac.len(), 2, "{ext}");
        for (spilled, in_memory) in made.fmp4.aac.into_iter().zip(&fmp4.aac) {
            assert_eq!(spilled.frame_lens, in_memory.frame_lens, "{ext}");
            assert_eq!(spilled.priming, in_memory.priming, "{ext}");
            assert_eq!(spilled.valid_samples, in_memory.valid_samples, "{ext}");
            assert!(
                read_back(spilled.data.file) == in_memory.data,
                "{ext}: AAC bytes"
            );
        }
        assert_eq!(made.fmp4.flac.is_some(), ext == "wav", "{ext}");
        if let (Some(spilled), Some(in_memory)) = (made.fmp4.flac, &fmp4.flac) {
            assert!(
                read_back(spilled.data.file) == in_memory.data,
                "{ext}: FLAC bytes"
            );
        }

        assert_eq!(made.analysis, Some(analyze(&data, 100).unwrap()), "{ext}");
    }
}

#[test]
fn an_mp3_with_nothing_to_make_is_not_decoded() {
    let data = tone_file(
        2.0,
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "64k"],
        "mp3",
    );
    let request = RenditionRequest {
        mp3_rungs_kbps: vec![64, 128],
        ..RenditionRequest::default()
    };
    let made =
        transcode_renditions(&file_of(&data), &request, &|_| {}, &tempfile::tempfile).unwrap();
    assert_eq!(made.decodes, 0);
    assert!(made.mp3.keep_original && made.mp3.rungs.is_empty());
    assert!(made.fmp4.aac.is_empty() && made.analysis.is_none());
}

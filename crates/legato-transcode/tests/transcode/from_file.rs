//! Reading the upload from a file as decoding goes gives what reading it from memory gives.

use std::io::Write;

use legato_transcode::{
    LadderOptions, TranscodeError, Transcoded, analyze, analyze_file, transcode, transcode_file,
};

use crate::util::{tone_file, wav_s16};

fn file_of(bytes: &[u8]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file
}

/// The transcoder's results without its timings.
fn comparable(mut transcoded: Transcoded) -> Transcoded {
    transcoded.decode_ms = 0.0;
    transcoded.encode_ms = 0.0;
    transcoded
}

#[test]
fn every_format_transcodes_and_analyzes_the_same_from_a_file() {
    let options = LadderOptions {
        rungs_kbps: vec![64, 128],
    };
    // (codec arguments, extension): the MP3 goes through memory, the others are streamed.
    let cases: [(&[&str], &str); 9] = [
        (&["-c:a", "pcm_s16le"], "wav"),
        (&["-c:a", "pcm_s24le"], "wav"),
        (&["-c:a", "flac"], "flac"),
        (&["-c:a", "libvorbis", "-q:a", "4"], "ogg"),
        (&["-c:a", "libopus", "-b:a", "96k"], "opus"),
        (&["-c:a", "libopus", "-b:a", "96k"], "webm"),
        (&["-c:a", "aac", "-b:a", "128k"], "m4a"),
        (&["-c:a", "pcm_s16be"], "aiff"),
        (&["-c:a", "libmp3lame", "-b:a", "160k"], "mp3"),
    ];
    for (args, ext) in cases {
        let data = tone_file(3.0, 44_100, 2, args, ext);
        let file = file_of(&data);
        let from_memory = comparable(transcode(&data, &options, &|_| {}).unwrap());
        let from_file = comparable(transcode_file(&file, &options, &|_| {}).unwrap());
        assert!(!from_file.rungs.is_empty(), "{ext}");
        assert_eq!(from_file, from_memory, "{ext}");
        assert_eq!(
            analyze_file(&file, 100).unwrap(),
            analyze(&data, 100).unwrap(),
            "{ext}"
        );
    }
}

#[test]
fn rungs_written_to_files_hold_what_rungs_in_memory_hold() {
    use std::io::{Read, Seek};
    let options = LadderOptions {
        rungs_kbps: vec![64, 128, 192],
    };
    let made = std::sync::atomic::AtomicUsize::new(0);
    let spill = || {
        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tempfile::tempfile()
    };
    for (args, ext) in [
        (&["-c:a", "flac"][..], "flac"),
        (&["-c:a", "libmp3lame", "-b:a", "256k"][..], "mp3"),
    ] {
        made.store(0, std::sync::atomic::Ordering::Relaxed);
        let data = tone_file(4.0, 44_100, 2, args, ext);
        let file = file_of(&data);
        let in_memory = transcode(&data, &options, &|_| {}).unwrap();
        let spilled =
            legato_transcode::transcode_file_spilled(&file, &options, &|_| {}, &spill).unwrap();
        assert_eq!(spilled.rungs.len(), in_memory.rungs.len(), "{ext}");
        assert_eq!(
            made.load(std::sync::atomic::Ordering::Relaxed),
            spilled.rungs.len()
        );
        assert_eq!(spilled.source, in_memory.source, "{ext}");
        assert_eq!(spilled.keep_original, in_memory.keep_original, "{ext}");
        for (mut spilled, memory) in spilled.rungs.into_iter().zip(in_memory.rungs) {
            assert_eq!(
                (spilled.name.as_str(), spilled.bitrate_kbps),
                (memory.name.as_str(), memory.bitrate_kbps)
            );
            let mut bytes = Vec::new();
            spilled.file.rewind().unwrap();
            spilled.file.read_to_end(&mut bytes).unwrap();
            assert_eq!(spilled.len, bytes.len() as u64, "{ext} {}", memory.name);
            assert!(bytes == memory.mp3, "{ext} {}: the same MP3", memory.name);
        }
    }
    // A rung that cannot be written is an I/O error, not a panic.
    let data = tone_file(2.0, 44_100, 2, &["-c:a", "flac"], "flac");
    let refused = || Err(std::io::Error::other("no room"));
    let err =
        legato_transcode::transcode_file_spilled(&file_of(&data), &options, &|_| {}, &refused)
            .unwrap_err();
    assert!(matches!(err, TranscodeError::Io(_)), "{err:?}");
}

#[test]
fn a_file_with_a_tag_in_front_is_read_after_it() {
    // An ID3v2 tag before WAV data (some taggers write one): the decoder starts after it.
    let wav = wav_s16(44_100, 1, &vec![1000; 44_100]);
    let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x0a".to_vec();
    tagged.extend_from_slice(&[0; 10]);
    tagged.extend_from_slice(&wav);
    let options = LadderOptions {
        rungs_kbps: vec![64],
    };
    let from_memory = comparable(transcode(&tagged, &options, &|_| {}).unwrap());
    let from_file = comparable(transcode_file(&file_of(&tagged), &options, &|_| {}).unwrap());
    assert_eq!(from_file, from_memory);
    assert!((from_file.source.duration - 1.0).abs() < 1e-6);
}

#[test]
fn a_damaged_file_fails_as_its_bytes_do() {
    let flac = tone_file(3.0, 44_100, 2, &["-c:a", "flac"], "flac");
    let cut = &flac[..flac.len() / 2];
    let options = LadderOptions::default();
    let from_memory = transcode(cut, &options, &|_| {}).unwrap_err();
    let from_file = transcode_file(&file_of(cut), &options, &|_| {}).unwrap_err();
    assert_eq!(from_file.code(), from_memory.code());
    assert_eq!(from_file.code(), "corrupt-audio");
    assert!(from_file.is_input_error());

    let empty = transcode_file(&file_of(b""), &options, &|_| {}).unwrap_err();
    assert!(matches!(empty, TranscodeError::Empty), "{empty}");
}

#[test]
fn a_file_that_cannot_be_read_is_the_servers_error_not_the_uploads() {
    // Opened for writing only: every read fails.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.wav");
    std::fs::write(&path, wav_s16(44_100, 1, &vec![0; 4410])).unwrap();
    let write_only = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let err = transcode_file(&write_only, &LadderOptions::default(), &|_| {}).unwrap_err();
    assert_eq!(err.code(), "source-unreadable", "{err}");
    assert!(!err.is_input_error());
}

//! `legato add FOLDER` bringing a library in, through the real binary against a real
//! `legato serve`: a generated folder of 300 short files in nested folders (MP3, WAV and
//! FLAC, exact copies among them, and files that are not audio). The summary is right, a
//! second run adds nothing, and a run killed half way completes when run again, without a
//! track twice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use legato_test_support::audio::tone_file;
use legato_test_support::process::{self, Run, Server};
use legato_test_support::wait;
use sha2::{Digest, Sha256};

use crate::BIN;

/// Distinct tones made by ffmpeg per format; every other audio file is derived from them.
const TONES: u32 = 12;
const MP3S: usize = 150;
const WAVS: usize = 100;
const FLACS: usize = TONES as usize;
const COPIES: usize = 20;
const NOT_AUDIO: usize = 18;
const DISTINCT: usize = MP3S + WAVS + FLACS;
const FILES: usize = DISTINCT + COPIES + NOT_AUDIO;

#[test]
fn a_folder_of_300_files_is_imported_once_and_resumes_after_a_kill() {
    let library = tempfile::tempdir().unwrap();
    let expected_hashes = make_library(library.path());
    assert_eq!(expected_hashes.len(), DISTINCT);
    let dir = library.path().to_str().unwrap();

    let server = Server::start(BIN, &[]);
    let started = Instant::now();
    let first = add(&server, dir);
    let took = started.elapsed();
    eprintln!("first import of {FILES} files: {took:.1?}");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(
        summary(&first),
        format!(
            "legato: {FILES} files: {DISTINCT} added, 0 already stored, {COPIES} duplicates, {NOT_AUDIO} not audio, 0 refused"
        ),
        "{first:?}"
    );
    // An id per audio file, copies giving their first's.
    let ids: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(ids.len(), DISTINCT + COPIES, "{first:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), DISTINCT);
    assert_eq!(server_hashes(&server), expected_hashes);
    assert!(!first.stderr.contains(".DS_Store") && !first.stderr.contains("hidden"));

    let second = add(&server, dir);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        summary(&second),
        format!(
            "legato: {FILES} files: 0 added, {DISTINCT} already stored, {COPIES} duplicates, {NOT_AUDIO} not audio, 0 refused"
        ),
        "{second:?}"
    );
    assert_eq!(
        second.stdout, first.stdout,
        "the same ids, in the same order"
    );
    assert_eq!(track_count(&server), DISTINCT);
    drop(server);

    // Killed once about half of the tracks are stored, then run again.
    let server = Server::start(BIN, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut child = cli(&server, dir)
        .stdout(std::fs::File::create(out.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(out.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    wait::until(Duration::from_secs(120), "half of the tracks", || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        (track_count(&server) >= DISTINCT / 2).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Uploads whose bodies were in are stored and finish; torn ones leave nothing. Settled
    // once the server has answered (or dropped) every request of the killed client: it has
    // no connection open.
    wait::until(
        Duration::from_secs(20),
        "the killed client's requests to end",
        || (server.open_connections() == 0).then_some(()),
    );
    let stored = track_count(&server);
    assert!(stored < DISTINCT, "killed too late: {stored} tracks");
    eprintln!("killed with {stored} of {DISTINCT} tracks stored");

    let started = Instant::now();
    let resumed = add(&server, dir);
    eprintln!("resumed import: {:.1?}", started.elapsed());
    assert_eq!(resumed.code, Some(0), "{resumed:?}");
    assert_eq!(
        summary(&resumed),
        format!(
            "legato: {FILES} files: {} added, {stored} already stored, {COPIES} duplicates, {NOT_AUDIO} not audio, 0 refused",
            DISTINCT - stored
        ),
        "{resumed:?}"
    );
    assert_eq!(server_hashes(&server), expected_hashes, "no track twice");
}

/// Makes the library under `root` and returns the SHA-256 of each distinct audio file.
fn make_library(root: &Path) -> BTreeSet<String> {
    let tone = |hz: u32, extension: &str, codec: &[&str]| {
        std::fs::read(tone_file(1.0, hz, 44_100, 1, extension, codec)).unwrap()
    };
    // No ID3 tag from ffmpeg: each copy gets its own in front.
    let mp3s: Vec<Vec<u8>> = (0..TONES)
        .map(|k| {
            tone(
                220 + 37 * k,
                "mp3",
                &["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"],
            )
        })
        .collect();
    let wavs: Vec<Vec<u8>> = (0..TONES)
        .map(|k| tone(240 + 41 * k, "wav", &["-c:a", "pcm_s16le"]))
        .collect();
    let flacs: Vec<Vec<u8>> = (0..TONES)
        .map(|k| tone(260 + 43 * k, "flac", &["-c:a", "flac"]))
        .collect();

    let mut audio: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let folder = |i: usize| PathBuf::from(format!("Artist {}/Album {}", i % 6, i % 4));
    for i in 0..MP3S {
        // A title tag of its own makes each copy of a tone a distinct, valid file.
        let mut bytes = id3v2_title(&format!("Song {i}"));
        bytes.extend_from_slice(&mp3s[i % mp3s.len()]);
        let path = if i % 10 == 0 {
            folder(i).join("CD 1").join(format!("{i:03} song.mp3"))
        } else {
            folder(i).join(format!("{i:03} song.mp3"))
        };
        audio.push((path, bytes));
    }
    for i in 0..WAVS {
        // The last sample changed: a click no one hears, another file.
        let mut bytes = wavs[i % wavs.len()].clone();
        let n = bytes.len();
        bytes[n - 2..].copy_from_slice(&u16::try_from(i + 1).unwrap().to_le_bytes());
        audio.push((folder(i + 1).join(format!("{i:03} take.wav")), bytes));
    }
    for (i, bytes) in flacs.into_iter().enumerate() {
        audio.push((PathBuf::from(format!("Lossless/{i:02}.flac")), bytes));
    }
    let hashes: BTreeSet<String> = audio
        .iter()
        .map(|(_, bytes)| format!("{:x}", Sha256::digest(bytes)))
        .collect();
    // Exact copies, of each format, in a folder of their own.
    let copies: Vec<(PathBuf, Vec<u8>)> = (0..COPIES)
        .map(|k| {
            let (path, bytes) = &audio[k * 13 % audio.len()];
            let name = path.file_name().unwrap().to_string_lossy();
            (
                PathBuf::from(format!("Compilation/copy {k} of {name}")),
                bytes.clone(),
            )
        })
        .collect();
    audio.extend(copies);

    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
    png.resize(200, 0);
    let mut other: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for k in 0..6 {
        other.push((
            folder(k).join(format!("notes {k}.txt")),
            b"Recorded live, one take.\n".repeat(20),
        ));
    }
    for k in 0..4 {
        other.push((
            folder(k + 2).join(format!("fake {k}.mp3")),
            b"this is not a song, whatever its name says\n".repeat(10),
        ));
    }
    for k in 0..4 {
        other.push((folder(k + 3).join(format!("cover {k}.png")), png.clone()));
    }
    for k in 0..2 {
        other.push((
            folder(k).join(format!("list {k}.m3u")),
            b"#EXTM3U\n#EXTINF:1,Song\nsong.mp3\n".to_vec(),
        ));
        other.push((folder(k + 4).join(format!("empty {k}.wav")), Vec::new()));
    }
    assert_eq!(other.len(), NOT_AUDIO);
    // Hidden entries are not even looked at: neither a .DS_Store nor a hidden folder's song.
    other.push((
        PathBuf::from("Artist 0/.DS_Store"),
        vec![0, 0, 0, 1, b'B', b'u', b'd', b'1'],
    ));
    other.push((PathBuf::from(".hidden/secret.mp3"), mp3s[0].clone()));

    for (path, bytes) in audio.iter().chain(&other) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(!path.exists(), "{} twice", path.display());
        std::fs::write(path, bytes).unwrap();
    }
    assert_eq!(audio.len() + other.len() - 2, FILES);
    hashes
}

/// An ID3v2.3 tag holding only a title.
fn id3v2_title(title: &str) -> Vec<u8> {
    let mut frame = b"TIT2".to_vec();
    frame.extend_from_slice(&u32::try_from(title.len() + 1).unwrap().to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0]); // flags, then ISO-8859-1
    frame.extend_from_slice(title.as_bytes());
    let size = frame.len();
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    // Sizes in the header are syncsafe: 7 bits a byte.
    tag.extend(
        (0..4)
            .rev()
            .map(|i| u8::try_from((size >> (7 * i)) & 0x7f).unwrap()),
    );
    tag.extend_from_slice(&frame);
    tag
}

fn cli(server: &Server, dir: &str) -> Command {
    let mut command = process::command(BIN);
    command.args(["add", dir, "--url", &server.url("")]);
    command
}

fn add(server: &Server, dir: &str) -> Run {
    Run::of(&mut cli(server, dir))
}

/// The summary line, without its timing.
fn summary(run: &Run) -> String {
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with(&format!("legato: {FILES} files: ")))
        .unwrap_or_else(|| panic!("no summary: {run:?}"));
    line.rsplit_once(" (")
        .map_or(line, |(summary, _)| summary)
        .to_owned()
}

fn track_count(server: &Server) -> usize {
    let response = reqwest::blocking::get(server.url("/function/crud?limit=1")).unwrap();
    assert!(response.status().is_success());
    response.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The SHA-256 of every track's source; fails on a file stored twice.
fn server_hashes(server: &Server) -> BTreeSet<String> {
    let tracks: Vec<serde_json::Value> = reqwest::blocking::get(server.url("/function/crud"))
        .unwrap()
        .json()
        .unwrap();
    let hashes: BTreeSet<String> = tracks
        .iter()
        .map(|track| track["source"]["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hashes.len(), tracks.len(), "a file stored twice");
    hashes
}

/// A tone of its own for each `hz`, as an MP3 without tags (its title comes from its name).
fn mp3_tone(hz: u32) -> Vec<u8> {
    std::fs::read(tone_file(
        1.0,
        hz,
        44_100,
        1,
        "mp3",
        &["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"],
    ))
    .unwrap()
}

/// The summary line of a run over `files` files, without its timing.
fn summary_of(run: &Run, files: usize) -> String {
    let noun = if files == 1 { "file" } else { "files" };
    let start = format!("legato: {files} {noun}: ");
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("no summary: {run:?}"));
    line.rsplit_once(" (")
        .map_or(line, |(summary, _)| summary)
        .to_owned()
}

fn tracks(server: &Server) -> Vec<serde_json::Value> {
    reqwest::blocking::get(server.url("/function/crud"))
        .unwrap()
        .json()
        .unwrap()
}

/// Issue 27, break 9: a name with a newline or an escape character was sent in the part's
/// `filename` as it is, and the server could not read the body (400 `invalid-multipart`);
/// the terminal got the escape sequence raw.
#[test]
fn files_named_with_a_newline_an_escape_or_bytes_not_utf8_are_imported() {
    use std::os::unix::ffi::OsStrExt;
    let library = tempfile::tempdir().unwrap();
    let names: [&[u8]; 3] = [
        b"new\nline.mp3",
        b"esc\x1b[31mape.mp3",
        b"latin \xe9t\xe9.mp3",
    ];
    for (k, name) in names.iter().enumerate() {
        let path = library.path().join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(path, mp3_tone(300 + 50 * u32::try_from(k).unwrap())).unwrap();
    }
    let server = Server::start(BIN, &[]);
    let run = add(&server, library.path().to_str().unwrap());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        summary_of(&run, 3),
        "legato: 3 files: 3 added, 0 already stored, 0 duplicates, 0 not audio, 0 refused",
        "{run:?}"
    );
    // Printed escaped: no escape sequence, no line broken by a name.
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
    for shown in [
        "new\\nline.mp3: added as",
        "esc\\e[31mape.mp3: added as",
        "latin \\xe9t\\xe9.mp3: added as",
    ] {
        assert!(run.stderr.contains(shown), "{shown} in {run:?}");
    }
    // Kept without their control characters; the bytes that are not UTF-8 as U+FFFD.
    let mut kept: Vec<(String, String)> = tracks(&server)
        .iter()
        .map(|track| {
            (
                track["name"].as_str().unwrap().to_owned(),
                track["source"]["file_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("esc[31mape".to_owned(), "esc[31mape.mp3".to_owned()),
            (
                "latin \u{fffd}t\u{fffd}".to_owned(),
                "latin \u{fffd}t\u{fffd}.mp3".to_owned()
            ),
            ("newline".to_owned(), "newline.mp3".to_owned()),
        ]
    );
}

/// A named pipe in a folder was passed over without a word.
#[test]
fn a_fifo_in_a_folder_is_reported_as_skipped_with_its_reason() {
    let library = tempfile::tempdir().unwrap();
    std::fs::write(library.path().join("song.mp3"), mp3_tone(500)).unwrap();
    let fifo = library.path().join("live.mp3");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let server = Server::start(BIN, &[]);
    let run = add(&server, library.path().to_str().unwrap());
    assert_eq!(run.code, Some(0), "skipping is no failure: {run:?}");
    assert_eq!(
        summary_of(&run, 1),
        "legato: 1 file: 1 added, 0 already stored, 0 duplicates, 0 not audio, 0 refused, 1 skipped",
        "{run:?}"
    );
    let fifo = fifo.display();
    assert!(
        run.stderr.contains(&format!(
            "legato: skipped {fifo}: a named pipe (FIFO), not a file"
        )),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("{fifo}: skipped, a named pipe (FIFO), not a file")),
        "{run:?}"
    );
}

/// A file over the server's upload limit was hashed whole (minutes for a large one) before
/// the server refused it for its size. The limit is learnt from `/healthz`: the file is
/// refused in the report without being read past its head, and never sent.
#[test]
fn a_file_over_the_upload_limit_is_refused_before_it_is_hashed_or_sent() {
    let library = tempfile::tempdir().unwrap();
    std::fs::write(library.path().join("small.mp3"), mp3_tone(600)).unwrap();
    // Starts like audio, then 100 GiB of holes: hashing it would take minutes.
    let huge = library.path().join("huge.mp3");
    std::fs::write(&huge, mp3_tone(700)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(100 << 30)
        .unwrap();
    let server = Server::start(BIN, &["--max-upload-mb", "1"]);

    let started = Instant::now();
    let run = add(&server, library.path().to_str().unwrap());
    let took = started.elapsed();
    assert_eq!(run.code, Some(1), "a refusal: {run:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}: {run:?}");
    assert_eq!(
        summary_of(&run, 2),
        "legato: 2 files: 1 added, 0 already stored, 0 duplicates, 0 not audio, 1 refused",
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "legato: refused {}: payload-too-large: larger than the server's upload limit (100.0 GiB > 1.0 MiB); not read, not sent",
            huge.display()
        )),
        "{run:?}"
    );
    // One upload reached the server: the small file's.
    server.wait_logged(
        &["method=POST", "path=/function/crud"],
        Duration::from_secs(10),
    );
    let posts = server.log_lines(&["method=POST", "path=/function/crud"]);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(tracks(&server).len(), 1);
}

/// An ID3v2.3 tag holding only a front cover (APIC) with `image`, a PNG.
fn id3v2_cover(image: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8]; // ISO-8859-1
    body.extend_from_slice(b"image/png\0");
    body.push(3); // front cover
    body.push(0); // no description
    body.extend_from_slice(image);
    let mut frame = b"APIC".to_vec();
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&body);
    let size = frame.len();
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    tag.extend(
        (0..4)
            .rev()
            .map(|i| u8::try_from((size >> (7 * i)) & 0x7f).unwrap()),
    );
    tag.extend_from_slice(&frame);
    tag
}

/// Issue 28, item 4: `legato add` skipped a folder's `cover.jpg` as "not audio", and the
/// album had no art. It is sent with each track of its folder (and of the folders inside
/// it) and becomes their cover, served by crud and by Subsonic `getCoverArt`; a track with
/// art in its tags keeps its own.
#[test]
fn a_folders_cover_jpg_becomes_the_cover_of_its_tracks_unless_they_carry_their_own() {
    let library = tempfile::tempdir().unwrap();
    let album = library.path().join("Album");
    std::fs::create_dir_all(album.join("CD 2")).unwrap();
    let mut jpeg = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0".to_vec();
    jpeg.extend((0..2000u32).map(|i| u8::try_from(i % 251).unwrap()));
    std::fs::write(album.join("Cover.JPG"), &jpeg).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
    png.resize(300, 7);
    // Plain MP3s, a WAV (processed by a job) in a folder inside, and an MP3 with a cover.
    std::fs::write(album.join("01 plain.mp3"), mp3_tone(800)).unwrap();
    let wav = std::fs::read(tone_file(
        1.0,
        810,
        44_100,
        1,
        "wav",
        &["-c:a", "pcm_s16le"],
    ))
    .unwrap();
    std::fs::write(album.join("CD 2").join("02 wave.wav"), wav).unwrap();
    let mut own = id3v2_cover(&png);
    own.extend_from_slice(&mp3_tone(820));
    std::fs::write(album.join("03 own art.mp3"), own).unwrap();

    let server = Server::start(BIN, &[]);
    let run = add(&server, library.path().to_str().unwrap());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        summary_of(&run, 3),
        "legato: 3 files: 3 added, 0 already stored, 0 duplicates, 0 not audio, 0 refused",
        "the art is no file to import: {run:?}"
    );
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("Cover.JPG"))
        .collect();
    assert_eq!(said.len(), 1, "said once for its folder: {run:?}");
    assert!(
        said[0].starts_with(&format!(
            "{}: art Cover.JPG, sent as the cover",
            album.display()
        )),
        "{said:?}"
    );

    // Every track ready with all its renditions (the jobs done), each with its cover.
    let covers = settled_covers(&server);
    for (name, _, bytes) in &covers {
        let expected = if name == "03 own art" { &png } else { &jpeg };
        assert!(
            bytes == expected,
            "{name}: the wrong cover ({} bytes)",
            bytes.len()
        );
    }
    // A reprocessing lays the folder's art out again (it is kept with the upload).
    let before: Vec<String> = tracks(&server)
        .iter()
        .map(|t| t["playlist"].as_str().unwrap().to_owned())
        .collect();
    let reprocessed =
        Run::of(process::command(BIN).args(["reprocess", "--all", "--url", &server.url("")]));
    assert_eq!(reprocessed.code, Some(0), "{reprocessed:?}");
    wait::until(Duration::from_secs(120), "the reprocessing", || {
        let tracks = shown_tracks(&server);
        tracks
            .iter()
            .all(|t| {
                t.get("job").is_none()
                    && !before.contains(&t["playlist"].as_str().unwrap_or_default().to_owned())
            })
            .then_some(())
    });
    assert_eq!(
        settled_covers(&server),
        covers,
        "the same covers after a reprocessing"
    );

    // Subsonic apps get the same images.
    let password = library.path().join("password");
    std::fs::write(&password, "sesame\n").unwrap();
    let data = server.data_dir();
    let made = Run::of(process::command(BIN).args([
        "user",
        "add",
        "ana",
        "--password-file",
        password.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]));
    assert_eq!(made.code, Some(0), "{made:?}");
    for (name, id, bytes) in &covers {
        let response = reqwest::blocking::Client::new()
            .get(server.url("/rest/getCoverArt"))
            .query(&[
                ("u", "ana"),
                ("p", "sesame"),
                ("v", "1.16.1"),
                ("c", "tests"),
                ("id", id.as_str()),
            ])
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let served = response.bytes().unwrap().to_vec();
        assert!(
            &served == bytes,
            "{name}: getCoverArt served {} bytes",
            served.len()
        );
    }
}

/// Every track as `GET /function/crud/{id}` shows it (with its job, which lists leave out).
fn shown_tracks(server: &Server) -> Vec<serde_json::Value> {
    tracks(server)
        .iter()
        .map(|t| {
            let url = server.url(&format!("/function/crud/{}", t["id"].as_str().unwrap()));
            reqwest::blocking::get(url).unwrap().json().unwrap()
        })
        .collect()
}

/// Every track's (name, id, cover bytes) once all are ready with no job left.
fn settled_covers(server: &Server) -> Vec<(String, String, Vec<u8>)> {
    let settled = wait::until(Duration::from_secs(120), "every track settled", || {
        let tracks = shown_tracks(server);
        tracks
            .iter()
            .all(|t| t["status"] == "ready" && t.get("job").is_none() && t["cover"].is_string())
            .then_some(tracks)
    });
    let mut covers: Vec<(String, String, Vec<u8>)> = settled
        .iter()
        .map(|track| {
            let url = track["cover"].as_str().unwrap();
            let url = if url.starts_with("http") {
                url.to_owned()
            } else {
                server.url(url)
            };
            let response = reqwest::blocking::get(url).unwrap();
            assert_eq!(response.status(), 200);
            (
                track["name"].as_str().unwrap().to_owned(),
                track["id"].as_str().unwrap().to_owned(),
                response.bytes().unwrap().to_vec(),
            )
        })
        .collect();
    covers.sort();
    covers
}

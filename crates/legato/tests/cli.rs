//! The command-line client through the real binary, against a real `legato serve` started by
//! the same binary on a free port over an empty data folder. Test audio is made with ffmpeg.
//!
//! Everything here is synchronous: the server is a separate process, so blocking on the
//! client's process is fine.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use legato_test_support::process::{self, CommandExt, Run, free_port};

use crate::BIN;

#[test]
fn add_prints_only_the_id_and_no_progress_spam_off_a_terminal() {
    let server = Server::start();
    let song = server.song("first.mp3", 440);
    let run = server.legato(&[
        "add",
        &song,
        "--name",
        "Like a Prayer",
        "--author",
        "Madonna",
    ]);
    run.assert_code(0);
    let ids = run.stdout_lines();
    assert_eq!(ids.len(), 1, "stdout is the id alone: {run:?}");
    assert_id(&ids[0]);
    assert_quiet_progress(&run, 1);
    assert!(run.stderr.contains("first.mp3"), "{run:?}");

    let shown = server.legato(&["show", &ids[0], "--json"]);
    shown.assert_code(0);
    let track: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(track["name"], "Like a Prayer");
    assert_eq!(track["author"], "Madonna");
    assert!(
        (track["duration"].as_f64().unwrap() - 12.0).abs() < 0.2,
        "{track}"
    );
}

#[test]
fn add_of_several_files_prints_their_ids_in_order() {
    let server = Server::start();
    let files: Vec<String> = [("one.mp3", 330), ("two.mp3", 440), ("three.mp3", 550)]
        .iter()
        .map(|(name, hz)| server.song(name, *hz))
        .collect();
    let mut args = vec!["add", "--author", "Band"];
    args.extend(files.iter().map(String::as_str));
    let run = server.legato(&args);
    run.assert_code(0);
    let ids = run.stdout_lines();
    assert_eq!(ids.len(), 3, "{run:?}");
    // A line per file, and the summary of the run.
    assert_quiet_progress(&run, 4);
    assert!(
        run.stderr.contains(
            "legato: 3 files: 3 added, 0 already stored, 0 duplicates, 0 not audio, 0 refused ("
        ),
        "{run:?}"
    );
    // Without --name, the server titles a track after its file.
    for (id, title) in ids.iter().zip(["one", "two", "three"]) {
        assert_id(id);
        let track = server.track(id);
        assert_eq!(track["name"], title, "{track}");
        assert_eq!(track["author"], "Band");
    }
}

#[test]
fn add_of_a_text_file_names_the_file_and_the_code() {
    let server = Server::start();
    let text = server.dir.path().join("song.txt");
    std::fs::write(&text, "these are the lyrics, not the song\n".repeat(50)).unwrap();
    let text = text.to_string_lossy().into_owned();

    let run = server.legato(&["add", &text]);
    run.assert_code(1);
    assert_eq!(run.stdout, "", "no id for a refused file");
    assert!(
        run.stderr.starts_with("legato: ") && run.stderr.contains("song.txt"),
        "{run:?}"
    );
    assert!(run.stderr.contains("(not-audio)"), "{run:?}");

    // The other files of the same command are still added; the exit code tells of the one
    // refused.
    let good = server.song("good.mp3", 440);
    let run = server.legato(&["add", &text, &good]);
    run.assert_code(1);
    let ids = run.stdout_lines();
    assert_eq!(ids.len(), 1, "{run:?}");
    assert_eq!(server.track(&ids[0])["name"], "good");

    // A missing file is caught before anything is uploaded.
    let run = server.legato(&["add", &good, "/no/such/file.mp3"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("/no/such/file.mp3: no such file"),
        "{run:?}"
    );
    assert!(server.legato(&["ls"]).stdout.ends_with("1 of 1 track\n"));
}

#[test]
fn an_upload_over_the_limit_is_refused_not_unreachable() {
    // The client learns the server's limit from /healthz and refuses the file itself,
    // without sending it, with the code the server would answer. (A server that does not
    // say its limit refuses the declared length before the body is sent; this test used to
    // cover the client reading that answer, which a server of this version no longer gives
    // `legato add` the occasion to.)
    let server = Server::start_with(&["--max-upload-mb", "1"]);
    let big = server.dir.path().join("big.mp3");
    std::fs::write(&big, vec![0u8; 3 * 1024 * 1024]).unwrap();
    let run = server.legato(&["add", &big.to_string_lossy()]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("big.mp3") && run.stderr.contains("not sent (payload-too-large)"),
        "{run:?}"
    );
}

#[test]
fn ls_lists_searches_pages_and_prints_json() {
    let server = Server::start();
    let added: Vec<String> = [
        ("Alpha Song", "Ann", 330),
        ("Beta Song", "Bob", 440),
        ("Gamma", "Ann", 550),
    ]
    .iter()
    .map(|(name, author, hz)| {
        let file = server.song(&format!("{hz}.mp3"), *hz);
        let run = server.legato(&["add", &file, "--name", name, "--author", author]);
        run.assert_code(0);
        run.stdout.trim().to_owned()
    })
    .collect();

    let all = server.legato(&["ls"]);
    all.assert_code(0);
    let lines = all.stdout_lines();
    assert_eq!(lines.len(), 5, "header, 3 rows, count: {all:?}");
    for column in ["ID", "TITLE", "ARTIST", "DURATION", "ADDED"] {
        assert!(lines[0].contains(column), "{all:?}");
    }
    for (line, (id, title)) in
        lines[1..4]
            .iter()
            .zip(added.iter().zip(["Alpha Song", "Beta Song", "Gamma"]))
    {
        assert!(
            line.starts_with(id.as_str()) && line.contains(title),
            "{line}"
        );
        assert!(line.contains(" 0:12 "), "duration as m:ss: {line}");
    }
    assert_eq!(lines[4], "3 of 3 tracks");

    let search = server.legato(&["ls", "SONG"]);
    search.assert_code(0);
    assert!(search.stdout.contains("Alpha Song") && search.stdout.contains("Beta Song"));
    assert!(!search.stdout.contains("Gamma"));
    assert!(search.stdout.ends_with("2 of 2 tracks\n"), "{search:?}");

    let page = server.legato(&["ls", "--limit", "1", "--offset", "1"]);
    page.assert_code(0);
    assert!(page.stdout.contains("Beta Song") && !page.stdout.contains("Alpha"));
    assert!(
        page.stdout.ends_with("1 of 3 tracks (from #2)\n"),
        "{page:?}"
    );

    let json = server.legato(&["ls", "--json"]);
    json.assert_code(0);
    let tracks: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let ids: Vec<&str> = tracks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, added);
    assert!(
        tracks[0]["playlist"]
            .as_str()
            .unwrap()
            .ends_with("index.m3u8")
    );

    let ann = server.legato(&["ls", "ann", "--json"]);
    let tracks: Vec<serde_json::Value> = serde_json::from_str(&ann.stdout).unwrap();
    assert_eq!(tracks.len(), 2);

    let none = server.legato(&["ls", "nothing like this"]);
    none.assert_code(0);
    assert_eq!(none.stdout, "0 of 0 tracks\n");
}

#[test]
fn show_edit_url_and_rm() {
    let server = Server::start();
    let ids: Vec<String> = [330, 440, 550]
        .iter()
        .map(|hz| {
            let file = server.song(&format!("{hz}.mp3"), *hz);
            let run = server.legato(&["add", &file, "--name", "Old", "--author", "Someone"]);
            run.assert_code(0);
            run.stdout.trim().to_owned()
        })
        .collect();
    let id = ids[0].as_str();

    let show = server.legato(&["show", id]);
    show.assert_code(0);
    for expected in [id, "Old", "Someone", "0:12", "mp3, 128 kbit/s"] {
        assert!(show.stdout.contains(expected), "{expected}: {show:?}");
    }

    let edit = server.legato(&["edit", id, "--name", "New Title"]);
    edit.assert_code(0);
    assert!(edit.stdout.contains("New Title"), "{edit:?}");
    let edit = server.legato(&["edit", id, "--author", "Other"]);
    edit.assert_code(0);
    let track = server.track(id);
    assert_eq!(track["name"], "New Title");
    assert_eq!(track["author"], "Other");

    // The playlist URL is absolute and plays, whether the server is given as the gateway root
    // or as the crud function's URL.
    let url = server.legato(&["url", id]);
    url.assert_code(0);
    let playlist = url.stdout.trim();
    assert_eq!(
        playlist,
        format!("{}/function/streaming/{id}/index.m3u8", server.base)
    );
    let (status, body) = http_get(playlist);
    assert_eq!(status, 200);
    assert!(body.starts_with("#EXTM3U"), "{body}");
    let crud_url = format!("{}/function/crud/", server.base);
    let via_crud = legato(&["url", id, "--url", &crud_url]).run();
    via_crud.assert_code(0);
    assert_eq!(via_crud.stdout.trim(), playlist);

    let unknown = "0123456789abcdef01234567";
    let rm = server.legato(&["rm", &ids[0], unknown, &ids[1]]);
    rm.assert_code(1);
    assert_eq!(
        rm.stdout_lines(),
        [format!("deleted {}", ids[0]), format!("deleted {}", ids[1])]
    );
    assert_eq!(rm.stderr, format!("legato: no track with id {unknown}\n"));
    let left = server.legato(&["ls", "--json"]);
    let left: Vec<serde_json::Value> = serde_json::from_str(&left.stdout).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], ids[2].as_str());

    for command in ["show", "url"] {
        let gone = server.legato(&[command, id]);
        gone.assert_code(1);
        assert_eq!(gone.stderr, format!("legato: no track with id {id}\n"));
    }
    let gone = server.legato(&["edit", id, "--name", "x"]);
    gone.assert_code(1);
    let bad = server.legato(&["show", "not-an-id"]);
    bad.assert_code(1);
    assert!(bad.stderr.contains("(invalid-id)"), "{bad:?}");
}

#[test]
fn get_downloads_the_exact_original_and_never_clobbers() {
    let server = Server::start();
    // A FLAC is transcoded for streaming, so only the stored source can give it back.
    let flac = server.dir.path().join("Tone, in C.flac");
    let tone =
        legato_test_support::audio::tone_file(6.0, 523, 44_100, 1, "flac", &["-c:a", "flac"]);
    std::fs::copy(tone, &flac).unwrap();
    let flac_text = flac.to_string_lossy().into_owned();
    let added = server.legato(&["add", &flac_text]);
    added.assert_code(0);
    let id = added.stdout_lines()[0].clone();

    let out = server.dir.path().join("downloads");
    std::fs::create_dir(&out).unwrap();
    // Default destination: the uploaded file's name, in the current folder.
    let mut command = legato(&["get", &id]);
    command.env("LEGATO_URL", &server.base).current_dir(&out);
    let run = command.run();
    run.assert_code(0);
    let saved = out.join("Tone, in C.flac");
    assert_eq!(run.stdout.trim(), "Tone, in C.flac", "{run:?}");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&flac).unwrap()
    );
    assert!(run.stderr.contains("sha256"), "{run:?}");

    // A second download does not replace the file unless told to.
    let mut again = legato(&["get", &id]);
    again.env("LEGATO_URL", &server.base).current_dir(&out);
    let again = again.run();
    again.assert_code(1);
    assert!(again.stderr.contains("--force"), "{again:?}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        ["Tone, in C.flac"],
        "no partial file left behind"
    );

    // -o FILE and -o - (stdout).
    let named = out.join("copy.flac");
    let run = server.legato(&["get", &id, "-o", &named.to_string_lossy()]);
    run.assert_code(0);
    assert_eq!(
        std::fs::read(&named).unwrap(),
        std::fs::read(&flac).unwrap()
    );
    let output = legato(&["get", &id, "-o", "-"])
        .env("LEGATO_URL", &server.base)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, std::fs::read(&flac).unwrap());

    // An unknown track: exit 1 with the id named.
    let missing = server.legato(&["get", "0123456789abcdef01234567"]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains("0123456789abcdef01234567"),
        "{missing:?}"
    );
}

#[test]
fn an_unreachable_server_exits_3_and_names_the_url() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [vec!["ls"], vec!["show", "0123456789abcdef01234567"]] {
        let mut command = legato(&args);
        command.env("LEGATO_URL", &url);
        let run = command.run();
        run.assert_code(3);
        assert_eq!(
            run.stderr,
            format!(
                "legato: cannot reach the Legato server at {url}: connection refused; \
                 is `legato serve` running? set --url or LEGATO_URL\n"
            )
        );
    }
    // An upload stops at the first file, with the same message.
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("a.mp3");
    std::fs::copy(mp3(440), &song).unwrap();
    let song = song.to_string_lossy().into_owned();
    let run = legato(&["add", &song, &song, "--url", &url]).run();
    run.assert_code(3);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains(&url), "{run:?}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mp3").to_string_lossy().into_owned();
    for args in [
        vec!["add"],
        vec!["add", a.as_str(), a.as_str(), "--name", "one title"],
        vec!["edit", "0123456789abcdef01234567"],
        vec!["rm"],
        vec!["show"],
        vec!["ls", "--limit", "0"],
        vec!["ls", "--url", "ftp://example"],
        vec!["ls", "--url", "https://example"],
        vec!["play"],
    ] {
        // No server is needed: usage is checked before anything is sent.
        let run = legato(&args).run();
        run.assert_code(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {run:?}");
        assert_eq!(run.stdout, "");
    }
}

// ---------------------------------------------------------------------------------------------
// Support

/// A `legato serve` on a free port over an empty data folder (the shared harness), with the
/// client pointed at it.
struct Server {
    base: String,
    dir: tempfile::TempDir,
    _process: process::Server,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra `legato serve` flags.
    fn start_with(flags: &[&str]) -> Self {
        let server = process::Server::start(BIN, flags);
        let base = server.url("");
        let (status, _) = http_get(&format!("{base}/function/crud"));
        assert_eq!(status, 200, "GET /function/crud");
        Self {
            base,
            dir: tempfile::tempdir().unwrap(),
            _process: server,
        }
    }

    /// Runs the client against this server (through LEGATO_URL).
    fn legato(&self, args: &[&str]) -> Run {
        let mut command = legato(args);
        command.env("LEGATO_URL", &self.base);
        command.run()
    }

    /// A copy of a test MP3 under `name` in this server's temporary folder.
    fn song(&self, name: &str, hz: u32) -> String {
        let path = self.dir.path().join(name);
        std::fs::copy(mp3(hz), &path).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// The track as the CLI shows it in JSON.
    fn track(&self, id: &str) -> serde_json::Value {
        let run = self.legato(&["show", id, "--json"]);
        run.assert_code(0);
        serde_json::from_str(&run.stdout).unwrap()
    }
}

/// The binary with `args`, in an environment free of the caller's `LEGATO_*` settings.
fn legato(args: &[&str]) -> Command {
    let mut command = process::command(BIN);
    command.args(args);
    command
}

fn assert_id(id: &str) {
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a track id: {id:?}"
    );
}

/// Off a terminal, progress is one plain line per file: no carriage returns, no redraws.
fn assert_quiet_progress(run: &Run, files: usize) {
    assert!(!run.stderr.contains('\r'), "carriage returns: {run:?}");
    assert!(!run.stderr.contains('\u{1b}'), "escape sequences: {run:?}");
    assert_eq!(run.stderr.lines().count(), files, "{run:?}");
}

/// A 12-second 128 kbit/s MP3 of a sine at `hz` (made once, cached by legato-test-support).
fn mp3(hz: u32) -> PathBuf {
    legato_test_support::audio::tone_file(
        12.0,
        hz,
        44_100,
        2,
        "mp3",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    )
}

/// `GET url`: the status and the body.
fn http_get(url: &str) -> (u16, String) {
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("no answer from {url}: {e}"));
    (response.status().as_u16(), response.text().unwrap())
}

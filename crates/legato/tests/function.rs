//! `legato function crud|streaming` as OpenFaaS runs them: configuration from the environment
//! and secret files, API keys, readiness, metrics, request logs, graceful SIGTERM, limits.
//! Each test runs the real binary on a loopback port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use legato_test_support::process::{Mode, Run, Server, command};
use legato_test_support::raw::get_status;
use legato_test_support::{ffmpeg, wait};

use crate::BIN;

/// `legato function <mode>` with its secrets in `secrets`, and `extra_env`.
fn function(mode: Mode, secrets: &Path, extra_env: &[(&str, &str)]) -> Server {
    Server::launch(BIN, mode)
        .env("LEGATO_SECRETS_DIR", secrets.to_str().unwrap())
        .envs(extra_env)
        .start()
}

/// A mono 128kbit/s MP3 of tone (made once, cached by legato-test-support).
fn mp3(seconds: u32) -> Vec<u8> {
    let args = ["-c:a", "libmp3lame", "-b:a", "128k"];
    let path =
        legato_test_support::audio::tone_file(f64::from(seconds), 330, 44_100, 1, "mp3", &args);
    std::fs::read(path).unwrap()
}

fn secrets(store: &Path, key: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("legato-store-uri"),
        format!("sqlite:{}\n", store.display()),
    )
    .unwrap();
    if let Some(key) = key {
        std::fs::write(
            dir.path().join("legato-api-key"),
            format!("{key}\nold-key\n"),
        )
        .unwrap();
    }
    dir
}

/// The binary run to completion with only `env` set: (exit code, stderr).
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = command(BIN);
    command.args(args).env_clear().envs(env.iter().copied());
    let run = Run::of(&mut command);
    (run.code.unwrap_or(-1), run.stderr)
}

#[test]
fn startup_errors_are_clear_and_exit_non_zero() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let (code, stderr) = run_to_exit(&["function", "crud"], &[("LEGATO_SECRETS_DIR", dir)]);
    assert_eq!(code, 2, "a setting, not a failure: {stderr}");
    assert!(stderr.contains("legato-store-uri"), "{stderr}");
    assert_eq!(
        stderr.matches("no store configured").count(),
        1,
        "printed once: {stderr}"
    );

    let store = empty.path().join("db.sqlite3");
    let with_store = secrets(&store, None);
    let (code, stderr) = run_to_exit(
        &["function", "crud"],
        &[("LEGATO_SECRETS_DIR", with_store.path().to_str().unwrap())],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("needs an API key") && stderr.contains("legato-api-key"),
        "{stderr}"
    );

    let (code, stderr) = run_to_exit(&["function", "lyrics"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, stderr) = run_to_exit(
        &["function", "crud", "--segment-seconds", "0"],
        &[("LEGATO_SECRETS_DIR", with_store.path().to_str().unwrap())],
    );
    assert_eq!(code, 2, "{stderr}");
}

/// The connection flags a function accepts act on it as on `legato serve`: a half-sent
/// header is cut at the header timeout, and connections past the cap get a clean 503.
#[test]
fn a_function_applies_its_connection_limits() {
    use legato_test_support::raw::RawConnection;
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets(&dir.path().join("db.sqlite3"), None);
    let function = function(
        Mode::Streaming,
        secrets.path(),
        &[
            // Long enough that the half-sent header still holds its slot when the fourth
            // connection comes, on a machine busy with other tests (at 1 s it was sometimes
            // cut first, freeing the slot).
            ("LEGATO_HEADER_TIMEOUT_SECONDS", "3"),
            ("LEGATO_MAX_CONNECTIONS", "3"),
        ],
    );
    let addr = function.addr;
    // Three connections held, each sending header lines: one idle for a second would make
    // room for a newcomer (the cap evicts the connection waiting longest on its client). One
    // the server refused while it was still closing the start-up probe's connection is
    // replaced.
    let mut held: Vec<RawConnection> = Vec::new();
    wait::until(Duration::from_secs(10), "a 503 at the cap", || {
        held.retain_mut(|c| !c.closed_within(Duration::from_millis(20)));
        while held.len() < 3 {
            let mut connection = RawConnection::open(addr);
            connection.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            held.push(connection);
        }
        for connection in &mut held {
            connection.send(b"X-Still: here\r\n");
        }
        // Three held and busy: the next one is refused with a 503 rather than left hanging.
        (get_status(addr, "/healthz", Duration::from_secs(5)) == 503).then_some(())
    });
    // A half-sent header is cut at the header timeout.
    let mut half = held.remove(0);
    assert!(
        half.closed_within(Duration::from_secs(6)),
        "the half-sent header was not cut"
    );
    drop(held);
    wait::until(Duration::from_secs(5), "the function to recover", || {
        (get_status(addr, "/healthz", Duration::from_secs(5)) == 200).then_some(())
    });
}

#[test]
fn crud_and_streaming_functions_share_a_store() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("legato.sqlite3");
    let secret_dir = secrets(&store, Some("s3cret-key"));
    let started = Instant::now();
    let crud = function(Mode::Crud, secret_dir.path(), &[]);
    let ready_after = started.elapsed();
    let streaming = function(Mode::Streaming, secret_dir.path(), &[]);
    eprintln!("crud function ready {ready_after:?} after exec (debug build)");

    let client = reqwest::blocking::Client::new();
    let audio = mp3(15);
    let refused = client
        .post(crud.url("/"))
        .header("content-type", "audio/mpeg")
        .body(audio.clone())
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let wrong = client
        .post(crud.url("/"))
        .bearer_auth("nope")
        .header("content-type", "audio/mpeg")
        .body(audio.clone())
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let created = client
        .post(crud.url("/?name=Song&author=Band"))
        .bearer_auth("old-key")
        .header("content-type", "audio/mpeg")
        .header("x-call-id", "call-123")
        .body(audio)
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let track: serde_json::Value = created.json().unwrap();
    let id = track["id"].as_str().unwrap().to_owned();
    // Behind the gateway the streaming function is at /function/streaming.
    assert_eq!(
        track["playlist"],
        format!("/function/streaming/{id}/index.m3u8")
    );

    // Reads are public; the list and the track come from the crud function.
    let listed: Vec<serde_json::Value> = client.get(crud.url("/")).send().unwrap().json().unwrap();
    assert_eq!(listed.len(), 1);

    // ffmpeg plays the track through the streaming function's root.
    let playlist = streaming.url(&format!("/{id}/index.m3u8"));
    let seconds = ffmpeg::played_seconds(&playlist);
    assert!((seconds - 15.0).abs() < 0.2, "{seconds}");

    let metrics = client
        .get(streaming.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("legato_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("legato_segment_cache_misses_total"),
        "{metrics}"
    );
    let metrics = client
        .get(crud.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("legato_ingest_duration_seconds"),
        "{metrics}"
    );
    assert!(metrics.contains("status=\"401\""), "{metrics}");

    let deleted = client
        .delete(crud.url(&format!("/{id}")))
        .bearer_auth("s3cret-key")
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(client.get(&playlist).send().unwrap().status(), 404);

    let log = crud.log();
    let line = log
        .lines()
        .find(|l| l.contains("call-123"))
        .unwrap_or_else(|| panic!("no request line: {log}"));
    for part in ["method=POST", "status=201", "bytes=", "ms="] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    assert!(
        !log.contains("s3cret-key") && !log.contains("old-key"),
        "keys must never be logged"
    );
}

#[test]
fn sigterm_finishes_the_request_in_flight() {
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    let mut crud = function(
        Mode::Crud,
        secret_dir.path(),
        &[("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")],
    );
    let audio = mp3(20);
    let mut stream = TcpStream::connect(crud.addr).unwrap();
    write!(
        stream,
        "POST /?name=late HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        audio.len()
    )
    .unwrap();
    let half = audio.len() / 2;
    stream.write_all(&audio[..half]).unwrap();
    stream.flush().unwrap();
    // In flight: the function has accepted the connection and read all that was sent.
    let client = stream.local_addr().unwrap();
    wait::until(
        Duration::from_secs(10),
        "the function to read the first half",
        || crud.has_read_all_from(client).then_some(()),
    );
    crud.signal("TERM");
    // The rest comes once the function is shutting down.
    crud.wait_logged(
        &["no new requests: finishing those in flight"],
        Duration::from_secs(10),
    );
    stream.write_all(&audio[half..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    // The upload is answered either way: 201 when its processing finished before the
    // function stopped, 202 when the worker released the job at SIGTERM (durable jobs).
    assert!(
        response.starts_with("HTTP/1.1 201") || response.starts_with("HTTP/1.1 202"),
        "{response}"
    );
    let status = crud.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    if response.starts_with("HTTP/1.1 202") {
        // Accepted means kept: the next replica on the same store finishes it.
        let body = response.split_once("\r\n\r\n").unwrap().1;
        let track: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = track["id"].as_str().unwrap().to_owned();
        let next = function(
            Mode::Crud,
            secret_dir.path(),
            &[("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")],
        );
        let client = reqwest::blocking::Client::new();
        wait::until(Duration::from_secs(60), "the track to be ready", || {
            let track: serde_json::Value = client
                .get(next.url(&format!("/{id}")))
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert_ne!(track["status"], "failed", "{track}");
            (track["status"] == "ready").then_some(())
        });
    }
}

#[test]
fn uploads_over_the_limit_get_413_not_a_reset() {
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    let crud = function(
        Mode::Crud,
        secret_dir.path(),
        &[
            ("LEGATO_ALLOW_ANONYMOUS_WRITES", "1"),
            ("LEGATO_MAX_UPLOAD_MB", "1"),
        ],
    );
    let client = reqwest::blocking::Client::new();
    let big = vec![0u8; 3 * 1024 * 1024];
    let response = client
        .post(crud.url("/"))
        .header("content-type", "audio/mpeg")
        .body(big.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    // Without a Content-Length (chunked): refused while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::blocking::Body::new(ChunkReader {
        chunks: chunks.into_iter().map(Result::unwrap).collect(),
        at: 0,
        offset: 0,
    });
    let response = client
        .post(crud.url("/"))
        .header("content-type", "audio/mpeg")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let json: serde_json::Value = response.json().unwrap();
    assert_eq!(json["error"]["code"], "payload-too-large");
}

/// A reader of unknown length, so reqwest sends the body chunked.
struct ChunkReader {
    chunks: Vec<Vec<u8>>,
    at: usize,
    offset: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(chunk) = self.chunks.get(self.at) else {
            return Ok(0);
        };
        let n = buf.len().min(chunk.len() - self.offset);
        buf[..n].copy_from_slice(&chunk[self.offset..self.offset + n]);
        self.offset += n;
        if self.offset == chunk.len() {
            self.at += 1;
            self.offset = 0;
        }
        Ok(n)
    }
}

#[test]
fn sigterm_keeps_serving_for_the_watchdogs_healthcheck_interval() {
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    // What of-watchdog passes down: its own settings are in the function's environment.
    let mut streaming = function(
        Mode::Streaming,
        secret_dir.path(),
        &[("healthcheck_interval", "1s")],
    );
    let signalled = Instant::now();
    streaming.signal("TERM");
    // Within the interval plus its one-second margin, new connections are still served:
    // watched until the process exits, a new connection at a time.
    let addr = streaming.addr;
    let mut served_late = false;
    let status = wait::until(Duration::from_secs(10), "the function to exit", || {
        if let Some(status) = streaming.exited() {
            return Some(status);
        }
        let answered = get_status(addr, "/healthz", Duration::from_secs(5)) == 200;
        served_late |= answered && signalled.elapsed() >= Duration::from_millis(1500);
        None
    });
    let exited_after = signalled.elapsed();
    assert!(served_late, "not served 1.5 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(exited_after >= Duration::from_secs(2), "{exited_after:?}");
}

#[test]
fn an_oversized_chunked_upload_is_read_to_its_end_before_the_413() {
    // Behind the watchdog every body arrives chunked, and an answer given before the body
    // is read becomes the watchdog's 500: the function reads it all, well past the 64 MB it
    // drains for `legato serve`.
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    let crud = function(
        Mode::Crud,
        secret_dir.path(),
        &[
            ("LEGATO_ALLOW_ANONYMOUS_WRITES", "1"),
            ("LEGATO_MAX_UPLOAD_MB", "1"),
        ],
    );
    let mut stream = TcpStream::connect(crud.addr).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        // A write error here would mean the function stopped reading.
        write!(stream, "{:x}\r\n", chunk.len()).unwrap();
        stream.write_all(&chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload-too-large"), "{response}");
}

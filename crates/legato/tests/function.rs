//! `legato function crud|streaming` as OpenFaaS runs them: configuration from the environment
//! and secret files, API keys, readiness, metrics, request logs, graceful SIGTERM, limits.
//! Each test runs the real binary on a loopback port.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_legato");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Function {
    child: Child,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Function {
    fn start(name: &str, secrets: &Path, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(BIN);
        command
            .args(["function", name])
            .env_clear()
            .env("LEGATO_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEGATO_SECRETS_DIR", secrets)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let function = Self { child, port, log };
        function.wait_ready();
        function
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ureq_get(self.port, "/healthz").is_ok_and(|response| response.0 == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "the function did not become ready: {:?}",
            self.log.lock().unwrap()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal GET over a raw socket: (status, body).
fn ureq_get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| raw[i + 4..].to_vec())
        .unwrap_or_default();
    Ok((status, body))
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

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn startup_errors_are_clear_and_exit_non_zero() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let (code, stderr) = run_to_exit(&["function", "crud"], &[("LEGATO_SECRETS_DIR", dir)]);
    assert_ne!(code, 0);
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
    assert_ne!(code, 0);
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
    use legato_test_support::raw::{RawConnection, get_status};
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets(&dir.path().join("db.sqlite3"), None);
    let function = Function::start(
        "streaming",
        secrets.path(),
        &[
            // Long enough that the half-sent header still holds its slot when the fourth
            // connection comes, on a machine busy with other tests (at 1 s it was sometimes
            // cut first, freeing the slot).
            ("LEGATO_HEADER_TIMEOUT_SECONDS", "3"),
            ("LEGATO_MAX_CONNECTIONS", "3"),
        ],
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", function.port).parse().unwrap();
    let mut half = RawConnection::open(addr);
    half.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let held: Vec<RawConnection> = (0..2).map(|_| RawConnection::open(addr)).collect();
    // Three held: the next one is refused with a 503 rather than left hanging.
    let refused = get_status(addr, "/healthz", Duration::from_secs(5));
    assert_eq!(refused, 503, "{:?}", function.log.lock().unwrap());
    assert!(
        half.closed_within(Duration::from_secs(6)),
        "the half-sent header was not cut"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get_status(addr, "/healthz", Duration::from_secs(5)) != 200 {
        assert!(Instant::now() < deadline, "the function did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn crud_and_streaming_functions_share_a_store() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("legato.sqlite3");
    let secret_dir = secrets(&store, Some("s3cret-key"));
    let started = Instant::now();
    let crud = Function::start("crud", secret_dir.path(), &[]);
    let ready_after = started.elapsed();
    let streaming = Function::start("streaming", secret_dir.path(), &[]);
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
    let output = Command::new("/usr/bin/ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            &playlist,
            "-f",
            "s16le",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds = output.stdout.len() as f64 / 2.0 / 44_100.0;
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

    let log = crud.log.lock().unwrap().join("\n");
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
    let mut crud = Function::start(
        "crud",
        secret_dir.path(),
        &[("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")],
    );
    let audio = mp3(20);
    let mut stream = TcpStream::connect(("127.0.0.1", crud.port)).unwrap();
    write!(
        stream,
        "POST /?name=late HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        audio.len()
    )
    .unwrap();
    let half = audio.len() / 2;
    stream.write_all(&audio[..half]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let kill = Command::new("kill")
        .args(["-TERM", &crud.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(&audio[half..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    // The upload is answered either way: 201 when its processing finished before the
    // function stopped, 202 when the worker released the job at SIGTERM (durable jobs).
    assert!(
        response.starts_with("HTTP/1.1 201") || response.starts_with("HTTP/1.1 202"),
        "{response}"
    );
    let status = crud.terminate();
    assert!(status.success(), "{status:?}");
    if response.starts_with("HTTP/1.1 202") {
        // Accepted means kept: the next replica on the same store finishes it.
        let body = response.split_once("\r\n\r\n").unwrap().1;
        let track: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = track["id"].as_str().unwrap().to_owned();
        let next = Function::start(
            "crud",
            secret_dir.path(),
            &[("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")],
        );
        let client = reqwest::blocking::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let track: serde_json::Value = client
                .get(format!("http://127.0.0.1:{}/{id}", next.port))
                .send()
                .unwrap()
                .json()
                .unwrap();
            if track["status"] == "ready" {
                break;
            }
            assert_ne!(track["status"], "failed", "{track}");
            assert!(
                std::time::Instant::now() < deadline,
                "never finished: {track}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn uploads_over_the_limit_get_413_not_a_reset() {
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    let crud = Function::start(
        "crud",
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
    let mut streaming = Function::start(
        "streaming",
        secret_dir.path(),
        &[("healthcheck_interval", "1s")],
    );
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &streaming.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Within the interval plus its one-second margin, new connections are still served.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _) = ureq_get(streaming.port, "/healthz").unwrap();
    assert_eq!(status, 200);
    assert!(streaming.child.try_wait().unwrap().is_none());
    let status = streaming.terminate();
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() >= Duration::from_secs(2));
}

#[test]
fn an_oversized_chunked_upload_is_read_to_its_end_before_the_413() {
    // Behind the watchdog every body arrives chunked, and an answer given before the body
    // is read becomes the watchdog's 500: the function reads it all, well past the 64 MB it
    // drains for `legato serve`.
    let data = tempfile::tempdir().unwrap();
    let secret_dir = secrets(&data.path().join("db.sqlite3"), None);
    let crud = Function::start(
        "crud",
        secret_dir.path(),
        &[
            ("LEGATO_ALLOW_ANONYMOUS_WRITES", "1"),
            ("LEGATO_MAX_UPLOAD_MB", "1"),
        ],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", crud.port)).unwrap();
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

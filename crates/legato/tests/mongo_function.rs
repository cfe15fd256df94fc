//! The functions over MongoDB (a real FerretDB on loopback): they answer 503 quickly while the
//! database is down, keep running, and serve again once it is back; no partial track is ever
//! visible. Needs scripts/ferretdb.sh (`make test` installs FerretDB).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_legato");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ferretdb.sh")
}

fn ferretdb(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/ferretdb.sh {args:?} failed (run `make test`, which installs FerretDB): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_function(name: &str, uri: &str, port: u16) -> Running {
    let mut child = Command::new(BIN)
        .args(["function", name])
        .env_clear()
        .env("LEGATO_LISTEN", format!("127.0.0.1:{port}"))
        .env("LEGATO_STORE", uri)
        .env("LEGATO_SECRETS_DIR", "/nonexistent")
        .env("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")
        // Passthrough only: this test is about the outage, and names `seg000.ts`.
        .env("LEGATO_LADDER", "none")
        // One rendition, the MP3 as it is: the media playlist and `seg000.ts` this test reads.
        .env("LEGATO_AAC_LADDER", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    // Killed and reaped on every path, a failed start included.
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    let client = reqwest::blocking::Client::new();
    while Instant::now() < deadline {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            return running;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the {name} function did not become ready");
}

/// A mono 96kbit/s MP3 of tone (made once, cached by legato-test-support).
fn mp3(seconds: u32) -> Vec<u8> {
    let args = ["-c:a", "libmp3lame", "-b:a", "96k"];
    let path =
        legato_test_support::audio::tone_file(f64::from(seconds), 500, 44_100, 1, "mp3", &args);
    std::fs::read(path).unwrap()
}

#[test]
fn functions_ride_out_a_database_outage() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let db_port = ferretdb(&["free-port"]);
    let base_uri = ferretdb(&["start", &db_port, &dir_text]);
    let uri = format!("{base_uri}legato_fault_{}", std::process::id());
    let (crud_port, streaming_port) = (free_port(), free_port());
    let _crud = start_function("crud", &uri, crud_port);
    let _streaming = start_function("streaming", &uri, streaming_port);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let crud = format!("http://127.0.0.1:{crud_port}/");

    let track: serde_json::Value = client
        .post(format!("{crud}?name=kept&author=x"))
        .header("content-type", "audio/mpeg")
        .body(mp3(12))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = track["id"].as_str().unwrap().to_owned();
    let segment = format!("http://127.0.0.1:{streaming_port}/{id}/seg000.ts");
    assert_eq!(client.get(&segment).send().unwrap().status(), 200);

    ferretdb(&["stop", &dir_text]);
    for url in [
        crud.clone(),
        format!("http://127.0.0.1:{streaming_port}/{id}/index.m3u8"),
        format!("http://127.0.0.1:{crud_port}/healthz"),
    ] {
        let started = Instant::now();
        let response = client.get(&url).send().unwrap();
        let waited = started.elapsed();
        assert_eq!(response.status(), 503, "{url}");
        assert!(waited < Duration::from_secs(5), "{url} took {waited:?}");
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], "store-unavailable");
    }
    let refused = client
        .post(format!("{crud}?name=lost"))
        .header("content-type", "audio/mpeg")
        .body(mp3(5))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 503);

    ferretdb(&["start", &db_port, &dir_text]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed: Vec<serde_json::Value> = loop {
        let response = client.get(&crud).send().unwrap();
        if response.status() == 200 {
            break response.json().unwrap();
        }
        assert!(Instant::now() < deadline, "no recovery after the restart");
        std::thread::sleep(Duration::from_millis(200));
    };
    let names: Vec<_> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kept"], "the refused upload left nothing visible");
    assert_eq!(client.get(&segment).send().unwrap().status(), 200);
    ferretdb(&["stop", &dir_text]);
}

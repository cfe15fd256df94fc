//! The functions over MongoDB (a real FerretDB on loopback): they answer 503 quickly while the
//! database is down, keep running, and serve again once it is back; no partial track is ever
//! visible. Needs scripts/ferretdb.sh (`make test` installs FerretDB).

use std::time::{Duration, Instant};

use legato_test_support::ferretdb::FerretDb;
use legato_test_support::process::{Mode, Server};
use legato_test_support::wait;

use crate::BIN;

fn start_function(mode: Mode, uri: &str) -> Server {
    Server::launch(BIN, mode)
        .env("LEGATO_STORE", uri)
        .env("LEGATO_ALLOW_ANONYMOUS_WRITES", "true")
        // Passthrough only: this test is about the outage, and names `seg000.ts`.
        .env("LEGATO_LADDER", "none")
        // One rendition, the MP3 as it is: the media playlist and `seg000.ts` this test reads.
        .env("LEGATO_AAC_LADDER", "none")
        .start()
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
    let ferret = FerretDb::start_new();
    let uri = ferret.database_uri(&format!("legato_fault_{}", std::process::id()));
    let crud_server = start_function(Mode::Crud, &uri);
    let streaming = start_function(Mode::Streaming, &uri);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let crud = crud_server.url("/");

    let track: serde_json::Value = client
        .post(format!("{crud}?name=kept&author=x"))
        .header("content-type", "audio/mpeg")
        .body(mp3(12))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = track["id"].as_str().unwrap().to_owned();
    let segment = streaming.url(&format!("/{id}/seg000.ts"));
    assert_eq!(client.get(&segment).send().unwrap().status(), 200);

    ferret.stop();
    for url in [
        crud.clone(),
        streaming.url(&format!("/{id}/index.m3u8")),
        crud_server.url("/healthz"),
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

    ferret.start();
    let listed: Vec<serde_json::Value> = wait::until(
        Duration::from_secs(20),
        "recovery after the restart",
        || {
            let response = client.get(&crud).send().unwrap();
            (response.status() == 200).then(|| response.json().unwrap())
        },
    );
    let names: Vec<_> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kept"], "the refused upload left nothing visible");
    assert_eq!(client.get(&segment).send().unwrap().status(), 200);
}

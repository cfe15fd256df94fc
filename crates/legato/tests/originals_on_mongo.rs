//! Accepted means kept, over MongoDB (a real FerretDB on loopback, `LEGATO_TEST_MONGODB_URI`;
//! `make test` starts it): every input format uploaded to `legato serve` comes back byte for
//! byte from `GET /function/crud/{id}/file`, with its type, size and hash, and plays.

use std::time::Duration;

use legato_test_support::audio::tone_file;
use legato_test_support::ferretdb::fresh_database_uri;
use legato_test_support::process::Server;
use legato_test_support::wait;
use serde_json::Value;

use crate::BIN;

#[test]
fn every_format_comes_back_byte_for_byte_on_mongodb() {
    let uri = fresh_database_uri("legato_originals");
    let server = Server::start_in(
        BIN,
        &["--ladder", "64"],
        tempfile::tempdir().unwrap(),
        &[("LEGATO_STORE", uri.as_str())],
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    // (extension, content type given back, ffmpeg's codec arguments)
    let formats: [(&str, &str, &[&str]); 7] = [
        ("mp3", "audio/mpeg", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("flac", "audio/flac", &["-c:a", "flac"]),
        ("wav", "audio/wav", &["-c:a", "pcm_s16le"]),
        ("aiff", "audio/aiff", &["-c:a", "pcm_s16be"]),
        ("ogg", "audio/ogg", &["-c:a", "libvorbis"]),
        ("m4a", "audio/mp4", &["-c:a", "aac"]),
        ("aac", "audio/aac", &["-c:a", "aac", "-f", "adts"]),
    ];
    for (extension, content_type, codec) in formats {
        let bytes = std::fs::read(tone_file(4.0, 440, 44_100, 2, extension, codec)).unwrap();
        let response = client
            .post(server.url(&format!("/function/crud?name={extension}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 201 | 202),
            "{extension}: {} {}",
            response.status(),
            response.text().unwrap_or_default()
        );
        let track: Value = response.json().unwrap();
        let id = track["id"].as_str().unwrap().to_owned();
        let track: Value = wait::until(Duration::from_secs(60), "the track to be ready", || {
            let track: Value = client
                .get(server.url(&format!("/function/crud/{id}")))
                .send()
                .unwrap()
                .json()
                .unwrap();
            (track["status"] != "processing").then_some(track)
        });
        assert_eq!(track["status"], "ready", "{extension}: {track}");
        assert_eq!(track["source"]["size"], bytes.len(), "{extension}");
        assert_eq!(track["source"]["format"], extension_format(extension));

        let download = client
            .get(server.url(&format!("/function/crud/{id}/file")))
            .send()
            .unwrap();
        assert_eq!(download.status(), 200, "{extension}");
        assert_eq!(download.headers()["content-type"], content_type);
        let etag = download.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            etag,
            format!("\"{}\"", track["source"]["sha256"].as_str().unwrap())
        );
        assert!(
            download.bytes().unwrap() == bytes,
            "{extension} comes back exact"
        );

        let playlist = client
            .get(server.url(&format!("/function/streaming/{id}/index.m3u8")))
            .send()
            .unwrap();
        assert_eq!(playlist.status(), 200, "{extension}");
    }
    let log = server.log();
    assert!(log.contains("store=mongodb"), "not over MongoDB: {log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// The source format the track JSON names for a file made with this extension.
fn extension_format(extension: &str) -> &str {
    match extension {
        "m4a" => "mp4",
        other => other,
    }
}

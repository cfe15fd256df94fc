//! Opus uploads at the default settings: Ogg Opus and WebM Opus are playable on one MP3 rung
//! at once, then gain the rest of the MP3 ladder and the AAC rungs up to their bitrate (no
//! FLAC: Opus is lossy); ffmpeg plays them to the source's length, and the original comes
//! back byte for byte.

use std::time::Duration;

use legato_http::HttpConfig;
use legato_test_support::ffmpeg::played_seconds;
use serde_json::Value;

use crate::util::TestServer;

/// A 6-second 440 Hz stereo tone in Opus at a constant 192 kbit/s (at or above the 128k AAC
/// rung, below the 256k one), in a file with extension `ext`.
fn opus_tone(ext: &str) -> Vec<u8> {
    let path = legato_test_support::audio::tone_file(
        6.0,
        440,
        48_000,
        2,
        ext,
        &["-c:a", "libopus", "-b:a", "192k", "-vbr", "off"],
    );
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ogg_and_webm_opus_play_at_once_then_gain_mp3_and_aac_rungs() {
    let server = TestServer::start_with(HttpConfig {
        retire_grace: Duration::from_secs(1),
        job_poll_interval: Duration::from_millis(100),
        ..HttpConfig::default()
    })
    .await;
    // (extension, the Content-Type sent, the source format the track names, the
    // Content-Type of its download)
    let cases = [
        ("opus", "audio/ogg", "opus", "audio/ogg"),
        ("webm", "audio/webm", "webm", "audio/webm"),
    ];
    for (ext, sent_as, format, served_as) in cases {
        let bytes = opus_tone(ext);
        let response = server
            .client
            .post(server.crud())
            .query(&[("name", format!("Tone {ext}").as_str()), ("author", "Opus")])
            .header("content-type", sent_as)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{ext}");
        let track: Value = response.json().await.unwrap();
        assert_eq!(track["status"], "ready", "{ext}: {track}");
        assert!(track["variants"].as_array().unwrap().is_empty(), "{track}");
        assert_eq!(track["codec"], "opus", "{track}");
        assert_eq!(track["sample_rate"], 48_000, "{track}");
        assert_eq!(track["channels"], 2, "{track}");
        assert_eq!(track["source"]["format"], format, "{track}");
        let bitrate = track["bitrate"].as_u64().unwrap();
        assert!((180..=200).contains(&bitrate), "{ext}: {bitrate} kbit/s");
        // The length of the rung it plays on (LAME's delay and padding included).
        let duration = track["duration"].as_f64().unwrap();
        assert!((duration - 6.0).abs() < 0.1, "{ext}: {duration} s");

        // Playable at once on its one MP3 rung (the first of the default ladder).
        let id = track["id"].as_str().unwrap().to_owned();
        let plain = server.url(&format!("/function/streaming/{id}/index.m3u8"));
        let first = tokio::task::block_in_place(|| played_seconds(&plain));
        assert!(
            (first - 6.0).abs() < 0.1,
            "{ext}: first rung plays {first} s"
        );

        let done = server.settled(track).await;
        let names = crate::util::variant_names(&done);
        assert_eq!(
            names,
            ["128k", "192k", "64k", "aac128k", "aac64k"],
            "{ext}: {done}"
        );
        let played = tokio::task::block_in_place(|| played_seconds(&plain));
        assert!((played - 6.0).abs() < 0.1, "{ext}: plays {played} s");

        // The original, exactly as uploaded.
        let response = server
            .client
            .get(server.url(&format!("/function/crud/{id}/file")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{ext}");
        assert_eq!(response.headers()["content-type"], served_as, "{ext}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), bytes, "{ext}");
    }
    server.stop().await;
}

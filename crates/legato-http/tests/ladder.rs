//! Any audio in, an adaptive-bitrate ladder out: every input format, the master playlist,
//! aligned variants, tags and cover art, asynchronous ingest and analysis; ffmpeg is the
//! independent player throughout.

use std::time::Duration;

use legato_http::HttpConfig;
use legato_test_support::ffmpeg::{mp3_frames, played_seconds};
use serde_json::Value;

use crate::util::{TestServer, until, write_temp};

/// The default ladder, with 2-s segments: a tone of a few seconds is cut as a song is by
/// the default 10 s.
fn ladder_config() -> HttpConfig {
    HttpConfig {
        segment_seconds: 2.0,
        ..HttpConfig::default()
    }
}

/// A test input made by ffmpeg from a sine, in any container/codec ffmpeg writes (cached by
/// legato-test-support; `name`'s extension picks the container).
fn make(name: &str, seconds: f64, rate: u32, args: &[&str]) -> Vec<u8> {
    let ext = name.rsplit('.').next().unwrap();
    std::fs::read(legato_test_support::audio::tone_file(
        seconds, 523, rate, 2, ext, args,
    ))
    .unwrap()
}

async fn post(server: &TestServer, bytes: &[u8], name: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "song",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
    );
    server.post_form(form).await
}

async fn track_json(server: &TestServer, url: &str) -> Value {
    server
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn extinf(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_becomes_an_aligned_ladder() {
    let server = TestServer::start_with(ladder_config()).await;
    let dir = server.dir.path().to_owned();
    // Three segments: two whole ones and a last one long enough to stand alone.
    let seconds = 4.6;
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "s16.wav",
            make("s16.wav", seconds, 44_100, &["-c:a", "pcm_s16le"]),
        ),
        (
            "s24.wav",
            make("s24.wav", seconds, 48_000, &["-c:a", "pcm_s24le"]),
        ),
        (
            "f32.wav",
            make("f32.wav", seconds, 96_000, &["-c:a", "pcm_f32le"]),
        ),
        (
            "song.flac",
            make("song.flac", seconds, 44_100, &["-c:a", "flac"]),
        ),
        (
            "song.ogg",
            make("song.ogg", seconds, 44_100, &["-c:a", "libvorbis"]),
        ),
        (
            "song.opus",
            make("song.opus", seconds, 48_000, &["-c:a", "libopus"]),
        ),
        (
            "song.webm",
            make("song.webm", seconds, 48_000, &["-c:a", "libopus"]),
        ),
        (
            "song.m4a",
            make(
                "song.m4a",
                seconds,
                44_100,
                &["-c:a", "aac", "-b:a", "128k"],
            ),
        ),
        (
            "song.aac",
            make("song.aac", seconds, 44_100, &["-c:a", "aac", "-f", "adts"]),
        ),
        (
            "song.aiff",
            make("song.aiff", seconds, 22_050, &["-c:a", "pcm_s16be"]),
        ),
        (
            "song.mp3",
            make(
                "song.mp3",
                seconds,
                44_100,
                &["-c:a", "libmp3lame", "-b:a", "160k"],
            ),
        ),
    ];
    for (name, bytes) in &inputs {
        let response = post(&server, bytes, name).await;
        assert_eq!(
            response.status(),
            201,
            "{name}: {:?}",
            response.text().await
        );
        let track: Value = server.settled(response.json().await.unwrap()).await;
        assert_eq!(track["status"], "ready", "{name}");
        let every = track["variants"].as_array().unwrap();
        // The MP3 ladder here; the fMP4 renditions beside it are checked in fmp4.rs.
        let variants: Vec<&Value> = every
            .iter()
            .filter(|v| v["container"] == "mpegts")
            .collect();
        let names: Vec<&str> = variants
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        if *name == "song.mp3" {
            assert_eq!(
                names,
                ["64k", "128k", "original"],
                "rungs above the source are not made"
            );
        } else {
            assert_eq!(names, ["64k", "128k", "192k"], "{name}");
        }

        // The master playlist lists every variant with BANDWIDTH, AVERAGE-BANDWIDTH, CODECS.
        let master = server
            .client
            .get(server.url(track["playlist"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            master.matches("#EXT-X-STREAM-INF").count(),
            every.len(),
            "{master}"
        );
        for attribute in ["BANDWIDTH=", "AVERAGE-BANDWIDTH=", "CODECS=\"mp4a.40.34\""] {
            assert!(
                master.contains(attribute),
                "{name}: {attribute} missing from\n{master}"
            );
        }

        // Every variant has the same segments (to the frame but the last) and decodes to the
        // source's duration.
        let mut durations: Vec<Vec<f64>> = Vec::new();
        for variant in &variants {
            let url = server.url(variant["playlist"].as_str().unwrap());
            let playlist = server
                .client
                .get(&url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            durations.push(extinf(&playlist));
            let decoded = tokio::task::block_in_place(|| played_seconds(&url));
            // LAME adds its delay and padding (under two frames) to encoded rungs.
            assert!(
                (decoded - seconds).abs() < 0.1,
                "{name} {}: decoded {decoded}",
                variant["name"]
            );
        }
        let first = &durations[0];
        for other in &durations[1..] {
            assert_eq!(other.len(), first.len(), "{name}: segment counts differ");
            for (a, b) in first.iter().zip(other).take(first.len() - 1) {
                assert!((a - b).abs() < 1e-4, "{name}: {first:?} vs {other:?}");
            }
        }
        // The master plays as a whole too.
        let url = server.url(track["playlist"].as_str().unwrap());
        let decoded = tokio::task::block_in_place(|| played_seconds(&url));
        assert!(
            (decoded - seconds).abs() < 0.1,
            "{name}: master decoded {decoded}"
        );
    }

    // The MP3's own rendition is its frames, bit for bit.
    let tracks: Vec<Value> = server
        .client
        .get(server.crud())
        .query(&[("q", "song")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mp3 = tracks.iter().find(|t| t["codec"] == "mp3").unwrap();
    let original = mp3["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "original")
        .unwrap();
    let source = write_temp(&dir, "source.mp3", &inputs.last().unwrap().1);
    let url = server.url(original["playlist"].as_str().unwrap());
    let (expected, played) =
        tokio::task::block_in_place(|| (mp3_frames(&source), mp3_frames(&url)));
    assert!(
        expected == played,
        "the original rendition is not bit-exact"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_we_cannot_decode_is_refused_by_name() {
    let server = TestServer::start_with(ladder_config()).await;
    let flac = make("t.flac", 5.0, 44_100, &["-c:a", "flac"]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "speex.ogg",
            make("x.spx", 2.0, 16_000, &["-c:a", "libspeex"]),
            "unsupported-format",
        ),
        (
            "image.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".repeat(20),
            "not-audio",
        ),
        (
            "notes.txt",
            b"just some text, no music here\n".repeat(100),
            "not-audio",
        ),
        ("empty.mp3", Vec::new(), "empty-file"),
        (
            "truncated.flac",
            flac[..200.min(flac.len())].to_vec(),
            "corrupt-audio",
        ),
    ];
    for (name, bytes, _code) in &cases {
        let response = post(&server, bytes, name).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 415, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{name}");
        if *name == "speex.ogg" {
            assert!(message.contains("Speex"), "{message}");
        }
    }
    let listed: Vec<Value> = server
        .client
        .get(server.crud())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "nothing stored: {listed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_fill_what_the_uploader_left_out_and_the_cover_is_served() {
    let server = TestServer::start_with(ladder_config()).await;
    // A cover: a tiny PNG made by ffmpeg, attached to an MP3 as ID3 APIC.
    let bytes = crate::util::tagged_mp3(
        6.0,
        "96k",
        &[
            ("title", "Tagged Title"),
            ("artist", "Tag Artist"),
            ("album", "Tag Album"),
            ("date", "2001"),
        ],
    );
    let track: Value = post(&server, &bytes, "file-name.mp3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(track["name"], "Tagged Title");
    assert_eq!(track["author"], "Tag Artist");
    assert_eq!(track["album"], "Tag Album");
    assert_eq!(track["year"], 2001);
    let cover_url = track["cover"].as_str().unwrap();
    let response = server
        .client
        .get(server.url(cover_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.bytes().await.unwrap().starts_with(b"\x89PNG"));

    // What the uploader says wins over the tags (in another file: the same one would be
    // answered with its existing track).
    let form = reqwest::multipart::Form::new().text("name", "Given").part(
        "song",
        reqwest::multipart::Part::bytes(crate::util::another_copy(&bytes, 1)).file_name("x.mp3"),
    );
    let given: Value = server.post_form(form).await.json().await.unwrap();
    assert_eq!(given["name"], "Given");
    assert_eq!(given["author"], "Tag Artist");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_async_answers_202_then_the_track_turns_ready_with_analysis() {
    let server = TestServer::start_with(ladder_config()).await;
    let wav = make("long.wav", 30.0, 44_100, &["-c:a", "pcm_s16le"]);
    let response = server
        .client
        .post(server.crud())
        .header("prefer", "respond-async")
        .header("content-type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["preference-applied"], "respond-async");
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "processing");
    let id = accepted["id"].as_str().unwrap();
    let listed: Vec<Value> = server
        .client
        .get(server.crud())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["status"], "processing", "list shows the status");

    let url = server.url(&format!("/function/crud/{id}"));
    let ready = until(
        Duration::from_secs(60),
        "the track ready with its analysis",
        async || {
            let track = track_json(&server, &url).await;
            match track["status"].as_str().unwrap() {
                "processing" => {
                    // Only ready tracks are streamed: a playlist answered means the track turned
                    // ready between the two requests.
                    let playlist = server
                        .client
                        .get(server.url(track["playlist"].as_str().unwrap()))
                        .send()
                        .await
                        .unwrap();
                    if playlist.status() != 404 {
                        assert_eq!(playlist.status(), 200);
                        let now = track_json(&server, &url).await;
                        assert_eq!(now["status"], "ready", "a playlist of a processing track");
                    }
                }
                "ready" if track["loudness"].is_number() => return Ok(track),
                "ready" => {}
                other => panic!("status {other}: {track}"),
            }
            Err(track)
        },
    )
    .await;
    let loudness = ready["loudness"].as_f64().unwrap();
    assert!((-30.0..0.0).contains(&loudness), "{loudness}");
    let peaks = ready["peaks"].as_array().unwrap();
    assert!(
        peaks.len() > 100
            && peaks
                .iter()
                .all(|p| (0.0..=1.0).contains(&p.as_f64().unwrap()))
    );
    let playlist = server
        .client
        .get(server.url(ready["playlist"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(playlist.status(), 200);

    // A file that turns out broken after the 202 ends `failed`, with the reason.
    let mut broken = make("broken.wav", 3.0, 44_100, &["-c:a", "pcm_s16le"]);
    broken.truncate(60);
    let response = server
        .client
        .post(server.crud())
        .header("prefer", "respond-async")
        .header("content-type", "audio/wav")
        .body(broken)
        .send()
        .await
        .unwrap();
    // Refused up front when the damage shows at once, or accepted and then failed.
    if response.status() == 202 {
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let url = server.url(&format!("/function/crud/{id}"));
        let failed = until(
            Duration::from_secs(30),
            "the broken upload to fail",
            async || {
                let track: Value = server
                    .client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if track["status"] == "failed" {
                    Ok(track)
                } else {
                    Err(track)
                }
            },
        )
        .await;
        assert!(!failed["error"].as_str().unwrap().is_empty());
    } else {
        assert_eq!(response.status(), 415);
    }
    server.stop().await;
}

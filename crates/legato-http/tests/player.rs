//! ffmpeg as an independent HLS client: what it plays back from our playlists must be the
//! source's MPEG frames, bit for bit, and decode to the source's duration.

use legato_test_support::ffmpeg::{decoded_samples, mp3_frames};

use crate::util::{TestServer, mp3, write_temp};

/// Uploads `audio`, plays it back through ffmpeg, and checks bit-exactness and duration.
async fn round_trip(server: &TestServer, audio: &[u8], label: &str, samples_per_frame: usize) {
    let track = server.upload(audio, label, "oracle").await;
    let id = track["id"].as_str().unwrap();
    let playlist = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let source = write_temp(server.dir.path(), &format!("{label}.mp3"), audio);

    // ffmpeg blocks; the server must keep running on the other workers meanwhile.
    let (expected, played) =
        tokio::task::block_in_place(|| (mp3_frames(&source), mp3_frames(&playlist)));
    assert!(!expected.is_empty(), "{label}");
    assert_eq!(
        played.len(),
        expected.len(),
        "{label}: frame bytes differ in length"
    );
    assert!(
        played == expected,
        "{label}: the stream is not the source's frames bit for bit"
    );

    let channels = track["channels"].as_u64().unwrap() as u8;
    let rate = track["sample_rate"].as_f64().unwrap();
    let decoded =
        tokio::task::block_in_place(|| decoded_samples(&playlist, channels)) as f64 / rate;
    let duration = track["duration"].as_f64().unwrap();
    let frame = samples_per_frame as f64 / rate;
    assert!(
        (decoded - duration).abs() <= frame + 1e-3,
        "{label}: decoded {decoded:.4} s, track says {duration:.4} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbr_mpeg1_layer3_is_bit_exact() {
    let server = TestServer::start().await;
    round_trip(
        &server,
        &mp3(47.0, 44_100, 2, &["-b:a", "128k"]),
        "cbr128",
        1152,
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vbr_and_tagged_files_are_bit_exact() {
    let server = TestServer::start().await;
    let tagged = mp3(
        33.0,
        48_000,
        2,
        &[
            "-q:a",
            "2",
            "-metadata",
            "title=Tagged",
            "-metadata",
            "artist=Someone",
        ],
    );
    round_trip(&server, &tagged, "vbr48k", 1152).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpeg2_and_mpeg25_are_bit_exact() {
    let server = TestServer::start().await;
    round_trip(
        &server,
        &mp3(21.0, 22_050, 1, &["-b:a", "64k"]),
        "mpeg2",
        576,
    )
    .await;
    round_trip(
        &server,
        &mp3(21.0, 8_000, 1, &["-b:a", "16k"]),
        "mpeg25",
        576,
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_last_segment_is_merged() {
    let server = TestServer::start().await;
    // 40.5 s: the last 0.5 s would be a segment of its own (the seed leaves such stubs).
    let track = server
        .upload(&mp3(40.5, 44_100, 2, &["-b:a", "128k"]), "merge", "x")
        .await;
    assert_eq!(track["segments"], 4);
    let id = track["id"].as_str().unwrap();
    let playlist = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/index.m3u8")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(playlist.contains("#EXT-X-TARGETDURATION:11"), "{playlist}");
    server.stop().await;
}

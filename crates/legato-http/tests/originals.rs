//! Accepted means kept: every upload is stored byte for byte and given back by
//! `GET /function/crud/{id}/file`, with its type, name, hash and ranges; tracks stored before
//! originals were kept say so; a full processing queue answers 429 with Retry-After.

use std::sync::Arc;
use std::time::Duration;

use legato_http::HttpConfig;
use legato_test_support::ffmpeg::mp3_frames;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{TestServer, until};

fn config() -> HttpConfig {
    HttpConfig {
        ladder_kbps: vec![64],
        ..HttpConfig::default()
    }
}

/// A 2-s tone in the container of `name`'s extension (cached by legato-test-support).
fn make(name: &str, args: &[&str]) -> Vec<u8> {
    let ext = name.rsplit('.').next().unwrap();
    std::fs::read(legato_test_support::audio::tone_file(
        2.0, 440, 44_100, 2, ext, args,
    ))
    .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(server: &TestServer, bytes: &[u8], file_name: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "song",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(file_name.to_owned()),
    );
    server.post_form(form).await
}

/// `GET url`, with `Range: bytes=start-end` when a range is given: status and body.
async fn fetch(
    server: &TestServer,
    url: &str,
    range: Option<(usize, usize)>,
) -> (u16, bytes::Bytes) {
    let mut request = server.client.get(url);
    if let Some((start, end)) = range {
        request = request.header("range", format!("bytes={start}-{end}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_comes_back_byte_for_byte() {
    let server = TestServer::start_with(config()).await;
    let inputs: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "a.mp3",
            "audio/mpeg",
            make("a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ),
        ("a.flac", "audio/flac", make("a.flac", &["-c:a", "flac"])),
        ("a.wav", "audio/wav", make("a.wav", &["-c:a", "pcm_s16le"])),
        (
            "a.aiff",
            "audio/aiff",
            make("a.aiff", &["-c:a", "pcm_s16be"]),
        ),
        ("a.ogg", "audio/ogg", make("a.ogg", &["-c:a", "libvorbis"])),
        ("a.m4a", "audio/mp4", make("a.m4a", &["-c:a", "aac"])),
        (
            "a.aac",
            "audio/aac",
            make("a.aac", &["-c:a", "aac", "-f", "adts"]),
        ),
    ];
    for (file_name, content_type, bytes) in inputs {
        let response = post(&server, &bytes, file_name).await;
        assert_eq!(response.status(), 201, "{file_name}");
        let track: Value = response.json().await.unwrap();
        let hash = sha256(&bytes);
        assert_eq!(track["source"]["sha256"], hash.as_str(), "{file_name}");
        assert_eq!(track["source"]["size"], bytes.len(), "{file_name}");
        assert_eq!(track["source"]["file_name"], file_name);
        let url = server.url(&format!(
            "/function/crud/{}/file",
            track["id"].as_str().unwrap()
        ));

        let download = server.client.get(&url).send().await.unwrap();
        assert_eq!(download.status(), 200, "{file_name}");
        let headers = download.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{file_name}");
        assert_eq!(headers["etag"], format!("\"{hash}\"").as_str());
        assert_eq!(headers["accept-ranges"], "bytes");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"{file_name}\"")),
            "{disposition}"
        );
        let body = download.bytes().await.unwrap();
        assert_eq!(sha256(&body), hash, "{file_name} comes back exact");

        let head = server.client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            bytes.len().to_string().as_str()
        );

        let part = server
            .client
            .get(&url)
            .header("range", "bytes=10-99")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 10-99/{}", bytes.len()).as_str()
        );
        assert_eq!(&part.bytes().await.unwrap()[..], &bytes[10..100]);

        let outside = server
            .client
            .get(&url)
            .header("range", format!("bytes={}-", bytes.len() + 5))
            .send()
            .await
            .unwrap();
        assert_eq!(outside.status(), 416);

        let cached = server
            .client
            .get(&url)
            .header("if-none-match", format!("\"{hash}\""))
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_of_several_pieces_and_a_range_across_them() {
    let server = TestServer::start_with(config()).await;
    // 60 s of 48 kHz stereo 24-bit WAV: about 17.3 MB, three pieces of 8 MiB (the range
    // below crosses both joins).
    let bytes = std::fs::read(legato_test_support::audio::tone_file(
        60.0,
        220,
        48_000,
        2,
        "wav",
        &["-c:a", "pcm_s24le"],
    ))
    .unwrap();
    assert!(bytes.len() > 16 * 1024 * 1024 + 2, "three pieces");
    let response = server
        .client
        .post(server.crud())
        .header("prefer", "respond-async")
        .header("content-type", "audio/wav")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let track: Value = response.json().await.unwrap();
    assert!(track["source"]["file_name"].is_null());
    let url = server.url(&format!(
        "/function/crud/{}/file",
        track["id"].as_str().unwrap()
    ));
    // Downloadable at once, while it is processing.
    let (_, body) = fetch(&server, &url, None).await;
    assert_eq!(sha256(&body), sha256(&bytes));
    let (start, end) = (8 * 1024 * 1024 - 3, 16 * 1024 * 1024 + 2);
    let (status, part) = fetch(&server, &url, Some((start, end))).await;
    assert_eq!(status, 206);
    assert_eq!(&part[..], &bytes[start..=end]);
    let disposition =
        server.client.head(&url).send().await.unwrap().headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
    assert!(
        disposition.contains("filename=\"Unknown artist - Untitled.wav\""),
        "{disposition}"
    );
    server.stop().await;
}

/// Bytes of every stored chunk of a track, by kind: source pieces, the MP3 remainder, the
/// rest (playlists, segments, cover).
async fn stored_bytes(store: &legato_store::Store, id: &legato_store::TrackId) -> (u64, u64, u64) {
    let (mut pieces, mut remainder, mut renditions) = (0, 0, 0);
    for name in store.chunk_names(id).await.unwrap() {
        let len = store.get_stored_chunk(id, &name).await.unwrap().len() as u64;
        if name.starts_with("source/") {
            pieces += len;
        } else if name.ends_with("original/rest") {
            remainder += len;
        } else {
            renditions += len;
        }
    }
    (pieces, remainder, renditions)
}

/// An MP3's audio is stored once: its `original` segments carry the frames, and a remainder
/// chunk the rest (ID3v2 with a cover, the Info frame, a trailing ID3v1). The download and
/// a range across segments give back the exact bytes, before and after a reprocessing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp3_source_costs_only_its_non_frame_bytes() {
    let server = TestServer::start_with(config()).await;
    let store = legato_store::Store::local(std::sync::Arc::new(
        legato_store_sqlite::SqliteStore::open_dir(server.dir.path()).unwrap(),
    ));
    let dir = server.dir.path().to_owned();
    // Three segments: the range checked below starts in the first and ends in the second.
    let mut bytes = crate::util::tagged_mp3(25.0, "128k", &[("title", "Kept once")]);
    let mut id3v1 = b"TAG".to_vec();
    id3v1.resize(128, b' ');
    bytes.extend(id3v1);

    let response = post(&server, &bytes, "tagged.mp3").await;
    assert_eq!(response.status(), 201);
    let track: Value = response.json().await.unwrap();
    let id: legato_store::TrackId = track["id"].as_str().unwrap().parse().unwrap();
    let url = server.url(&format!("/function/crud/{id}/file"));
    let check_download = |label: &'static str| {
        let (server, url, bytes) = (&server, url.clone(), bytes.clone());
        async move {
            let (_, body) = fetch(server, &url, None).await;
            assert_eq!(
                sha256(&body),
                sha256(&bytes),
                "{label}: the download is exact"
            );
            // A range that starts in one segment and ends in a later one.
            let (start, end) = (bytes.len() / 3, bytes.len() * 2 / 3);
            let (status, part) = fetch(server, &url, Some((start, end))).await;
            assert_eq!(status, 206, "{label}");
            assert_eq!(&part[..], &bytes[start..=end], "{label}");
        }
    };
    check_download("after the upload").await;

    let (pieces, remainder, renditions) = stored_bytes(&store, &id).await;
    let stored = store.get_track(&id).await.unwrap();
    let source = stored.source.unwrap();
    assert_eq!(
        (pieces, source.pieces),
        (0, 0),
        "no piece of the MP3 is kept"
    );
    assert_eq!(source.remainder.as_deref(), Some("original/rest"));
    // The tags and the cover are what is not audio: a few kilobytes here.
    let path = dir.join("as-uploaded.mp3");
    std::fs::write(&path, &bytes).unwrap();
    let audio_bytes = mp3_frames(path.to_str().unwrap()).len() as u64;
    let non_frame = bytes.len() as u64 - audio_bytes;
    eprintln!(
        "MP3 of {} bytes ({non_frame} not audio): source stored as {remainder} bytes beside \
         {renditions} bytes of renditions (a whole copy would add {} bytes, {:.0} % more)",
        bytes.len(),
        bytes.len(),
        bytes.len() as f64 * 100.0 / (renditions + remainder) as f64
    );
    assert!(
        remainder <= non_frame + 256,
        "the remainder ({remainder}) is the non-frame bytes ({non_frame}) and names"
    );

    // Reprocessing rebuilds from the segments and keeps the source in the new generation.
    let response = server
        .client
        .post(server.url(&format!("/function/crud/{id}/reprocess")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let current = until(
        Duration::from_secs(60),
        "the reprocessing to finish",
        async || {
            let current = store.get_track(&id).await.unwrap();
            if current.playlist.starts_with('g') && store.get_job(&id).await.unwrap().is_none() {
                Ok(current)
            } else {
                Err(current.playlist)
            }
        },
    )
    .await;
    let source = current.source.unwrap();
    let generation = current.playlist.trim_end_matches("index.m3u8");
    assert_eq!(source.remainder, Some(format!("{generation}original/rest")));
    check_download("after a reprocessing").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_stored_before_originals_were_kept_says_so() {
    let server = TestServer::start_with(config()).await;
    let store = legato_store::Store::local(Arc::new(
        legato_store_sqlite::SqliteStore::open_dir(server.dir.path()).unwrap(),
    ));
    let track = legato_store::Track {
        source: None,
        ..legato_store::conformance::sample_track("Old", "Timer")
    };
    let id = track.id;
    store
        .insert_track(track, Box::new(std::iter::empty()))
        .await
        .unwrap();
    let response = server
        .client
        .get(server.url(&format!("/function/crud/{id}/file")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "source-unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before"),
        "{body}"
    );
    let shown: Value = server
        .client
        .get(server.url(&format!("/function/crud/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(shown["source"].is_null());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let server = TestServer::start_with(HttpConfig {
        max_queued_jobs: 2,
        ..config()
    })
    .await;
    // Two jobs whose tracks never appear stay queued (the workers wait for their tracks).
    let store = legato_store::Store::local(Arc::new(
        legato_store_sqlite::SqliteStore::open_dir(server.dir.path()).unwrap(),
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for _ in 0..2 {
        store
            .enqueue_job(&legato_store::TrackId::generate(), now)
            .await
            .unwrap();
    }
    let wav = make("q.wav", &["-c:a", "pcm_s16le"]);
    // A worker may hold one of them for a moment.
    let response = until(Duration::from_secs(10), "a 429", async || {
        let response = post(&server, &wav, "q.wav").await;
        if response.status() == 429 {
            Ok(response)
        } else {
            Err(response.status())
        }
    })
    .await;
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue-full");
    server.stop().await;
}

//! Reprocessing over HTTP, on a real server over a real SQLite file: the plain playlist names
//! after a takeover, new rungs published at once while playback goes on, the old generation
//! retired after its grace period, and the refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use legato_http::HttpConfig;
use legato_store::{Chunk, SourceInfo, Track, TrackId, TrackStatus};
use legato_store_sqlite::SqliteStore;
use legato_test_support::ffmpeg::played_seconds;
use serde_json::Value;

use crate::util::{TestServer, config, song, until};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A track as an upload records it: processing, with its source.
fn pending(audio: &[u8], source: bool) -> Track {
    Track {
        id: TrackId::generate(),
        name: "Pending".into(),
        author: "Test".into(),
        duration: 0.0,
        segments: 0,
        playlist: "index.m3u8".into(),
        codec: None,
        bitrate: None,
        sample_rate: None,
        channels: None,
        size: Some(audio.len() as u64),
        created_at: now_ms(),
        album: None,
        year: None,
        album_artist: None,
        genre: None,
        track_number: None,
        disc_number: None,
        status: TrackStatus::Processing,
        error: None,
        variants: Vec::new(),
        cover: None,
        analysis: None,
        source: source.then(|| SourceInfo {
            format: "mp3".into(),
            size: audio.len() as u64,
            sha256: "00".repeat(32),
            file_name: None,
            pieces: 1,
            remainder: None,
        }),
    }
}

async fn get_json(server: &TestServer, url: &str) -> Value {
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

async fn text(server: &TestServer, url: &str) -> String {
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

async fn reprocess(server: &TestServer, id: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(&format!("/function/crud/{id}/reprocess")))
        .send()
        .await
        .unwrap()
}

/// Polls the track until `done` holds (or fails the test after `limit`).
async fn wait_for(
    server: &TestServer,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let url = server.url(&format!("/function/crud/{id}"));
    until(limit, "the track", async || {
        let track = get_json(server, &url).await;
        if done(&track) { Ok(track) } else { Err(track) }
    })
    .await
}

fn resolve(base: &str, uri: &str) -> String {
    match base.rfind('/') {
        Some(slash) => format!("{}/{uri}", &base[..slash]),
        None => uri.to_owned(),
    }
}

fn uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_takeover_the_plain_playlist_names_answer_the_current_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let audio = song(12.0);
    let track = pending(&audio, true);
    {
        // A process accepted the upload, claimed its job and died: the next claim is the
        // second, so the renditions are named `g2-…`. Its lease is given as run out already,
        // so the server takes the job over as soon as it looks.
        let store = legato_store::Store::local(std::sync::Arc::new(
            SqliteStore::open_dir(dir.path()).unwrap(),
        ));
        let source = vec![Ok(Chunk::new("source/0000", audio.clone()))];
        store
            .accept_track(track.clone(), Box::new(source.into_iter()))
            .await
            .unwrap();
        let now = now_ms();
        let claim = store.claim_job("dead", now, now - 1).await.unwrap();
        assert_eq!(claim.unwrap().claims, 1);
    }
    let server = TestServer::start_in(dir, config()).await;
    let id = track.id.to_string();
    let ready = wait_for(&server, &id, Duration::from_secs(30), |t| {
        t["status"] == "ready"
    })
    .await;
    let playlist_url = ready["playlist"].as_str().unwrap();
    assert!(playlist_url.ends_with("/g2-index.m3u8"), "{playlist_url}");
    let current = text(&server, &server.url(playlist_url)).await;
    assert!(current.contains("g2-seg000.ts"), "{current}");
    for name in ["index.m3u8", "outputlist.m3u8"] {
        let url = server.url(&format!("/function/streaming/{id}/{name}"));
        let response = server.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["cache-control"], "public, no-cache");
        assert_eq!(response.text().await.unwrap(), current, "{name}");
        // ffmpeg, as a player, plays the whole track from the plain name.
        let decoded = tokio::task::block_in_place(|| played_seconds(&url));
        assert!((decoded - 12.0).abs() < 0.1, "{name}: decoded {decoded}");
    }
    server.stop().await;
}

/// Fetches, in a loop until `stop`, what a player that loaded the track before the reprocess
/// holds (the old media playlists, as loaded then: each fetched again by its name, and every
/// segment it names), and the plain-named playlist with everything under it (what a new
/// player loads). Counts requests and failures, and in `rounds` the rounds played whole.
fn play_in_a_loop(
    server: &TestServer,
    id: &str,
    old: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let client = server.client.clone();
    let plain = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    tokio::spawn(async move {
        let requests = AtomicUsize::new(0);
        let mut errors = Vec::new();
        let fetch = |url: String| {
            let client = client.clone();
            requests.fetch_add(1, Ordering::Relaxed);
            async move {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
                        Ok(_) => Err(format!("{url}: empty")),
                        Err(e) => Err(format!("{url}: {e}")),
                    },
                    Ok(r) => Err(format!("{url}: {}", r.status())),
                    Err(e) => Err(format!("{url}: {e}")),
                }
            }
        };
        while !stop.load(Ordering::Relaxed) {
            for (url, text) in &old {
                if let Err(e) = fetch(url.clone()).await {
                    errors.push(e);
                }
                for segment in uris(text) {
                    if let Err(e) = fetch(resolve(url, &segment)).await {
                        errors.push(e);
                    }
                }
            }
            // A player starting now: the plain name (a master playlist, or the media playlist
            // of a track with one rendition), and everything under it.
            let mut media = Vec::new();
            match fetch(plain.clone()).await {
                Ok(top) => {
                    let top = String::from_utf8_lossy(&top).into_owned();
                    if top.contains("#EXT-X-STREAM-INF") {
                        media.extend(uris(&top).iter().map(|u| resolve(&plain, u)));
                    } else {
                        media.push(plain.clone());
                    }
                }
                Err(e) => errors.push(e),
            }
            for playlist_url in media {
                match fetch(playlist_url.clone()).await {
                    Ok(playlist) => {
                        let playlist = String::from_utf8_lossy(&playlist).into_owned();
                        for segment in uris(&playlist) {
                            if let Err(e) = fetch(resolve(&playlist_url, &segment)).await {
                                errors.push(e);
                            }
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            rounds.fetch_add(1, Ordering::Relaxed);
        }
        (requests.load(Ordering::Relaxed), errors)
    })
}

/// Lets the player play on after a switch of renditions: the round under way may have begun
/// before it, the two after it began after. Then stops it and checks that it made more than
/// `at_least` requests, none of them failing.
async fn play_on_after_the_switch(
    rounds: &AtomicUsize,
    stop: &AtomicBool,
    player: tokio::task::JoinHandle<(usize, Vec<String>)>,
    at_least: usize,
) {
    let switched = rounds.load(Ordering::Relaxed);
    until(
        Duration::from_secs(30),
        "two rounds of playback after the switch",
        async || match rounds.load(Ordering::Relaxed) {
            n if n >= switched + 3 => Ok(n),
            n => Err(n),
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (requests, errors) = player.await.unwrap();
    assert!(
        requests > at_least,
        "the player made only {requests} requests"
    );
    assert!(
        errors.is_empty(),
        "{} playback errors: {errors:?}",
        errors.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_adds_rungs_at_once_while_playback_never_fails_then_retires_the_old() {
    // The old generation is kept this long (and the grace below) after the switch.
    let seconds = 2.0;
    let first = TestServer::start_with(HttpConfig {
        ladder_kbps: vec![64],
        // The upload's follow-up retires its passthrough-only generation too.
        retire_grace: Duration::from_secs(1),
        ..config()
    })
    .await;
    // 320 kbit/s: every rung of the longer ladder is below the original, so each is made.
    let audio = crate::util::mp3(seconds, 44_100, 2, &["-b:a", "320k"]);
    let uploaded = first.upload(&audio, "Re", "Band").await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    let old_variants: Vec<String> = uploaded["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(old_variants, ["64k", "original"]);
    let dir = first.stop_keeping_dir().await;

    // The server restarted with a longer ladder.
    let server = TestServer::start_in(
        dir,
        HttpConfig {
            ladder_kbps: vec![64, 128, 192],
            retire_grace: Duration::from_secs(1),
            job_poll_interval: Duration::from_millis(200),
            ..config()
        },
    )
    .await;
    let before = get_json(&server, &server.url(&format!("/function/crud/{id}"))).await;
    let old_playlists: Vec<String> = before["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["playlist"].as_str().unwrap().to_owned())
        .collect();
    let mut old = Vec::new();
    for playlist in &old_playlists {
        let url = server.url(playlist);
        let loaded = text(&server, &url).await;
        old.push((url, loaded));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let player = play_in_a_loop(&server, &id, old, stop.clone(), rounds.clone());
    // The player is under way, a round played whole, before the reprocessing is asked for.
    until(
        Duration::from_secs(30),
        "a first round of playback",
        async || match rounds.load(Ordering::Relaxed) {
            0 => Err(0),
            n => Ok(n),
        },
    )
    .await;

    let response = reprocess(&server, &id).await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers()["location"],
        format!("/function/crud/{id}").as_str()
    );
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["status"], "ready", "playable all along");
    assert_eq!(queued["job"]["kind"], "reprocess");
    // Asked again while pending: nothing changes.
    assert_eq!(reprocess(&server, &id).await.status(), 202);

    let done = wait_for(&server, &id, Duration::from_secs(60), |t| {
        t["variants"].as_array().map_or(0, Vec::len) == 4 && t.get("job").is_none()
    })
    .await;
    // Play on after the switch (the old generation must still be there).
    play_on_after_the_switch(&rounds, &stop, player, 20).await;

    assert_eq!(done["status"], "ready");
    let names = crate::util::variant_names(&done);
    assert_eq!(names, ["128k", "192k", "64k", "original"]);
    let playlist = done["playlist"].as_str().unwrap();
    let generation = playlist
        .rsplit('/')
        .next()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .to_owned();
    assert!(generation.starts_with('g'), "{playlist}");
    let master = text(
        &server,
        &server.url(&format!("/function/streaming/{id}/index.m3u8")),
    )
    .await;
    for rung in ["64k", "128k", "192k", "original"] {
        assert!(
            master.contains(&format!("{generation}-{rung}.m3u8")),
            "{rung} missing from\n{master}"
        );
    }
    let url = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let decoded = tokio::task::block_in_place(|| played_seconds(&url));
    assert!((decoded - seconds).abs() < 0.1, "decoded {decoded}");

    // The old generation is removed once the old duration and the grace have passed.
    let store = legato_store::Store::local(std::sync::Arc::new(
        SqliteStore::open_dir(server.dir.path()).unwrap(),
    ));
    until(
        Duration::from_secs(30),
        "the old generation retired",
        async || {
            let names = store.chunk_names(&id.parse().unwrap()).await.unwrap();
            let stale: Vec<&String> = names
                .iter()
                .filter(|n| !n.starts_with("source/") && !n.starts_with(&format!("{generation}-")))
                .collect();
            if stale.is_empty() {
                Ok(())
            } else {
                Err(format!("{stale:?}"))
            }
        },
    )
    .await;
    let old = server
        .client
        .get(server.url(&old_playlists[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404, "the old generation is gone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_a_failed_reprocessing_that_leaves_the_track_playable() {
    let server = TestServer::start().await;
    let store = legato_store::Store::local(std::sync::Arc::new(
        SqliteStore::open_dir(server.dir.path()).unwrap(),
    ));

    let unknown = reprocess(&server, &TrackId::generate().to_string()).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not-found");
    assert_eq!(reprocess(&server, "nope").await.status(), 400);

    // A track stored before originals were kept.
    let audio = song(4.0);
    let old = Track {
        status: TrackStatus::Ready,
        duration: 4.0,
        segments: 1,
        ..pending(&audio, false)
    };
    let chunks = vec![
        Ok(Chunk::new("index.m3u8", b"#EXTM3U\n".to_vec())),
        Ok(Chunk::new("seg000.ts", vec![0x47; 188])),
    ];
    store
        .insert_track(old.clone(), Box::new(chunks.into_iter()))
        .await
        .unwrap();
    let response = reprocess(&server, &old.id.to_string()).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "source-unavailable");

    // A track still processing (its first processing is not finished).
    let processing = pending(&audio, true);
    store.insert_pending(processing.clone()).await.unwrap();
    let response = reprocess(&server, &processing.id.to_string()).await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "still-processing");

    // A ready track whose original cannot be read any more: the reprocessing fails, the
    // track stays ready on its renditions, and the job says why.
    let track = server.upload(&audio, "Kept", "Band").await;
    let id = track["id"].as_str().unwrap().to_owned();
    let track_id: TrackId = id.parse().unwrap();
    // An MP3's source is its `original` segments and a remainder chunk: that one goes.
    let source = store.get_track(&track_id).await.unwrap().source.unwrap();
    let remainder = source
        .remainder
        .expect("an MP3 source is kept in its segments");
    store
        .delete_chunks(&track_id, vec![remainder])
        .await
        .unwrap();
    assert_eq!(reprocess(&server, &id).await.status(), 202);
    let failed = wait_for(&server, &id, Duration::from_secs(30), |t| {
        t["job"]["state"] == "failed"
    })
    .await;
    assert_eq!(failed["status"], "ready");
    assert_eq!(failed["playlist"], track["playlist"]);
    assert!(failed["job"]["error"].is_string(), "{failed}");
    let playlist = server.url(track["playlist"].as_str().unwrap());
    let decoded = tokio::task::block_in_place(|| played_seconds(&playlist));
    assert!(
        (decoded - 4.0).abs() < 0.1,
        "still playable: decoded {decoded}"
    );
    // Lists stay compact: no job there.
    let list = get_json(&server, &server.crud()).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("job").is_none())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_reprocessing_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(
        dir,
        HttpConfig {
            api_keys: legato_http::auth::ApiKeys::parse("admin-key\n"),
            ..config()
        },
    )
    .await;
    let id = TrackId::generate();
    let response = reprocess(&server, &id.to_string()).await;
    assert_eq!(response.status(), 401);
    let response = server
        .client
        .post(server.url(&format!("/function/crud/{id}/reprocess")))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "past the key check");
    server.stop().await;
}

/// At the default settings an MP3 upload answers 201 with a track that plays at once (its
/// bit-exact rendition), and says what is coming; the follow-up job adds the MP3 ladder and
/// the AAC rungs to `index.m3u8` in one switch while a player loops over it without an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp3_plays_when_its_upload_returns_and_gains_its_other_renditions_after() {
    let server = TestServer::start_with(HttpConfig {
        retire_grace: Duration::from_secs(1),
        job_poll_interval: Duration::from_millis(100),
        ..HttpConfig::default()
    })
    .await;
    let audio = song(14.0);
    let started = std::time::Instant::now();
    let response = server
        .client
        .post(server.crud())
        .header("content-type", "audio/mpeg")
        .body(audio.clone())
        .send()
        .await
        .unwrap();
    let answered = started.elapsed();
    assert_eq!(response.status(), 201, "playable at once");
    let track: Value = response.json().await.unwrap();
    eprintln!("upload to 201: {answered:?}");
    assert_eq!(track["status"], "ready", "{track}");
    assert_eq!(track["job"]["kind"], "reprocess", "{track}");
    assert!(track["variants"].as_array().unwrap().is_empty(), "{track}");
    let coming: Vec<&str> = track["coming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // The MP3 rungs below the upload's 128 kbit/s, and the AAC rungs up to it.
    assert_eq!(coming, ["64k", "aac64k", "aac128k"], "{track}");
    let id = track["id"].as_str().unwrap().to_owned();

    // What a player loads straight after the 201: the bit-exact rendition, whole.
    let plain = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let first = text(&server, &plain).await;
    assert!(!first.contains("#EXT-X-STREAM-INF"), "{first}");
    let segments = uris(&first);
    assert_eq!(segments.len(), 2, "14 s in segments of 10: {first}");

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let player = play_in_a_loop(
        &server,
        &id,
        vec![(plain.clone(), first)],
        stop.clone(),
        rounds.clone(),
    );
    let done = wait_for(&server, &id, Duration::from_secs(120), |t| {
        t.get("job").is_none()
    })
    .await;
    play_on_after_the_switch(&rounds, &stop, player, 10).await;

    assert!(done.get("coming").is_none(), "{done}");
    let names = crate::util::variant_names(&done);
    assert_eq!(names, ["64k", "aac128k", "aac64k", "original"], "{done}");
    let master = text(&server, &plain).await;
    assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
    let decoded = tokio::task::block_in_place(|| played_seconds(&plain));
    assert!((decoded - 14.0).abs() < 0.1, "decoded {decoded}");
    // The original still comes back byte for byte from its new home.
    let file = server
        .client
        .get(server.url(&format!("/function/crud/{id}/file")))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert!(
        file.bytes().await.unwrap() == audio,
        "the original, bit-exact"
    );
    server.stop().await;
}

/// An upload that must be decoded is made playable with one MP3 rung first (one decode, one
/// encode); its job then becomes the follow-up that adds the other MP3 rungs, the AAC rungs
/// and the lossless one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wav_plays_on_its_first_rung_then_gains_the_others() {
    let server = TestServer::start_with(HttpConfig {
        retire_grace: Duration::from_secs(1),
        job_poll_interval: Duration::from_millis(100),
        ..HttpConfig::default()
    })
    .await;
    let wav = std::fs::read(legato_test_support::audio::wav(12.0)).unwrap();
    let response = server
        .client
        .post(server.crud())
        .header("content-type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let track: Value = response.json().await.unwrap();
    assert_eq!(track["status"], "ready", "{track}");
    assert!(track["variants"].as_array().unwrap().is_empty(), "{track}");
    let coming: Vec<&str> = track["coming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // The first rung is 128k; everything else the default settings ask for is coming.
    assert_eq!(
        coming,
        ["64k", "192k", "aac64k", "aac128k", "aac256k", "flac"],
        "{track}"
    );
    let id = track["id"].as_str().unwrap();
    let plain = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let first = text(&server, &plain).await;
    assert!(
        !first.contains("#EXT-X-STREAM-INF"),
        "one rendition: {first}"
    );
    let done = server.settled(track.clone()).await;
    let names = crate::util::variant_names(&done);
    assert_eq!(
        names,
        [
            "128k", "192k", "64k", "aac128k", "aac256k", "aac64k", "flac"
        ],
        "{done}"
    );
    assert!(done.get("coming").is_none(), "{done}");
    let decoded = tokio::task::block_in_place(|| played_seconds(&plain));
    assert!((decoded - 12.0).abs() < 0.1, "decoded {decoded}");
    server.stop().await;
}

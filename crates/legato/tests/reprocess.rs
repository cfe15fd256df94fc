//! `legato reprocess` with real processes: a library made by `legato serve --ladder 64`, the
//! server restarted with `--ladder 64,128,192`, then `legato reprocess --all`. The new rungs
//! appear in the master playlist, the result decodes with ffmpeg to the source's duration, a
//! player fetching the old playlist's segments and the plain-named playlist throughout never
//! sees an error, a track stored before originals were kept is refused (`source-unavailable`,
//! exit status 1), and once the grace period is over no chunk of the old generation is left.
//! SQLite, and FerretDB (the MongoDB test reads `LEGATO_TEST_MONGODB_URI`, and fails without
//! it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use legato_store::{Chunk, DynStore, Track, TrackId, TrackStatus};
use legato_test_support::ffmpeg::played_seconds;
use legato_test_support::process::{Server, Tripwire, run};
use legato_test_support::{audio, wait};
use serde_json::Value;

use crate::BIN;

/// The track's length: short, as the old generation is retired only once a player that
/// loaded it could have played it through (its duration) and the grace has passed.
const SECONDS: f64 = 4.0;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(store: Option<&str>, data: &Path) -> DynStore {
    match store {
        Some(uri) => legato_store::Store::local(Arc::new(
            legato_store_mongo::MongoStore::connect(
                uri,
                legato_store_mongo::MongoOptions::default(),
            )
            .await
            .unwrap(),
        )),
        None => legato_store::Store::local(Arc::new(
            legato_store_sqlite::SqliteStore::open_dir(data).unwrap(),
        )),
    }
}

/// A track as a version that did not keep originals stored it: ready, no source.
fn old_track() -> (Track, Vec<Chunk>) {
    let id = TrackId::generate();
    let track = Track {
        id,
        name: "Before originals".into(),
        author: "Old".into(),
        duration: 1.0,
        segments: 1,
        playlist: "index.m3u8".into(),
        codec: Some("mp3".into()),
        bitrate: Some(128),
        sample_rate: Some(44_100),
        channels: Some(2),
        size: Some(188),
        created_at: 1,
        album: None,
        year: None,
        album_artist: None,
        genre: None,
        track_number: None,
        disc_number: None,
        status: TrackStatus::Ready,
        error: None,
        variants: Vec::new(),
        cover: None,
        analysis: None,
        source: None,
    };
    let chunks = vec![
        Chunk::new(
            "index.m3u8",
            b"#EXTM3U\n#EXTINF:1.0,\nseg000.ts\n#EXT-X-ENDLIST\n".to_vec(),
        ),
        Chunk::new("seg000.ts", vec![0x47; 188]),
    ];
    (track, chunks)
}

fn get(client: &reqwest::blocking::Client, url: &str) -> Result<Vec<u8>, String> {
    match client.get(url).send() {
        Ok(r) if r.status() == 200 => r
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|e| format!("{url}: {e}")),
        Ok(r) => Err(format!("{url}: {}", r.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

fn uris(playlist: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(playlist)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn sibling(url: &str, name: &str) -> String {
    format!("{}/{name}", &url[..url.rfind('/').unwrap()])
}

fn story(store: Option<&str>) {
    let env: Vec<(&str, &str)> = store.map(|uri| ("LEGATO_STORE", uri)).into_iter().collect();
    let wav = audio::wav(SECONDS);
    // A server of before the fMP4 renditions: one MP3 rung.
    let first = Server::start_in(
        BIN,
        &[
            "--ladder",
            "64",
            "--aac-ladder",
            "none",
            "--lossless",
            "false",
            "--sync-ingest-seconds",
            "60",
        ],
        tempfile::tempdir().unwrap(),
        &env,
    );
    let url = first.url("");
    let (code, stdout, stderr) = run(BIN, &["add", wav.to_str().unwrap(), "--url", &url], None);
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_owned();
    // The track's analysis (loudness, waveform) is written just after it is ready: the
    // store is written to from here only once that is done, or the two writers race
    // ("database is locked").
    wait::until(Duration::from_secs(30), "the track's analysis", || {
        let track: Value = reqwest::blocking::get(first.url(&format!("/function/crud/{id}")))
            .ok()?
            .json()
            .ok()?;
        track["loudness"].is_number().then_some(())
    });
    let data = first.data_dir();
    let old = old_track();
    runtime().block_on(async {
        let store = open(store, &data).await;
        store
            .insert_track(old.0.clone(), Box::new(old.1.into_iter().map(Ok)))
            .await
            .unwrap();
    });
    // The folder outlives this process: the next one starts on it.
    let mut first = first;
    let dir = first.take_dir();
    let status = first.stop(Duration::from_secs(30));
    assert!(status.success());

    let server = Server::start_in(
        BIN,
        &["--ladder", "64,128,192", "--retire-grace-seconds", "2"],
        dir,
        &env,
    );
    let client = reqwest::blocking::Client::new();
    let track: Value = serde_json::from_slice(
        &get(&client, &server.url(&format!("/function/crud/{id}"))).unwrap(),
    )
    .unwrap();
    assert!(
        track["variants"].as_array().unwrap().is_empty(),
        "one 64k rendition: {track}"
    );
    // What a player loaded before the reprocess: the old media playlist.
    let old_url = server.url(track["playlist"].as_str().unwrap());
    let old_playlist = get(&client, &old_url).unwrap();
    let old_segments: Vec<String> = uris(&old_playlist)
        .iter()
        .map(|s| sibling(&old_url, s))
        .collect();
    assert!(!old_segments.is_empty());
    let plain = server.url(&format!("/function/streaming/{id}/index.m3u8"));

    let stop = Arc::new(AtomicBool::new(false));
    // Rounds the player has played through, and whether it has seen the new master.
    let rounds = Arc::new(AtomicUsize::new(0));
    let seen_new = Arc::new(AtomicBool::new(false));
    let player = {
        let (stop, client, plain) = (stop.clone(), client.clone(), plain.clone());
        let (rounds, seen_new) = (rounds.clone(), seen_new.clone());
        let old_segments = old_segments.clone();
        std::thread::spawn(move || {
            let (mut requests, mut errors) = (0_usize, Vec::new());
            // What the plain name answered: the old media playlist, then the new master.
            let (mut saw_old, mut saw_new) = (false, false);
            let mut check = |result: Result<Vec<u8>, String>| {
                requests += 1;
                result.map_err(|e| errors.push(e)).ok()
            };
            while !stop.load(Ordering::Relaxed) {
                for segment in &old_segments {
                    check(get(&client, segment));
                }
                // A player starting now: the plain name, and everything under it.
                let Some(top) = check(get(&client, &plain)) else {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                let master = String::from_utf8_lossy(&top).contains("#EXT-X-STREAM-INF");
                saw_new |= master;
                saw_old |= !master;
                let mut media = vec![(plain.clone(), top.clone())];
                for variant in uris(&top).iter().filter(|u| u.ends_with(".m3u8")) {
                    let url = sibling(&plain, variant);
                    if let Some(playlist) = check(get(&client, &url)) {
                        media.push((url, playlist));
                    }
                }
                for (url, playlist) in media {
                    for segment in uris(&playlist)
                        .iter()
                        .filter(|u| u.ends_with(".ts") || u.ends_with(".m4s"))
                    {
                        check(get(&client, &sibling(&url, segment)));
                    }
                }
                seen_new.store(saw_new, Ordering::SeqCst);
                rounds.fetch_add(1, Ordering::SeqCst);
            }
            (requests, errors, saw_old, saw_new)
        })
    };
    // The player has played the old playlist through before the reprocess is asked for.
    wait::until(
        Duration::from_secs(30),
        "a first round of the player",
        || (rounds.load(Ordering::SeqCst) > 0).then_some(()),
    );

    let started = Instant::now();
    let (code, stdout, stderr) = run(BIN, &["reprocess", "--all", "--url", &server.url("")], None);
    assert_eq!(
        code, 1,
        "one track could not be queued:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("{id}  ")) && stdout.lines().count() == 1,
        "{stdout}"
    );
    assert!(
        stderr.contains(&old.0.id.to_string()) && stderr.contains("reprocessed"),
        "{stderr}"
    );
    assert!(stderr.contains("1 track queued"), "{stderr}");
    let (code, _, stderr) = run(
        BIN,
        &["reprocess", &old.0.id.to_string(), "--url", &server.url("")],
        None,
    );
    assert_eq!(code, 1, "{stderr}");

    let done: Value = wait::until(Duration::from_secs(300), "the reprocess", || {
        let track: Value = serde_json::from_slice(
            &get(&client, &server.url(&format!("/function/crud/{id}"))).ok()?,
        )
        .ok()?;
        if let Some(job) = track.get("job") {
            assert_ne!(job["state"], "failed", "{track}");
        }
        // Three MP3 rungs, three AAC ones and the lossless one: what today's server makes.
        (track["variants"].as_array()?.len() == 7 && track.get("job").is_none()).then_some(track)
    });
    eprintln!("reprocess queued to published: {:?}", started.elapsed());
    // The player plays on after the switch: two more rounds (the second begun after it), the
    // new master seen.
    let at_switch = rounds.load(Ordering::SeqCst);
    wait::until(
        Duration::from_secs(60),
        "the player to play the new master",
        || {
            (rounds.load(Ordering::SeqCst) >= at_switch + 2 && seen_new.load(Ordering::SeqCst))
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let (requests, errors, saw_old, saw_new) = player.join().unwrap();
    assert!(
        saw_old && saw_new,
        "the player played across the switch: old {saw_old}, new {saw_new}"
    );
    eprintln!(
        "player: {requests} requests during the reprocess, {} errors",
        errors.len()
    );
    assert!(requests > 20, "only {requests} requests");
    assert!(errors.is_empty(), "playback failed: {errors:?}");

    assert_eq!(done["status"], "ready");
    let master = String::from_utf8(get(&client, &plain).unwrap()).unwrap();
    let current = done["playlist"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let prefix = current.strip_suffix("index.m3u8").unwrap().to_owned();
    assert!(prefix.starts_with('g'), "a fresh generation: {current}");
    for rung in [
        "64k", "128k", "192k", "aac64k", "aac128k", "aac256k", "flac",
    ] {
        assert!(
            master.contains(&format!("{prefix}{rung}.m3u8")),
            "{rung}:\n{master}"
        );
    }
    let decoded = played_seconds(&plain);
    assert!((decoded - SECONDS).abs() < 0.1, "decoded {decoded}");

    // The old generation goes once the old duration and the grace have passed; nothing but
    // the source and the current generation is left.
    let rt = runtime();
    let opened = rt.block_on(open(store, &server.data_dir()));
    let track_id: TrackId = id.parse().unwrap();
    let mut names = Vec::new();
    let retired = wait::holds_within(Duration::from_secs(60), || {
        names = rt.block_on(opened.chunk_names(&track_id)).unwrap();
        names
            .iter()
            .all(|n| n.starts_with("source/") || n.starts_with(&prefix))
    });
    assert!(retired, "not retired: {names:?}");
    assert!(names.iter().any(|n| n.starts_with("source/")));
    assert!(rt.block_on(opened.get_job(&track_id)).unwrap().is_none());
    let gone = client.get(&old_segments[0]).send().unwrap();
    assert_eq!(gone.status(), 404, "the old generation is removed");
    assert!(
        server
            .log()
            .contains("removing the renditions a reprocessing replaced")
    );
    let status = server.stop(Duration::from_secs(30));
    assert!(status.success());
}

#[test]
fn sqlite_reprocess_all_gains_the_new_rungs_without_a_playback_error() {
    story(None);
}

fn mongo_store() -> String {
    legato_test_support::ferretdb::fresh_database_uri("legato_reprocess")
}

#[test]
fn mongo_reprocess_all_gains_the_new_rungs_without_a_playback_error() {
    story(Some(&mongo_store()));
}

/// A reprocessing is a durable job like an upload's: the process working on it is killed
/// (-9) mid-transcode, the track stays ready and playable on its old renditions, and the next
/// process on the store finishes it under a fresh generation.
#[test]
fn sqlite_a_reprocessing_killed_mid_work_is_finished_by_the_next_process() {
    // Short: the harness freezes the worker the instant it starts, so the work need not be
    // long to be interrupted.
    let seconds = 30.0;
    let wav = audio::wav(seconds);
    // The MP3 ladder alone, before and after: this story is the takeover.
    let first = Server::start_in(
        BIN,
        &[
            "--ladder",
            "64",
            "--aac-ladder",
            "none",
            "--lossless",
            "false",
            "--sync-ingest-seconds",
            "120",
        ],
        tempfile::tempdir().unwrap(),
        &[],
    );
    let (code, stdout, stderr) = run(
        BIN,
        &["add", wav.to_str().unwrap(), "--url", &first.url("")],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_owned();
    let mut first = first;
    let dir = first.take_dir();
    assert!(first.stop(Duration::from_secs(30)).success());

    let ladder = [
        "--ladder",
        "64,128,192",
        "--aac-ladder",
        "none",
        "--lossless",
        "false",
        "--job-lease-seconds",
        "3",
    ];
    // Frozen (SIGSTOP) the instant it starts the work, then killed: mid-work for certain.
    let mid_work = Tripwire::new("source read; processing", "STOP");
    let mut victim = Server::serve(BIN)
        .args(&ladder)
        .dir(dir)
        .tripwire(&mid_work)
        .start();
    let (code, _, stderr) = run(BIN, &["reprocess", &id, "--url", &victim.url("")], None);
    assert_eq!(code, 0, "{stderr}");
    let (pid, line) = mid_work.wait(Duration::from_secs(60));
    assert_eq!(pid, victim.pid(), "{line}");
    wait::until(Duration::from_secs(10), "the worker to be frozen", || {
        victim.is_stopped().then_some(())
    });
    assert!(
        !victim.logged(&["reprocessed: the new renditions are published"]),
        "finished before the fault"
    );
    victim.kill9();
    let dir = victim.take_dir();
    drop(victim);

    let survivor = Server::start_in(BIN, &ladder, dir, &[]);
    let client = reqwest::blocking::Client::new();
    let plain = survivor.url(&format!("/function/streaming/{id}/index.m3u8"));
    // Until the survivor takes the job over (the lease runs out), the old renditions play.
    let track: Value = serde_json::from_slice(
        &get(&client, &survivor.url(&format!("/function/crud/{id}"))).unwrap(),
    )
    .unwrap();
    assert_eq!(track["status"], "ready");
    assert!(get(&client, &plain).is_ok());
    let done: Value = wait::until(Duration::from_secs(300), "the takeover", || {
        let track: Value = serde_json::from_slice(
            &get(&client, &survivor.url(&format!("/function/crud/{id}"))).ok()?,
        )
        .ok()?;
        assert_eq!(track["status"], "ready", "{track}");
        (track["variants"].as_array()?.len() == 3 && track.get("job").is_none()).then_some(track)
    });
    // The killed attempt was claim 2, the takeover claim 3.
    assert!(
        done["playlist"]
            .as_str()
            .unwrap()
            .ends_with("/g3-index.m3u8"),
        "{done}"
    );
    let decoded = played_seconds(&plain);
    assert!((decoded - seconds).abs() < 0.1, "decoded {decoded}");
    assert!(
        survivor
            .log()
            .contains("reprocessed: the new renditions are published")
    );
    runtime().block_on(async {
        let store = open(None, &survivor.data_dir()).await;
        let names = store.chunk_names(&id.parse().unwrap()).await.unwrap();
        assert!(
            names.iter().all(|n| !n.starts_with("g2-")),
            "nothing of the killed attempt is left"
        );
    });
}

/// An MP3 upload's follow-up is as durable as the upload: the process is frozen the instant
/// the bit-exact rendition is published and killed (-9) before the follow-up could be done;
/// the track plays meanwhile, and the next process on the store finishes the follow-up.
fn follow_up_story(store: Option<&str>) {
    let env: Vec<(&str, &str)> = store.map(|uri| ("LEGATO_STORE", uri)).into_iter().collect();
    let seconds = 20.0;
    let settings = ["--job-lease-seconds", "3", "--retire-grace-seconds", "1"];
    let published = Tripwire::new("MP3 stored and playable", "STOP");
    let mut victim = Server::serve(BIN)
        .args(&settings)
        .envs(&env)
        .tripwire(&published)
        .start();
    let url = victim.url("/function/crud");
    // The answer may never come: the process can freeze before it is written.
    let upload = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "audio/mpeg")
            .body(audio::mp3(seconds))
            .timeout(Duration::from_secs(60))
            .send()
            .map(|r| r.status().as_u16())
    });
    let (pid, line) = published.wait(Duration::from_secs(60));
    assert_eq!(pid, victim.pid(), "{line}");
    let id = line
        .split("id=")
        .nth(1)
        .map(|rest| rest[..24].to_owned())
        .unwrap_or_else(|| panic!("no id in {line}"));
    wait::until(Duration::from_secs(10), "the process to be frozen", || {
        victim.is_stopped().then_some(())
    });
    assert!(!victim.logged(&["reprocessed: the new renditions are published"]));
    victim.kill9();
    let answered = upload.join().unwrap();
    eprintln!("the upload's answer before the kill: {answered:?}");
    let dir = victim.take_dir();
    drop(victim);

    let survivor = Server::start_in(BIN, &settings, dir, &env);
    let client = reqwest::blocking::Client::new();
    let track_url = survivor.url(&format!("/function/crud/{id}"));
    let plain = survivor.url(&format!("/function/streaming/{id}/index.m3u8"));
    let track: Value = serde_json::from_slice(&get(&client, &track_url).unwrap()).unwrap();
    assert_eq!(track["status"], "ready", "stored before the kill: {track}");
    assert!(
        get(&client, &plain).is_ok(),
        "playable before its follow-up"
    );
    let mut last = Value::Null;
    let finished = wait::holds_within(Duration::from_secs(300), || {
        let Some(track) = get(&client, &track_url)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            return false;
        };
        assert_eq!(track["status"], "ready", "{track}");
        assert_ne!(track["job"]["state"], "failed", "{track}");
        last = track;
        last.get("job").is_none()
    });
    assert!(
        finished,
        "the follow-up did not finish: {last}\n{}",
        survivor.log_tail(60)
    );
    let done = last;
    let mut names: Vec<&str> = done["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["64k", "aac128k", "aac64k", "original"], "{done}");
    let decoded = played_seconds(&plain);
    assert!((decoded - seconds).abs() < 0.1, "decoded {decoded}");
    let original = client
        .get(survivor.url(&format!("/function/crud/{id}/file")))
        .send()
        .unwrap();
    assert!(original.bytes().unwrap()[..] == audio::mp3(seconds)[..]);
    assert!(survivor.stop(Duration::from_secs(30)).success());
}

#[test]
fn sqlite_an_mp3_follow_up_killed_before_it_ran_is_finished_by_the_next_process() {
    follow_up_story(None);
}

#[test]
fn mongo_an_mp3_follow_up_killed_before_it_ran_is_finished_by_the_next_process() {
    follow_up_story(Some(&mongo_store()));
}

/// The decodes a process made, from its `/metrics`.
fn decodes(client: &reqwest::blocking::Client, server: &Server) -> u64 {
    let text = client
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("legato_transcode_decodes_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// At default settings an MP3 is decoded once (its follow-up makes the MP3 ladder, the AAC
/// rungs and the analysis from one decode), a WAV twice (its first rung in the request's job,
/// then everything else in the follow-up's one decode), where each was decoded three and four
/// times before.
#[test]
fn uploads_are_decoded_once_per_job_at_default_settings() {
    let server = Server::serve(BIN).start();
    let client = reqwest::blocking::Client::new();
    let settled = |kind: &str, body: Vec<u8>| {
        let answer = client
            .post(server.url("/function/crud"))
            .header("content-type", kind)
            .body(body)
            .timeout(Duration::from_secs(120))
            .send()
            .unwrap();
        // A WAV's first rung may take longer than the request waits on a loaded machine.
        assert!(
            [201, 202].contains(&answer.status().as_u16()),
            "{kind}: {}",
            answer.status()
        );
        let id = answer.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let url = server.url(&format!("/function/crud/{id}"));
        let mut last = Value::Null;
        let done = wait::holds_within(Duration::from_secs(300), || {
            last = client.get(&url).send().unwrap().json().unwrap();
            last.get("job").is_none() && last["loudness"].is_number()
        });
        assert!(done, "{kind}: no follow-up and analysis: {last}");
        last
    };
    let before = decodes(&client, &server);
    let wav = settled("audio/wav", std::fs::read(audio::wav(6.0)).unwrap());
    assert!(wav["variants"].as_array().unwrap().len() >= 4, "{wav}");
    assert_eq!(decodes(&client, &server) - before, 2, "a WAV: {wav}");
    let before = decodes(&client, &server);
    let mp3 = settled("audio/mpeg", audio::mp3(6.0));
    assert!(mp3["variants"].as_array().unwrap().len() >= 3, "{mp3}");
    assert_eq!(decodes(&client, &server) - before, 1, "an MP3: {mp3}");
}

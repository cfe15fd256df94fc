//! Accepted means kept, with real processes: `legato serve` and `legato function crud` are
//! killed (-9) or stopped (SIGTERM) in the middle of transcoding a WAV, and another process
//! on the same store finishes the track. The result decodes with ffmpeg to the source's
//! duration, no chunk is left that the track does not use, and the job log (each process's
//! "job claimed" lines) shows one claim per attempt. SQLite and FerretDB (the MongoDB tests
//! read `LEGATO_TEST_MONGODB_URI`, and fail without it).
//!
//! "Mid-work" is made certain rather than likely: the harness freezes (SIGSTOP) the process
//! the instant it logs that it has read the source and is processing it, the fault comes
//! while it is frozen, so the audio can be short.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legato_store::{DynStore, TrackId, TrackStatus};
use legato_test_support::audio::tone_file;
use legato_test_support::process::{Mode, Server, Tripwire};
use legato_test_support::{ffmpeg, wait};

use crate::BIN;

/// Short, so that a takeover is quick to test (3 s is the least the flag takes); renewed
/// every second while working.
const LEASE_SECONDS: &str = "3";
const LADDER: &str = "64,128";
/// One AAC rung (and the lossless one, by default): every kind of rendition is made and
/// published, without tripling the work on a shared machine.
const AAC_LADDER: &str = "64";
/// The source's length: no longer what keeps the work running until the fault (the freeze
/// does), so only long enough for a few segments in every rendition.
const WAV_SECONDS: u32 = 30;
/// What the harness waits for to freeze a process mid-work.
const MID_WORK: &str = "source read; processing";

/// `legato serve` or `legato function crud` on `store`, frozen by `mid_work` when it starts
/// processing.
fn start(kind: Mode, store: &str, mid_work: &Arc<Tripwire>) -> Server {
    let launch = Server::launch(BIN, kind)
        .env("LEGATO_STORE", store)
        .env("LEGATO_LADDER", LADDER)
        .env("LEGATO_AAC_LADDER", AAC_LADDER)
        .env("LEGATO_JOB_LEASE_SECONDS", LEASE_SECONDS)
        .tripwire(mid_work);
    match kind {
        Mode::Crud => launch.env("LEGATO_ALLOW_ANONYMOUS_WRITES", "true"),
        _ => launch,
    }
    .start()
}

/// The claim numbers `proc` logged for the track.
fn claims(proc: &Server, id: &TrackId) -> Vec<u64> {
    proc.log_lines(&["job claimed", &id.to_string()])
        .iter()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("claim="))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// A mono WAV of tone (made once, cached by legato-test-support).
fn wav(seconds: u32) -> Vec<u8> {
    let path = tone_file(
        f64::from(seconds),
        440,
        44_100,
        1,
        "wav",
        &["-c:a", "pcm_s16le"],
    );
    std::fs::read(path).unwrap()
}

fn upload_async(proc: &Server, wav: &[u8]) -> TrackId {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(proc.crud_url(""))
        .header("prefer", "respond-async")
        .header("content-type", "audio/wav")
        .body(wav.to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let track: serde_json::Value = response.json().unwrap();
    track["id"].as_str().unwrap().parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(store: &str) -> DynStore {
    if store.starts_with("mongodb://") {
        legato_store::Store::local(Arc::new(
            legato_store_mongo::MongoStore::connect(
                store,
                legato_store_mongo::MongoOptions {
                    operation_timeout: Duration::from_secs(60),
                    ..legato_store_mongo::MongoOptions::default()
                },
            )
            .await
            .unwrap(),
        ))
    } else {
        let path = store.trim_start_matches("sqlite:");
        legato_store::Store::local(Arc::new(
            legato_store_sqlite::SqliteStore::open_file(Path::new(path)).unwrap(),
        ))
    }
}

/// Waits for the track to be ready, then checks it: playable to the source's duration by
/// ffmpeg, every chunk used, no job left.
fn check_finished(store_uri: &str, id: &TrackId, seconds: u32, since: Instant, what: &str) {
    let rt = runtime();
    let store = rt.block_on(open(store_uri));
    wait::until(Duration::from_secs(120), &format!("{what}: ready"), || {
        let track = rt.block_on(store.get_track(id)).unwrap();
        match track.status {
            TrackStatus::Ready => Some(track),
            TrackStatus::Failed => panic!("{what}: failed: {:?}", track.error),
            TrackStatus::Processing => None,
        }
    });
    eprintln!(
        "{what}: from the fault to the first publish: {:?}",
        since.elapsed()
    );
    // Its follow-up then makes the other renditions; the job is removed just after.
    wait::until(
        Duration::from_secs(120),
        &format!("{what}: the follow-up to be done"),
        || {
            rt.block_on(store.get_job(id))
                .unwrap()
                .is_none()
                .then_some(())
        },
    );
    eprintln!(
        "{what}: from the fault to every rendition: {:?}",
        since.elapsed()
    );
    let track = rt.block_on(store.get_track(id)).unwrap();

    rt.block_on(async {
        // Every chunk the published track refers to, written out for ffmpeg.
        let dir = tempfile::tempdir().unwrap();
        let mut used = BTreeSet::new();
        let mut playlists = vec![track.playlist.clone()];
        while let Some(name) = playlists.pop() {
            let bytes = store.get_chunk(id, &name).await.unwrap();
            std::fs::write(dir.path().join(&name), &bytes).unwrap();
            for line in String::from_utf8_lossy(&bytes).lines() {
                // An fMP4 rendition's init segment.
                if let Some(init) = line
                    .strip_prefix("#EXT-X-MAP:URI=\"")
                    .and_then(|rest| rest.strip_suffix('"'))
                {
                    let segment = store.get_chunk(id, init).await.unwrap();
                    std::fs::write(dir.path().join(init), &segment).unwrap();
                    used.insert(init.to_owned());
                }
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if line.ends_with(".m3u8") {
                    playlists.push(line.to_owned());
                } else {
                    let segment = store.get_chunk(id, line).await.unwrap();
                    std::fs::write(dir.path().join(line), &segment).unwrap();
                    used.insert(line.to_owned());
                }
            }
            used.insert(name);
        }
        // The MP3 renditions' own master playlist (mp3.m3u8, beside index.m3u8), when the
        // track has fMP4 renditions too: it lists the same media playlists.
        let mp3_master = track.playlist.replace("index.m3u8", "mp3.m3u8");
        if store.get_chunk(id, &mp3_master).await.is_ok() {
            used.insert(mp3_master);
        }
        let source = track.source.as_ref().unwrap();
        for i in 0..source.pieces {
            used.insert(format!("source/{i:04}"));
        }
        // The first publish's generation stays for players that loaded it, until its
        // retirement (the track's length and the grace) is due.
        let current = generation_of(&track.playlist);
        let stored: BTreeSet<String> = store.chunk_names(id).await.unwrap().into_iter().collect();
        let retiring: Vec<&String> = stored
            .iter()
            .filter(|name| !name.starts_with("source/") && generation_of(name) < current)
            .collect();
        if !retiring.is_empty() {
            let due = store.due_retirements(i64::MAX, 1000).await.unwrap();
            assert!(
                due.iter()
                    .any(|r| r.track_id == *id && r.generation == current),
                "{what}: {retiring:?} are kept with no retirement due"
            );
        }
        let stored: BTreeSet<String> = stored
            .into_iter()
            .filter(|name| name.starts_with("source/") || generation_of(name) >= current)
            .collect();
        assert_eq!(stored, used, "{what}: no orphaned chunks");

        let playlist = dir.path().join(&track.playlist);
        let decoded = ffmpeg::played_seconds(&playlist.to_string_lossy());
        assert!(
            (decoded - f64::from(seconds)).abs() < 0.2,
            "{what}: decodes to {decoded} s, not {seconds} s"
        );
    });
}

/// One claim per attempt: each claim number logged once, by one process, with no gap, the
/// last one the winner's.
/// The generation a chunk name belongs to: `g3-…` is 3, a plain name 1.
fn generation_of(name: &str) -> u64 {
    name.strip_prefix('g')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(digits, _)| digits.parse().ok())
        .unwrap_or(1)
}

fn check_claims(procs: &[&Server], id: &TrackId, expected: u64) {
    let mut all: Vec<u64> = procs.iter().flat_map(|p| claims(p, id)).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=expected).collect::<Vec<_>>(),
        "the job log: {all:?}"
    );
}

enum Fault {
    Kill,
    Term,
}

/// One fault story at a time. Each runs two processes with 3-second leases, and two stories
/// side by side on a two-core machine (beside the other tests of this binary) could starve
/// a worker's lease renewals, which would test the machine, not the jobs. The stories are
/// short, so the lock costs little; other tests run meanwhile on the other test thread.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `first` takes the upload and is stopped mid-transcode by `fault`; `second` (started
/// before the fault when `together`, as OpenFaaS runs replicas) finishes it.
fn fault_story(store: &str, first: Mode, fault: Fault, second: Mode, together: bool) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let wav = wav(WAV_SECONDS);
    // Whichever process starts the work is frozen the instant it logs so; the tripwire fires
    // once, so the process that takes over later works undisturbed.
    let mid_work = Tripwire::new(MID_WORK, "STOP");
    let a = start(first, store, &mid_work);
    let b_early = together.then(|| start(second, store, &mid_work));
    let id = upload_async(&a, &wav);
    // With both running, either may claim it; the one that did is the one to stop.
    let (pid, line) = mid_work.wait(Duration::from_secs(60));
    assert!(line.contains(&id.to_string()), "another job: {line}");
    let (mut victim, survivor) = match b_early {
        Some(b) if b.pid() == pid => (b, Some(a)),
        b => (a, b),
    };
    assert_eq!(victim.pid(), pid);
    wait::until(Duration::from_secs(10), "the worker to be frozen", || {
        victim.is_stopped().then_some(())
    });
    assert!(
        !victim.logged(&["job done", &id.to_string()]),
        "the job finished before the fault"
    );
    let what = format!(
        "{:?} {} → {:?}",
        victim.mode,
        match fault {
            Fault::Kill => "kill -9",
            Fault::Term => "SIGTERM",
        },
        second
    );
    let at = Instant::now();
    match fault {
        Fault::Kill => {
            victim.signal("KILL");
            victim.wait_exit(Duration::from_secs(5));
        }
        Fault::Term => {
            // Delivered when it runs again, with the job still in hand: it must release
            // it (`--job-shutdown-grace-seconds` is 0) rather than finish it.
            victim.signal("TERM");
            victim.signal("CONT");
            let status = victim.wait_exit(Duration::from_secs(10));
            assert!(status.success(), "{what}: exit {status:?}");
            eprintln!("{what}: exited {:?} after SIGTERM", at.elapsed());
            assert!(
                victim.logged(&["releasing the current job", &id.to_string()]),
                "{what}: {}",
                victim.log()
            );
        }
    }
    let survivor = survivor.unwrap_or_else(|| start(second, store, &mid_work));
    check_finished(store, &id, WAV_SECONDS, at, &what);
    // A kill costs an attempt; a release at SIGTERM does not, but every claim is logged:
    // the killed one, the takeover that published the first rung, the follow-up.
    check_claims(&[&victim, &survivor], &id, 3);
    assert!(survivor.logged(&["job done", &id.to_string()]));
}

fn sqlite_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:{}", dir.path().join("legato.sqlite3").display());
    (dir, uri)
}

#[test]
fn sqlite_serve_killed_mid_transcode_a_crud_function_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Mode::Serve, Fault::Kill, Mode::Crud, false);
}

#[test]
fn sqlite_crud_stopped_mid_transcode_releases_and_serve_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Mode::Crud, Fault::Term, Mode::Serve, false);
}

#[test]
fn sqlite_two_crud_functions_one_killed_the_other_takes_over() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Mode::Crud, Fault::Kill, Mode::Crud, true);
}

#[test]
fn sqlite_serve_stopped_mid_transcode_the_next_start_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Mode::Serve, Fault::Term, Mode::Serve, false);
}

fn mongo_store() -> String {
    legato_test_support::ferretdb::fresh_database_uri("legato_jobs")
}

#[test]
fn mongo_two_crud_functions_one_killed_the_other_takes_over() {
    fault_story(&mongo_store(), Mode::Crud, Fault::Kill, Mode::Crud, true);
}

#[test]
fn mongo_crud_stopped_mid_transcode_another_replica_finishes() {
    fault_story(&mongo_store(), Mode::Crud, Fault::Term, Mode::Crud, true);
}

#[test]
fn mongo_serve_killed_mid_transcode_a_crud_function_finishes() {
    fault_story(&mongo_store(), Mode::Serve, Fault::Kill, Mode::Crud, false);
}

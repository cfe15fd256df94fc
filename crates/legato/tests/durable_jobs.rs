//! Accepted means kept, with real processes: `legato serve` and `legato function crud` are
//! killed (-9) or stopped (SIGTERM) in the middle of transcoding a long WAV, and another
//! process on the same store finishes the track. The result decodes with ffmpeg to the
//! source's duration, no chunk is left that the track does not use, and the job log (each
//! process's "job claimed" lines) shows one claim per attempt. SQLite and FerretDB (the
//! MongoDB tests read `LEGATO_TEST_MONGODB_URI`, and fail without it).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use legato_store::{DynStore, TrackId, TrackStatus};
use legato_test_support::audio::{ffmpeg, tone_file};

const BIN: &str = env!("CARGO_BIN_EXE_legato");
/// Short, so that a takeover is quick to test; renewed every second while working.
const LEASE_SECONDS: &str = "3";
const LADDER: &str = "64,128";
/// One AAC rung (and the lossless one, by default): every kind of rendition is made and
/// published, without tripling the work on a shared machine.
const AAC_LADDER: &str = "64";
/// Long enough that a process is surely mid-work a second after it read the source.
const WAV_SECONDS: u32 = 600;
/// Shorter on FerretDB, where reading and writing 50 MB takes tens of seconds in a debug
/// build on a shared machine; long enough that the work (about 4 s) is still running when
/// the fault comes (at 240 s, it sometimes ended first on a loaded machine).
const MONGO_WAV_SECONDS: u32 = 480;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Serve,
    Crud,
}

struct Proc {
    child: Child,
    /// The process's data folder (its Subsonic secret key), apart from the store.
    _data: tempfile::TempDir,
    port: u16,
    kind: Kind,
    log: Arc<Mutex<Vec<String>>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Proc {
    fn start(kind: Kind, store: &str) -> Self {
        let port = free_port();
        let mut command = Command::new(BIN);
        command.env_clear();
        match kind {
            Kind::Serve => {
                command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
            }
            Kind::Crud => {
                command
                    .args(["function", "crud"])
                    .env("LEGATO_LISTEN", format!("127.0.0.1:{port}"))
                    .env("LEGATO_SECRETS_DIR", "/nonexistent")
                    .env("LEGATO_ALLOW_ANONYMOUS_WRITES", "true");
            }
        }
        let data = tempfile::tempdir().unwrap();
        command
            .env("LEGATO_DATA", data.path())
            .env("LEGATO_STORE", store)
            .env("LEGATO_LADDER", LADDER)
            .env("LEGATO_AAC_LADDER", AAC_LADDER)
            .env("LEGATO_JOB_LEASE_SECONDS", LEASE_SECONDS)
            .env("LEGATO_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let proc = Self {
            child,
            _data: data,
            port,
            kind,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return proc;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{kind:?} did not become ready: {:?}",
            proc.log.lock().unwrap()
        );
    }

    fn crud(&self) -> String {
        match self.kind {
            Kind::Serve => format!("http://127.0.0.1:{}/function/crud", self.port),
            Kind::Crud => format!("http://127.0.0.1:{}", self.port),
        }
    }

    fn logged(&self, needle: &str, id: &TrackId) -> bool {
        let id = id.to_string();
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle) && l.contains(&id))
    }

    /// The claim numbers this process logged for the track.
    fn claims(&self, id: &TrackId) -> Vec<u64> {
        let id = id.to_string();
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("job claimed") && l.contains(&id))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("claim="))
                    .and_then(|n| n.parse().ok())
            })
            .collect()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {within:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A long mono WAV of tone (made once, cached by legato-test-support).
fn long_wav(seconds: u32) -> Vec<u8> {
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

fn upload_async(proc: &Proc, wav: &[u8]) -> TrackId {
    let started = Instant::now();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(proc.crud())
        .header("prefer", "respond-async")
        .header("content-type", "audio/wav")
        .body(wav.to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    eprintln!(
        "upload of {} bytes to 202: {:?}",
        wav.len(),
        started.elapsed()
    );
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
        Arc::new(
            legato_store_mongo::MongoStore::connect(
                store,
                legato_store_mongo::MongoOptions {
                    operation_timeout: Duration::from_secs(60),
                    ..legato_store_mongo::MongoOptions::default()
                },
            )
            .await
            .unwrap(),
        )
    } else {
        let path = store.trim_start_matches("sqlite:");
        Arc::new(legato_store_sqlite::SqliteStore::open_file(Path::new(path)).unwrap())
    }
}

/// Polls until the track is processing in `proc` (claimed, and not yet done).
fn wait_mid_work(proc: &Proc, id: &TrackId) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !proc.logged("source read; processing", id) {
        assert!(
            Instant::now() < deadline,
            "never claimed: {:?}",
            proc.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !proc.logged("job done", id),
        "the job finished before the fault"
    );
}

/// Waits for the track to be ready, then checks it: playable to the source's duration by
/// ffmpeg, every chunk used, no job left.
fn check_finished(store_uri: &str, id: &TrackId, seconds: u32, since: Instant, what: &str) {
    let rt = runtime();
    rt.block_on(async {
        let store = open(store_uri).await;
        let deadline = Instant::now() + Duration::from_secs(600);
        let track = loop {
            let track = store.get_track(id).await.unwrap();
            match track.status {
                TrackStatus::Ready => break track,
                TrackStatus::Failed => panic!("{what}: failed: {:?}", track.error),
                TrackStatus::Processing => {}
            }
            assert!(Instant::now() < deadline, "{what}: not finished in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!(
            "{what}: from the fault to the job's completion: {:?}",
            since.elapsed()
        );
        // The job is removed just after the publication.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.get_job(id).await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "{what}: the job is not removed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

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
        let stored: BTreeSet<String> = store.chunk_names(id).await.unwrap().into_iter().collect();
        assert_eq!(stored, used, "{what}: no orphaned chunks");

        let output = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(dir.path().join(&track.playlist))
            .args(["-f", "s16le", "-ac", "1", "-ar", "8000", "-"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decoded = output.stdout.len() as f64 / 2.0 / 8000.0;
        assert!(
            (decoded - f64::from(seconds)).abs() < 0.2,
            "{what}: decodes to {decoded} s, not {seconds} s"
        );
        track
    });
}

/// One claim per attempt: each claim number logged once, by one process, with no gap, the
/// last one the winner's.
fn check_claims(procs: &[&Proc], id: &TrackId, expected: u64) {
    let mut all: Vec<u64> = procs.iter().flat_map(|p| p.claims(id)).collect();
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

/// `first` takes the upload and is stopped mid-transcode by `fault`; `second` (started
/// before the fault when `together`, as OpenFaaS runs replicas) finishes it.
/// One fault story at a time: each transcodes minutes of audio in two processes, and run
/// side by side on two cores they starve each other's lease renewals, which is a test of
/// the machine, not of the jobs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fault_story(store: &str, first: Kind, fault: Fault, second: Kind, together: bool) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seconds = if store.starts_with("mongodb://") {
        MONGO_WAV_SECONDS
    } else {
        WAV_SECONDS
    };
    let wav = long_wav(seconds);
    let a = Proc::start(first, store);
    let b_early = together.then(|| Proc::start(second, store));
    let id = upload_async(&a, &wav);
    // With both running, either may claim it; the one that did is the one to stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    let a_has_it = loop {
        if a.logged("job claimed", &id) {
            break true;
        }
        if b_early
            .as_ref()
            .is_some_and(|b| b.logged("job claimed", &id))
        {
            break false;
        }
        assert!(Instant::now() < deadline, "nobody claimed the job");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut victim, survivor) = match (a_has_it, b_early) {
        (true, b) => (a, b),
        (false, Some(b)) => (b, Some(a)),
        (false, None) => unreachable!(),
    };
    wait_mid_work(&victim, &id);
    let what = format!(
        "{:?} {} → {:?}",
        victim.kind,
        match fault {
            Fault::Kill => "kill -9",
            Fault::Term => "SIGTERM",
        },
        second
    );
    let at = Instant::now();
    match fault {
        Fault::Kill => {
            victim.signal("-KILL");
            victim.wait_exit(Duration::from_secs(5));
        }
        Fault::Term => {
            victim.signal("-TERM");
            let status = victim.wait_exit(Duration::from_secs(10));
            assert!(status.success(), "{what}: exit {status:?}");
            eprintln!("{what}: exited {:?} after SIGTERM", at.elapsed());
            assert!(
                victim.logged("releasing the current job", &id),
                "{what}: {:?}",
                victim.log.lock().unwrap()
            );
        }
    }
    let survivor = survivor.unwrap_or_else(|| Proc::start(second, store));
    check_finished(store, &id, seconds, at, &what);
    // A kill costs an attempt; a release at SIGTERM does not, but every claim is logged.
    check_claims(&[&victim, &survivor], &id, 2);
    assert!(survivor.logged("job done", &id));
}

fn sqlite_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:{}", dir.path().join("legato.sqlite3").display());
    (dir, uri)
}

#[test]
fn sqlite_serve_killed_mid_transcode_a_crud_function_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Kind::Serve, Fault::Kill, Kind::Crud, false);
}

#[test]
fn sqlite_crud_stopped_mid_transcode_releases_and_serve_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Kind::Crud, Fault::Term, Kind::Serve, false);
}

#[test]
fn sqlite_two_crud_functions_one_killed_the_other_takes_over() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Kind::Crud, Fault::Kill, Kind::Crud, true);
}

#[test]
fn sqlite_serve_stopped_mid_transcode_the_next_start_finishes() {
    let (_dir, store) = sqlite_store();
    fault_story(&store, Kind::Serve, Fault::Term, Kind::Serve, false);
}

fn mongo_store() -> String {
    legato_test_support::process::mongo_test_uri("legato_jobs")
}

#[test]
fn mongo_two_crud_functions_one_killed_the_other_takes_over() {
    fault_story(&mongo_store(), Kind::Crud, Fault::Kill, Kind::Crud, true);
}

#[test]
fn mongo_crud_stopped_mid_transcode_another_replica_finishes() {
    fault_story(&mongo_store(), Kind::Crud, Fault::Term, Kind::Crud, true);
}

#[test]
fn mongo_serve_killed_mid_transcode_a_crud_function_finishes() {
    fault_story(&mongo_store(), Kind::Serve, Fault::Kill, Kind::Crud, false);
}

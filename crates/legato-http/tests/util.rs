//! Shared helpers for the HTTP integration tests: a real server on port 0 over a real SQLite
//! file, test audio (made by ffmpeg, through legato-test-support) and a polling wait.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legato_http::{AppState, ConnectionLimits, HttpConfig};
use legato_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// Settings for tests of the core slice: MP3 passthrough only (no ladder, no fMP4
/// renditions), so the layout is one media playlist with `seg000.ts`…; the ladders have
/// tests of their own.
pub fn config() -> HttpConfig {
    HttpConfig {
        ladder_kbps: Vec::new(),
        aac_ladder_kbps: Vec::new(),
        lossless: false,
        ..HttpConfig::default()
    }
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    /// The server's shared state, for tests that must see what it holds (its admission
    /// semaphores) rather than guess from timing.
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A multipart upload to `/function/crud`.
    pub async fn post_form(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client
            .post(self.crud())
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: HttpConfig) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), config).await
    }

    /// Serves the SQLite store in `dir`, which may hold tracks already.
    pub async fn start_in(dir: TempDir, config: HttpConfig) -> Self {
        Self::start_limited(dir, config, ConnectionLimits::default()).await
    }

    /// The same, with these connection limits.
    pub async fn start_limited(dir: TempDir, config: HttpConfig, limits: ConnectionLimits) -> Self {
        let store =
            legato_store::Store::local(Arc::new(SqliteStore::open_dir(dir.path()).unwrap()));
        let state = AppState::new(store, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let workers = state.ingest.spawn_workers(stopping);
        let task = tokio::spawn(legato_http::serve_with_limits(
            listener,
            legato_http::app(state.clone()),
            limits,
            async move {
                let _ = rx.await;
                let _ = stop.send(true);
                let _ = workers.await;
            },
        ));
        Self {
            base,
            client: reqwest::Client::new(),
            dir,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn crud(&self) -> String {
        self.url("/function/crud")
    }

    /// Uploads raw MP3 bytes and returns the track JSON.
    pub async fn upload(&self, audio: &[u8], name: &str, author: &str) -> serde_json::Value {
        let response = self
            .client
            .post(self.crud())
            .query(&[("name", name), ("author", author)])
            .header("content-type", "audio/mpeg")
            .body(audio.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        self.settled(response.json().await.unwrap()).await
    }

    /// The track once the renditions its upload left coming are made (a 201 track is
    /// playable at once; a follow-up job adds the rest).
    pub async fn settled(&self, track: serde_json::Value) -> serde_json::Value {
        if track.get("job").is_none() {
            return track;
        }
        let url = self.url(&format!("/function/crud/{}", track["id"].as_str().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now: serde_json::Value = self
                .client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if now.get("job").is_none() {
                return now;
            }
            assert_ne!(now["job"]["state"], "failed", "{now}");
            assert!(Instant::now() < deadline, "still processing: {now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server and hands back its folder, for a server started on it again.
    pub async fn stop_keeping_dir(mut self) -> TempDir {
        self.halt().await;
        let Self { dir, .. } = self;
        dir
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        // The client's idle connections go first: the server's shutdown waits for a
        // connection that has not sent its first byte (up to its 10-s header timeout), and
        // reqwest keeps one such in its pool when it opened a connection for a request that
        // a pooled connection then took.
        self.client = reqwest::Client::new();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub use legato_test_support::audio::{another_copy, tagged_mp3};

/// An MP3 made by ffmpeg (LAME) from a sine (made once, cached by legato-test-support).
pub fn mp3(seconds: f64, sample_rate: u32, channels: u8, encoder_args: &[&str]) -> Vec<u8> {
    let args = [&["-c:a", "libmp3lame"], encoder_args].concat();
    let path =
        legato_test_support::audio::tone_file(seconds, 440, sample_rate, channels, "mp3", &args);
    std::fs::read(path).unwrap()
}

/// A 128 kbps stereo 44.1 kHz MP3 of the given length.
pub fn song(seconds: f64) -> Vec<u8> {
    mp3(seconds, 44_100, 2, &["-b:a", "128k"])
}

/// Polls `check` every 25 ms until it answers `Ok`, and returns that value; once `within`
/// has passed, fails the test with `what` it waited for and the last `Err` (what it saw
/// instead).
pub async fn until<T, E: std::fmt::Display>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// The names of a track JSON's variants, sorted.
pub fn variant_names(track: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = track["variants"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort_unstable();
    names
}

//! Shared helpers for the HTTP integration tests: a real server on port 0 over a real SQLite
//! file, test audio generated with ffmpeg, and ffmpeg as an independent HLS player.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use legato_http::{AppState, HttpConfig};
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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: HttpConfig) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), config).await
    }

    /// Serves the SQLite store in `dir`, which may hold tracks already.
    pub async fn start_in(dir: TempDir, config: HttpConfig) -> Self {
        let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
        let state = AppState::new(store, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let workers = legato_http::jobs::spawn_workers(&state, stopping);
        let task = tokio::spawn(legato_http::serve(
            listener,
            legato_http::app(state),
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
        response.json().await.unwrap()
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
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub use legato_test_support::audio::{another_copy, ffmpeg};

/// An MP3 made by ffmpeg (LAME) from a sine (made once, cached by legato-test-support).
pub fn mp3(seconds: f64, sample_rate: u32, channels: u8, encoder_args: &[&str]) -> Vec<u8> {
    let args = [&["-c:a", "libmp3lame"], encoder_args].concat();
    let path =
        legato_test_support::audio::tone_file(seconds, 440, sample_rate, channels, "mp3", &args);
    std::fs::read(path).unwrap()
}

/// An MP3 of a tone at `kbps` with an ID3v2.3 tag: a 32x32 PNG front cover and `tags`
/// (`title`, `artist`, `album`, `date`...), written into `dir`.
pub fn tagged_mp3(dir: &Path, seconds: u32, kbps: &str, tags: &[(&str, &str)]) -> Vec<u8> {
    let cover = dir.join("cover.png");
    let made = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "color=c=red:s=32x32", "-frames:v", "1"])
        .arg(&cover)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg could not make the cover");
    let song = dir.join("tagged.mp3");
    let mut command = Command::new(ffmpeg());
    command
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .arg("-i")
        .arg(&cover)
        .args([
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "libmp3lame",
            "-b:a",
            kbps,
        ])
        .args(["-c:v", "png", "-id3v2_version", "3"]);
    for (key, value) in tags {
        command.arg("-metadata").arg(format!("{key}={value}"));
    }
    let made = command
        .args(["-metadata:s:v", "comment=Cover (front)"])
        .arg(&song)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg could not make the tagged MP3");
    std::fs::read(song).unwrap()
}

/// A 128 kbps stereo 44.1 kHz MP3 of the given length.
pub fn song(seconds: f64) -> Vec<u8> {
    mp3(seconds, 44_100, 2, &["-b:a", "128k"])
}

/// Runs ffmpeg with `args`, returning its standard output.
pub fn ffmpeg_output(args: &[&str]) -> Vec<u8> {
    let output = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The MPEG audio frames of an MP3 file or stream, as ffmpeg copies them out: no tags, no
/// Xing/Info frame.
pub fn frames_via_ffmpeg(input: &str) -> Vec<u8> {
    ffmpeg_output(&[
        "-i",
        input,
        "-map",
        "0:a",
        "-c",
        "copy",
        "-f",
        "mp3",
        "-id3v2_version",
        "0",
        "-write_xing",
        "0",
        "-",
    ])
}

/// Samples per channel that ffmpeg decodes from `input`, at its native rate.
pub fn decoded_samples(input: &str, channels: u8) -> usize {
    let pcm = ffmpeg_output(&["-i", input, "-f", "s16le", "-c:a", "pcm_s16le", "-"]);
    pcm.len() / 2 / usize::from(channels)
}

pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

//! `legato serve --blobs s3://…` against a real SeaweedFS (started by `scripts/test.sh`,
//! which sets `LEGATO_TEST_BLOBS` and `LEGATO_TEST_BLOBS_KEYS`): ffmpeg plays tracks in the
//! three streaming modes, and a process killed mid-upload leaves nothing visible and no
//! object behind once the grace period is over.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use legato_http::signing::UrlSigner;
use legato_store_s3::{BlobsUri, Bucket};
use legato_test_support::ffmpeg::played_seconds;
use legato_test_support::process::{self, Run, Server};
use legato_test_support::seaweedfs::{self, SeaweedFs};
use legato_test_support::{audio, ferretdb, wait};
use serde_json::Value;

use crate::BIN;

/// The test object store under a prefix of its own: the `--blobs` value, its flags and a
/// client for looking inside.
struct Blobs {
    uri: String,
    keys: PathBuf,
    bucket: Bucket,
    endpoint: String,
    bucket_name: String,
}

impl Blobs {
    fn new(purpose: &str) -> Self {
        let keys = seaweedfs::shared_keys();
        let uri = seaweedfs::fresh_blobs_uri(purpose);
        let parsed = BlobsUri::parse(&uri)
            .unwrap()
            .with_credential_files(&keys.join("access_key"), &keys.join("secret_key"))
            .unwrap();
        Self {
            endpoint: parsed.endpoint.clone().unwrap(),
            bucket_name: parsed.bucket.clone(),
            bucket: Bucket::new(parsed).unwrap(),
            uri,
            keys,
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--blobs".into(),
            self.uri.clone(),
            "--blobs-access-key-file".into(),
            self.keys.join("access_key").display().to_string(),
            "--blobs-secret-key-file".into(),
            self.keys.join("secret_key").display().to_string(),
        ]
    }

    fn objects(&self) -> Vec<(String, String)> {
        let bucket = self.bucket.clone();
        runtime()
            .block_on(bucket.list_all())
            .unwrap()
            .into_iter()
            .map(|l| (l.track.to_string(), l.name))
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The body of a GET that must answer.
fn get_text(url: String) -> String {
    client().get(url).send().unwrap().text().unwrap()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn start(blobs: &Blobs, extra: &[&str]) -> Server {
    let mut args: Vec<String> = blobs.args();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend([
        "--aac-ladder".into(),
        "64".into(),
        "--ladder".into(),
        "64".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(BIN, &args)
}

fn upload(server: &Server, seconds: f64) -> Value {
    let response = client()
        .post(server.url("/function/crud"))
        .header("content-type", "audio/mpeg")
        .body(audio::mp3(seconds))
        .send()
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().unwrap()
    );
    let id = response.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Playable at once; the follow-up job adds the other renditions.
    wait::until(Duration::from_secs(120), "every rendition", || {
        let track: Value = client()
            .get(server.url(&format!("/function/crud/{id}")))
            .send()
            .ok()?
            .json()
            .ok()?;
        (track["status"] == "ready" && track.get("job").is_none()).then_some(track)
    })
}

/// The chunk `name` of the track's current generation (`g2-64k.m3u8` once its follow-up
/// published it).
fn named(track: &Value, name: &str) -> String {
    let playlist = track["playlist"].as_str().unwrap();
    let file = playlist
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    format!("{}{name}", file.strip_suffix("index.m3u8").unwrap())
}

#[test]
fn proxy_mode_plays_from_the_bucket_through_the_function() {
    let blobs = Blobs::new("proxy");
    let server = start(&blobs, &[]);
    let track = upload(&server, 20.0);
    let id = track["id"].as_str().unwrap();
    // Segments, init segments and the source's pieces are objects; playlists are not.
    let names: Vec<String> = blobs
        .objects()
        .into_iter()
        .filter(|(t, _)| t == id)
        .map(|(_, n)| n)
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".ts")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("-init.mp4")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".m3u8")), "{names:?}");
    for playlist in [
        "index.m3u8",
        "outputlist.m3u8",
        &named(&track, "aac64k.m3u8"),
    ] {
        let seconds = played_seconds(&server.url(&format!("/function/streaming/{id}/{playlist}")));
        assert!((seconds - 20.0).abs() < 0.2, "{playlist}: {seconds} s");
    }
    // The original file comes back whole from its pieces (an MP3's frames live in its
    // segments, the rest in a remainder: both objects now).
    let original = client()
        .get(server.url(&format!("/function/crud/{id}/file")))
        .send()
        .unwrap();
    assert_eq!(original.status(), 200);
    assert!(
        original.bytes().unwrap()[..] == audio::mp3(20.0)[..],
        "the original differs"
    );
    // Deleting the track removes its objects.
    let deleted = client()
        .delete(server.url(&format!("/function/crud/{id}")))
        .send()
        .unwrap();
    assert!(deleted.status().is_success());
    assert!(!blobs.objects().iter().any(|(t, _)| t == id));
}

#[test]
fn redirect_mode_sends_players_to_presigned_urls() {
    let blobs = Blobs::new("redirect");
    let server = start(
        &blobs,
        &[
            "--segments",
            "redirect",
            "--segment-redirect-seconds",
            "120",
        ],
    );
    let track = upload(&server, 12.0);
    let id = track["id"].as_str().unwrap();
    let media = get_text(server.url(&format!(
        "/function/streaming/{id}/{}",
        named(&track, "64k.m3u8")
    )));
    let segment = media.lines().find(|l| l.ends_with(".ts")).unwrap();
    let answer = client()
        .get(server.url(&format!("/function/streaming/{id}/{segment}")))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&blobs.endpoint) && location.contains("X-Amz-Signature="),
        "{location}"
    );
    let object = client().get(&location).send().unwrap();
    assert_eq!(object.status(), 200);
    assert_eq!(object.headers()["content-type"], "video/mp2t");
    assert_eq!(object.bytes().unwrap()[0], 0x47);
    let seconds = played_seconds(&server.url(&format!("/function/streaming/{id}/index.m3u8")));
    assert!((seconds - 12.0).abs() < 0.2, "{seconds} s");
}

/// A stand-in for a CDN with access to the private bucket (as CloudFront's origin access
/// does): GET `/<key>` is fetched from the object store with a presigned URL and relayed
/// with the object's headers. Counts what it served.
///
/// With `signer`, it also checks the playback token at the edge as the README says a CDN
/// should: `sig` must be the HMAC of `<track id>:<exp>` (the track id is the key's folder),
/// else 403.
fn stand_in_cdn(blobs: &Blobs, signer: Option<UrlSigner>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let endpoint = blobs.endpoint.clone();
    let bucket_name = blobs.bucket_name.clone();
    let keys = blobs.keys.clone();
    std::thread::spawn(move || {
        let uri = BlobsUri::parse(&format!("s3://{bucket_name}?endpoint={endpoint}"))
            .unwrap()
            .with_credential_files(&keys.join("access_key"), &keys.join("secret_key"))
            .unwrap();
        let origin = Bucket::new(uri).unwrap();
        let rt = runtime();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let key = path
                .trim_start_matches('/')
                .split('?')
                .next()
                .unwrap_or_default();
            let mut out = Vec::new();
            if let Some(signer) = &signer {
                let query: std::collections::HashMap<String, String> = path
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let track = key.rsplit('/').nth(1).and_then(|id| id.parse().ok());
                let valid = track.is_some_and(|id| {
                    signer
                        .verify(
                            &id,
                            query.get("exp").map(String::as_str),
                            query.get("sig").map(String::as_str),
                        )
                        .is_ok()
                });
                if !valid {
                    let _ = stream.write_all(
                        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                }
            }
            let url = rt
                .block_on(origin.presign_key(key, Duration::from_secs(60)))
                .unwrap();
            let answer = client().get(url).send().ok();
            match answer {
                Some(response) if response.status() == 200 => {
                    let content_type = response.headers()["content-type"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let cache = response.headers()["cache-control"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let body = response.bytes().unwrap();
                    write!(out, "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncache-control: {cache}\r\naccess-control-allow-origin: *\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).unwrap();
                    out.extend_from_slice(&body);
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                _ => out.extend_from_slice(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                ),
            }
            let _ = stream.write_all(&out);
        }
    });
    (base, served)
}

#[test]
fn cdn_mode_names_segments_under_the_cdn_and_players_fetch_them_there() {
    let blobs = Blobs::new("cdn");
    let (cdn, served) = stand_in_cdn(&blobs, None);
    let server = start(&blobs, &["--segments", "cdn", "--segment-base-url", &cdn]);
    let track = upload(&server, 12.0);
    let id = track["id"].as_str().unwrap();
    let media = get_text(server.url(&format!(
        "/function/streaming/{id}/{}",
        named(&track, "aac64k.m3u8")
    )));
    assert!(
        media.contains(&format!("#EXT-X-MAP:URI=\"{cdn}/")),
        "{media}"
    );
    assert!(
        media
            .lines()
            .filter(|l| l.ends_with(".m4s"))
            .all(|l| l.starts_with(&cdn)),
        "{media}"
    );
    // The master playlist's variants stay with the function (they are rewritten per mode).
    let master = get_text(server.url(&format!("/function/streaming/{id}/index.m3u8")));
    assert!(
        master.lines().any(|l| l == named(&track, "aac64k.m3u8")),
        "{master}"
    );
    for playlist in ["index.m3u8", "outputlist.m3u8"] {
        let seconds = played_seconds(&server.url(&format!("/function/streaming/{id}/{playlist}")));
        assert!((seconds - 12.0).abs() < 0.2, "{playlist}: {seconds} s");
    }
    assert!(
        served.load(Ordering::SeqCst) >= 3,
        "the CDN served {} objects",
        served.load(Ordering::SeqCst)
    );
}

#[test]
fn cdn_mode_keeps_signed_playback_with_the_token_checked_at_the_edge() {
    let blobs = Blobs::new("cdn-signed");
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("signing.key");
    std::fs::write(&key_file, "a-signing-key-shared-with-the-cdn").unwrap();
    let signer = UrlSigner::new(
        b"a-signing-key-shared-with-the-cdn".to_vec(),
        Duration::from_secs(3600),
    );
    let (cdn, served) = stand_in_cdn(&blobs, Some(signer));
    let key_path = key_file.display().to_string();
    let server = start(
        &blobs,
        &[
            "--segments",
            "cdn",
            "--segment-base-url",
            &cdn,
            "--stream-signing-key-file",
            &key_path,
        ],
    );
    let track = upload(&server, 8.0);
    let id = track["id"].as_str().unwrap().to_owned();
    // The signed playlist URL plays: every segment URI goes to the CDN with the token.
    let playlist = track["playlist"].as_str().unwrap();
    assert!(playlist.contains("sig="), "{playlist}");
    let seconds = played_seconds(&server.url(playlist));
    assert!((seconds - 8.0).abs() < 0.2, "{seconds} s");
    assert!(served.load(Ordering::SeqCst) >= 2);
    // Without the token, or with another track's, the edge refuses.
    let query = playlist.split_once('?').unwrap().1;
    let media = get_text(server.url(&format!(
        "/function/streaming/{id}/{}?{query}",
        named(&track, "64k.m3u8")
    )));
    let segment = media.lines().find(|l| l.starts_with(&cdn)).unwrap();
    assert_eq!(client().get(segment).send().unwrap().status(), 200);
    let bare = segment.split('?').next().unwrap();
    assert_eq!(client().get(bare).send().unwrap().status(), 403);
}

/// The killed process's audio: long enough for more rendition objects (11) than the object
/// store writes at once (4), so the relay holds some of them.
const KILLED_SECONDS: f64 = 30.0;

/// A relay in front of the object store: it passes requests on until it has passed a PUT of
/// a rendition object (a key outside `source/`), then holds every request after it, never
/// answered. Plain HTTP/1.1 with `Content-Length` bodies, as the S3 client sends them;
/// answers are relayed as they come.
struct HoldingRelay {
    endpoint: String,
    /// Requests held so far.
    held: Arc<AtomicUsize>,
}

impl HoldingRelay {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let passed = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let counter = held.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let server = TcpStream::connect(&upstream).unwrap();
                let (mut answers, mut back) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut answers, &mut back));
                let (passed, held) = (passed.clone(), counter.clone());
                std::thread::spawn(move || relay_requests(client, server, &passed, &held));
            }
        });
        Self { endpoint, held }
    }
}

/// Passes the requests of one connection on, until a rendition PUT has been passed on
/// (`passed`, on any connection); holds the ones after it.
fn relay_requests(
    client: TcpStream,
    mut server: TcpStream,
    passed: &AtomicBool,
    held: &AtomicUsize,
) {
    let mut requests = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        loop {
            let before = head.len();
            if requests.read_until(b'\n', &mut head).unwrap_or(0) == 0 {
                return;
            }
            if head[before..] == *b"\r\n" {
                break;
            }
        }
        if passed.load(Ordering::SeqCst) {
            held.fetch_add(1, Ordering::SeqCst);
            // Never passed on: read (and dropped) until the process closes the connection.
            let _ = std::io::copy(&mut requests, &mut std::io::sink());
            return;
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(
            !text.contains("transfer-encoding"),
            "a chunked request: {text}"
        );
        let length: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut words = text.split_whitespace();
        if words.next() == Some("put") && words.next().is_some_and(|p| !p.contains("/source/")) {
            passed.store(true, Ordering::SeqCst);
        }
        if server.write_all(&head).is_err()
            || std::io::copy(&mut (&mut requests).take(length), &mut server).is_err()
        {
            return;
        }
    }
}

#[test]
fn objects_of_a_process_killed_mid_write_are_collected_after_the_grace_period() {
    let blobs = Blobs::new("killed");
    // Through a relay that holds every request after the first rendition object's: the
    // process has written renditions and cannot finish writing them, so cannot publish
    // them, whatever the length of the audio.
    let relay = HoldingRelay::start(&blobs.endpoint);
    let mut args = blobs.args();
    args[1] = blobs.uri.replace(&blobs.endpoint, &relay.endpoint);
    // A short lease: the next process takes the job over soon after the kill.
    args.extend(
        [
            "--job-lease-seconds",
            "3",
            "--aac-ladder",
            "64",
            "--ladder",
            "64",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start(BIN, &args);
    let wav = std::fs::read(audio::wav(KILLED_SECONDS)).unwrap();
    let response = client()
        .post(server.url("/function/crud"))
        .header("content-type", "audio/wav")
        .header("prefer", "respond-async")
        .body(wav)
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Killed once a first rendition object is in the bucket and the process is held
    // writing the next: its renditions are being written, and the metadata that would
    // publish them is not.
    let rendition = |(_, name): &(String, String)| !name.starts_with("source");
    wait::until(Duration::from_secs(120), "a first rendition object", || {
        blobs.objects().iter().any(rendition).then_some(())
    });
    wait::until(
        Duration::from_secs(60),
        "a request held by the relay",
        || (relay.held.load(Ordering::SeqCst) > 0).then_some(()),
    );
    server.kill9();
    let written: Vec<(String, String)> = blobs.objects().into_iter().filter(rendition).collect();
    eprintln!(
        "killed with {} rendition objects written, {} requests held",
        written.len(),
        relay.held.load(Ordering::SeqCst)
    );

    // Another process takes the job over (its renditions have names of their own), and
    // sweeps the first attempt's objects once they are older than the grace period.
    let data = server.data_dir().display().to_string();
    let mut args = blobs.args();
    args.extend(
        [
            "--data",
            &data,
            "--blobs-gc-grace-seconds",
            "5",
            "--blobs-gc-every-seconds",
            "1",
            "--job-lease-seconds",
            "3",
            "--aac-ladder",
            "64",
            "--ladder",
            "64",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let restarted = Server::start(BIN, &args);
    let track: Value = wait::until(Duration::from_secs(180), "the track to be ready", || {
        let track: Value = client()
            .get(restarted.url(&format!("/function/crud/{id}")))
            .send()
            .ok()?
            .json()
            .ok()?;
        (track["status"] != "processing").then_some(track)
    });
    assert_eq!(track["status"], "ready", "{track}");
    wait::until(
        Duration::from_secs(60),
        "the first attempt's objects to be collected",
        || {
            let now = blobs.objects();
            written
                .iter()
                .all(|object| !now.contains(object))
                .then_some(())
        },
    );
    let seconds = played_seconds(&restarted.url(&format!("/function/streaming/{id}/index.m3u8")));
    assert!((seconds - KILLED_SECONDS).abs() < 0.5, "{seconds} s");
}

#[test]
fn migrate_moves_an_existing_library_while_a_server_keeps_serving() {
    let blobs = Blobs::new("migrate");
    // A library made before the object store: every byte in SQLite.
    let library = tempfile::tempdir().unwrap();
    let data = library.path().join("data").display().to_string();
    let before = Server::start_in(
        BIN,
        &["--data", &data, "--aac-ladder", "64", "--ladder", "64"],
        tempfile::tempdir().unwrap(),
        &[],
    );
    let track = upload(&before, 12.0);
    let id = track["id"].as_str().unwrap().to_owned();
    before.stop(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();

    // A server with the object store on that library serves it while it is migrated.
    let mut args = blobs.args();
    args.extend(["--data".to_owned(), data.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serving = Server::start_in(BIN, &args, dir, &[]);
    let migrate = |extra: &[&str]| {
        let mut command = process::command(BIN);
        command
            .arg("migrate")
            .arg("--data")
            .arg(&data)
            .args(blobs.args())
            .args(extra);
        let run = Run::of(&mut command);
        run.assert_code(0);
        run.stdout
    };
    let player = {
        let url = serving.url(&format!("/function/streaming/{id}/index.m3u8"));
        std::thread::spawn(move || played_seconds(&url))
    };
    let first = migrate(&[]);
    assert!(first.contains("migrated: 1 tracks"), "{first}");
    assert!(!first.contains(" 0 chunks moved"), "{first}");
    assert!((player.join().unwrap() - 12.0).abs() < 0.2);
    let objects = blobs.objects();
    assert!(
        objects.iter().any(|(t, n)| t == &id && n.ends_with(".ts")),
        "{objects:?}"
    );
    let again = migrate(&[]);
    assert!(again.contains("0 chunks moved"), "{again}");

    // After it, segments can be handed out by the object store.
    let segment = get_text(serving.url(&format!(
        "/function/streaming/{id}/{}",
        named(&track, "64k.m3u8")
    )))
    .lines()
    .find(|l| l.ends_with(".ts"))
    .unwrap()
    .to_owned();
    drop(serving);
    let mut args = blobs.args();
    args.extend(["--data", &data, "--segments", "redirect"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let redirecting = Server::start_in(BIN, &args, tempfile::tempdir().unwrap(), &[]);
    let answer = client()
        .get(redirecting.url(&format!("/function/streaming/{id}/{segment}")))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 302);
    let seconds = played_seconds(&redirecting.url(&format!("/function/streaming/{id}/index.m3u8")));
    assert!((seconds - 12.0).abs() < 0.2, "{seconds} s");
}

/// (status, error code, seconds) of a request.
fn timed(request: reqwest::blocking::RequestBuilder) -> (u16, String, f64) {
    let started = std::time::Instant::now();
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, started.elapsed().as_secs_f64())
}

#[test]
fn with_the_object_store_down_uploads_and_reads_get_503_and_recover_when_it_returns() {
    let weed = SeaweedFs::start_new("down");
    let blobs_uri = weed.blobs_uri("t");
    let access = weed.access_key_file().display().to_string();
    let secret = weed.secret_key_file().display().to_string();
    let server = Server::start(
        BIN,
        &[
            "--blobs",
            &blobs_uri,
            "--blobs-access-key-file",
            &access,
            "--blobs-secret-key-file",
            &secret,
            "--aac-ladder",
            "64",
            "--ladder",
            "64",
        ],
    );
    let track = upload(&server, 10.0);
    let id = track["id"].as_str().unwrap().to_owned();
    let segment_url = server.url(&format!(
        "/function/streaming/{id}/{}",
        named(&track, "64k-000.ts")
    ));
    assert_eq!(client().get(&segment_url).send().unwrap().status(), 200);

    weed.stop();
    // Not read before, so not in the function's segment cache.
    let (status, code, seconds) = timed(client().get(server.url(&format!(
        "/function/streaming/{id}/{}",
        named(&track, "aac64k-000.m4s")
    ))));
    assert_eq!((status, code.as_str()), (503, "store-unavailable"));
    assert!(seconds < 3.0, "a read took {seconds:.1} s to fail");
    let (status, code, seconds) = timed(
        client()
            .post(server.url("/function/crud"))
            .header("content-type", "audio/mpeg")
            .body(audio::another_copy(&audio::mp3(6.0), 7)),
    );
    assert_eq!((status, code.as_str()), (503, "store-unavailable"));
    assert!(seconds < 3.0, "an upload took {seconds:.1} s to fail");
    let list: Value = client()
        .get(server.url("/function/crud"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "a partial track is visible: {list}"
    );
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        503
    );

    // Back (same port): the same process reads and takes uploads again.
    weed.start();
    wait::until(Duration::from_secs(30), "ready again", || {
        (client().get(server.url("/healthz")).send().ok()?.status() == 200).then_some(())
    });
    let seconds = played_seconds(&server.url(&format!("/function/streaming/{id}/index.m3u8")));
    assert!((seconds - 10.0).abs() < 0.2, "{seconds} s");
    upload(&server, 6.0);
}

#[test]
fn ferretdb_and_the_object_store_serve_together() {
    let store = ferretdb::fresh_database_uri("legato_s3");
    let blobs = Blobs::new("ferret");
    for mode in ["proxy", "redirect"] {
        let server = start(&blobs, &["--store", &store, "--segments", mode]);
        let track = upload(&server, 10.0);
        let id = track["id"].as_str().unwrap();
        let seconds = played_seconds(&server.url(&format!("/function/streaming/{id}/index.m3u8")));
        assert!((seconds - 10.0).abs() < 0.2, "{mode}: {seconds} s");
        assert!(
            blobs
                .objects()
                .iter()
                .any(|(t, n)| t == id && n.ends_with(".m4s"))
        );
        let deleted = client()
            .delete(server.url(&format!("/function/crud/{id}")))
            .send()
            .unwrap();
        assert!(deleted.status().is_success());
        assert!(!blobs.objects().iter().any(|(t, _)| t == id));
    }
}

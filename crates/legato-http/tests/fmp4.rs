//! HLS for every player: AAC-LC rungs and a lossless FLAC rung in fragmented MP4 beside the
//! MP3 ladder, served over HTTP and played by ffmpeg; the playlists each kind of player
//! gets; reprocessing giving an older track the new rungs.

use std::time::Duration;

use legato_http::HttpConfig;
use serde_json::Value;

use crate::util::{TestServer, config, until, write_temp};

/// What `legato serve` does by default (the MP3 ladder, AAC 64/128/256, lossless), with
/// 2-s segments: a tone of a few seconds is cut as a song is by the default 10 s.
fn every_rendition() -> HttpConfig {
    HttpConfig {
        segment_seconds: 2.0,
        ..HttpConfig::default()
    }
}

fn tone(name: &str, seconds: f64, rate: u32, args: &[&str]) -> Vec<u8> {
    let ext = name.rsplit('.').next().unwrap();
    std::fs::read(legato_test_support::audio::tone_file(
        seconds, 523, rate, 2, ext, args,
    ))
    .unwrap()
}

async fn post(server: &TestServer, bytes: &[u8], name: &str) -> Value {
    let form = reqwest::multipart::Form::new().part(
        "song",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
    );
    let response = server.post_form(form).await;
    assert_eq!(response.status(), 201, "{name}");
    server.settled(response.json().await.unwrap()).await
}

async fn get(server: &TestServer, url: &str) -> reqwest::Response {
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response
}

async fn text(server: &TestServer, url: &str) -> String {
    get(server, url).await.text().await.unwrap()
}

/// `(name, codec, container)` of each variant of a track JSON.
fn variants(track: &Value) -> Vec<(String, String, String)> {
    track["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["codec"].as_str().unwrap().to_owned(),
                v["container"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn fmp4_names(track: &Value) -> Vec<String> {
    variants(track)
        .into_iter()
        .filter(|(_, _, container)| container == "fmp4")
        .map(|(name, _, _)| name)
        .collect()
}

fn playlist_of(track: &Value, name: &str) -> String {
    track["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variant {name} in {track}"))["playlist"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// CODECS of each variant of a master playlist, in order.
fn master_codecs(master: &str) -> Vec<String> {
    master
        .lines()
        .filter_map(|l| l.split("CODECS=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// Decoded PCM (interleaved, `format` as ffmpeg names it) of `input`, at its own rate.
fn pcm(input: &str, format: &str) -> Vec<u8> {
    let codec = format!("pcm_{format}");
    legato_test_support::ffmpeg::run(&["-i", input, "-f", format, "-c:a", &codec, "-"])
}

/// The `mdat` payloads of a run of ISO BMFF boxes.
fn mdat_payloads(mut data: &[u8], out: &mut Vec<u8>) {
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert!(size >= 8 && size <= data.len(), "a box of {size} bytes");
        if &data[4..8] == b"mdat" {
            out.extend_from_slice(&data[8..size]);
        }
        data = &data[size..];
    }
}

/// Segment URIs of a media playlist, resolved against the playlist's URL.
fn segment_urls(playlist_url: &str, playlist: &str) -> Vec<String> {
    let base = &playlist_url[..playlist_url.rfind('/').unwrap() + 1];
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("{base}{l}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossless_uploads_get_aac_rungs_and_a_bit_exact_flac_rung() {
    let server = TestServer::start_with(every_rendition()).await;
    let dir = server.dir.path().to_owned();
    // A last segment longer than the target (its short tail merged into it).
    let seconds = 4.3;
    let inputs = [
        (
            "s16.wav",
            tone("s16.wav", seconds, 44_100, &["-c:a", "pcm_s16le"]),
        ),
        (
            "s24.wav",
            tone("s24.wav", seconds, 48_000, &["-c:a", "pcm_s24le"]),
        ),
        (
            "song.aiff",
            tone("song.aiff", seconds, 44_100, &["-c:a", "pcm_s16be"]),
        ),
        (
            "song.flac",
            // Longer: ffmpeg puts 8 KiB of padding before the frames of a FLAC file, and
            // the frames carried must be most of the upload (checked below).
            tone("song.flac", 2.0 * seconds, 44_100, &["-c:a", "flac"]),
        ),
    ];
    for (name, bytes) in &inputs {
        let track = post(&server, bytes, name).await;
        assert_eq!(track["status"], "ready", "{name}");
        assert_eq!(
            fmp4_names(&track),
            ["aac64k", "aac128k", "aac256k", "flac"],
            "{name}"
        );
        for (variant, codec, container) in variants(&track) {
            let expected = match &*variant {
                "flac" => ("flac", "fmp4"),
                v if v.starts_with("aac") => ("aac", "fmp4"),
                _ => ("mp3", "mpegts"),
            };
            assert_eq!((&*codec, &*container), expected, "{name} {variant}");
        }
        let source = write_temp(&dir, name, bytes);

        // index.m3u8: AAC rungs, the lossless one, then MP3; version 7.
        let master = text(&server, &server.url(track["playlist"].as_str().unwrap())).await;
        assert!(master.contains("#EXT-X-VERSION:7"), "{master}");
        assert_eq!(
            master_codecs(&master),
            [
                "mp4a.40.2",
                "mp4a.40.2",
                "mp4a.40.2",
                "fLaC",
                "mp4a.40.34",
                "mp4a.40.34",
                "mp4a.40.34"
            ],
            "{name}: {master}"
        );
        // The legacy names answer the MP3 rungs alone, as players of MPEG-TS expect (under
        // the track's folder, whatever generation is current).
        let playlist = track["playlist"].as_str().unwrap();
        let base = &playlist[..=playlist.rfind('/').unwrap()];
        for legacy in ["mp3.m3u8", "outputlist.m3u8"] {
            let mp3 = text(&server, &server.url(&format!("{base}{legacy}"))).await;
            assert!(mp3.contains("#EXT-X-VERSION:3"), "{legacy}: {mp3}");
            assert_eq!(master_codecs(&mp3), ["mp4a.40.34"; 3], "{legacy}: {mp3}");
        }

        // Each fMP4 rung: a version 7 playlist with its init segment, served as audio/mp4,
        // decoding to the source's length (AAC within a frame, FLAC exactly).
        let source_samples = pcm(&source, "s16le").len() / 4;
        for rung in fmp4_names(&track) {
            let url = server.url(&playlist_of(&track, &rung));
            let playlist = text(&server, &url).await;
            let init = playlist
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
                .unwrap()
                .trim_end_matches('"')
                .to_owned();
            let init_url = format!("{}{init}", &url[..url.rfind('/').unwrap() + 1]);
            let response = get(&server, &init_url).await;
            assert_eq!(response.headers()["content-type"], "audio/mp4");
            let init_bytes = response.bytes().await.unwrap();
            let entry: &[u8] = if rung == "flac" { b"dfLa" } else { b"esds" };
            assert!(
                init_bytes.windows(4).any(|w| w == entry),
                "{name} {rung}: no sample entry box in the init segment"
            );
            let samples = tokio::task::block_in_place(|| pcm(&url, "s16le")).len() / 4;
            if rung == "flac" {
                assert_eq!(samples, source_samples, "{name}: FLAC length");
            } else {
                // ffmpeg skips the priming (iTunSMPB) but not the padding of the last frame.
                assert!(
                    samples >= source_samples && samples < source_samples + 1024,
                    "{name} {rung}: {samples} samples decoded for {source_samples}"
                );
            }
        }

        // The lossless rung's PCM is the source's, sample for sample (24-bit kept whole).
        let flac_url = server.url(&playlist_of(&track, "flac"));
        let (expected, played) =
            tokio::task::block_in_place(|| (pcm(&source, "s32le"), pcm(&flac_url, "s32le")));
        assert!(expected == played, "{name}: the FLAC rung's PCM differs");

        // A FLAC upload's own frames are carried, byte for byte.
        if *name == "song.flac" {
            let playlist = text(&server, &flac_url).await;
            let mut frames = Vec::new();
            for url in segment_urls(&flac_url, &playlist) {
                let segment = get(&server, &url).await.bytes().await.unwrap();
                mdat_payloads(&segment, &mut frames);
            }
            assert!(
                frames.len() > bytes.len() * 9 / 10 && bytes.ends_with(&frames),
                "the FLAC upload's frames are not in the stream as they were uploaded"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_uploads_get_no_lossless_rung_nor_aac_above_their_bitrate() {
    let server = TestServer::start_with(every_rendition()).await;
    let mp3 = tone(
        "lossy.mp3",
        8.0,
        44_100,
        &["-c:a", "libmp3lame", "-b:a", "96k"],
    );
    let track = post(&server, &mp3, "lossy.mp3").await;
    assert_eq!(fmp4_names(&track), ["aac64k"]);
    let m4a = tone("lossy.m4a", 8.0, 44_100, &["-c:a", "aac", "-b:a", "160k"]);
    let track = post(&server, &m4a, "lossy.m4a").await;
    assert_eq!(fmp4_names(&track), ["aac64k", "aac128k"]);
    server.stop().await;

    // Without fMP4 renditions configured, a track keeps the MPEG-TS layout, and the MP3-only
    // names answer its one playlist.
    let server = TestServer::start_with(HttpConfig {
        aac_ladder_kbps: Vec::new(),
        lossless: false,
        ..config()
    })
    .await;
    let track = post(&server, &mp3, "lossy.mp3").await;
    assert!(track["variants"].as_array().unwrap().is_empty());
    let base = track["playlist"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "");
    let index = text(&server, &server.url(&format!("{base}index.m3u8"))).await;
    for legacy in ["mp3.m3u8", "outputlist.m3u8"] {
        assert_eq!(
            text(&server, &server.url(&format!("{base}{legacy}"))).await,
            index
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_gives_an_older_track_the_fmp4_rungs() {
    // A track made before the fMP4 renditions existed: the MP3 ladder only.
    let before = TestServer::start_with(HttpConfig {
        aac_ladder_kbps: Vec::new(),
        lossless: false,
        ..every_rendition()
    })
    .await;
    let wav = tone("old.wav", 7.0, 44_100, &["-c:a", "pcm_s16le"]);
    let track = post(&before, &wav, "old.wav").await;
    let id = track["id"].as_str().unwrap().to_owned();
    assert!(fmp4_names(&track).is_empty());
    let dir = before.stop_keeping_dir().await;

    let server = TestServer::start_in(
        dir,
        HttpConfig {
            aac_ladder_kbps: vec![128],
            ..every_rendition()
        },
    )
    .await;
    let response = server
        .client
        .post(server.url(&format!("/function/crud/{id}/reprocess")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let done = until(Duration::from_secs(120), "the reprocessing", async || {
        let track: Value = get(&server, &server.url(&format!("/function/crud/{id}")))
            .await
            .json()
            .await
            .unwrap();
        if track.get("job").is_none() && !fmp4_names(&track).is_empty() {
            Ok(track)
        } else {
            Err(track)
        }
    })
    .await;
    assert_eq!(fmp4_names(&done), ["aac128k", "flac"]);
    let master = text(&server, &server.url(done["playlist"].as_str().unwrap())).await;
    assert_eq!(master_codecs(&master)[..2], ["mp4a.40.2", "fLaC"]);
    let flac = server.url(&playlist_of(&done, "flac"));
    let source = write_temp(server.dir.path(), "old.wav", &wav);
    let (expected, played) =
        tokio::task::block_in_place(|| (pcm(&source, "s16le"), pcm(&flac, "s16le")));
    assert!(expected == played, "the new lossless rung's PCM differs");
    server.stop().await;
}

//! The crud and streaming API through real HTTP, against a real SQLite store.

use crate::util::{TestServer, another_copy, song};
use base64::Engine;
use legato_http::HttpConfig;
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn list(server: &TestServer, query: &[(&str, &str)]) -> (Vec<Value>, u64) {
    let response = server
        .client
        .get(server.crud())
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let total = response.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (response.json().await.unwrap(), total)
}

#[tokio::test]
async fn seed_json_without_content_type_is_accepted() {
    let server = TestServer::start().await;
    let audio = song(25.0);
    // The seed's MusicApi posts with requests' `data=json.dumps(...)`: no Content-Type.
    let body = json!({
        "author": "Madonna",
        "name": "Like a Prayer",
        "song_base64": base64::engine::general_purpose::STANDARD.encode(&audio),
    })
    .to_string();
    let response = server
        .client
        .post(server.crud())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let track: Value = response.json().await.unwrap();
    let id = track["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(location, format!("/function/crud/{id}"));
    assert_eq!(track["name"], "Like a Prayer");
    assert_eq!(track["author"], "Madonna");
    assert_eq!(track["codec"], "mp3");
    assert_eq!(track["bitrate"], 128);
    assert_eq!(track["sample_rate"], 44100);
    assert_eq!(track["channels"], 2);
    assert_eq!(
        track["playlist"],
        format!("/function/streaming/{id}/index.m3u8")
    );
    let duration = track["duration"].as_f64().unwrap();
    assert!((duration - 25.0).abs() < 0.1, "{duration}");
    // 25 s in 10 s segments: 10 + 10 + 5 (5 s is not under a quarter of the target).
    assert_eq!(track["segments"], 3);

    let shown: Value = server
        .client
        .get(server.url(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, track);
    server.stop().await;
}

#[tokio::test]
async fn text_plain_json_and_multipart_and_raw_uploads() {
    let server = TestServer::start().await;
    let audio = song(12.0);
    let body = json!({"author": "a", "name": "text/plain", "song_base64":
        base64::engine::general_purpose::STANDARD.encode(&audio)});
    let response = server
        .client
        .post(server.crud())
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let form = reqwest::multipart::Form::new()
        .text("name", "Sky Full of Stars")
        .text("author", "Coldplay")
        .part(
            "song",
            reqwest::multipart::Part::bytes(another_copy(&audio, 1)).file_name("sky.mp3"),
        );
    let response = server.post_form(form).await;
    assert_eq!(response.status(), 201);
    let track: Value = response.json().await.unwrap();
    assert_eq!(
        (track["name"].as_str(), track["author"].as_str()),
        (Some("Sky Full of Stars"), Some("Coldplay"))
    );

    // Without a name the file name is the title.
    let form = reqwest::multipart::Form::new().part(
        "song",
        reqwest::multipart::Part::bytes(another_copy(&audio, 2)).file_name("A Little Respect.mp3"),
    );
    let track: Value = server.post_form(form).await.json().await.unwrap();
    assert_eq!(track["name"], "A Little Respect");
    assert_eq!(track["author"], "Unknown artist");

    let response = server
        .client
        .post(server.crud())
        .query(&[("name", "Take on me"), ("author", "a-ha")])
        .header("content-type", "application/octet-stream")
        .body(another_copy(&audio, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (tracks, total) = list(&server, &[]).await;
    assert_eq!((tracks.len(), total), (4, 4));
    server.stop().await;
}

#[tokio::test]
async fn list_searches_sorts_and_pages() {
    let server = TestServer::start().await;
    let audio = song(3.0);
    for (n, (name, author)) in [
        ("Like a Prayer", "Madonna"),
        ("Sky Full of Stars", "Coldplay"),
        ("A Little Respect", "Erasure"),
        ("Take on me", "a-ha"),
        ("Frozen", "Madonna"),
    ]
    .into_iter()
    .enumerate()
    {
        let n = u32::try_from(n).unwrap();
        server.upload(&another_copy(&audio, n), name, author).await;
    }
    let (all, total) = list(&server, &[]).await;
    assert_eq!(total, 5);
    assert_eq!(
        all[0]["name"], "Like a Prayer",
        "default order is the order of upload"
    );
    let (madonna, total) = list(&server, &[("q", "madONNA")]).await;
    assert_eq!((madonna.len(), total), (2, 2));
    let (stars, _) = list(&server, &[("q", "stars")]).await;
    assert_eq!(stars[0]["author"], "Coldplay");
    // A `q` without a word matches nothing (docs/api.md); an empty `q=` is no search.
    for wordless in ["   ", " \t ", "%%", " - "] {
        let (found, total) = list(&server, &[("q", wordless)]).await;
        assert_eq!((found.len(), total), (0, 0), "q={wordless:?}");
    }
    let (everything, total) = list(&server, &[("q", "")]).await;
    assert_eq!((everything.len(), total), (5, 5));
    let (page, total) = list(
        &server,
        &[
            ("limit", "2"),
            ("offset", "1"),
            ("sort", "name"),
            ("order", "desc"),
        ],
    )
    .await;
    assert_eq!(total, 5);
    let names: Vec<_> = page.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Sky Full of Stars", "Like a Prayer"]);
    for (key, value) in [
        ("limit", "0"),
        ("limit", "x"),
        ("limit", "100000"),
        ("offset", "-1"),
        ("sort", "size"),
        ("order", "up"),
    ] {
        let response = server
            .client
            .get(server.crud())
            .query(&[(key, value)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{key}={value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "invalid-parameter");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_same_file_twice_is_one_track_until_it_is_deleted() {
    let server = TestServer::start().await;
    let audio = song(3.0);
    let sha256 = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&audio))
    };
    let first = server.upload(&audio, "First", "One").await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(first.get("existing").is_none(), "{first}");

    // Again, under another name and in another form: nothing stored, the track it is.
    let response = server
        .client
        .post(server.crud())
        .multipart(reqwest::multipart::Form::new().text("name", "Second").part(
            "song",
            reqwest::multipart::Part::bytes(audio.clone()).file_name("again.mp3"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["location"],
        format!("/function/crud/{id}").as_str()
    );
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["existing"], true);
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["name"], "First", "the stored track, unchanged");
    assert_eq!(again["source"]["sha256"], sha256.as_str());
    assert_eq!(list(&server, &[]).await.1, 1);
    // Shown and listed without the marker.
    let shown: Value = server
        .client
        .get(server.url(&format!("/function/crud/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(shown.get("existing").is_none(), "{shown}");

    // Asked for by its hash (how `legato add` skips what is stored), in either case.
    let (found, total) = list(&server, &[("sha256", &sha256.to_uppercase())]).await;
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0]["id"], id.as_str());
    let (found, total) = list(&server, &[("sha256", &"0".repeat(64))]).await;
    assert_eq!((found.len(), total), (0, 0));
    let response = server
        .client
        .get(server.crud())
        .query(&[("sha256", "abc")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Once it is deleted, the same file makes a new track.
    let response = server
        .client
        .delete(server.url(&format!("/function/crud/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let third = server.upload(&audio, "Third", "Three").await;
    assert_ne!(third["id"], id.as_str());
    assert_eq!(third["name"], "Third");
    assert!(third.get("existing").is_none());
    let (found, _) = list(&server, &[("sha256", &sha256)]).await;
    assert_eq!(found[0]["id"], third["id"]);
    server.stop().await;
}

/// Ten uploads of one file at once (an importer retrying, a double click): one track is
/// stored, and every other upload is answered with it (200, `existing`), not refused and not
/// stored again. Both paths: an MP3 (stored in the request) and a WAV (stored with its job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_sent_ten_times_at_once_is_one_track() {
    let server = TestServer::start().await;
    let wav = std::fs::read(legato_test_support::audio::wav(4.0)).unwrap();
    for (audio, content_type) in [(song(5.0), "audio/mpeg"), (wav, "audio/wav")] {
        let uploads = (0..10).map(|_| {
            server
                .client
                .post(server.crud())
                .header("content-type", content_type)
                .body(audio.clone())
                .send()
        });
        let mut answers = Vec::new();
        for response in futures_util::future::join_all(uploads).await {
            let response = response.unwrap();
            let status = response.status().as_u16();
            let track: Value = response.json().await.unwrap();
            answers.push((status, track));
        }
        let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 200).count(),
            9,
            "{content_type}: {statuses:?}"
        );
        assert!(matches!(statuses[9], 201 | 202), "{statuses:?}");
        let ids: std::collections::HashSet<&str> = answers
            .iter()
            .map(|(_, t)| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "{content_type}: {ids:?}");
        assert!(
            answers
                .iter()
                .filter(|(s, _)| *s == 200)
                .all(|(_, t)| t["existing"] == true)
        );
    }
    assert_eq!(list(&server, &[]).await.1, 2);
    server.stop().await;
}

#[tokio::test]
async fn update_and_delete() {
    let server = TestServer::start().await;
    let track = server.upload(&song(12.0), "Take on me", "aha").await;
    let id = track["id"].as_str().unwrap();
    let url = server.url(&format!("/function/crud/{id}"));
    let updated: Value = server
        .client
        .patch(&url)
        .json(&json!({"author": "a-ha"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["author"].as_str()),
        (Some("Take on me"), Some("a-ha"))
    );
    let response = server.client.patch(&url).body("{").send().await.unwrap();
    assert_eq!(response.status(), 400);
    // Over the PATCH body's limit (64 KiB): the message states that limit.
    let response = server
        .client
        .patch(&url)
        .json(&json!({"name": "x".repeat(70 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "payload-too-large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("limit of 64 KiB"), "{message}");
    let response = server
        .client
        .patch(&url)
        .json(&json!({"name": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let playlist = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let segment = server.url(&format!("/function/streaming/{id}/seg000.ts"));
    assert_eq!(
        server.client.get(&segment).send().await.unwrap().status(),
        200
    );

    let response = server.client.delete(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"deleted": 1})
    );
    for gone in [&url, &playlist, &segment] {
        let response = server.client.get(gone.as_str()).send().await.unwrap();
        assert_eq!(response.status(), 404, "{gone}");
        assert_eq!(error_code(&response.json().await.unwrap()), "not-found");
    }
    assert_eq!(
        server.client.delete(&url).send().await.unwrap().status(),
        404
    );
    assert_eq!(list(&server, &[]).await.1, 0);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let server = TestServer::start_with(HttpConfig {
        max_upload_bytes: 1024 * 1024,
        ..crate::util::config()
    })
    .await;
    let kept = server.upload(&song(3.0), "Kept", "x").await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "text as audio",
            server
                .client
                .post(server.crud())
                .header("content-type", "audio/mpeg")
                .body("hello, this is not music at all".repeat(100)),
            415,
            "not-audio",
        ),
        (
            "empty raw body",
            server
                .client
                .post(server.crud())
                .header("content-type", "audio/mpeg")
                .body(""),
            415,
            "empty-file",
        ),
        (
            "png as audio",
            server
                .client
                .post(server.crud())
                .header("content-type", "audio/mpeg")
                .body(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".repeat(50)),
            415,
            "not-audio",
        ),
        (
            "broken json",
            server
                .client
                .post(server.crud())
                .header("content-type", "application/json")
                .body("{\"name\": "),
            400,
            "invalid-json",
        ),
        (
            "json array",
            server.client.post(server.crud()).body("[1, 2]"),
            415,
            "not-audio",
        ),
        (
            "bad base64",
            server
                .client
                .post(server.crud())
                .body(json!({"name": "n", "author": "a", "song_base64": "***"}).to_string()),
            400,
            "invalid-base64",
        ),
        (
            "missing song",
            server
                .client
                .post(server.crud())
                .body(json!({"name": "n", "author": "a"}).to_string()),
            400,
            "missing-field",
        ),
        (
            "text in base64",
            server.client.post(server.crud()).body(
                json!({"name": "n", "author": "a", "song_base64": b64(b"just text")}).to_string(),
            ),
            415,
            "not-audio",
        ),
        (
            "multipart without song",
            server
                .client
                .post(server.crud())
                .multipart(reqwest::multipart::Form::new().text("name", "x")),
            400,
            "missing-field",
        ),
        (
            "broken multipart",
            server
                .client
                .post(server.crud())
                .header("content-type", "multipart/form-data; boundary=xyz")
                .body("--xyz\r\nbroken"),
            400,
            "invalid-multipart",
        ),
        (
            "too large raw",
            server
                .client
                .post(server.crud())
                .header("content-type", "audio/mpeg")
                .body(vec![0u8; 2 * 1024 * 1024]),
            413,
            "payload-too-large",
        ),
        (
            "too large json",
            server
                .client
                .post(server.crud())
                .body(json!({"song_base64": b64(&vec![0u8; 2 * 1024 * 1024])}).to_string()),
            413,
            "payload-too-large",
        ),
        (
            "too large multipart",
            server
                .client
                .post(server.crud())
                .multipart(reqwest::multipart::Form::new().part(
                    "song",
                    reqwest::multipart::Part::bytes(vec![0u8; 3 * 1024 * 1024]),
                )),
            413,
            "payload-too-large",
        ),
        (
            "invalid id",
            server.client.get(server.url("/function/crud/11111")),
            400,
            "invalid-id",
        ),
        (
            "unknown id",
            server
                .client
                .get(server.url("/function/crud/0123456789abcdef01234567")),
            404,
            "not-found",
        ),
        (
            "unknown id patch",
            server
                .client
                .patch(server.url("/function/crud/0123456789abcdef01234567"))
                .json(&json!({"name": "x"})),
            404,
            "not-found",
        ),
        (
            "bad chunk id",
            server
                .client
                .get(server.url("/function/streaming/xyz/index.m3u8")),
            400,
            "invalid-id",
        ),
        (
            "traversal",
            server.client.get(server.url(&format!(
                "/function/streaming/{}/..%2F..%2Fetc%2Fpasswd",
                kept["id"].as_str().unwrap()
            ))),
            400,
            "invalid-name",
        ),
        (
            "unknown chunk",
            server.client.get(server.url(&format!(
                "/function/streaming/{}/seg999.ts",
                kept["id"].as_str().unwrap()
            ))),
            404,
            "not-found",
        ),
        (
            "unknown path",
            server.client.get(server.url("/function/nothing")),
            404,
            "no-route",
        ),
        (
            "wrong method",
            server.client.put(server.crud()),
            405,
            "method-not-allowed",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert_eq!(error_code(&body), code, "{what}: {body}");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what}"
        );
    }
    let (tracks, total) = list(&server, &[]).await;
    assert_eq!(total, 1, "nothing but the first track was stored");
    assert_eq!(tracks[0]["id"], kept["id"]);
    server.stop().await;
}

#[tokio::test]
async fn trailing_slashes_and_cors() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/function/crud/"))
        .header("origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.crud())
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    server.stop().await;
}

#[tokio::test]
async fn openapi_document_describes_every_operation() {
    let server = TestServer::start().await;
    let doc: Value = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/function/crud", "get"),
        ("/function/crud", "post"),
        ("/function/crud/{id}", "get"),
        ("/function/crud/{id}", "patch"),
        ("/function/crud/{id}", "delete"),
        ("/function/streaming/{id}/{name}", "get"),
        ("/healthz", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    server.stop().await;
}

/// A multipart upload's `file_name` field is the file's name whatever it holds (a part's
/// `filename` cannot carry a newline), kept without its control characters.
#[tokio::test]
async fn the_file_name_field_wins_over_the_parts_filename() {
    let server = TestServer::start().await;
    let form = reqwest::multipart::Form::new()
        .text("file_name", "new\nline \u{1b}[31mred.mp3")
        .part(
            "song",
            reqwest::multipart::Part::bytes(song(2.0)).file_name("new_line _[31mred.mp3"),
        );
    let response = server.post_form(form).await;
    assert_eq!(response.status(), 201);
    let track: Value = response.json().await.unwrap();
    assert_eq!(track["name"], "newline [31mred");
    assert_eq!(track["source"]["file_name"], "newline [31mred.mp3");
    let health: Value = server
        .client
        .get(server.url("/function/crud/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["max_upload_bytes"], 512 * 1024 * 1024, "{health}");
    server.stop().await;
}

/// A `cover` part beside the song (a folder's art) is the track's cover when the audio has
/// none; it must be a JPEG, PNG or WebP image by its bytes, of at most 5 MiB.
#[tokio::test]
async fn a_cover_part_is_the_cover_of_a_song_without_one_and_is_checked() {
    let server = TestServer::start().await;
    let audio = song(2.0);
    let post = |k: u32, cover: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part(
                "cover",
                reqwest::multipart::Part::bytes(cover).file_name("cover.jpg"),
            )
            .part(
                "song",
                reqwest::multipart::Part::bytes(another_copy(&audio, k)).file_name("s.mp3"),
            );
        server.client.post(server.crud()).multipart(form).send()
    };
    let mut jpeg = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0".to_vec();
    jpeg.resize(3000, 9);
    let response = post(1, jpeg.clone()).await.unwrap();
    assert_eq!(response.status(), 201);
    let track: Value = response.json().await.unwrap();
    let cover = track["cover"].as_str().expect("a cover");
    let served = server.client.get(server.url(cover)).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    assert_eq!(served.bytes().await.unwrap().to_vec(), jpeg);

    let response = post(2, b"GIF89a not accepted".to_vec()).await.unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid-cover", "{body}");

    let mut huge = jpeg.clone();
    huge.resize(5 * 1024 * 1024 + 1, 0);
    match post(3, huge).await {
        Ok(response) => {
            assert_eq!(response.status(), 413);
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_code(&body), "cover-too-large", "{body}");
        }
        // The answer may come before the whole body is sent, and the connection close.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    let (tracks, _) = list(&server, &[]).await;
    assert_eq!(tracks.len(), 1, "nothing stored of the refused uploads");
    server.stop().await;
}

//! What the client puts on the wire and how it reads answers, against a fake server that
//! records one request and plays back a canned answer. (The CLI's tests in
//! `crates/legato/tests/cli.rs` run the client against the real server.)

use std::sync::{Arc, Mutex};

use legato_client::{Client, ClientError, ListParams, Progress, Song};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TRACK: &str = r#"{"id":"65a1f0c2e4b0a1b2c3d4e5f6","name":"N","author":"A","duration":1.5,"segments":1,"playlist":"/function/streaming/65a1f0c2e4b0a1b2c3d4e5f6/index.m3u8","codec":"mp3","bitrate":128,"sample_rate":44100,"channels":2,"size":3,"created_at":"2026-11-28T20:30:00Z"}"#;

/// One request as the fake server read it.
struct Recorded {
    /// Request line and headers, header names lowercased.
    head: String,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
    }
}

/// Serves one request on a free port with `status`, `headers` and `body`.
async fn fake_server(
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, JoinHandle<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut answer = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let head_end = loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending a request");
            data.extend_from_slice(&buf[..n]);
            if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
        };
        let head: String = String::from_utf8(data[..head_end].to_vec())
            .unwrap()
            .lines()
            .map(|line| match line.split_once(':') {
                Some((key, value)) => format!("{}:{value}\n", key.to_ascii_lowercase()),
                None => format!("{line}\n"),
            })
            .collect();
        let mut recorded = Recorded {
            head,
            body: data[head_end..].to_vec(),
        };
        let chunked = recorded.header("transfer-encoding") == Some("chunked");
        let length: usize = recorded
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        loop {
            let complete = if chunked {
                recorded.body.ends_with(b"0\r\n\r\n")
            } else {
                recorded.body.len() >= length
            };
            if complete {
                break;
            }
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed mid-body");
            recorded.body.extend_from_slice(&buf[..n]);
        }
        socket.write_all(answer.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        recorded
    });
    (base, task)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn add_streams_the_file_as_multipart_with_a_length_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.mp3");
    let audio: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &audio).unwrap();
    let (base, server) = fake_server("201 Created", &[], TRACK).await;

    let client = Client::new(&base, Some("s3cret")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let record = Arc::clone(&seen);
    let track = client
        .add(path.as_path(), Some("N"), Some("A"), move |p| {
            record.lock().unwrap().push(p)
        })
        .await
        .unwrap();
    assert_eq!(track.id, "65a1f0c2e4b0a1b2c3d4e5f6");

    let request = server.await.unwrap();
    assert!(
        request.head.starts_with("POST /function/crud HTTP/1.1"),
        "{}",
        request.head
    );
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let declared: usize = request.header("content-length").unwrap().parse().unwrap();
    assert_eq!(declared, request.body.len());
    assert!(contains(&request.body, &audio), "the file is sent as it is");
    assert!(contains(
        &request.body,
        br#"name="song"; filename="song.mp3""#
    ));
    assert!(contains(&request.body, b"Content-Type: audio/mpeg"));
    assert!(contains(&request.body, b"name=\"name\"\r\n\r\nN\r\n"));
    assert!(contains(&request.body, b"name=\"author\"\r\n\r\nA\r\n"));

    let seen = seen.lock().unwrap();
    let total = Some(audio.len() as u64);
    assert_eq!(seen.first(), Some(&Progress { sent: 0, total }));
    assert_eq!(
        seen.last(),
        Some(&Progress {
            sent: audio.len() as u64,
            total
        })
    );
    assert!(seen.last().unwrap().is_done());
    assert!(seen.len() > 2, "progress comes chunk by chunk");
    assert!(seen.windows(2).all(|w| w[0].sent <= w[1].sent));
}

#[tokio::test]
async fn a_reader_of_unknown_length_is_sent_chunked() {
    let (base, server) = fake_server("201 Created", &[], TRACK).await;
    let client = Client::new(&base, None).unwrap();
    let audio = vec![7u8; 100_000];
    let song = Song::reader(std::io::Cursor::new(audio.clone()), "r.mp3", None);
    client.add(song, None, None, |_| {}).await.unwrap();
    let request = server.await.unwrap();
    assert_eq!(request.header("transfer-encoding"), Some("chunked"));
    assert_eq!(request.header("authorization"), None, "no key, no header");
    assert!(contains(&request.body, br#"filename="r.mp3""#));
    assert!(!contains(&request.body, b"name=\"name\""));
}

#[tokio::test]
async fn a_missing_file_is_a_file_error() {
    let client = Client::new("http://127.0.0.1:9", None).unwrap();
    let err = client
        .add(std::path::Path::new("/no/such.mp3"), None, None, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::File { path, .. } if path.ends_with("such.mp3")),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_sends_the_query_and_reads_the_total() {
    let (base, server) = fake_server(
        "200 OK",
        &[
            ("x-total-count", "42"),
            ("content-type", "application/json"),
        ],
        r#"[{"id":"a","name":"x","author":"y","new_field":true}]"#,
    )
    .await;
    let client = Client::new(&format!("{base}/function/crud"), None).unwrap();
    let params = ListParams {
        query: Some("x y&z".into()),
        limit: Some(5),
        offset: Some(10),
        ..ListParams::default()
    };
    let (tracks, total) = client.list(&params).await.unwrap();
    assert_eq!(total, 42);
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].extra["new_field"], serde_json::json!(true));
    let request = server.await.unwrap();
    assert!(
        request
            .head
            .starts_with("GET /function/crud?q=x+y%26z&limit=5&offset=10 HTTP/1.1"),
        "{}",
        request.head
    );
}

#[tokio::test]
async fn refusals_keep_the_servers_code_message_and_status() {
    let (base, server) = fake_server(
        "404 Not Found",
        &[("content-type", "application/json")],
        r#"{"error":{"code":"not-found","message":"track 0123 not found"}}"#,
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    let err = client.get("0123").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.to_string(), "track 0123 not found (not-found)");
    assert!(
        server
            .await
            .unwrap()
            .head
            .starts_with("GET /function/crud/0123 ")
    );
}

#[tokio::test]
async fn find_by_sha256_asks_the_list_and_trusts_only_a_matching_source() {
    let sha = "ab".repeat(32);
    let with_source = format!(
        r#"[{{"id":"65a1f0c2e4b0a1b2c3d4e5f6","status":"ready","source":{{"format":"mp3","size":3,"sha256":"{sha}"}}}}]"#
    );
    let (base, server) = fake_server(
        "200 OK",
        &[("content-type", "application/json")],
        &with_source,
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    let found = client.find_by_sha256(&sha).await.unwrap().unwrap();
    assert_eq!(found.id, "65a1f0c2e4b0a1b2c3d4e5f6");
    assert_eq!(found.status(), Some("ready"));
    let request = server.await.unwrap();
    assert!(
        request
            .head
            .starts_with(&format!("GET /function/crud?sha256={sha}&limit=1 HTTP/1.1")),
        "{}",
        request.head
    );

    // A server without the filter lists whatever it has: not an answer.
    let (base, _server) = fake_server(
        "200 OK",
        &[("content-type", "application/json")],
        &format!("[{TRACK}]"),
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    assert_eq!(client.find_by_sha256(&sha).await.unwrap(), None);
}

#[tokio::test]
async fn a_busy_server_says_when_to_come_back() {
    let (base, _server) = fake_server(
        "429 Too Many Requests",
        &[("content-type", "application/json"), ("retry-after", "7")],
        r#"{"error":{"code":"too-many-ingests","message":"busy"}}"#,
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    let err = client.get("0123").await.unwrap_err();
    assert!(err.is_busy());
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));
    assert_eq!(err.code(), Some("too-many-ingests"));
}

#[tokio::test]
async fn a_proxy_page_becomes_an_http_code() {
    let (base, _server) = fake_server(
        "502 Bad Gateway",
        &[("content-type", "text/html")],
        "<html><body>upstream\n  down</body></html>",
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    let err = client.delete("0123").await.unwrap_err();
    assert_eq!(err.code(), Some("http-502"));
    assert!(!err.is_network());
    assert!(
        err.to_string()
            .contains("502 Bad Gateway: <html><body>upstream down</body></html>"),
        "{err}"
    );
}

#[tokio::test]
async fn a_success_that_is_not_json_is_unexpected() {
    let (base, _server) = fake_server("200 OK", &[("content-type", "text/html")], "<html>").await;
    let client = Client::new(&base, None).unwrap();
    let err = client.get("0123").await.unwrap_err();
    assert!(
        matches!(err, ClientError::UnexpectedResponse { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(&base, None).unwrap();
    let err = client.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_network());
    assert_eq!(
        err.to_string(),
        format!("cannot reach the Legato server at {base}: connection refused")
    );
}

#[tokio::test]
async fn ids_that_name_no_track_are_refused_locally() {
    let client = Client::new("http://127.0.0.1:9", None).unwrap();
    for id in ["", ".", ".."] {
        let err = client.get(id).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidId(_)), "{id:?}: {err:?}");
    }
}

#[test]
fn playlist_urls_are_joined_to_the_gateway_root() {
    let client = Client::new("http://gw:8080/prefix/function/crud", None).unwrap();
    let mut track: legato_client::Track = serde_json::from_str(TRACK).unwrap();
    assert_eq!(
        client.playlist_url_of(&track),
        "http://gw:8080/prefix/function/streaming/65a1f0c2e4b0a1b2c3d4e5f6/index.m3u8"
    );
    // The seed's server sent no playlist path.
    track.playlist = None;
    assert_eq!(
        client.playlist_url_of(&track),
        "http://gw:8080/prefix/function/streaming/65a1f0c2e4b0a1b2c3d4e5f6/index.m3u8"
    );
    let debug = format!("{:?}", Client::new("http://gw", Some("s3cret")).unwrap());
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn download_writes_the_body_and_checks_its_hash() {
    // SHA-256 of "abc".
    let sum = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let etag = format!("\"{sum}\"");
    let (base, request) = fake_server(
        "200 OK",
        &[
            ("content-type", "audio/flac"),
            ("etag", &etag),
            (
                "content-disposition",
                "attachment; filename=\"x.flac\"; filename*=UTF-8''..%2F%C3%A9t%C3%A9.flac",
            ),
        ],
        "abc",
    )
    .await;
    let client = Client::new(&base, None).unwrap();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let original = client
        .download("65a1f0c2e4b0a1b2c3d4e5f6", &mut out, |r| {
            seen.push(r.received)
        })
        .await
        .unwrap();
    assert_eq!(out, b"abc");
    assert_eq!(original.sha256, sum);
    assert_eq!(original.size, 3);
    // The server's name, with its path taken away.
    assert_eq!(original.file_name, "été.flac");
    assert_eq!(original.content_type.as_deref(), Some("audio/flac"));
    assert_eq!(seen.last(), Some(&3));
    let request = request.await.unwrap();
    assert!(
        request
            .head
            .starts_with("GET /function/crud/65a1f0c2e4b0a1b2c3d4e5f6/file "),
        "{}",
        request.head
    );
}

#[tokio::test]
async fn a_download_that_arrives_altered_is_an_error() {
    let etag = format!("\"{}\"", "0".repeat(64));
    let (base, _request) = fake_server("200 OK", &[("etag", &etag)], "abc").await;
    let client = Client::new(&base, None).unwrap();
    let mut out = Vec::new();
    let err = client
        .download("65a1f0c2e4b0a1b2c3d4e5f6", &mut out, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("altered"), "{err}");
}

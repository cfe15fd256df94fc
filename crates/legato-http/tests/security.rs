//! API keys, signed playback URLs, backpressure and slow clients, through real HTTP.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use legato_http::HttpConfig;
use legato_http::auth::ApiKeys;
use legato_http::signing::{UrlSigner, now_secs};
use legato_store::TrackId;
use legato_test_support::ffmpeg::decoded_samples;
use serde_json::Value;

use crate::util::{TestServer, song};

fn signer() -> UrlSigner {
    UrlSigner::new(
        b"a-test-signing-key-of-some-length".to_vec(),
        Duration::from_secs(3600),
    )
}

async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// An fMP4 rendition's init segment is named by `#EXT-X-MAP`, not by a URI line: its URI must
/// carry the token too, or a player of a signed AAC rendition gets 403 before any audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_playlists_carry_the_token_to_init_segments() {
    let server = TestServer::start_with(HttpConfig {
        url_signer: Some(signer()),
        aac_ladder_kbps: vec![64],
        ..crate::util::config()
    })
    .await;
    let wav = std::fs::read(legato_test_support::audio::wav(4.0)).unwrap();
    let track = server.upload(&wav, "Signed AAC", "x").await;
    let id = track["id"].as_str().unwrap();
    let get = |path: String| {
        let request = server.client.get(server.url(&path));
        async move { request.send().await.unwrap() }
    };
    let master = get(track["playlist"].as_str().unwrap().to_owned()).await;
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    let aac = master
        .lines()
        .find(|l| l.starts_with("aac64k.m3u8") || l.contains("-aac64k.m3u8"))
        .unwrap_or_else(|| panic!("no AAC variant in {master}"));
    let media = get(format!("/function/streaming/{id}/{aac}")).await;
    assert_eq!(media.status(), 200);
    let media = media.text().await.unwrap();
    let init = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no EXT-X-MAP in {media}"));
    assert!(init.contains("exp=") && init.contains("sig="), "{init}");
    let init = get(format!("/function/streaming/{id}/{init}")).await;
    assert_eq!(init.status(), 200);
    assert_eq!(init.headers()["content-type"], "audio/mp4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_open_one_track_until_they_expire() {
    let server = TestServer::start_with(HttpConfig {
        url_signer: Some(signer()),
        ..crate::util::config()
    })
    .await;
    let track = server.upload(&song(15.0), "Signed", "x").await;
    let other = server.upload(&song(3.0), "Other", "x").await;
    let id = track["id"].as_str().unwrap();
    let playlist_path = track["playlist"].as_str().unwrap();
    assert!(
        playlist_path.contains("?exp=") && playlist_path.contains("&sig="),
        "{playlist_path}"
    );
    let query = playlist_path.split_once('?').unwrap().1;

    let bare = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/index.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_code(bare).await, (403, "bad-signature".into()));
    let bare_segment = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/seg000.ts")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(bare_segment).await,
        (403, "bad-signature".into())
    );

    let signed = server
        .client
        .get(server.url(playlist_path))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let text = signed.text().await.unwrap();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.ends_with(query),
            "segment URI without the token: {line}"
        );
    }
    let segment = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/seg000.ts?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(segment.status(), 200);

    // The token of one track does not open another.
    let other_id = other["id"].as_str().unwrap();
    let borrowed = server
        .client
        .get(server.url(&format!(
            "/function/streaming/{other_id}/index.m3u8?{query}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(borrowed).await,
        (403, "bad-signature".into())
    );

    let expired = signer().sign_until(&id.parse::<TrackId>().unwrap(), now_secs() - 7200);
    let late = server
        .client
        .get(server.url(&format!(
            "/function/streaming/{id}/index.m3u8?{}",
            expired.query()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_code(late).await, (410, "expired".into()));

    // A real player follows the signed segment URIs.
    let url = server.url(playlist_path);
    let samples = tokio::task::block_in_place(|| decoded_samples(&url, 2));
    assert!((samples as f64 / 44_100.0 - 15.0).abs() < 0.1, "{samples}");
    server.stop().await;
}

#[tokio::test]
async fn api_keys_guard_writes_and_private_reads() {
    let keys = ApiKeys::parse("current\nprevious\n");
    let server = TestServer::start_with(HttpConfig {
        api_keys: keys.clone(),
        ..crate::util::config()
    })
    .await;
    let audio = song(3.0);
    let anonymous = server
        .client
        .post(server.crud())
        .header("content-type", "audio/mpeg")
        .body(audio.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(anonymous).await,
        (401, "unauthorized".into())
    );
    let created = server
        .client
        .post(server.crud())
        .bearer_auth("previous")
        .header("content-type", "audio/mpeg")
        .body(audio.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.url(&format!("/function/crud/{id}"));
    assert_eq!(
        server.client.get(&url).send().await.unwrap().status(),
        200,
        "reads stay public"
    );
    assert_eq!(
        server.client.delete(&url).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        server
            .client
            .patch(&url)
            .body("{}")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        server
            .client
            .delete(&url)
            .bearer_auth("current")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;

    let private = TestServer::start_with(HttpConfig {
        api_keys: keys,
        private: true,
        ..crate::util::config()
    })
    .await;
    assert_eq!(
        private
            .client
            .get(private.crud())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        private
            .client
            .get(private.crud())
            .bearer_auth("current")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        private
            .client
            .get(private.url("/function/crud/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "probes need no key"
    );
    private.stop().await;
}

/// Opens an upload and sends half of it, holding the connection open.
fn start_slow_upload(base: &str, audio: &[u8]) -> std::net::TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /function/crud?name=slow HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nContent-Length: {}\r\n\r\n",
        audio.len()
    )
    .unwrap();
    stream.write_all(&audio[..audio.len() / 2]).unwrap();
    stream
}

// Receiving a body holds no processing slot (issue 12, break 3): with one slot, a client
// sending half its file and pausing does not keep another upload out. (The 429 of a full
// processing queue belongs to the job queue.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_holds_no_ingest_slot_and_streaming_goes_on() {
    let server = TestServer::start_with(HttpConfig {
        max_concurrent_ingests: 1,
        ..crate::util::config()
    })
    .await;
    // Three files of one song: the server would answer a file it has with its track.
    let ready = server.upload(&song(12.0), "Ready", "x").await;
    let audio = crate::util::another_copy(&song(12.0), 1);
    let budget = server.state.receiving.available_permits();
    let mut slow = start_slow_upload(&server.base, &audio);
    // The slow upload is admitted (it holds a share of the receive budget) before the other
    // one is sent: admission refuses a body while every processing slot is busy, and the
    // other upload's processing would otherwise race the slow one's admission.
    crate::util::until(
        Duration::from_secs(10),
        "the slow upload's admission",
        async || {
            let free = server.state.receiving.available_permits();
            if free < budget {
                Ok(())
            } else {
                Err(format!("{free} KiB of budget free"))
            }
        },
    )
    .await;

    let other = server
        .client
        .post(server.crud())
        .header("content-type", "audio/mpeg")
        .body(crate::util::another_copy(&song(12.0), 2))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);

    let started = Instant::now();
    let segment = server
        .client
        .get(server.url(&format!(
            "/function/streaming/{}/seg000.ts",
            ready["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(segment.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "streaming waited for an ingest"
    );

    // The slow upload still completes.
    let rest = audio[audio.len() / 2..].to_vec();
    let response = tokio::task::spawn_blocking(move || {
        slow.write_all(&rest).unwrap();
        let mut buf = [0u8; 12];
        slow.read_exact(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(response, "HTTP/1.1 201");
    let after = server
        .client
        .post(server.crud())
        .header("content-type", "audio/mpeg")
        .body(crate::util::another_copy(&song(12.0), 3))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 201, "the permit came back");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_dropped_with_408() {
    let server = TestServer::start_with(HttpConfig {
        upload_idle_timeout: Duration::from_secs(1),
        ..crate::util::config()
    })
    .await;
    let audio = song(12.0);
    let mut slow = start_slow_upload(&server.base, &audio);
    let started = Instant::now();
    let response = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = slow.read_to_string(&mut text);
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("upload-timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let (tracks, _) = (
        server
            .client
            .get(server.crud())
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap(),
        (),
    );
    assert!(tracks.is_empty(), "nothing stored");
    server.stop().await;
}

/// The header lines of a raw HTTP/1.1 answer, names lowercased.
fn header_lines(answer: &str) -> Vec<(String, String)> {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// The connection limit's 503 is written outside the router, straight to the socket; it
/// carries the security headers every other answer carries, with the same values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_refusal_carries_the_security_headers() {
    use legato_test_support::{raw, wait};
    let server = TestServer::start_limited(
        tempfile::tempdir().unwrap(),
        crate::util::config(),
        legato_http::ConnectionLimits {
            max_connections: 1,
            ..legato_http::ConnectionLimits::default()
        },
    )
    .await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let (refused, served) = tokio::task::spawn_blocking(move || {
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        // Busy sending its headers, so that it is not the one making room for the next.
        let mut held = raw::RawConnection::open(addr);
        held.send(b"GET /healthz HTTP/1.1\r\n");
        let refused = wait::until(Duration::from_secs(5), "a 503", || {
            held.send(b"X-Still: here\r\n");
            let answer = raw::request(addr, request, Duration::from_secs(2));
            (raw::status_of(&answer) == 503).then_some(answer)
        });
        drop(held);
        let served = wait::until(Duration::from_secs(5), "a 200", || {
            let answer = raw::request(addr, request, Duration::from_secs(2));
            (raw::status_of(&answer) == 200).then_some(answer)
        });
        (refused, served)
    })
    .await
    .unwrap();
    assert!(refused.contains("too-many-connections"), "{refused}");
    let refused_headers = header_lines(&refused);
    let served_headers = header_lines(&served);
    for name in [
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
        "content-security-policy",
    ] {
        let value = |headers: &[(String, String)]| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert!(value(&served_headers).is_some(), "{name} in {served}");
        assert_eq!(
            value(&refused_headers),
            value(&served_headers),
            "{name}: {refused}"
        );
    }
    // The length still says where the body ends.
    let body = refused.split("\r\n\r\n").nth(1).unwrap_or_default();
    let length = refused_headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>().unwrap());
    assert_eq!(length, Some(body.len()), "{refused}");
    server.stop().await;
}

/// A client trickling a small body (a byte now and then, never pausing long enough for the
/// idle timeout) is cut with 408 once the body is late for its length: PATCH and a Subsonic
/// form POST alike. It held the connection for as long as it kept trickling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_small_bodies_are_cut_when_late() {
    let server = TestServer::start_with(HttpConfig {
        receive: legato_http::ReceiveLimits {
            small_body_grace: Duration::from_secs(1),
            ..legato_http::ReceiveLimits::default()
        },
        subsonic_secret: Some(legato_http::subsonic::SecretKey::from_bytes([7; 32])),
        ..crate::util::config()
    })
    .await;
    let track = server.upload(&song(2.0), "Trickle", "Slow").await;
    let id = track["id"].as_str().unwrap();
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    for head in [
        format!(
            "PATCH /function/crud/{id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n"
        ),
        "POST /rest/ping.view HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            .to_owned(),
    ] {
        let answer = tokio::task::block_in_place(|| {
            let mut connection = legato_test_support::raw::RawConnection::open(addr);
            connection.send(head.as_bytes());
            let started = Instant::now();
            // One byte every 300 ms: never idle for the idle timeout (30 s).
            while started.elapsed() < Duration::from_secs(6) {
                if !connection.send(b"a") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let answer = connection.read_to_close(Duration::from_secs(5));
            (answer, started.elapsed())
        });
        let (answer, took) = answer;
        assert!(answer.starts_with("HTTP/1.1 408"), "{head}: {answer}");
        assert!(answer.contains("upload-too-slow"), "{answer}");
        // 1 s of grace and 100 bytes at the minimum rate: cut within about 2 s.
        assert!(took < Duration::from_secs(6), "{head}: held {took:?}");
    }
    server.stop().await;
}

/// Opens a connection to `addr` from the loopback address `from` (any of 127.0.0.0/8).
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// `GET /healthz` on `stream`: the status line's code.
async fn healthz(mut stream: tokio::net::TcpStream) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    legato_test_support::raw::status_of(&String::from_utf8_lossy(&answer))
}

/// At the connection limit, a listener gets in: the connection that has waited longest on
/// its client (opened and left silent, or trickling a body) is closed to make room for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_silent_and_trickling_connections_make_room_for_a_listener() {
    let server = TestServer::start_limited(
        tempfile::tempdir().unwrap(),
        crate::util::config(),
        legato_http::ConnectionLimits {
            max_connections: 8,
            ..legato_http::ConnectionLimits::default()
        },
    )
    .await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    for i in 0..8u8 {
        let mut stream = connect_from([127, 0, 1, i + 1], addr).await;
        if i % 2 == 0 {
            // Half trickle a form body that will never be whole in time.
            tokio::io::AsyncWriteExt::write_all(
                &mut stream,
                b"POST /rest/ping.view HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 1000\r\n\r\nu=",
            )
            .await
            .unwrap();
        }
        held.push(stream);
    }
    // Every place is taken: a listener is refused until the held ones have been quiet for
    // a second, then served.
    legato_test_support::wait::until(Duration::from_secs(10), "a listener served", || {
        let status = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { healthz(connect_from([127, 0, 0, 3], addr).await).await })
        });
        (status == 200).then_some(())
    });
    // And the room came from the held connections: one of them was closed.
    let closed = held
        .iter()
        .filter(|stream| {
            let mut byte = [0u8; 1];
            !matches!(stream.try_read(&mut byte),
                Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert!(closed >= 1, "no held connection was closed");
    server.stop().await;
}

/// One address holding its share of connections gets 503 for more, while another address is
/// served; its share comes back as its connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_only_its_share_of_the_connections() {
    let server = TestServer::start_limited(
        tempfile::tempdir().unwrap(),
        crate::util::config(),
        legato_http::ConnectionLimits {
            max_connections: 64,
            max_per_address: 4,
            ..legato_http::ConnectionLimits::default()
        },
    )
    .await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 2], addr).await);
    }
    assert_eq!(healthz(connect_from([127, 0, 0, 2], addr).await).await, 503);
    assert_eq!(healthz(connect_from([127, 0, 0, 3], addr).await).await, 200);
    drop(held);
    legato_test_support::wait::until(Duration::from_secs(5), "the share back", || {
        let status = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { healthz(connect_from([127, 0, 0, 2], addr).await).await })
        });
        (status == 200).then_some(())
    });
    server.stop().await;
}

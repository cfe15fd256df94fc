//! Playlists and segments over HTTP: headers, validators, ranges and the seed's alias.

use crate::util::{TestServer, song};

#[tokio::test]
async fn playlist_and_segment_headers() {
    let server = TestServer::start().await;
    let track = server.upload(&song(25.0), "Song", "Band").await;
    let id = track["id"].as_str().unwrap();
    let playlist_url = server.url(&format!("/function/streaming/{id}/index.m3u8"));
    let response = server
        .client
        .get(&playlist_url)
        .header("origin", "http://player.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        headers["cache-control"], "public, no-cache",
        "the plain name follows the track's current playlist: revalidated, never immutable"
    );
    let playlist = response.text().await.unwrap();
    assert_eq!(
        headers["content-length"].to_str().unwrap(),
        playlist.len().to_string()
    );
    assert!(playlist.starts_with("#EXTM3U"));
    for tag in [
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:10",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-ENDLIST",
    ] {
        assert!(playlist.contains(tag), "{tag} missing from\n{playlist}");
    }
    let durations: Vec<f64> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| {
            l.trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(durations.len(), 3);
    let sum: f64 = durations.iter().sum();
    assert!(
        (sum - track["duration"].as_f64().unwrap()).abs() < 0.001,
        "{sum}"
    );

    // The seed's playlist name is an alias.
    let alias = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/outputlist.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(alias.status(), 200);
    assert_eq!(alias.text().await.unwrap(), playlist);

    let segment_url = server.url(&format!("/function/streaming/{id}/seg000.ts"));
    let response = server.client.get(&segment_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp2t");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"),
        "a segment's bytes never change for its name"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong etag: {etag}"
    );
    let segment = response.bytes().await.unwrap();
    assert_eq!(segment.len() % 188, 0);
    assert_eq!(segment[0], 0x47);

    let head = server.client.head(&segment_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        segment.len().to_string()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let cached = server
        .client
        .get(&segment_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let part = server
        .client
        .get(&segment_url)
        .header("range", "bytes=188-375")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 188-375/{}", segment.len())
    );
    assert_eq!(part.bytes().await.unwrap(), segment.slice(188..376));
    let tail = server
        .client
        .get(&segment_url)
        .header("range", "bytes=-100")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap(),
        segment.slice(segment.len() - 100..)
    );
    let beyond = server
        .client
        .get(&segment_url)
        .header("range", format!("bytes={}-", segment.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{}", segment.len())
    );
    let stale = server
        .client
        .get(&segment_url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_segment_reads_agree() {
    let server = TestServer::start().await;
    let track = server.upload(&song(25.0), "Song", "Band").await;
    let id = track["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let client = server.client.clone();
        let url = server.url(&format!("/function/streaming/{id}/seg{:03}.ts", i % 3));
        tasks.push(tokio::spawn(async move {
            (
                i % 3,
                client.get(url).send().await.unwrap().bytes().await.unwrap(),
            )
        }));
    }
    let mut seen: [Option<bytes::Bytes>; 3] = Default::default();
    for task in tasks {
        let (index, bytes) = task.await.unwrap();
        match &seen[index] {
            Some(first) => assert_eq!(first, &bytes),
            None => seen[index] = Some(bytes),
        }
    }
    server.stop().await;
}

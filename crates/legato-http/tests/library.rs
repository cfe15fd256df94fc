//! Lists of a library larger than any page, through real HTTP over a real SQLite store
//! filled through the store API.

use crate::util::{TestServer, config};
use legato_store::conformance::sample_track;
use legato_store::{Analysis, TrackId};
use legato_store_sqlite::SqliteStore;
use serde_json::Value;

const TRACKS: usize = 1_500;

async fn library() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = legato_store::Store::local(std::sync::Arc::new(
        SqliteStore::open_dir(dir.path()).unwrap(),
    ));
    for i in 0..TRACKS {
        let author = if i % 100 == 0 { "Beyoncé" } else { "Band" };
        let mut track = sample_track(&format!("Track {i:04}"), author);
        track.id = TrackId::generate();
        track.created_at += i as i64;
        track.analysis = Some(Analysis {
            loudness_lufs: Some(-10.0),
            true_peak_dbtp: Some(-1.0),
            peaks: vec![0.5; 400],
        });
        store
            .insert_track(track, Box::new(std::iter::empty()))
            .await
            .unwrap();
    }
    drop(store);
    TestServer::start_in(dir, config()).await
}

async fn get(server: &TestServer, query: &[(&str, &str)]) -> reqwest::Response {
    server
        .client
        .get(server.crud())
        .query(query)
        .send()
        .await
        .unwrap()
}

fn names(tracks: &[Value]) -> Vec<&str> {
    tracks.iter().map(|t| t["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_without_limit_returns_every_track() {
    let server = library().await;

    let response = get(&server, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total-count"], "1500");
    assert_eq!(response.headers()["content-type"], "application/json");
    // Streamed as it is read: no length known in advance.
    assert!(response.headers().get("content-length").is_none());
    let all: Vec<Value> = response.json().await.unwrap();
    assert_eq!(all.len(), TRACKS);
    let expected: Vec<String> = (0..TRACKS).map(|i| format!("Track {i:04}")).collect();
    assert_eq!(names(&all), expected, "oldest first, each once");
    // Compact entries: no waveform, the rest of the analysis kept.
    assert!(all.iter().all(|t| t.get("peaks").is_none()));
    assert_eq!(all[0]["loudness"], -10.0);

    let with_peaks: Vec<Value> = get(&server, &[("include", "peaks")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(with_peaks.len(), TRACKS);
    assert!(
        with_peaks
            .iter()
            .all(|t| t["peaks"].as_array().unwrap().len() == 400)
    );
    let one: Value = server
        .client
        .get(format!(
            "{}/{}",
            server.crud(),
            all[7]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["peaks"].as_array().unwrap().len(),
        400,
        "one track keeps its waveform"
    );

    // Search, order and offset without limit.
    let response = get(
        &server,
        &[("q", "beyonce"), ("sort", "name"), ("order", "desc")],
    )
    .await;
    assert_eq!(response.headers()["x-total-count"], "15");
    let found: Vec<Value> = response.json().await.unwrap();
    assert_eq!(names(&found)[..2], ["Track 1400", "Track 1300"]);
    assert_eq!(found.len(), 15);
    let tail: Vec<Value> = get(&server, &[("offset", "1495")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&tail), expected[1495..].to_vec());
    let none = get(&server, &[("q", "%%")]).await;
    assert_eq!(none.headers()["x-total-count"], "0");
    assert_eq!(none.text().await.unwrap(), "[]");
    let beyond = get(&server, &[("offset", "5000")]).await;
    assert_eq!(beyond.text().await.unwrap(), "[]");

    // With limit: pages, as before.
    let response = get(&server, &[("limit", "50"), ("offset", "1450")]).await;
    assert_eq!(response.headers()["x-total-count"], "1500");
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(names(&page), expected[1450..].to_vec());
    assert!(page.iter().all(|t| t.get("peaks").is_none()));

    let bad = get(&server, &[("include", "lyrics")]).await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid-parameter");
    server.stop().await;
}

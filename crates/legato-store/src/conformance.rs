//! The story every backend must pass, written once and run against each of them.
//!
//! A backend's test suite calls [`conformance_tests!`](crate::conformance_tests) with an
//! expression that makes a fresh, empty store; each story then runs on its own store.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashSet;

use bytes::Bytes;

use crate::{
    Chunk, ChunkSource, DynStore, ListQuery, SortKey, SortOrder, StoreError, Track, TrackId,
    TrackPatch,
};

/// Generates one `#[tokio::test]` per story; `$make` is an expression evaluating to a future
/// of a fresh, empty [`DynStore`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@stories $make;
            insert_then_get_and_stream,
            list_search_sort_and_page,
            search_is_literal,
            update_changes_only_given_fields,
            delete_removes_track_and_chunks,
            missing_ids_are_not_found,
            failed_insert_leaves_nothing,
            concurrent_inserts_and_deletes,
            large_track_round_trips,
            ping_answers,
        );
    };
    (@stories $make:expr; $($story:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let store: $crate::DynStore = $make.await;
                $crate::conformance::$story(store).await;
            }
        )*
    };
}

/// A track as the ingest pipeline would describe it.
pub fn sample_track(name: &str, author: &str) -> Track {
    Track {
        id: TrackId::generate(),
        name: name.to_owned(),
        author: author.to_owned(),
        duration: 31.5,
        segments: 3,
        playlist: "index.m3u8".to_owned(),
        codec: Some("mp3".to_owned()),
        bitrate: Some(128),
        sample_rate: Some(44_100),
        channels: Some(2),
        size: Some(504_000),
        created_at: 1_700_000_000_000,
    }
}

fn chunks_for(track: &Track, segment_bytes: usize) -> Vec<Chunk> {
    let mut chunks = vec![Chunk::new(
        track.playlist.clone(),
        format!("#EXTM3U\n# playlist of {}\n", track.id),
    )];
    for i in 0..track.segments {
        let fill = (i as u8)
            .wrapping_mul(31)
            .wrapping_add(track.id.bytes()[11]);
        chunks.push(Chunk::new(
            format!("seg{i:03}.ts"),
            vec![fill; segment_bytes],
        ));
    }
    chunks
}

fn source(chunks: Vec<Chunk>) -> ChunkSource {
    Box::new(chunks.into_iter().map(Ok))
}

async fn insert(store: &DynStore, track: Track) -> Track {
    let chunks = chunks_for(&track, 1000);
    store.insert_track(track, source(chunks)).await.unwrap()
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

pub async fn insert_then_get_and_stream(store: DynStore) {
    let track = sample_track("Like a Prayer", "Madonna");
    let chunks = chunks_for(&track, 4096);
    let stored = store
        .insert_track(track.clone(), source(chunks.clone()))
        .await
        .unwrap();
    assert_eq!(stored, track);
    assert_eq!(store.get_track(&track.id).await.unwrap(), track);
    for chunk in &chunks {
        let bytes = store.get_chunk(&track.id, &chunk.name).await.unwrap();
        assert_eq!(bytes, chunk.bytes, "chunk {}", chunk.name);
    }
    assert_not_found(
        store.get_chunk(&track.id, "seg999.ts").await,
        "unknown chunk",
    );
    assert_not_found(
        store.get_chunk(&track.id, "SEG000.ts").await,
        "names match exactly",
    );
    assert_not_found(
        store.get_chunk(&track.id, "../seg000.ts").await,
        "no path games",
    );
}

pub async fn list_search_sort_and_page(store: DynStore) {
    let empty = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!((empty.tracks.len(), empty.total), (0, 0));

    let mut inserted = Vec::new();
    for i in 0..25u32 {
        let author = if i % 5 == 0 { "Erasure" } else { "a-ha" };
        let mut track = sample_track(&format!("Song {i:02}"), author);
        track.created_at += i64::from(i);
        track.duration = f64::from(100 - i);
        inserted.push(insert(&store, track).await);
    }

    let all = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(all.total, 25);
    assert_eq!(
        all.tracks, inserted,
        "default order is insertion (created_at) order"
    );

    let page = store
        .list_tracks(&ListQuery {
            limit: 10,
            offset: 20,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 25);
    assert_eq!(page.tracks, inserted[20..].to_vec());

    let erasure = store
        .list_tracks(&ListQuery {
            search: Some("erAsUrE".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(erasure.total, 5, "search is case-insensitive on the author");
    assert!(erasure.tracks.iter().all(|t| t.author == "Erasure"));

    let by_name = store
        .list_tracks(&ListQuery {
            search: Some("song 1".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.total, 10, "search matches a substring of the name");

    let by_name_desc = store
        .list_tracks(&ListQuery {
            sort: SortKey::Name,
            order: SortOrder::Desc,
            limit: 3,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_name_desc
        .tracks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["Song 24", "Song 23", "Song 22"]);

    let shortest = store
        .list_tracks(&ListQuery {
            sort: SortKey::Duration,
            limit: 1,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(shortest.tracks[0].name, "Song 24");

    let beyond = store
        .list_tracks(&ListQuery {
            offset: 1000,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((beyond.tracks.len(), beyond.total), (0, 25));
}

pub async fn search_is_literal(store: DynStore) {
    insert(&store, sample_track("100% Pure", "under_score")).await;
    insert(&store, sample_track("1000 Pure", "underXscore")).await;
    insert(&store, sample_track("Dot.Star", "(group) [x]")).await;
    for (needle, expected) in [
        ("100%", 1),
        ("under_", 1),
        ("0%", 1),
        ("%", 1),
        (".*", 0),
        ("(group)", 1),
        ("[x]", 1),
        ("'", 0),
        ("\"", 0),
        ("\\", 0),
    ] {
        let page = store
            .list_tracks(&ListQuery {
                search: Some(needle.into()),
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, expected, "search for {needle:?}");
    }
}

pub async fn update_changes_only_given_fields(store: DynStore) {
    let track = insert(&store, sample_track("Take on me", "a-ha")).await;
    let renamed = store
        .update_track(
            &track.id,
            &TrackPatch {
                name: Some("Take On Me".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Take On Me");
    assert_eq!(renamed.author, "a-ha");
    let reauthored = store
        .update_track(
            &track.id,
            &TrackPatch {
                name: None,
                author: Some("A-ha".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(reauthored.name, "Take On Me");
    assert_eq!(reauthored.author, "A-ha");
    let unchanged = store
        .update_track(&track.id, &TrackPatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, reauthored);
    assert_eq!(store.get_track(&track.id).await.unwrap(), reauthored);
    assert_eq!(
        Track {
            name: track.name.clone(),
            author: track.author.clone(),
            ..reauthored
        },
        track,
        "nothing else changed"
    );
}

pub async fn delete_removes_track_and_chunks(store: DynStore) {
    let keep = insert(&store, sample_track("Keep", "me")).await;
    let gone = insert(&store, sample_track("Delete", "me")).await;
    store.delete_track(&gone.id).await.unwrap();
    assert_not_found(store.get_track(&gone.id).await, "deleted track");
    assert_not_found(
        store.get_chunk(&gone.id, "seg000.ts").await,
        "deleted segment",
    );
    assert_not_found(
        store.get_chunk(&gone.id, "index.m3u8").await,
        "deleted playlist",
    );
    assert_not_found(store.delete_track(&gone.id).await, "second delete");
    let page = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(page.tracks, vec![keep.clone()]);
    assert!(store.get_chunk(&keep.id, "seg002.ts").await.is_ok());
}

pub async fn missing_ids_are_not_found(store: DynStore) {
    insert(&store, sample_track("Present", "x")).await;
    let missing = TrackId::generate();
    assert_not_found(store.get_track(&missing).await, "get");
    assert_not_found(
        store
            .update_track(
                &missing,
                &TrackPatch {
                    name: Some("x".into()),
                    author: None,
                },
            )
            .await,
        "update",
    );
    assert_not_found(store.delete_track(&missing).await, "delete");
    assert_not_found(store.get_chunk(&missing, "index.m3u8").await, "chunk");
}

pub async fn failed_insert_leaves_nothing(store: DynStore) {
    let track = sample_track("Half", "stored");
    let id = track.id;
    let good = chunks_for(&track, 2048);
    let failing: ChunkSource = Box::new(good.into_iter().take(2).map(Ok).chain(std::iter::once(
        Err(StoreError::Source("encoder failed".into())),
    )));
    let result = store.insert_track(track, failing).await;
    assert!(result.is_err(), "insert with a failing source must fail");
    assert_not_found(store.get_track(&id).await, "track of a failed insert");
    assert_not_found(store.get_chunk(&id, "index.m3u8").await, "its playlist");
    assert_not_found(store.get_chunk(&id, "seg000.ts").await, "its segment");
    let page = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(page.total, 0);

    // A duplicate chunk name is a failure too, and must not leave the first copy behind.
    let track = sample_track("Dup", "chunks");
    let id = track.id;
    let dup = vec![Chunk::new("seg000.ts", "a"), Chunk::new("seg000.ts", "b")];
    assert!(store.insert_track(track, source(dup)).await.is_err());
    assert_not_found(store.get_chunk(&id, "seg000.ts").await, "duplicate chunk");
    assert_not_found(store.get_track(&id).await, "track with duplicate chunks");
}

pub async fn concurrent_inserts_and_deletes(store: DynStore) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            insert(&store, sample_track(&format!("Parallel {i}"), "many")).await
        }));
    }
    let mut tracks = Vec::new();
    for task in tasks {
        tracks.push(task.await.unwrap());
    }
    let ids: HashSet<_> = tracks.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 16);

    let mut tasks = Vec::new();
    for track in tracks.iter().step_by(2) {
        let store = store.clone();
        let id = track.id;
        tasks.push(tokio::spawn(async move { store.delete_track(&id).await }));
    }
    // Inserts racing the deletes.
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            insert(&store, sample_track(&format!("Late {i}"), "many")).await;
            Ok(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let page = store
        .list_tracks(&ListQuery {
            limit: 1000,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 16);
    for track in tracks.iter().skip(1).step_by(2) {
        let bytes = store.get_chunk(&track.id, "seg001.ts").await.unwrap();
        assert_eq!(bytes.len(), 1000);
    }
}

pub async fn large_track_round_trips(store: DynStore) {
    let mut track = sample_track("Long", "Mix");
    track.segments = 120;
    let chunks = chunks_for(&track, 256 * 1024);
    let expected: Vec<(String, Bytes)> = chunks
        .iter()
        .map(|c| (c.name.clone(), c.bytes.clone()))
        .collect();
    store
        .insert_track(track.clone(), source(chunks))
        .await
        .unwrap();
    for (name, bytes) in expected {
        assert_eq!(store.get_chunk(&track.id, &name).await.unwrap(), bytes);
    }
}

pub async fn ping_answers(store: DynStore) {
    store.ping().await.unwrap();
    assert!(!store.describe().is_empty());
}

//! The stories every backend must pass, written once and run against each of them.
//!
//! The catalog's: a backend's test suite calls [`conformance_tests!`](crate::conformance_tests)
//! with an expression that makes a fresh, empty store; each story then runs on its own store
//! (a catalog with its blobs, so publish-last is checked across the two). The blob contract's
//! are in [`blobs`].
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod blobs;

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::{
    Analysis, Chunk, ChunkSource, DynStore, ItemKind, ItemRef, ListQuery, PlayCount, Playlist,
    PlaylistPatch, SortKey, SortOrder, SourceInfo, StoreError, Track, TrackId, TrackPatch,
    TrackStatus, User, UserKey, Variant,
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
            search_and_order_ignore_case_and_accents,
            stream_lists_everything_in_order,
            waveform_only_when_asked,
            renamed_tracks_are_found_by_their_new_name,
            update_changes_only_given_fields,
            delete_removes_track_and_chunks,
            missing_ids_are_not_found,
            failed_insert_leaves_nothing,
            concurrent_inserts_and_deletes,
            large_track_round_trips,
            ping_answers,
            pending_track_lifecycle,
            completing_a_deleted_pending_track_keeps_nothing,
            stale_processing_is_failed,
            analysis_is_attached,
            accepted_upload_is_durable_with_its_job,
            a_playable_upload_is_published_with_its_follow_up,
            a_finished_ingest_becomes_its_follow_up,
            claims_are_exclusive_and_leases_expire,
            only_one_of_two_racing_publishes_wins,
            reprocessing_replaces_renditions_at_once,
            tags_round_trip,
            tracks_are_found_by_their_source_digest,
            library_version_follows_every_change,
            changes_are_followed_from_a_cursor,
            users_and_their_keys,
            stars_ratings_and_plays,
            deleting_a_user_removes_what_they_kept,
            playlists_are_patched_in_order,
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

/// A story: its name and the function that plays it on a fresh store.
pub type Story = (
    &'static str,
    fn(DynStore) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

/// Every story, for a test that plays them all on one instrumented backend (the MongoDB
/// store's query-shape test). The same list as [`conformance_tests!`](crate::conformance_tests)
/// (a test below keeps the two in step).
pub fn every_story() -> Vec<Story> {
    vec![
        ("insert_then_get_and_stream", |s| {
            Box::pin(insert_then_get_and_stream(s))
        }),
        ("list_search_sort_and_page", |s| {
            Box::pin(list_search_sort_and_page(s))
        }),
        ("search_is_literal", |s| Box::pin(search_is_literal(s))),
        ("update_changes_only_given_fields", |s| {
            Box::pin(update_changes_only_given_fields(s))
        }),
        ("delete_removes_track_and_chunks", |s| {
            Box::pin(delete_removes_track_and_chunks(s))
        }),
        ("missing_ids_are_not_found", |s| {
            Box::pin(missing_ids_are_not_found(s))
        }),
        ("failed_insert_leaves_nothing", |s| {
            Box::pin(failed_insert_leaves_nothing(s))
        }),
        ("concurrent_inserts_and_deletes", |s| {
            Box::pin(concurrent_inserts_and_deletes(s))
        }),
        ("large_track_round_trips", |s| {
            Box::pin(large_track_round_trips(s))
        }),
        ("ping_answers", |s| Box::pin(ping_answers(s))),
        ("pending_track_lifecycle", |s| {
            Box::pin(pending_track_lifecycle(s))
        }),
        ("completing_a_deleted_pending_track_keeps_nothing", |s| {
            Box::pin(completing_a_deleted_pending_track_keeps_nothing(s))
        }),
        ("stale_processing_is_failed", |s| {
            Box::pin(stale_processing_is_failed(s))
        }),
        ("analysis_is_attached", |s| {
            Box::pin(analysis_is_attached(s))
        }),
        ("search_and_order_ignore_case_and_accents", |s| {
            Box::pin(search_and_order_ignore_case_and_accents(s))
        }),
        ("stream_lists_everything_in_order", |s| {
            Box::pin(stream_lists_everything_in_order(s))
        }),
        ("waveform_only_when_asked", |s| {
            Box::pin(waveform_only_when_asked(s))
        }),
        ("renamed_tracks_are_found_by_their_new_name", |s| {
            Box::pin(renamed_tracks_are_found_by_their_new_name(s))
        }),
        ("accepted_upload_is_durable_with_its_job", |s| {
            Box::pin(accepted_upload_is_durable_with_its_job(s))
        }),
        ("a_playable_upload_is_published_with_its_follow_up", |s| {
            Box::pin(a_playable_upload_is_published_with_its_follow_up(s))
        }),
        ("a_finished_ingest_becomes_its_follow_up", |s| {
            Box::pin(a_finished_ingest_becomes_its_follow_up(s))
        }),
        ("claims_are_exclusive_and_leases_expire", |s| {
            Box::pin(claims_are_exclusive_and_leases_expire(s))
        }),
        ("only_one_of_two_racing_publishes_wins", |s| {
            Box::pin(only_one_of_two_racing_publishes_wins(s))
        }),
        ("reprocessing_replaces_renditions_at_once", |s| {
            Box::pin(reprocessing_replaces_renditions_at_once(s))
        }),
        ("tags_round_trip", |s| Box::pin(tags_round_trip(s))),
        ("tracks_are_found_by_their_source_digest", |s| {
            Box::pin(tracks_are_found_by_their_source_digest(s))
        }),
        ("library_version_follows_every_change", |s| {
            Box::pin(library_version_follows_every_change(s))
        }),
        ("changes_are_followed_from_a_cursor", |s| {
            Box::pin(changes_are_followed_from_a_cursor(s))
        }),
        ("users_and_their_keys", |s| {
            Box::pin(users_and_their_keys(s))
        }),
        ("stars_ratings_and_plays", |s| {
            Box::pin(stars_ratings_and_plays(s))
        }),
        ("deleting_a_user_removes_what_they_kept", |s| {
            Box::pin(deleting_a_user_removes_what_they_kept(s))
        }),
        ("playlists_are_patched_in_order", |s| {
            Box::pin(playlists_are_patched_in_order(s))
        }),
    ]
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
        album: Some("Like a Prayer".to_owned()),
        year: Some(1989),
        album_artist: Some("Various Artists".into()),
        genre: Some("Electronic".into()),
        track_number: Some(3),
        disc_number: Some(1),
        status: TrackStatus::Ready,
        error: None,
        variants: vec![
            Variant {
                name: "64k".to_owned(),
                bitrate: 64,
                bandwidth: 70_000,
                average_bandwidth: 66_000,
                codecs: "mp4a.40.34".to_owned(),
                playlist: "64k.m3u8".to_owned(),
            },
            Variant {
                name: "original".to_owned(),
                bitrate: 128,
                bandwidth: 140_000,
                average_bandwidth: 132_000,
                codecs: "mp4a.40.34".to_owned(),
                playlist: "original.m3u8".to_owned(),
            },
        ],
        cover: Some("cover.jpg".to_owned()),
        analysis: None,
        source: None,
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

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
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
    assert_eq!(
        by_name.total, 10,
        "search matches word prefixes of the name"
    );

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
    // Punctuation only separates words, and no query syntax (FTS5's, regular expressions')
    // is ever read as such.
    for (needle, expected) in [
        ("100%", 2),
        ("1000", 1),
        ("under_", 2),
        ("under_score", 1),
        ("0%", 0),
        ("%", 0),
        (".*", 0),
        ("(group)", 1),
        ("[x]", 1),
        ("'", 0),
        ("\"", 0),
        ("\\", 0),
        ("dot*", 1),
        ("^dot", 1),
        ("d.s", 1),
        ("pure OR dot", 0),
        ("pure AND 100", 0),
        ("NEAR(pure 100)", 0),
        ("pure -1000", 1),
        ("star\"", 1),
        ("name_key:dot", 0),
        ("{author_key}: x", 0),
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

fn pending(name: &str) -> Track {
    Track {
        status: TrackStatus::Processing,
        duration: 0.0,
        segments: 0,
        variants: Vec::new(),
        cover: None,
        ..sample_track(name, "async")
    }
}

pub async fn pending_track_lifecycle(store: DynStore) {
    let accepted = store.insert_pending(pending("Long mix")).await.unwrap();
    assert_eq!(accepted.status, TrackStatus::Processing);
    let listed = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(
        listed.tracks,
        vec![accepted.clone()],
        "pending tracks are listed"
    );
    assert_eq!(store.get_track(&accepted.id).await.unwrap(), accepted);
    assert_not_found(
        store.get_chunk(&accepted.id, "index.m3u8").await,
        "pending tracks are not streamed",
    );

    // Publishing writes the source description too (an MP3 kept as its segments).
    let ready = Track {
        status: TrackStatus::Ready,
        duration: 31.5,
        segments: 3,
        source: Some(crate::SourceInfo {
            format: "mp3".into(),
            size: 1500,
            sha256: "ef".repeat(32),
            file_name: Some("mix.mp3".into()),
            pieces: 0,
            remainder: Some("original.rest".into()),
        }),
        ..accepted.clone()
    };
    let chunks = chunks_for(&ready, 500);
    let completed = store
        .complete_track(ready.clone(), source(chunks))
        .await
        .unwrap();
    assert_eq!(completed, ready);
    assert_eq!(store.get_track(&ready.id).await.unwrap(), ready);
    assert_eq!(
        store.get_chunk(&ready.id, "seg002.ts").await.unwrap().len(),
        500
    );
    assert_eq!(
        store
            .list_tracks(&ListQuery::default())
            .await
            .unwrap()
            .total,
        1
    );

    let doomed = store.insert_pending(pending("Broken")).await.unwrap();
    store
        .fail_track(&doomed.id, "not an audio file")
        .await
        .unwrap();
    let failed = store.get_track(&doomed.id).await.unwrap();
    assert_eq!(failed.status, TrackStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("not an audio file"));
    assert_not_found(
        store.fail_track(&TrackId::generate(), "x").await,
        "failing an unknown track",
    );
    store.delete_track(&doomed.id).await.unwrap();
}

pub async fn completing_a_deleted_pending_track_keeps_nothing(store: DynStore) {
    let accepted = store
        .insert_pending(pending("Deleted early"))
        .await
        .unwrap();
    store.delete_track(&accepted.id).await.unwrap();
    let ready = Track {
        status: TrackStatus::Ready,
        segments: 3,
        ..accepted.clone()
    };
    let chunks = chunks_for(&ready, 100);
    assert_not_found(
        store.complete_track(ready, source(chunks)).await,
        "completing a deleted track",
    );
    assert_not_found(store.get_track(&accepted.id).await, "the deleted track");
    assert_not_found(
        store.get_chunk(&accepted.id, "seg000.ts").await,
        "chunks of the deleted track",
    );
}

pub async fn stale_processing_is_failed(store: DynStore) {
    let mut old = pending("Old");
    old.created_at = 1_000;
    let old = store.insert_pending(old).await.unwrap();
    let mut young = pending("Young");
    young.created_at = 5_000;
    let young = store.insert_pending(young).await.unwrap();
    let done = insert(&store, sample_track("Done", "x")).await;
    assert_eq!(store.fail_stale_processing(2_000).await.unwrap(), 1);
    let old = store.get_track(&old.id).await.unwrap();
    assert_eq!(old.status, TrackStatus::Failed);
    assert!(old.error.is_some_and(|e| !e.is_empty()));
    assert_eq!(
        store.get_track(&young.id).await.unwrap().status,
        TrackStatus::Processing
    );
    assert_eq!(
        store.get_track(&done.id).await.unwrap().status,
        TrackStatus::Ready
    );
}

pub async fn analysis_is_attached(store: DynStore) {
    let track = insert(&store, sample_track("Loud", "x")).await;
    let analysis = Analysis {
        loudness_lufs: Some(-14.25),
        true_peak_dbtp: Some(-0.5),
        peaks: vec![0.0, 0.5, 1.0, 0.25],
    };
    store.set_analysis(&track.id, &analysis).await.unwrap();
    let shown = store.get_track(&track.id).await.unwrap();
    assert_eq!(shown.analysis, Some(analysis.clone()));
    assert_eq!(
        Track {
            analysis: None,
            ..shown
        },
        track
    );
    assert_not_found(
        store.set_analysis(&TrackId::generate(), &analysis).await,
        "analysis of an unknown track",
    );
}

/// Names and authors in several scripts: what each search finds and the order by name are
/// fixed, so every backend answers the same.
pub async fn search_and_order_ignore_case_and_accents(store: DynStore) {
    let library = [
        ("Crazy in Love", "Beyoncé"),
        ("Déjà Vu", "BEYONCÉ"),
        ("Ærøskøbing", "Sigur Rós"),
        ("Straße", "Kraftwerk"),
        ("Лебединое озеро", "Чайковский"),
        ("Οδύσσεια", "ΒΑΓΓΕΛΗΣ"),
        ("坂本龍一", "戦場のメリークリスマス"),
        ("नमस्ते", "Ravi Shankar"),
        ("강남스타일", "싸이"),
        ("İstanbul", "Sezen Aksu"),
        ("zebra", "abba"),
        ("Zulu", "ABBA"),
    ];
    for (i, (name, author)) in library.iter().enumerate() {
        let mut track = sample_track(name, author);
        track.created_at += i as i64;
        insert(&store, track).await;
    }
    let found = |needle: &'static str| {
        let store = store.clone();
        async move {
            let page = store
                .list_tracks(&ListQuery {
                    search: Some(needle.into()),
                    sort: SortKey::Name,
                    ..ListQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(page.total as usize, page.tracks.len(), "{needle}");
            page.tracks.into_iter().map(|t| t.name).collect::<Vec<_>>()
        }
    };
    for (needle, expected) in [
        ("beyonce", &["Crazy in Love", "Déjà Vu"][..]),
        ("BEYONCÉ", &["Crazy in Love", "Déjà Vu"]),
        ("Beyoncé love", &["Crazy in Love"]),
        ("déjà", &["Déjà Vu"]),
        ("DEJA VU", &["Déjà Vu"]),
        ("aeroskobing", &["Ærøskøbing"]),
        ("ærø", &["Ærøskøbing"]),
        ("ros", &["Ærøskøbing"]),
        ("strasse", &["Straße"]),
        ("STRASSE", &["Straße"]),
        ("чайк", &["Лебединое озеро"]),
        ("ЧАЙКОВСКИЙ", &["Лебединое озеро"]),
        ("озеро лебед", &["Лебединое озеро"]),
        ("οδυσσεια", &["Οδύσσεια"]),
        ("ΟΔΎΣΣΕΙΑ", &["Οδύσσεια"]),
        ("βαγγελης", &["Οδύσσεια"]),
        ("坂本", &["坂本龍一"]),
        ("戦場", &["坂本龍一"]),
        ("नमस्ते", &["नमस्ते"]),
        ("강남", &["강남스타일"]),
        ("istanbul", &["İstanbul"]),
        ("İSTANBUL", &["İstanbul"]),
        ("abba", &["zebra", "Zulu"]),
        ("z", &["zebra", "Zulu"]),
        ("love beyonce crazy", &["Crazy in Love"]),
        ("eyonce", &[]),
        ("beyonces", &[]),
    ] {
        assert_eq!(found(needle).await, expected, "search for {needle:?}");
    }

    // By name: case and accents ignored, then code point order across scripts.
    let by_name = store
        .list_tracks(&ListQuery {
            sort: SortKey::Name,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_name.tracks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Ærøskøbing",
            "Crazy in Love",
            "Déjà Vu",
            "İstanbul",
            "Straße",
            "zebra",
            "Zulu",
            "Οδύσσεια",
            "Лебединое озеро",
            "नमस्ते",
            "강남스타일",
            "坂本龍一",
        ]
    );
    // By author, descending: equal keys (abba, ABBA) fall back on the id, descending too.
    let by_author = store
        .list_tracks(&ListQuery {
            sort: SortKey::Author,
            order: SortOrder::Desc,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let tail: Vec<_> = by_author.tracks[by_author.tracks.len() - 2..].to_vec();
    assert!(tail.iter().all(|t| t.author.eq_ignore_ascii_case("abba")));
    assert!(tail[0].id > tail[1].id, "ties by id, descending");
}

/// A list without a limit: every track, in the query's order, however many.
pub async fn stream_lists_everything_in_order(store: DynStore) {
    const N: usize = 1_100;
    let mut inserted = Vec::with_capacity(N);
    for i in 0..N {
        let mut track = pending(&format!("Item {:04}", N - i));
        track.author = format!("Band {:02}", i % 50);
        track.created_at = 1_700_000_000_000 + i as i64;
        track.duration = (i % 7) as f64;
        inserted.push(store.insert_pending(track).await.unwrap());
    }
    let all: Vec<Track> = store
        .stream_tracks(&ListQuery::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), N);
    assert_eq!(all, inserted, "oldest first, each once");

    // Any order, any search, from an offset: the same tracks as the pages.
    for query in [
        ListQuery {
            sort: SortKey::Name,
            order: SortOrder::Desc,
            offset: 10,
            ..ListQuery::default()
        },
        ListQuery {
            sort: SortKey::Duration,
            search: Some("band 07".into()),
            ..ListQuery::default()
        },
        ListQuery {
            sort: SortKey::Author,
            offset: 2_000,
            ..ListQuery::default()
        },
        ListQuery {
            search: Some("-".into()),
            ..ListQuery::default()
        },
    ] {
        let streamed: Vec<Track> = store
            .stream_tracks(&query)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut paged = Vec::new();
        loop {
            let page = store
                .list_tracks(&ListQuery {
                    limit: 1000,
                    offset: query.offset + paged.len() as u64,
                    ..query.clone()
                })
                .await
                .unwrap();
            if page.tracks.is_empty() {
                break;
            }
            paged.extend(page.tracks);
        }
        assert_eq!(streamed, paged, "{query:?}");
    }
    let names: Vec<Track> = store
        .stream_tracks(&ListQuery {
            sort: SortKey::Name,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names.first().unwrap().name, "Item 0001");
    assert_eq!(names.last().unwrap().name, format!("Item {N:04}"));

    // A client that stops reading early leaves the store usable.
    let mut stream = store.stream_tracks(&ListQuery::default()).await.unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    drop(stream);
    store.ping().await.unwrap();
}

/// The waveform is the bulk of a track's metadata: lists carry it only when asked.
pub async fn waveform_only_when_asked(store: DynStore) {
    let track = insert(&store, sample_track("Wave", "Form")).await;
    let analysis = Analysis {
        loudness_lufs: Some(-9.5),
        true_peak_dbtp: Some(-0.25),
        peaks: (0..400).map(|i| i as f32 / 400.0).collect(),
    };
    store.set_analysis(&track.id, &analysis).await.unwrap();
    let compact = Analysis {
        peaks: Vec::new(),
        ..analysis.clone()
    };
    let listed = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(listed.tracks[0].analysis, Some(compact.clone()));
    let streamed: Vec<Track> = store
        .stream_tracks(&ListQuery::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed[0].analysis, Some(compact));
    let asked = ListQuery {
        peaks: true,
        ..ListQuery::default()
    };
    let listed = store.list_tracks(&asked).await.unwrap();
    assert_eq!(listed.tracks[0].analysis, Some(analysis.clone()));
    let streamed: Vec<Track> = store
        .stream_tracks(&asked)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed[0].analysis, Some(analysis.clone()));
    assert_eq!(
        store.get_track(&track.id).await.unwrap().analysis,
        Some(analysis)
    );
}

pub async fn renamed_tracks_are_found_by_their_new_name(store: DynStore) {
    let track = insert(&store, sample_track("Old Title", "Somebody")).await;
    insert(&store, sample_track("Middle", "Nobody")).await;
    let search = |needle: &str| ListQuery {
        search: Some(needle.into()),
        ..ListQuery::default()
    };
    store
        .update_track(
            &track.id,
            &TrackPatch {
                name: Some("Über Neu".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(store.list_tracks(&search("old")).await.unwrap().total, 0);
    assert_eq!(store.list_tracks(&search("uber")).await.unwrap().total, 1);
    assert_eq!(
        store
            .list_tracks(&search("somebody neu"))
            .await
            .unwrap()
            .total,
        1
    );
    store
        .update_track(
            &track.id,
            &TrackPatch {
                name: None,
                author: Some("Zed".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_tracks(&search("somebody")).await.unwrap().total,
        0
    );
    assert_eq!(
        store.list_tracks(&search("zed über")).await.unwrap().total,
        1
    );
    let by_name = store
        .list_tracks(&ListQuery {
            sort: SortKey::Name,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = by_name.tracks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Middle", "Über Neu"]);
    store.delete_track(&track.id).await.unwrap();
    assert_eq!(store.list_tracks(&search("zed")).await.unwrap().total, 0);
}

pub async fn accepted_upload_is_durable_with_its_job(store: DynStore) {
    let mut track = pending("Kept");
    track.source = Some(crate::SourceInfo {
        format: "flac".into(),
        size: 5,
        sha256: "ab".repeat(32),
        file_name: Some("kept.flac".into()),
        pieces: 2,
        remainder: None,
    });
    let pieces = vec![
        Chunk::new("source/0000", vec![1u8, 2, 3]),
        Chunk::new("source/0001", vec![4u8, 5]),
    ];
    let accepted = store
        .accept_track(track.clone(), source(pieces))
        .await
        .unwrap();
    assert_eq!(store.get_track(&accepted.id).await.unwrap(), track);
    assert_eq!(
        &store
            .get_stored_chunk(&track.id, "source/0001")
            .await
            .unwrap()[..],
        &[4, 5],
        "the source is readable while processing"
    );
    assert_not_found(
        store.get_chunk(&track.id, "source/0000").await,
        "a processing track is not streamed",
    );
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.attempts, job.claims),
        (crate::JobState::Queued, 0, 0)
    );
    assert_eq!(store.job_counts().await.unwrap().queued, 1);
    let mut names = store.chunk_names(&track.id).await.unwrap();
    names.sort();
    assert_eq!(names, ["source/0000", "source/0001"]);
    assert_eq!(
        store.fail_stale_processing(i64::MAX).await.unwrap(),
        0,
        "a track with a job is not stale"
    );
    store.delete_track(&track.id).await.unwrap();
    assert!(
        store.get_job(&track.id).await.unwrap().is_none(),
        "deleted with its track"
    );
    assert!(store.chunk_names(&track.id).await.unwrap().is_empty());
}

/// An upload playable at once (an MP3's passthrough rendition): published with its chunks,
/// streamable straight away, and a reprocessing queued to make its other renditions, whose
/// claim names a generation the first renditions do not use.
pub async fn a_playable_upload_is_published_with_its_follow_up(store: DynStore) {
    let track = sample_track("Played at once", "follow-up");
    let chunks = vec![
        Chunk::new("index.m3u8", b"#EXTM3U\n# first".to_vec()),
        Chunk::new("seg000.ts", vec![3u8; 100]),
    ];
    let published = store
        .publish_with_follow_up(track.clone(), source(chunks), 1)
        .await
        .unwrap();
    assert_eq!(published, track);
    assert_eq!(store.get_track(&track.id).await.unwrap(), track);
    assert_eq!(
        &store.get_chunk(&track.id, "seg000.ts").await.unwrap()[..],
        &[3u8; 100],
        "streamable at once"
    );
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(
        (job.kind, job.state, job.attempts, job.claims),
        (crate::JobKind::Reprocess, crate::JobState::Queued, 0, 1)
    );
    assert_eq!(
        store.job_counts().await.unwrap().queued,
        0,
        "a follow-up does not count against uploads"
    );
    let now = 1_000_000;
    let claimed = store
        .claim_job("a", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.track_id, claimed.kind, claimed.claims),
        (track.id, crate::JobKind::Reprocess, 2),
        "the follow-up writes generation 2"
    );
    store.delete_track(&track.id).await.unwrap();
    assert!(store.get_job(&track.id).await.unwrap().is_none());
    assert!(store.chunk_names(&track.id).await.unwrap().is_empty());
}

/// An upload that had to be decoded publishes its first rendition, then its ingest job
/// becomes the follow-up that makes the rest (only for the claim that published).
pub async fn a_finished_ingest_becomes_its_follow_up(store: DynStore) {
    let track = pending("Decoded");
    store
        .accept_track(
            track.clone(),
            source(vec![Chunk::new("source/0000", vec![1u8])]),
        )
        .await
        .unwrap();
    let now = 1_000_000;
    let ingest = store
        .claim_job("a", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ingest.kind, ingest.claims), (crate::JobKind::Ingest, 1));
    let first = Track {
        status: TrackStatus::Ready,
        duration: 20.0,
        segments: 1,
        ..track.clone()
    };
    store
        .complete_track(
            first,
            source(vec![
                Chunk::new("index.m3u8", b"#EXTM3U\n".to_vec()),
                Chunk::new("seg000.ts", vec![2u8; 10]),
            ]),
        )
        .await
        .unwrap();
    // Another claim's word changes nothing.
    store.follow_up_job(&track.id, 7, now + 1).await.unwrap();
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(
        (job.kind, job.state),
        (crate::JobKind::Ingest, crate::JobState::Running)
    );
    store.follow_up_job(&track.id, 1, now + 2).await.unwrap();
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(
        (job.kind, job.state, job.attempts, job.claims, job.owner),
        (
            crate::JobKind::Reprocess,
            crate::JobState::Queued,
            0,
            1,
            None
        )
    );
    let follow_up = store
        .claim_job("b", now + 3, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (follow_up.track_id, follow_up.kind, follow_up.claims),
        (track.id, crate::JobKind::Reprocess, 2)
    );
}

pub async fn claims_are_exclusive_and_leases_expire(store: DynStore) {
    let track = pending("Queued");
    store
        .accept_track(track.clone(), source(Vec::new()))
        .await
        .unwrap();
    let now = 1_000_000;
    let first = store
        .claim_job("a", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.track_id, first.attempts, first.claims),
        (track.id, 1, 1)
    );
    assert_eq!(first.owner.as_deref(), Some("a"));
    assert!(
        store
            .claim_job("b", now + 1, now + 30_001)
            .await
            .unwrap()
            .is_none(),
        "a held claim is not given twice"
    );
    assert!(store.renew_job(&track.id, 1, now + 60_000).await.unwrap());
    assert!(
        store
            .claim_job("b", now + 40_000, now + 70_000)
            .await
            .unwrap()
            .is_none()
    );
    // The lease lapses (the holder died): another process takes the job over.
    let second = store
        .claim_job("b", now + 60_001, now + 90_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.attempts, second.claims), (2, 2));
    assert!(
        !store.renew_job(&track.id, 1, now + 99_000).await.unwrap(),
        "the old claim is fenced off"
    );
    // A release at shutdown gives the attempt back and makes the job due at once.
    store
        .release_job(&track.id, 2, now + 61_000, None, false)
        .await
        .unwrap();
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (crate::JobState::Queued, 1));
    let third = store
        .claim_job("c", now + 61_000, now + 91_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((third.attempts, third.claims), (2, 3));
    store.fail_job(&track.id, 3, "broken").await.unwrap();
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(job.state, crate::JobState::Failed);
    assert_eq!(job.last_error.as_deref(), Some("broken"));
    assert!(
        store
            .claim_job("d", now + 200_000, now + 300_000)
            .await
            .unwrap()
            .is_none()
    );
    store.enqueue_job(&track.id, now + 200_000).await.unwrap();
    let again = store
        .claim_job("d", now + 200_001, now + 300_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.attempts, again.claims),
        (1, 4),
        "claims never go back"
    );
    store.finish_job(&track.id, 4).await.unwrap();
    assert!(store.get_job(&track.id).await.unwrap().is_none());
}

pub async fn only_one_of_two_racing_publishes_wins(store: DynStore) {
    let track = pending("Raced");
    let pieces = vec![Chunk::new("source/0000", vec![9u8; 10])];
    store
        .accept_track(track.clone(), source(pieces))
        .await
        .unwrap();
    store
        .update_track(
            &track.id,
            &TrackPatch {
                name: Some("Renamed meanwhile".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    let ready = |prefix: &str| Track {
        status: TrackStatus::Ready,
        duration: 20.0,
        segments: 2,
        playlist: format!("{prefix}index.m3u8"),
        ..track.clone()
    };
    let chunks = |prefix: &str| {
        source(vec![
            Chunk::new(format!("{prefix}index.m3u8"), b"#EXTM3U".to_vec()),
            Chunk::new(format!("{prefix}seg000.ts"), vec![1u8; 100]),
        ])
    };
    let (a, b) = tokio::join!(
        store.complete_track(ready(""), chunks("")),
        store.complete_track(ready("g2-"), chunks("g2-")),
    );
    let (winner, loser) = match (a, b) {
        (Ok(t), Err(e)) | (Err(e), Ok(t)) => (t, e),
        other => panic!("exactly one publish must win: {other:?}"),
    };
    assert!(matches!(loser, StoreError::NotFound(_)), "{loser:?}");
    assert_eq!(
        winner.name, "Renamed meanwhile",
        "a rename made meanwhile stays"
    );
    assert_eq!(winner.status, TrackStatus::Ready);
    assert_eq!(store.get_track(&track.id).await.unwrap(), winner);
    let prefix = winner.playlist.trim_end_matches("index.m3u8").to_owned();
    let mut names = store.chunk_names(&track.id).await.unwrap();
    names.sort();
    let mut expected = vec![
        format!("{prefix}index.m3u8"),
        format!("{prefix}seg000.ts"),
        "source/0000".to_owned(),
    ];
    expected.sort();
    assert_eq!(names, expected, "the loser's chunks are not kept");
}

pub async fn reprocessing_replaces_renditions_at_once(store: DynStore) {
    let track = pending("Reprocessed");
    let pieces = vec![Chunk::new("source/0000", vec![7u8; 10])];
    store
        .accept_track(track.clone(), source(pieces))
        .await
        .unwrap();
    assert!(
        matches!(
            store.enqueue_reprocess(&track.id, 1, 0).await,
            Err(StoreError::Invalid(_))
        ),
        "a processing track is not reprocessed"
    );
    assert_not_found(
        store.enqueue_reprocess(&TrackId::generate(), 1, 0).await,
        "no such track",
    );
    // The first generation, as an ingest publishes it.
    let now = 1_000_000;
    let ingest = store
        .claim_job("a", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ingest.kind, ingest.claims), (crate::JobKind::Ingest, 1));
    let first = Track {
        status: TrackStatus::Ready,
        duration: 20.0,
        segments: 1,
        ..track.clone()
    };
    let first_chunks = vec![
        Chunk::new("index.m3u8", b"#EXTM3U\n# first".to_vec()),
        Chunk::new("seg000.ts", vec![1u8; 100]),
    ];
    store
        .complete_track(first.clone(), source(first_chunks))
        .await
        .unwrap();
    store.finish_job(&track.id, 1).await.unwrap();

    // Queued once; asking again while it waits changes nothing.
    assert_eq!(
        store
            .enqueue_reprocess(&track.id, now + 1, 1)
            .await
            .unwrap(),
        crate::Enqueued::Queued
    );
    assert_eq!(
        store
            .enqueue_reprocess(&track.id, now + 2, 1)
            .await
            .unwrap(),
        crate::Enqueued::Pending
    );
    assert_eq!(
        store.job_counts().await.unwrap().queued,
        0,
        "reprocessings do not count against uploads"
    );
    // An upload queued later is still claimed first.
    let upload = pending("Uploaded later");
    store
        .accept_track(upload.clone(), source(Vec::new()))
        .await
        .unwrap();
    let first_claim = store
        .claim_job("b", now + 5, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first_claim.track_id, first_claim.kind),
        (upload.id, crate::JobKind::Ingest)
    );
    store.delete_track(&upload.id).await.unwrap();
    let job = store
        .claim_job("b", now + 10, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.kind, job.claims, job.attempts),
        (crate::JobKind::Reprocess, 2, 1),
        "the claim count goes on from the generations the track had"
    );
    store
        .update_track(
            &track.id,
            &TrackPatch {
                name: Some("Renamed meanwhile".into()),
                author: None,
            },
        )
        .await
        .unwrap();

    // The source moves with the renditions: here into a remainder chunk of generation 2.
    let moved_source = crate::SourceInfo {
        format: "mp3".into(),
        size: 10,
        sha256: "cd".repeat(32),
        file_name: None,
        pieces: 0,
        remainder: Some("g2-original.rest".into()),
    };
    let second = Track {
        duration: 20.5,
        segments: 2,
        source: Some(moved_source.clone()),
        playlist: "g2-index.m3u8".into(),
        variants: vec![Variant {
            name: "64k".into(),
            bitrate: 64,
            bandwidth: 70_000,
            average_bandwidth: 66_000,
            codecs: "mp4a.40.34".into(),
            playlist: "g2-64k.m3u8".into(),
        }],
        cover: Some("g2-cover.jpg".into()),
        // Tags read again from the source (a version that reads more of them).
        genre: Some("Ambient".into()),
        disc_number: Some(2),
        ..first.clone()
    };
    let second_chunks = || {
        source(vec![
            Chunk::new("g2-index.m3u8", b"#EXTM3U\n# master".to_vec()),
            Chunk::new("g2-64k.m3u8", b"#EXTM3U\n# media".to_vec()),
            Chunk::new("g2-64k-000.ts", vec![2u8; 100]),
            Chunk::new("g2-64k-001.ts", vec![3u8; 100]),
            Chunk::new("g2-cover.jpg", vec![4u8; 10]),
        ])
    };
    // A claim that is not the running one is fenced off and keeps nothing.
    assert_not_found(
        store
            .replace_renditions(second.clone(), second_chunks(), 1, 50_000)
            .await,
        "an old claim",
    );
    let mut names = store.chunk_names(&track.id).await.unwrap();
    names.sort();
    assert_eq!(names, ["index.m3u8", "seg000.ts", "source/0000"]);
    assert_eq!(
        store.get_track(&track.id).await.unwrap().playlist,
        "index.m3u8",
        "still on its first generation"
    );

    let replaced = store
        .replace_renditions(second.clone(), second_chunks(), 2, 50_000)
        .await
        .unwrap();
    assert_eq!(
        replaced.name, "Renamed meanwhile",
        "a rename made meanwhile stays"
    );
    assert_eq!(
        (
            replaced.status,
            replaced.playlist.as_str(),
            replaced.segments,
            replaced.duration,
            replaced.cover.as_deref(),
        ),
        (
            TrackStatus::Ready,
            "g2-index.m3u8",
            2,
            20.5,
            Some("g2-cover.jpg")
        )
    );
    assert_eq!(replaced.variants, second.variants);
    assert_eq!(
        (replaced.genre.as_deref(), replaced.disc_number),
        (Some("Ambient"), Some(2)),
        "the tags are switched with the renditions"
    );
    assert_eq!(
        replaced.source,
        Some(moved_source),
        "the source description is switched too"
    );
    assert_eq!(store.get_track(&track.id).await.unwrap(), replaced);
    // Both generations are streamable until the old one is retired.
    assert_eq!(
        &store.get_chunk(&track.id, "seg000.ts").await.unwrap()[..],
        &[1u8; 100]
    );
    assert_eq!(
        &store.get_chunk(&track.id, "g2-64k-001.ts").await.unwrap()[..],
        &[3u8; 100]
    );
    assert_not_found(
        store
            .replace_renditions(second.clone(), second_chunks(), 2, 60_000)
            .await,
        "a generation is published once",
    );

    let due = |at: i64| {
        let store = store.clone();
        async move {
            store
                .due_retirements(at, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.track_id == track.id)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(49_999).await.is_empty(), "not due yet");
    assert_eq!(
        due(50_000).await,
        [crate::Retirement {
            track_id: track.id,
            generation: 2,
            after_ms: 50_000
        }]
    );
    store.end_retirement(&track.id, 40_000).await.unwrap();
    assert_eq!(
        due(60_000).await.len(),
        1,
        "another retirement is not ended"
    );
    store.end_retirement(&track.id, 50_000).await.unwrap();
    assert!(due(i64::MAX).await.is_empty());
    store.finish_job(&track.id, 2).await.unwrap();

    // A reprocessing that fails leaves the track as it was, with the job's error.
    store
        .enqueue_reprocess(&track.id, now + 20, 2)
        .await
        .unwrap();
    let third = store
        .claim_job("c", now + 30, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.claims, 3);
    store
        .fail_job(&track.id, 3, "cannot be decoded")
        .await
        .unwrap();
    assert_eq!(store.get_track(&track.id).await.unwrap(), replaced);
    let job = store.get_job(&track.id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.kind, job.last_error.as_deref()),
        (
            crate::JobState::Failed,
            crate::JobKind::Reprocess,
            Some("cannot be decoded")
        )
    );
    assert_eq!(
        store
            .enqueue_reprocess(&track.id, now + 40, 2)
            .await
            .unwrap(),
        crate::Enqueued::Queued,
        "a failed job is queued again"
    );
    let fourth = store
        .claim_job("d", now + 50, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fourth.claims, 4, "claims never go back");
    // A replacement with one rendition and no cover drops the variants and the cover.
    let single = Track {
        playlist: "g4-index.m3u8".into(),
        segments: 1,
        variants: Vec::new(),
        cover: None,
        ..second.clone()
    };
    let single_chunks = vec![
        Chunk::new("g4-index.m3u8", b"#EXTM3U\n# media".to_vec()),
        Chunk::new("g4-seg000.ts", vec![5u8; 100]),
    ];
    let replaced = store
        .replace_renditions(single, source(single_chunks), 4, 70_000)
        .await
        .unwrap();
    assert_eq!(
        (
            replaced.playlist.as_str(),
            replaced.variants.len(),
            replaced.cover.as_deref()
        ),
        ("g4-index.m3u8", 0, None)
    );
    assert_eq!(store.get_track(&track.id).await.unwrap(), replaced);
    store.delete_track(&track.id).await.unwrap();
    assert!(store.get_job(&track.id).await.unwrap().is_none());
}

/// The tags a track carries beside album and year.
fn tags(track: &Track) -> (Option<String>, Option<String>, Option<u32>, Option<u32>) {
    (
        track.album_artist.clone(),
        track.genre.clone(),
        track.track_number,
        track.disc_number,
    )
}

fn source_info(sha256: String) -> SourceInfo {
    SourceInfo {
        format: "flac".into(),
        size: 4,
        sha256,
        file_name: Some("a.flac".into()),
        pieces: 1,
        remainder: None,
    }
}

pub async fn tags_round_trip(store: DynStore) {
    // Inserted ready, with some tags and not others.
    let partial = insert(
        &store,
        Track {
            album_artist: None,
            genre: Some("Jazz".into()),
            track_number: Some(12),
            disc_number: None,
            ..sample_track("Partial", "x")
        },
    )
    .await;
    assert_eq!(store.get_track(&partial.id).await.unwrap(), partial);
    let bare = insert(
        &store,
        Track {
            album_artist: None,
            genre: None,
            track_number: None,
            disc_number: None,
            ..sample_track("Bare", "x")
        },
    )
    .await;
    assert_eq!(store.get_track(&bare.id).await.unwrap(), bare);

    // Accepted, then published and reprocessed: the tags read at acceptance stay, whatever
    // the publishing track says (only media fields are published).
    let mut track = pending("Tagged");
    track.source = Some(source_info("12".repeat(32)));
    store
        .accept_track(
            track.clone(),
            source(vec![Chunk::new("source/0000", vec![1u8; 4])]),
        )
        .await
        .unwrap();
    assert_eq!(store.get_track(&track.id).await.unwrap(), track);
    let now = 1_000_000;
    let claim = store
        .claim_job("a", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.track_id, track.id);
    let ready = Track {
        status: TrackStatus::Ready,
        duration: 20.0,
        segments: 1,
        album_artist: None,
        genre: Some("Other".into()),
        track_number: None,
        disc_number: Some(9),
        ..track.clone()
    };
    let completed = store
        .complete_track(
            ready,
            source(vec![
                Chunk::new("index.m3u8", b"#EXTM3U".to_vec()),
                Chunk::new("seg000.ts", vec![1u8; 10]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(tags(&completed), tags(&track));
    assert_eq!(store.get_track(&track.id).await.unwrap(), completed);
    store.finish_job(&track.id, claim.claims).await.unwrap();

    store
        .enqueue_reprocess(&track.id, now + 1, claim.claims)
        .await
        .unwrap();
    let claim = store
        .claim_job("a", now + 2, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    let replacement = Track {
        playlist: "g2-index.m3u8".into(),
        genre: None,
        track_number: Some(1),
        ..completed.clone()
    };
    let replaced = store
        .replace_renditions(
            replacement,
            source(vec![
                Chunk::new("g2-index.m3u8", b"#EXTM3U".to_vec()),
                Chunk::new("g2-seg000.ts", vec![2u8; 10]),
            ]),
            claim.claims,
            now + 3,
        )
        .await
        .unwrap();
    assert_eq!(replaced.playlist, "g2-index.m3u8");
    // A tag the replacement has is switched; one it lacks is kept.
    assert_eq!(
        tags(&replaced),
        (
            track.album_artist.clone(),
            track.genre.clone(),
            Some(1),
            track.disc_number
        )
    );
    assert_eq!(store.get_track(&track.id).await.unwrap(), replaced);

    // Lists and streams carry them too.
    let listed = store.list_tracks(&ListQuery::default()).await.unwrap();
    let mut expected = vec![partial, bare, replaced];
    expected.sort_by_key(|t| (t.created_at, t.id));
    let mut got = listed.tracks.clone();
    got.sort_by_key(|t| (t.created_at, t.id));
    assert_eq!(got, expected);
    let streamed: Vec<Track> = store
        .stream_tracks(&ListQuery::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, listed.tracks);
}

pub async fn tracks_are_found_by_their_source_digest(store: DynStore) {
    let shared = "aa".repeat(32);
    assert!(
        store
            .find_by_source_sha256(&shared)
            .await
            .unwrap()
            .is_none()
    );
    // The newer one is stored first and has the smaller id: age is `created_at`.
    let newer = Track {
        created_at: 2_000,
        source: Some(source_info(shared.clone())),
        ..sample_track("Newer", "x")
    };
    let newer = insert(&store, newer).await;
    let older = Track {
        created_at: 1_000,
        source: Some(source_info(shared.clone())),
        ..pending("Older")
    };
    store
        .accept_track(older.clone(), source(Vec::new()))
        .await
        .unwrap();
    let other = Track {
        source: Some(source_info("bb".repeat(32))),
        ..sample_track("Other", "x")
    };
    let other = insert(&store, other).await;
    let _no_source = insert(&store, sample_track("No source", "x")).await;

    assert_eq!(
        store.find_by_source_sha256(&shared).await.unwrap(),
        Some(older.clone()),
        "the oldest (processing counts)"
    );
    // A failed track comes after the others, whatever its age.
    store
        .fail_track(&older.id, "could not decode")
        .await
        .unwrap();
    assert_eq!(
        store
            .find_by_source_sha256(&shared)
            .await
            .unwrap()
            .map(|t| t.id),
        Some(newer.id),
        "one that is not failed first"
    );
    assert_eq!(
        store.find_by_source_sha256(&"bb".repeat(32)).await.unwrap(),
        Some(other)
    );
    assert!(
        store
            .find_by_source_sha256(&"AA".repeat(32))
            .await
            .unwrap()
            .is_none(),
        "digests match exactly"
    );
    assert!(store.find_by_source_sha256("").await.unwrap().is_none());
    store.delete_track(&older.id).await.unwrap();
    store.delete_track(&newer.id).await.unwrap();
    let failed = Track {
        source: Some(source_info(shared.clone())),
        ..pending("Failed")
    };
    store
        .accept_track(failed.clone(), source(Vec::new()))
        .await
        .unwrap();
    store
        .fail_track(&failed.id, "could not decode")
        .await
        .unwrap();
    assert_eq!(
        store
            .find_by_source_sha256(&shared)
            .await
            .unwrap()
            .map(|t| t.id),
        Some(failed.id),
        "a failed one when there is no other"
    );
    store.delete_track(&failed.id).await.unwrap();
    assert!(
        store
            .find_by_source_sha256(&shared)
            .await
            .unwrap()
            .is_none(),
        "gone with its track"
    );
}

fn changed(last: &mut u64, now: u64, what: &str) {
    assert_ne!(now, *last, "{what} changes the library's version");
    *last = now;
}

pub async fn library_version_follows_every_change(store: DynStore) {
    let mut last = store.library_version().await.unwrap();
    let track = insert(&store, sample_track("Versioned", "x")).await;
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "an insert",
    );

    // Reads change nothing.
    store.get_track(&track.id).await.unwrap();
    store.list_tracks(&ListQuery::default()).await.unwrap();
    let _: Vec<Track> = store
        .stream_tracks(&ListQuery::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    store.get_chunk(&track.id, "seg000.ts").await.unwrap();
    store.find_by_source_sha256("00").await.unwrap();
    store.job_counts().await.unwrap();
    assert_eq!(store.library_version().await.unwrap(), last, "reads");
    assert_eq!(store.library_version().await.unwrap(), last, "asking again");

    store
        .update_track(
            &track.id,
            &TrackPatch {
                name: Some("Renamed".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "a rename",
    );

    let accepted = pending("Accepted");
    store
        .accept_track(accepted.clone(), source(Vec::new()))
        .await
        .unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "an acceptance",
    );
    let ready = Track {
        status: TrackStatus::Ready,
        segments: 1,
        ..accepted.clone()
    };
    store
        .complete_track(ready, source(chunks_for(&accepted, 10)))
        .await
        .unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "a publication",
    );

    let doomed = store.insert_pending(pending("Doomed")).await.unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "a pending insert",
    );
    store.fail_track(&doomed.id, "broken").await.unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "a failure",
    );

    store
        .set_analysis(
            &track.id,
            &Analysis {
                loudness_lufs: Some(-9.0),
                true_peak_dbtp: None,
                peaks: vec![0.5],
            },
        )
        .await
        .unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "an analysis",
    );

    store.delete_track(&doomed.id).await.unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "a delete",
    );
    store.delete_track(&track.id).await.unwrap();
    changed(
        &mut last,
        store.library_version().await.unwrap(),
        "another delete",
    );
    assert_eq!(store.library_version().await.unwrap(), last);
}

fn user(name: &str, admin: bool) -> User {
    User {
        name: name.to_owned(),
        admin,
        sealed_password: vec![0, 1, 2, 255],
        created_at: 1_000,
    }
}

fn key(hash: &str, user: &str, label: &str, created_at: i64) -> UserKey {
    UserKey {
        hash: hash.to_owned(),
        user: user.to_owned(),
        label: label.to_owned(),
        created_at,
    }
}

/// A copy of the library follows it from a cursor: what was added, renamed and removed after
/// the cursor comes back (a change may come twice; never is one missed).
pub async fn changes_are_followed_from_a_cursor(store: DynStore) {
    assert_eq!(store.changes_since(0).await.unwrap(), None, "cursor 0");
    let before = insert(&store, sample_track("Before", "x")).await;
    let cursor = store.change_cursor().await.unwrap();
    assert_ne!(cursor, 0, "a backend that follows changes gives a cursor");
    let kept = insert(&store, sample_track("Kept", "x")).await;
    let removed = insert(&store, sample_track("Removed", "x")).await;
    store
        .update_track(
            &before.id,
            &TrackPatch {
                name: Some("Before, renamed".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    store.delete_track(&removed.id).await.unwrap();

    let changes = store.changes_since(cursor).await.unwrap().expect("changes");
    let changed: Vec<(TrackId, String)> = changes
        .changed
        .iter()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    assert!(changed.contains(&(kept.id, "Kept".into())), "{changed:?}");
    assert!(
        changed.contains(&(before.id, "Before, renamed".into())),
        "{changed:?}"
    );
    assert!(
        !changed.iter().any(|(id, _)| *id == removed.id),
        "{changed:?}"
    );
    assert!(
        changes.deleted.contains(&removed.id),
        "{:?}",
        changes.deleted
    );
    assert!(changes.cursor >= cursor);

    let later = insert(&store, sample_track("Later", "x")).await;
    let next = store
        .changes_since(changes.cursor)
        .await
        .unwrap()
        .expect("changes");
    assert!(next.changed.iter().any(|t| t.id == later.id), "{next:?}");
}

pub async fn users_and_their_keys(store: DynStore) {
    assert_not_found(store.get_user("alice").await, "no user yet");
    assert!(store.list_users().await.unwrap().is_empty());
    let carol = store.create_user(user("carol", false)).await.unwrap();
    assert_eq!(carol, user("carol", false));
    let alice = store.create_user(user("alice", true)).await.unwrap();
    let bob = store.create_user(user("bob", false)).await.unwrap();
    assert_eq!(store.get_user("alice").await.unwrap(), alice);
    assert_invalid(
        store.create_user(user("alice", false)).await,
        "a second alice",
    );
    assert_eq!(store.get_user("alice").await.unwrap(), alice, "unchanged");
    assert_not_found(store.get_user("Alice").await, "names are case-sensitive");
    assert_eq!(
        store.list_users().await.unwrap(),
        [alice.clone(), bob.clone(), carol.clone()],
        "by name"
    );

    store
        .set_user_password("alice", vec![9, 8, 7])
        .await
        .unwrap();
    store.set_user_admin("bob", true).await.unwrap();
    store.set_user_admin("alice", false).await.unwrap();
    let alice = store.get_user("alice").await.unwrap();
    assert_eq!(
        (alice.sealed_password.as_slice(), alice.admin),
        (&[9u8, 8, 7][..], false)
    );
    assert!(store.get_user("bob").await.unwrap().admin);
    assert_not_found(
        store.set_user_password("ghost", vec![1]).await,
        "password of nobody",
    );
    assert_not_found(store.set_user_admin("ghost", true).await, "admin of nobody");

    let phone = key(&"01".repeat(32), "alice", "phone", 10);
    let laptop = key(&"02".repeat(32), "alice", "laptop", 20);
    let phone2 = key(&"03".repeat(32), "alice", "phone", 30);
    let bobs = key(&"04".repeat(32), "bob", "phone", 15);
    for k in [&laptop, &phone, &bobs, &phone2] {
        store.add_user_key(k.clone()).await.unwrap();
    }
    assert_not_found(
        store
            .add_user_key(key(&"05".repeat(32), "ghost", "x", 1))
            .await,
        "a key of nobody",
    );
    assert!(
        store
            .add_user_key(key(&"01".repeat(32), "bob", "stolen", 40))
            .await
            .is_err(),
        "a hash is one key's"
    );
    assert_eq!(
        store.find_user_key(&laptop.hash).await.unwrap(),
        Some(laptop.clone())
    );
    assert_eq!(store.find_user_key(&"05".repeat(32)).await.unwrap(), None);
    assert_eq!(
        store.list_user_keys("alice").await.unwrap(),
        [phone.clone(), laptop.clone(), phone2.clone()],
        "oldest first"
    );
    assert_not_found(store.list_user_keys("ghost").await, "keys of nobody");

    assert_eq!(
        store
            .revoke_user_keys("alice", Some("phone"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.find_user_key(&phone.hash).await.unwrap(), None);
    assert_eq!(
        store.list_user_keys("alice").await.unwrap(),
        std::slice::from_ref(&laptop)
    );
    assert_eq!(
        store.find_user_key(&bobs.hash).await.unwrap(),
        Some(bobs.clone()),
        "another user's key of the same label stays"
    );
    assert_eq!(
        store
            .revoke_user_keys("alice", Some("tablet"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.revoke_user_keys("alice", None).await.unwrap(), 1);
    assert!(store.list_user_keys("alice").await.unwrap().is_empty());
    assert_eq!(store.list_user_keys("bob").await.unwrap(), [bobs]);
    assert_not_found(
        store.revoke_user_keys("ghost", None).await,
        "revoking for nobody",
    );
}

/// Marks sorted, to compare them whatever order a backend gives.
fn sorted_marks(mut marks: crate::UserMarks) -> crate::UserMarks {
    marks.stars.sort();
    marks.ratings.sort();
    marks.plays.sort_by_key(|p| p.track_id);
    marks
}

pub async fn stars_ratings_and_plays(store: DynStore) {
    store.create_user(user("ann", false)).await.unwrap();
    store.create_user(user("ben", false)).await.unwrap();
    let (t1, t2) = (TrackId::generate(), TrackId::generate());
    let song = ItemRef {
        kind: ItemKind::Song,
        id: t1.to_string(),
    };
    let album = ItemRef {
        kind: ItemKind::Album,
        id: "same-id".into(),
    };
    let artist = ItemRef {
        kind: ItemKind::Artist,
        id: "same-id".into(),
    };

    store.set_starred("ann", &song, true, 100).await.unwrap();
    store.set_starred("ann", &song, true, 200).await.unwrap();
    store.set_starred("ann", &album, true, 150).await.unwrap();
    store.set_starred("ann", &artist, true, 160).await.unwrap();
    store.set_starred("ann", &album, false, 300).await.unwrap();
    store
        .set_starred("ann", &album, false, 400)
        .await
        .expect("unstarring what is not starred is fine");

    store.set_rating("ann", &song, 4).await.unwrap();
    store.set_rating("ann", &song, 5).await.unwrap();
    store.set_rating("ann", &album, 2).await.unwrap();
    store.set_rating("ann", &artist, 3).await.unwrap();
    store.set_rating("ann", &artist, 0).await.unwrap();
    store
        .set_rating("ann", &artist, 0)
        .await
        .expect("removing no rating is fine");
    assert_invalid(store.set_rating("ann", &song, 6).await, "a rating of 6");

    store.record_play("ann", &t1, 1_000).await.unwrap();
    store.record_play("ann", &t1, 3_000).await.unwrap();
    store.record_play("ann", &t1, 2_000).await.unwrap();
    store.record_play("ann", &t2, 500).await.unwrap();
    store.record_play("ben", &t2, 700).await.unwrap();

    let marks = sorted_marks(store.user_marks("ann").await.unwrap());
    let mut stars = vec![(song.clone(), 100), (artist.clone(), 160)];
    stars.sort();
    assert_eq!(marks.stars, stars, "starring twice keeps the first time");
    let mut ratings = vec![(song.clone(), 5), (album.clone(), 2)];
    ratings.sort();
    assert_eq!(marks.ratings, ratings, "6 is refused, 0 removes");
    let mut plays = vec![
        PlayCount {
            track_id: t1,
            count: 3,
            last_played: 3_000,
        },
        PlayCount {
            track_id: t2,
            count: 1,
            last_played: 500,
        },
    ];
    plays.sort_by_key(|p| p.track_id);
    assert_eq!(marks.plays, plays, "the latest play is kept");

    let bens = store.user_marks("ben").await.unwrap();
    assert!(bens.stars.is_empty() && bens.ratings.is_empty());
    assert_eq!(
        bens.plays,
        [PlayCount {
            track_id: t2,
            count: 1,
            last_played: 700,
        }],
        "marks are each user's own"
    );

    assert_not_found(
        store.set_starred("ghost", &song, true, 1).await,
        "a star of nobody",
    );
    assert_not_found(
        store.set_rating("ghost", &song, 3).await,
        "a rating of nobody",
    );
    assert_not_found(store.record_play("ghost", &t1, 1).await, "a play of nobody");
    assert_not_found(store.user_marks("ghost").await, "marks of nobody");
}

fn playlist(id: &str, owner: &str, name: &str, tracks: Vec<TrackId>) -> Playlist {
    Playlist {
        id: id.to_owned(),
        owner: owner.to_owned(),
        name: name.to_owned(),
        comment: None,
        public: false,
        tracks,
        created_at: 10,
        updated_at: 10,
    }
}

pub async fn deleting_a_user_removes_what_they_kept(store: DynStore) {
    store.create_user(user("dan", false)).await.unwrap();
    store.create_user(user("eve", false)).await.unwrap();
    let track = TrackId::generate();
    let song = ItemRef {
        kind: ItemKind::Song,
        id: track.to_string(),
    };
    for name in ["dan", "eve"] {
        let hash = format!("{name}-key");
        store
            .add_user_key(key(&hash, name, "phone", 1))
            .await
            .unwrap();
        store.set_starred(name, &song, true, 1).await.unwrap();
        store.set_rating(name, &song, 3).await.unwrap();
        store.record_play(name, &track, 1).await.unwrap();
        store
            .create_playlist(playlist(&format!("{name}-list"), name, name, vec![track]))
            .await
            .unwrap();
    }
    let eves = sorted_marks(store.user_marks("eve").await.unwrap());

    store.delete_user("dan").await.unwrap();
    assert_not_found(store.get_user("dan").await, "the deleted user");
    assert_eq!(store.find_user_key("dan-key").await.unwrap(), None);
    assert_not_found(store.get_playlist("dan-list").await, "their playlist");
    let lists: Vec<String> = store
        .list_playlists()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(lists, ["eve-list"]);
    assert_not_found(store.delete_user("dan").await, "deleting twice");
    assert_not_found(store.user_marks("dan").await, "marks of the deleted user");

    // Nothing of the old dan comes back with a new one of that name.
    store.create_user(user("dan", false)).await.unwrap();
    let fresh = store.user_marks("dan").await.unwrap();
    assert!(fresh.stars.is_empty() && fresh.ratings.is_empty() && fresh.plays.is_empty());
    assert!(store.list_user_keys("dan").await.unwrap().is_empty());

    // The other user keeps everything.
    assert_eq!(sorted_marks(store.user_marks("eve").await.unwrap()), eves);
    assert!(store.find_user_key("eve-key").await.unwrap().is_some());
    assert_eq!(
        store.get_playlist("eve-list").await.unwrap().tracks,
        [track]
    );
}

pub async fn playlists_are_patched_in_order(store: DynStore) {
    store.create_user(user("pat", false)).await.unwrap();
    store.create_user(user("quinn", false)).await.unwrap();
    let [a, b, c, d, e] = [(); 5].map(|()| TrackId::generate());
    let road = playlist("pl-road", "pat", "Road", vec![a, b, c, a, d]);
    assert_eq!(store.create_playlist(road.clone()).await.unwrap(), road);
    assert_eq!(store.get_playlist("pl-road").await.unwrap(), road);
    assert!(
        store.create_playlist(road.clone()).await.is_err(),
        "an id is one playlist's"
    );
    assert_not_found(
        store
            .create_playlist(playlist("pl-x", "ghost", "X", Vec::new()))
            .await,
        "a playlist of nobody",
    );
    // What a user's quota counts: their own playlists only.
    assert_eq!(store.count_playlists("pat").await.unwrap(), 1);
    assert_eq!(store.count_playlists("quinn").await.unwrap(), 0);
    assert_eq!(store.count_playlists("ghost").await.unwrap(), 0);

    // Fields, then removals by position in the list before (repeats and positions past the
    // end ignored; the second `a` goes, the first too), then additions.
    let patched = store
        .update_playlist(
            "pl-road",
            &PlaylistPatch {
                name: Some("Road trip".into()),
                comment: Some("summer".into()),
                public: Some(true),
                remove_positions: vec![3, 0, 3, 99],
                add: vec![e, a],
                replace: None,
            },
            20,
        )
        .await
        .unwrap();
    let expected = Playlist {
        name: "Road trip".into(),
        comment: Some("summer".into()),
        public: true,
        tracks: vec![b, c, d, e, a],
        updated_at: 20,
        ..road.clone()
    };
    assert_eq!(patched, expected);
    assert_eq!(store.get_playlist("pl-road").await.unwrap(), expected);

    // A replacement comes first; removals and additions apply to it.
    let replaced = store
        .update_playlist(
            "pl-road",
            &PlaylistPatch {
                remove_positions: vec![1],
                add: vec![d],
                replace: Some(vec![c, c, b]),
                ..PlaylistPatch::default()
            },
            30,
        )
        .await
        .unwrap();
    let expected = Playlist {
        tracks: vec![c, b, d],
        updated_at: 30,
        ..expected
    };
    assert_eq!(replaced, expected, "other fields stay");
    assert_eq!(store.get_playlist("pl-road").await.unwrap(), expected);

    let emptied = store
        .update_playlist(
            "pl-road",
            &PlaylistPatch {
                remove_positions: vec![2, 1, 0],
                ..PlaylistPatch::default()
            },
            40,
        )
        .await
        .unwrap();
    assert!(emptied.tracks.is_empty());
    let cleared = store
        .update_playlist(
            "pl-road",
            &PlaylistPatch {
                replace: Some(Vec::new()),
                add: vec![a, a],
                ..PlaylistPatch::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(cleared.tracks, [a, a]);
    assert_eq!(store.get_playlist("pl-road").await.unwrap(), cleared);

    let anthems = store
        .create_playlist(Playlist {
            public: true,
            comment: Some("loud".into()),
            ..playlist("pl-anthems", "quinn", "Anthems", vec![e])
        })
        .await
        .unwrap();
    assert_eq!(
        store.list_playlists().await.unwrap(),
        [anthems.clone(), cleared.clone()],
        "every user's, by name"
    );
    // What a user may see: their own and the public ones, not another's private ones.
    let diary = store
        .create_playlist(playlist("pl-diary", "quinn", "Diary", vec![a, b]))
        .await
        .unwrap();
    assert!(cleared.public);
    assert_eq!(
        store.visible_playlists("pat").await.unwrap(),
        [anthems.clone(), cleared.clone()]
    );
    assert_eq!(
        store.visible_playlists("quinn").await.unwrap(),
        [anthems.clone(), diary, cleared]
    );
    assert_eq!(store.count_playlists("quinn").await.unwrap(), 2);
    store.delete_playlist("pl-diary").await.unwrap();

    assert_not_found(
        store
            .update_playlist("pl-none", &PlaylistPatch::default(), 1)
            .await,
        "patching no playlist",
    );
    assert_not_found(store.get_playlist("pl-none").await, "no playlist");
    store.delete_playlist("pl-road").await.unwrap();
    assert_not_found(store.get_playlist("pl-road").await, "a deleted playlist");
    assert_not_found(store.delete_playlist("pl-road").await, "deleting twice");
    assert_eq!(store.list_playlists().await.unwrap(), [anthems]);
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn …(store: DynStore)` here is in the macro's list and in
    /// [`super::every_story`].
    #[test]
    fn every_story_is_listed_twice() {
        let source = include_str!("conformance.rs");
        let macro_text = source.split("(@stories $make:expr;").next().unwrap_or("");
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            if !args.starts_with("store: DynStore)") {
                continue;
            }
            assert!(
                macro_text.contains(&format!("            {name},")),
                "{name} is not in conformance_tests!"
            );
            assert!(
                super::every_story().iter().any(|(n, _)| *n == name),
                "{name} is not in every_story()"
            );
        }
    }
}

//! What the object side adds to the store's contract: where bytes go, with which headers,
//! and what is left behind when something fails.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use legato_store::conformance::sample_track;
use legato_store::{Blobs, Chunk, ChunkSource, DynStore, StoreError};
use legato_store_s3::{IMMUTABLE, collect_garbage};

use crate::util::{mongo, on_objects, sqlite, test_bucket};

fn chunks(list: &[(&str, &[u8])]) -> ChunkSource {
    let owned: Vec<_> = list
        .iter()
        .map(|(name, bytes)| Ok(Chunk::new(*name, Bytes::copy_from_slice(bytes))))
        .collect();
    Box::new(owned.into_iter())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_go_to_the_bucket_with_their_type_and_playlists_stay_in_the_metadata() {
    let meta = sqlite();
    let bucket = test_bucket("where");
    let store = on_objects(&meta, &bucket);
    let track = sample_track("Where", "Band");
    let id = track.id;
    store
        .insert_track(
            track,
            chunks(&[
                ("index.m3u8", b"#EXTM3U\n"),
                ("seg000.ts", &[0x47; 188]),
                ("aac64k-init.mp4", b"ftyp"),
            ]),
        )
        .await
        .unwrap();
    // The metadata keeps the playlist whole and an empty row for each object.
    assert_eq!(
        &meta.get_chunk(&id, "index.m3u8").await.unwrap()[..],
        b"#EXTM3U\n"
    );
    assert!(meta.get_chunk(&id, "seg000.ts").await.unwrap().is_empty());
    assert_eq!(store.get_chunk(&id, "seg000.ts").await.unwrap().len(), 188);
    assert_eq!(store.chunk_object_key(&id, "index.m3u8"), None);
    assert!(
        store
            .chunk_url(&id, "index.m3u8", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );

    // A presigned URL opens the object, with the headers a CDN passes on; a tampered one
    // is refused by the object store.
    let client = reqwest::Client::new();
    for (name, content_type) in [
        ("seg000.ts", "video/mp2t"),
        ("aac64k-init.mp4", "audio/mp4"),
    ] {
        let url = store
            .chunk_url(&id, name, Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a presigned URL for an object");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], IMMUTABLE);
        let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
        assert_eq!(client.get(&tampered).send().await.unwrap().status(), 403);
    }
    assert!(
        store
            .chunk_object_key(&id, "seg000.ts")
            .unwrap()
            .ends_with(&format!("{id}/seg000.ts"))
    );

    // Deleting removes the track first, then its objects.
    store.delete_track(&id).await.unwrap();
    assert!(matches!(
        store.get_chunk(&id, "seg000.ts").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        bucket.list_all().await.unwrap().is_empty(),
        "objects left after a delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_leaves_neither_a_track_nor_objects() {
    let bucket = test_bucket("failed");
    let store = on_objects(&sqlite(), &bucket);
    let track = sample_track("Failed", "Band");
    let id = track.id;
    let source: ChunkSource = Box::new(
        vec![
            Ok(Chunk::new("seg000.ts", vec![1u8; 1000])),
            Ok(Chunk::new("seg001.ts", vec![2u8; 1000])),
            Err(StoreError::Source("the encoder gave up".into())),
            Ok(Chunk::new("seg002.ts", vec![3u8; 1000])),
        ]
        .into_iter(),
    );
    assert!(store.insert_track(track, source).await.is_err());
    assert!(matches!(
        store.get_track(&id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(bucket.list_all().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_no_track_names_are_collected_after_the_grace_period() {
    let meta = sqlite();
    let bucket = test_bucket("gc");
    let kept = sample_track("Kept", "Band");
    let kept_id = kept.id;
    on_objects(&meta, &bucket)
        .insert_track(
            kept,
            chunks(&[("index.m3u8", b"#EXTM3U\n"), ("seg000.ts", b"kept")]),
        )
        .await
        .unwrap();
    // What a process killed between the objects and the metadata leaves.
    let orphan = sample_track("Orphan", "Band").id;
    bucket
        .put(&orphan, "seg000.ts", Bytes::from_static(b"x"))
        .await
        .unwrap();
    bucket
        .put(&kept_id, "g2-seg000.ts", Bytes::from_static(b"y"))
        .await
        .unwrap();

    let catalog = meta.catalog();
    assert_eq!(
        collect_garbage(&**catalog, &bucket, Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "young objects are kept"
    );
    assert_eq!(
        collect_garbage(&**catalog, &bucket, Duration::ZERO)
            .await
            .unwrap(),
        2
    );
    let eager = on_objects(&meta, &bucket);
    let left: Vec<_> = bucket
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.track, l.name))
        .collect();
    assert_eq!(left, vec![(kept_id, "seg000.ts".to_owned())]);
    assert_eq!(
        &eager.get_chunk(&kept_id, "seg000.ts").await.unwrap()[..],
        b"kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_stored_before_the_object_store_are_still_served() {
    let meta = sqlite();
    let track = sample_track("Older", "Band");
    let id = track.id;
    meta.insert_track(
        track,
        chunks(&[("index.m3u8", b"#EXTM3U\n"), ("seg000.ts", b"in the row")]),
    )
    .await
    .unwrap();
    let store: DynStore = on_objects(&meta, &test_bucket("older"));
    assert_eq!(
        &store.get_chunk(&id, "seg000.ts").await.unwrap()[..],
        b"in the row"
    );
    // Only this process has the bytes: no URL to redirect to.
    assert!(
        store
            .chunk_url(&id, "seg000.ts", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    let _ = Arc::clone(&store);
}

async fn migration_moves_rows_into_the_bucket(meta: DynStore) {
    let track = sample_track("Before", "Band");
    let id = track.id;
    meta.insert_track(
        track,
        chunks(&[
            ("index.m3u8", b"#EXTM3U\n"),
            ("seg000.ts", b"zero"),
            ("seg001.ts", b"one"),
        ]),
    )
    .await
    .unwrap();
    let bucket = test_bucket("migrate");
    let store = on_objects(&meta, &bucket);
    let mut seen = Vec::new();
    let moved = store.migrate(|m| seen.push(m.tracks)).await.unwrap();
    assert_eq!(
        (moved.tracks, moved.chunks, moved.bytes, moved.already),
        (1, 2, 7, 0)
    );
    assert_eq!(seen, vec![1]);
    assert!(meta.get_chunk(&id, "seg001.ts").await.unwrap().is_empty());
    assert_eq!(
        &meta.get_chunk(&id, "index.m3u8").await.unwrap()[..],
        b"#EXTM3U\n"
    );
    assert_eq!(
        &store.get_chunk(&id, "seg001.ts").await.unwrap()[..],
        b"one"
    );
    assert!(
        store
            .chunk_url(&id, "seg000.ts", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(bucket.list_all().await.unwrap().len(), 2);
    // Run again (an interrupted migration is resumed the same way): nothing left to move.
    let again = store.migrate(|_| {}).await.unwrap();
    assert_eq!((again.chunks, again.already), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_moves_sqlite_rows_into_the_bucket() {
    migration_moves_rows_into_the_bucket(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_moves_mongodb_documents_into_the_bucket() {
    migration_moves_rows_into_the_bucket(mongo("legato_migrate").await).await;
}

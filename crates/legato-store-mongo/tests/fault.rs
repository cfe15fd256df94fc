//! The server going away and coming back: operations fail fast with `Unavailable`, recover
//! by themselves, and no partial track ever shows.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk, ChunkSource, ListQuery, StoreError, Track};
use legato_store_mongo::{MongoOptions, MongoStore};
use legato_test_support::ferretdb::FerretDb;
use legato_test_support::wait;
use mongodb::bson::doc;

use crate::util::{plain, plain_collection, unique_database};

/// The brief's bound for an unreachable database to surface.
const FAIL_FAST: Duration = Duration::from_secs(5);

fn chunks(track: &Track, size: usize) -> Vec<Chunk> {
    std::iter::once(Chunk::new(track.playlist.clone(), "#EXTM3U\n"))
        .chain(
            (0..track.segments).map(|i| Chunk::new(format!("seg{i:03}.ts"), vec![i as u8; size])),
        )
        .collect()
}

fn source(chunks: Vec<Chunk>) -> ChunkSource {
    Box::new(chunks.into_iter().map(Ok))
}

async fn expect_unavailable<T: std::fmt::Debug>(
    what: &str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let result = operation.await;
    let took = started.elapsed();
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what} with the server down: expected Unavailable, got {other:?}"),
    }
    println!("{what}: Unavailable after {took:?}");
    assert!(took < FAIL_FAST, "{what} took {took:?} to fail");
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_fast_while_down_and_recovers_by_itself() {
    let ferret = FerretDb::start_new();
    let database = unique_database("fault");
    let options = MongoOptions {
        database: Some(database.clone()),
        gc_on_start: false,
        ..MongoOptions::default()
    };
    let store = MongoStore::connect(ferret.uri(), options.clone())
        .await
        .unwrap();
    let kept = sample_track("Kept", "before");
    store
        .insert_track(kept.clone(), source(chunks(&kept, 1000)))
        .await
        .unwrap();

    ferret.stop();
    expect_unavailable("get_track", store.get_track(&kept.id)).await;
    expect_unavailable("get_chunk", store.get_chunk(&kept.id, "seg000.ts")).await;
    expect_unavailable("list_tracks", store.list_tracks(&ListQuery::default())).await;
    expect_unavailable("ping", store.ping()).await;
    let lost = sample_track("Lost", "during");
    expect_unavailable(
        "insert_track",
        store.insert_track(lost.clone(), source(chunks(&lost, 1000))),
    )
    .await;
    // A process starting while the server is down starts, and fails fast.
    let started = Instant::now();
    let late = MongoStore::connect(ferret.uri(), options.clone())
        .await
        .unwrap();
    assert!(
        started.elapsed() < FAIL_FAST,
        "connect took {:?}",
        started.elapsed()
    );
    expect_unavailable("ping of a store connected while down", late.ping()).await;

    ferret.start();
    let started = Instant::now();
    assert_eq!(store.get_track(&kept.id).await.unwrap(), kept);
    println!(
        "first get_track after the restart took {:?}",
        started.elapsed()
    );
    assert_eq!(
        store.get_chunk(&kept.id, "seg002.ts").await.unwrap().len(),
        1000
    );
    late.ping().await.unwrap();
    assert_not_found(store.get_track(&lost.id).await, "the insert that failed");
    assert_not_found(store.get_chunk(&lost.id, "seg000.ts").await, "its chunk");
    let page = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(page.tracks, vec![kept.clone()]);

    // The server dies in the middle of an insert: the source holds `seg004` back until the
    // batches pulled before it (index to seg003) are stored and the server is down.
    let mut half = sample_track("Half", "crash");
    half.segments = 8;
    let mut pending = chunks(&half, 1 << 20).into_iter();
    let (go, held) = mpsc::channel::<()>();
    let dying: ChunkSource = Box::new(std::iter::from_fn(move || {
        let chunk = pending.next()?;
        if chunk.name == "seg004.ts" {
            held.recv().ok()?;
        }
        Some(Ok(chunk))
    }));
    let started = Instant::now();
    let inserting = {
        let (store, half) = (store.clone(), half.clone());
        tokio::spawn(async move { store.insert_track(half, dying).await })
    };
    let db = plain(ferret.uri(), &database).await;
    let half_chunks = doc! { "music_id": half.id.to_string() };
    let count = |db: &mongodb::Database| {
        let (chunks, filter) = (plain_collection(db, "chunks"), half_chunks.clone());
        async move { chunks.count_documents(filter).await.unwrap() }
    };
    tokio::task::block_in_place(|| {
        let rt = tokio::runtime::Handle::current();
        wait::until(Duration::from_secs(30), "the first five chunks", || {
            (rt.block_on(count(&db)) >= 5).then_some(())
        });
    });
    ferret.stop();
    go.send(()).unwrap();
    let result = inserting.await.unwrap();
    println!(
        "insert interrupted by the crash failed after {:?}: {result:?}",
        started.elapsed()
    );
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );

    ferret.start();
    assert_not_found(
        store.get_track(&half.id).await,
        "the insert the crash cut short",
    );
    let db = plain(ferret.uri(), &database).await;
    let left = count(&db).await;
    println!("chunks the interrupted insert left behind: {left}");
    assert_not_found(
        store.get_chunk(&half.id, "seg000.ts").await,
        "a chunk it left",
    );
    assert_eq!(
        store
            .list_tracks(&ListQuery::default())
            .await
            .unwrap()
            .total,
        1
    );
    // What it left is garbage once the grace period is over.
    let collector = MongoStore::connect(
        ferret.uri(),
        MongoOptions {
            gc_grace: Duration::ZERO,
            ..options
        },
    )
    .await
    .unwrap();
    // Age is counted in the whole seconds of the chunks' ObjectIds: with no grace, they are
    // garbage once the clock has passed the second the last of them was written in.
    let newest = plain_collection(&db, "chunks")
        .find_one(half_chunks.clone())
        .sort(doc! { "_id": -1 })
        .await
        .unwrap()
        .map(|chunk| {
            chunk
                .get_object_id("_id")
                .unwrap()
                .timestamp()
                .timestamp_millis()
                / 1000
        });
    if let Some(newest) = newest {
        wait::until(Duration::from_secs(5), "the next second", || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (i64::try_from(now.as_secs()).unwrap() > newest).then_some(())
        });
    }
    assert_eq!(collector.collect_garbage().await.unwrap(), left);
    assert_eq!(
        store.get_chunk(&kept.id, "index.m3u8").await.unwrap().len(),
        8
    );
}

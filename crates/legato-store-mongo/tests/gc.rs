//! Garbage collection of chunks no track refers to, as a crash mid-insert or mid-delete
//! leaves them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk, TrackId};
use legato_store_mongo::{MongoOptions, MongoStore};
use mongodb::bson::{Binary, doc, oid::ObjectId, spec::BinarySubtype};

use crate::util::{plain, plain_collection, test_uri, unique_database};

/// An ObjectId made `age` ago, as the chunk's `_id` would have been.
fn aged_id(age: Duration, n: u8) -> ObjectId {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let secs = u32::try_from((now - age).as_secs()).unwrap();
    let random: [u8; 5] = ObjectId::new().bytes()[4..9].try_into().unwrap();
    ObjectId::from_parts(secs, random, [0, 0, n])
}

fn chunk(id: ObjectId, music_id: &str, name: &str) -> mongodb::bson::Document {
    doc! {
        "_id": id,
        "music_id": music_id,
        "chunk_name": name,
        "chunk_bytes": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
    }
}

/// How many chunks a track has, read with the plain driver.
async fn chunks_of(chunks: &mongodb::Collection<mongodb::bson::Document>, music_id: String) -> u64 {
    chunks
        .count_documents(doc! { "music_id": music_id })
        .await
        .unwrap()
}

/// A store on a database of its own that collects only what is ten minutes old, and the
/// plain driver on the same database.
async fn collecting(purpose: &str) -> (MongoStore, mongodb::Database) {
    let uri = test_uri();
    let database = unique_database(purpose);
    let store = MongoStore::connect(
        &uri,
        MongoOptions {
            database: Some(database.clone()),
            gc_grace: Duration::from_secs(600),
            gc_on_start: false,
            ..MongoOptions::default()
        },
    )
    .await
    .unwrap();
    (store, plain(&uri, &database).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_old_unreferenced_chunks_only() {
    let (store, db) = collecting("gc").await;
    let chunks = plain_collection(&db, "chunks");
    let hour = Duration::from_secs(3600);

    // A crash between chunks and track document, an hour ago.
    let crashed = ObjectId::new().to_hex();
    for i in 0..3u8 {
        chunks
            .insert_one(chunk(aged_id(hour, i), &crashed, &format!("seg{i:03}.ts")))
            .await
            .unwrap();
    }
    // An insert in progress: unreferenced, but young.
    let in_progress = ObjectId::new().to_hex();
    chunks
        .insert_one(chunk(ObjectId::new(), &in_progress, "seg000.ts"))
        .await
        .unwrap();
    // A live track of ours, and an old one of the seed's.
    let ours = sample_track("Live", "ours");
    store
        .insert_track(
            ours.clone(),
            Box::new(std::iter::once(Ok(Chunk::new("seg000.ts", "x")))),
        )
        .await
        .unwrap();
    let seed = aged_id(hour * 24, 0);
    plain_collection(&db, "musics")
        .insert_one(doc! { "_id": seed, "name": "Old", "author": "seed" })
        .await
        .unwrap();
    chunks
        .insert_one(chunk(aged_id(hour * 24, 1), &seed.to_hex(), "output000.ts"))
        .await
        .unwrap();

    assert_eq!(
        store.collect_garbage().await.unwrap(),
        0,
        "collect_garbage reads only the pending writes this version records"
    );
    assert_eq!(store.sweep_orphan_chunks().await.unwrap(), 3);
    let count = |music_id: String| chunks_of(&chunks, music_id);
    assert_eq!(
        count(crashed).await,
        0,
        "the crashed insert's chunks are gone"
    );
    assert_eq!(count(in_progress).await, 1, "a young chunk stays");
    assert_eq!(
        count(ours.id.to_string()).await,
        1,
        "a live track's chunks stay"
    );
    assert_eq!(count(seed.to_hex()).await, 1, "the seed's chunks stay");
    let seed_id = TrackId::from_bytes(seed.bytes());
    assert_eq!(
        &store.get_chunk(&seed_id, "output000.ts").await.unwrap()[..],
        [1, 2, 3]
    );
    assert_eq!(
        store.sweep_orphan_chunks().await.unwrap(),
        0,
        "a second run finds nothing"
    );
}

/// What a crash between the steps of an insert or a delete leaves: an entry in
/// `pending_writes`, which garbage collection finishes once it is older than the grace period
/// (and only then), without reading any other chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishes_the_writes_a_crash_left_pending() {
    let (store, db) = collecting("gc_pending").await;
    let chunks = plain_collection(&db, "chunks");
    let pending = plain_collection(&db, "pending_writes");
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let hour_ago = now_ms - 3_600_000;

    // An insert that crashed after its chunks, an hour ago: no track document.
    let crashed = TrackId::generate().to_string();
    for i in 0..3u8 {
        chunks
            .insert_one(chunk(ObjectId::new(), &crashed, &format!("seg{i:03}.ts")))
            .await
            .unwrap();
    }
    pending
        .insert_one(doc! { "_id": &crashed, "at": hour_ago })
        .await
        .unwrap();
    // An insert in progress (recorded a moment ago): left alone.
    let running = TrackId::generate().to_string();
    chunks
        .insert_one(chunk(ObjectId::new(), &running, "seg000.ts"))
        .await
        .unwrap();
    pending
        .insert_one(doc! { "_id": &running, "at": now_ms })
        .await
        .unwrap();
    // A track whose insert finished but whose entry could not be removed: kept whole.
    let live = sample_track("Live", "ours");
    store
        .insert_track(
            live.clone(),
            Box::new(std::iter::once(Ok(Chunk::new("seg000.ts", "x")))),
        )
        .await
        .unwrap();
    assert_eq!(
        pending.count_documents(doc! {}).await.unwrap(),
        2,
        "a finished insert leaves no entry"
    );
    pending
        .insert_one(doc! { "_id": live.id.to_string(), "at": hour_ago })
        .await
        .unwrap();

    assert_eq!(store.collect_garbage().await.unwrap(), 3);
    let count = |music_id: String| chunks_of(&chunks, music_id);
    assert_eq!(
        count(crashed).await,
        0,
        "the crashed insert's chunks are gone"
    );
    assert_eq!(count(running.clone()).await, 1, "a young write stays");
    assert_eq!(count(live.id.to_string()).await, 1, "a live track stays");
    assert_eq!(
        &store.get_chunk(&live.id, "seg000.ts").await.unwrap()[..],
        b"x"
    );
    let left: Vec<String> = {
        use futures_util::TryStreamExt;
        pending
            .find(doc! {})
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .iter()
            .map(|d| d.get_str("_id").unwrap().to_owned())
            .collect()
    };
    assert_eq!(left, [running], "the finished entries are removed");

    // A delete leaves no entry behind.
    store.delete_track(&live.id).await.unwrap();
    assert_eq!(pending.count_documents(doc! {}).await.unwrap(), 1);
}

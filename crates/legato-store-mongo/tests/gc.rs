//! Garbage collection of chunks no track refers to, as a crash mid-insert or mid-delete
//! leaves them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use legato_store::conformance::sample_track;
use legato_store::{Chunk, Store, TrackId};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_old_unreferenced_chunks_only() {
    let uri = test_uri();
    let database = unique_database("gc");
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
    let db = plain(&uri, &database).await;
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

    assert_eq!(store.collect_garbage().await.unwrap(), 3);
    let count = |music_id: String| {
        let chunks = chunks.clone();
        async move {
            chunks
                .count_documents(doc! { "music_id": music_id })
                .await
                .unwrap()
        }
    };
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
        store.collect_garbage().await.unwrap(),
        0,
        "a second run finds nothing"
    );
}

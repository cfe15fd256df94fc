//! Publish-last, watched from outside: while an insert is half done its chunks are in the
//! database, yet the track is neither listed, nor shown, nor streamed.

use std::future::IntoFuture;
use std::sync::mpsc;
use std::time::Duration;

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk, ChunkSource, ListQuery, StoreError};
use legato_test_support::wait;
use mongodb::bson::doc;

use crate::util::{fresh_mongo, plain, plain_collection, test_uri};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_is_invisible_until_its_last_chunk_is_stored() {
    let store = fresh_mongo("publish").await;
    let mut track = sample_track("Slow", "upload");
    track.segments = 4;
    let (go, wait) = mpsc::channel::<()>();
    let mut produced = 0;
    let names: Vec<String> = std::iter::once("index.m3u8".to_owned())
        .chain((0..4).map(|i| format!("seg{i:03}.ts")))
        .collect();
    let mut pending = names.clone().into_iter();
    // Two chunks make the first batch (2 MiB), the third opens the second and the fourth
    // waits for the test.
    let slow: ChunkSource = Box::new(std::iter::from_fn(move || {
        let name = pending.next()?;
        produced += 1;
        if produced == 4 {
            wait.recv().ok()?;
        }
        Some(Ok(Chunk::new(name, vec![7u8; 1 << 20])))
    }));
    let inserting = {
        let (store, track) = (store.clone(), track.clone());
        tokio::spawn(async move { store.insert_track(track, slow).await })
    };

    let db = plain(&test_uri(), store.database()).await;
    let chunks = plain_collection(&db, "chunks");
    tokio::task::block_in_place(|| {
        let rt = tokio::runtime::Handle::current();
        let filter = doc! { "music_id": track.id.to_string() };
        wait::until(Duration::from_secs(20), "the first batch", || {
            (rt.block_on(chunks.count_documents(filter.clone()).into_future())
                .unwrap()
                >= 2)
                .then_some(())
        });
    });
    assert!(matches!(
        store.get_track(&track.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_chunk(&track.id, "seg000.ts").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .list_tracks(&ListQuery::default())
            .await
            .unwrap()
            .total,
        0
    );

    go.send(()).unwrap();
    assert_eq!(inserting.await.unwrap().unwrap(), track);
    assert_eq!(store.get_track(&track.id).await.unwrap(), track);
    for name in &names {
        assert_eq!(
            store.get_chunk(&track.id, name).await.unwrap().len(),
            1 << 20
        );
    }
}

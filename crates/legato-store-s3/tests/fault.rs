//! SeaweedFS stopped under the store: answers `Unavailable` within seconds, publishes
//! nothing half-written, and works again when the object store returns, without a restart.

use std::time::{Duration, Instant};

use bytes::Bytes;
use legato_store::conformance::sample_track;
use legato_store::{Chunk, ChunkSource, StoreError};
use legato_store_s3::{BlobsUri, Bucket};
use legato_test_support::seaweedfs::SeaweedFs;

use crate::util::{on_objects, sqlite};

fn segments(n: usize) -> ChunkSource {
    let mut list = vec![Ok(Chunk::new(
        "index.m3u8",
        Bytes::from_static(b"#EXTM3U\n"),
    ))];
    list.extend((0..n).map(|i| Ok(Chunk::new(format!("seg{i:03}.ts"), vec![0x47u8; 50_000]))));
    Box::new(list.into_iter())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_object_store_is_unavailable_within_seconds_and_recovers() {
    let weed = SeaweedFs::start_new("fault");
    let uri = BlobsUri::parse(&weed.blobs_uri("t"))
        .unwrap()
        .with_credential_files(&weed.access_key_file(), &weed.secret_key_file())
        .unwrap();
    let store = on_objects(&sqlite(), &Bucket::new(uri).unwrap());
    let before = sample_track("Before", "Band");
    let before_id = before.id;
    store.insert_track(before, segments(3)).await.unwrap();
    store.ping().await.unwrap();

    weed.stop();
    let started = Instant::now();
    let read = store.get_chunk(&before_id, "seg001.ts").await;
    let took = started.elapsed();
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    assert!(
        took < Duration::from_secs(3),
        "a read took {took:?} to fail"
    );
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    let during = sample_track("During", "Band");
    let during_id = during.id;
    let started = Instant::now();
    assert!(matches!(
        store.insert_track(during, segments(3)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a write took {:?} to fail",
        started.elapsed()
    );
    assert!(matches!(
        store.get_track(&during_id).await,
        Err(StoreError::NotFound(_))
    ));

    // Back on the same port: the same store object reads and writes again.
    weed.start();
    assert_eq!(
        store
            .get_chunk(&before_id, "seg001.ts")
            .await
            .unwrap()
            .len(),
        50_000
    );
    let after = sample_track("After", "Band");
    store.insert_track(after, segments(2)).await.unwrap();
}

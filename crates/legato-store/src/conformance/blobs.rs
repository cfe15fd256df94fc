//! The blob contract's stories, run on every blob store (SQLite's and MongoDB's chunk rows, an
//! object store). A backend's test suite calls
//! [`blob_conformance_tests!`](crate::blob_conformance_tests) with an expression that makes a
//! fresh [`Blobs`] store and, for a backend whose chunks belong to a catalog's tracks, the
//! store whose catalog owns them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::sample_track;
use crate::{Blobs, DynStore, StoreError, TrackId};

/// Generates one `#[tokio::test]` per blob story; `$make` is an expression evaluating to a
/// future of `(Arc<dyn Blobs>, Option<DynStore>)`: the blob store, and the store whose
/// catalog must know a track before its chunks are put (`None` when the blobs stand alone).
#[macro_export]
macro_rules! blob_conformance_tests {
    ($make:expr) => {
        $crate::blob_conformance_tests!(@stories $make;
            blobs_round_trip,
            ranges_are_clipped_to_the_end,
            missing_blobs_are_not_found,
            deleted_blobs_are_gone,
            large_blob_round_trips,
            urls_and_keys_name_the_chunk,
        );
    };
    (@stories $make:expr; $($story:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let (blobs, owners) = $make.await;
                $crate::conformance::blobs::$story(blobs, owners).await;
            }
        )*
    };
}

/// A blob story: its name and the function that plays it.
pub type BlobStory = (
    &'static str,
    fn(
        Arc<dyn Blobs>,
        Option<DynStore>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

/// Every blob story, for a test that plays them on one instrumented backend.
pub fn every_blob_story() -> Vec<BlobStory> {
    vec![
        ("blobs_round_trip", |b, o| Box::pin(blobs_round_trip(b, o))),
        ("ranges_are_clipped_to_the_end", |b, o| {
            Box::pin(ranges_are_clipped_to_the_end(b, o))
        }),
        ("missing_blobs_are_not_found", |b, o| {
            Box::pin(missing_blobs_are_not_found(b, o))
        }),
        ("deleted_blobs_are_gone", |b, o| {
            Box::pin(deleted_blobs_are_gone(b, o))
        }),
        ("large_blob_round_trips", |b, o| {
            Box::pin(large_blob_round_trips(b, o))
        }),
        ("urls_and_keys_name_the_chunk", |b, o| {
            Box::pin(urls_and_keys_name_the_chunk(b, o))
        }),
    ]
}

/// A track id whose chunks may be put: known to the owning catalog, if there is one.
async fn owned(owners: &Option<DynStore>) -> TrackId {
    let track = sample_track("Owner", "Band");
    let id = track.id;
    if let Some(store) = owners {
        store.insert_pending(track).await.unwrap();
    }
    id
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

pub async fn blobs_round_trip(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let (one, two) = (owned(&owners).await, owned(&owners).await);
    blobs
        .put(&one, "seg000.ts", Bytes::from_static(b"zero"))
        .await
        .unwrap();
    blobs
        .put(&one, "aac64k-init.mp4", Bytes::from_static(b"ftyp"))
        .await
        .unwrap();
    blobs
        .put(&two, "seg000.ts", Bytes::from_static(b"other"))
        .await
        .unwrap();
    assert_eq!(&blobs.get(&one, "seg000.ts").await.unwrap()[..], b"zero");
    assert_eq!(
        &blobs.get(&one, "aac64k-init.mp4").await.unwrap()[..],
        b"ftyp"
    );
    assert_eq!(&blobs.get(&two, "seg000.ts").await.unwrap()[..], b"other");
    assert_eq!(
        sorted(blobs.list(&one).await.unwrap()),
        vec!["aac64k-init.mp4", "seg000.ts"]
    );
    assert_eq!(blobs.list(&two).await.unwrap(), vec!["seg000.ts"]);
    assert!(blobs.list(&TrackId::generate()).await.unwrap().is_empty());
    // A retried write of the same bytes is no error.
    blobs
        .put(&one, "seg000.ts", Bytes::from_static(b"zero"))
        .await
        .unwrap();
    assert_eq!(&blobs.get(&one, "seg000.ts").await.unwrap()[..], b"zero");
    assert_eq!(blobs.list(&one).await.unwrap().len(), 2);
    blobs.ping().await.unwrap();
    assert!(!blobs.describe().is_empty());
}

pub async fn ranges_are_clipped_to_the_end(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let id = owned(&owners).await;
    blobs
        .put(&id, "seg000.ts", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let range = |r: std::ops::Range<u64>| {
        let blobs = blobs.clone();
        async move { blobs.get_range(&id, "seg000.ts", r).await }
    };
    assert_eq!(&range(2..5).await.unwrap()[..], b"234");
    assert_eq!(&range(0..10).await.unwrap()[..], b"0123456789");
    assert_eq!(&range(7..100).await.unwrap()[..], b"789");
    assert!(range(10..20).await.unwrap().is_empty());
    assert!(range(4..4).await.unwrap().is_empty());
    assert!(matches!(range(11..20).await, Err(StoreError::Invalid(_))));
    // A range that ends before it starts (written so, since the literal is linted).
    let backwards = std::ops::Range { start: 5, end: 3 };
    assert!(matches!(
        range(backwards).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn missing_blobs_are_not_found(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let id = owned(&owners).await;
    assert!(matches!(
        blobs.get(&id, "seg000.ts").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        blobs.get_range(&id, "seg000.ts", 0..4).await,
        Err(StoreError::NotFound(_))
    ));
    // Removing what is not there is no error.
    blobs.delete(&id, &["seg000.ts".to_owned()]).await.unwrap();
    blobs.delete(&id, &[]).await.unwrap();
}

pub async fn deleted_blobs_are_gone(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let (id, other) = (owned(&owners).await, owned(&owners).await);
    for name in ["seg000.ts", "seg001.ts", "seg002.ts"] {
        blobs
            .put(&id, name, Bytes::from_static(b"bytes"))
            .await
            .unwrap();
    }
    blobs
        .put(&other, "seg000.ts", Bytes::from_static(b"kept"))
        .await
        .unwrap();
    blobs
        .delete(
            &id,
            &[
                "seg000.ts".to_owned(),
                "seg002.ts".to_owned(),
                "never.ts".to_owned(),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(
        blobs.get(&id, "seg000.ts").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(&blobs.get(&id, "seg001.ts").await.unwrap()[..], b"bytes");
    assert_eq!(blobs.list(&id).await.unwrap(), vec!["seg001.ts"]);
    assert_eq!(&blobs.get(&other, "seg000.ts").await.unwrap()[..], b"kept");
}

pub async fn large_blob_round_trips(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let id = owned(&owners).await;
    // 6 MB: larger than a MongoDB batch, as large as a long FLAC segment gets.
    let bytes: Vec<u8> = (0..6_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    blobs
        .put(&id, "flac-seg000.m4s", Bytes::from(bytes.clone()))
        .await
        .unwrap();
    assert_eq!(blobs.get(&id, "flac-seg000.m4s").await.unwrap(), bytes);
    assert_eq!(
        blobs
            .get_range(&id, "flac-seg000.m4s", 1_000_000..1_000_100)
            .await
            .unwrap(),
        bytes[1_000_000..1_000_100]
    );
}

pub async fn urls_and_keys_name_the_chunk(blobs: Arc<dyn Blobs>, owners: Option<DynStore>) {
    let id = owned(&owners).await;
    blobs
        .put(&id, "seg000.ts", Bytes::from_static(b"x"))
        .await
        .unwrap();
    // A backend with URLs signs one for the chunk's own key; one without has none.
    let url = blobs
        .url(&id, "seg000.ts", Duration::from_secs(60))
        .await
        .unwrap();
    let key = blobs.key(&id, "seg000.ts");
    assert_eq!(url.is_some(), key.is_some());
    if let (Some(url), Some(key)) = (url, key) {
        assert!(key.ends_with(&format!("{id}/seg000.ts")), "{key}");
        assert!(url.contains(&format!("{id}/seg000.ts")), "{url}");
    }
}

//! The seed's functions and ours on one database: each lists and streams the other's tracks.

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk, ListQuery, StoreError, TrackId, TrackPatch};
use legato_store_mongo::MongoStore;
use mongodb::bson::{Binary, Bson, doc, oid::ObjectId, spec::BinarySubtype};

use crate::util::{options_for, plain, plain_collection, test_uri, unique_database};

/// What the seed's ffmpeg command writes as `outputlist.m3u8` for a 20-second song.
const SEED_PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-ALLOW-CACHE:YES\n#EXT-X-TARGETDURATION:11\n#EXTINF:10.004898,\noutput000.ts\n\
#EXTINF:9.978778,\noutput001.ts\n#EXTINF:0.012000,\noutput002.ts\n#EXT-X-ENDLIST\n";

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

fn segment_bytes(i: u8) -> Vec<u8> {
    vec![0x47 ^ i; 188 * 50]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_written_by_the_seed_is_listed_shown_and_streamed() {
    let uri = test_uri();
    let database = unique_database("interop_seed");
    let db = plain(&uri, &database).await;
    let musics = plain_collection(&db, "musics");
    let chunks = plain_collection(&db, "chunks");

    // Exactly what the seed's CRUD function does: the music first, then one document per
    // file ffmpeg wrote.
    let inserted = musics
        .insert_one(doc! { "name": "Like a Prayer", "author": "Madonna" })
        .await
        .unwrap();
    let oid = inserted.inserted_id.as_object_id().unwrap();
    let music_id = oid.to_hex();
    let mut files = vec![(
        "outputlist.m3u8".to_owned(),
        SEED_PLAYLIST.as_bytes().to_vec(),
    )];
    for i in 0..3u8 {
        files.push((format!("output{i:03}.ts"), segment_bytes(i)));
    }
    for (name, bytes) in &files {
        chunks
            .insert_one(doc! { "music_id": &music_id, "chunk_name": name, "chunk_bytes": binary(bytes.clone()) })
            .await
            .unwrap();
    }

    let store = MongoStore::connect(&uri, options_for(&database))
        .await
        .unwrap();
    let id = TrackId::from_bytes(oid.bytes());
    let page = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
    let listed = &page.tracks[0];
    assert_eq!(listed.id, id);
    assert_eq!(
        (listed.name.as_str(), listed.author.as_str()),
        ("Like a Prayer", "Madonna")
    );
    assert_eq!(listed.playlist, "outputlist.m3u8");
    assert_eq!(listed.segments, 3);
    assert!(
        (listed.duration - 19.995676).abs() < 1e-6,
        "{}",
        listed.duration
    );
    assert_eq!(listed.codec, None);
    assert_eq!(listed.created_at, i64::from(id.timestamp()) * 1000);

    let shown = store.get_track(&id).await.unwrap();
    assert_eq!(&shown, listed);
    for (name, bytes) in &files {
        assert_eq!(
            &store.get_chunk(&id, name).await.unwrap()[..],
            &bytes[..],
            "{name}"
        );
    }
    let found = store
        .list_tracks(&ListQuery {
            search: Some("madon".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1);

    // Renaming keeps the seed's shape: only the fields it knows are touched.
    let renamed = store
        .update_track(
            &id,
            &TrackPatch {
                name: Some("Like a Prayer (live)".into()),
                author: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Like a Prayer (live)");
    assert_eq!(renamed.segments, 3);
    let raw = musics.find_one(doc! { "_id": oid }).await.unwrap().unwrap();
    // The seed's fields, and the search keys and change time Legato adds (which the seed
    // ignores).
    let mut keys: Vec<&str> = raw.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "_id",
            "author",
            "author_key",
            "changed_at",
            "name",
            "name_key",
            "words"
        ]
    );
    assert_eq!(raw.get_str("name_key").unwrap(), "like a prayer (live)");

    // The seed's chunks without their music are not streamed (a half-deleted track).
    let ghost = ObjectId::new();
    chunks
        .insert_one(doc! { "music_id": ghost.to_hex(), "chunk_name": "output000.ts", "chunk_bytes": binary(segment_bytes(9)) })
        .await
        .unwrap();
    match store
        .get_chunk(&TrackId::from_bytes(ghost.bytes()), "output000.ts")
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("a chunk without its track must not be served: {other:?}"),
    }

    store.delete_track(&id).await.unwrap();
    assert_eq!(
        chunks
            .count_documents(doc! { "music_id": &music_id })
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_written_by_us_is_streamed_by_the_seed() {
    let uri = test_uri();
    let database = unique_database("interop_ours");
    let store = MongoStore::connect(&uri, options_for(&database))
        .await
        .unwrap();
    let track = sample_track("Sky Full of Stars", "Coldplay");
    let chunks: Vec<Chunk> = std::iter::once(Chunk::new("index.m3u8", "#EXTM3U\n"))
        .chain((0..3u8).map(|i| Chunk::new(format!("seg{i:03}.ts"), segment_bytes(i))))
        .collect();
    store
        .insert_track(track.clone(), Box::new(chunks.clone().into_iter().map(Ok)))
        .await
        .unwrap();

    let db = plain(&uri, &database).await;
    // The seed's streaming function: find_one({"music_id": id, "chunk_name": name}).
    for chunk in &chunks {
        let doc = plain_collection(&db, "chunks")
            .find_one(doc! { "music_id": track.id.to_string(), "chunk_name": &chunk.name })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the seed finds no {}", chunk.name));
        match doc.get("chunk_bytes") {
            Some(Bson::Binary(b)) => assert_eq!(&b.bytes[..], &chunk.bytes[..]),
            other => panic!("chunk_bytes is {other:?}"),
        }
    }
    // The seed's list: str(_id), name, author.
    let music = plain_collection(&db, "musics")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        music.get_object_id("_id").unwrap().bytes(),
        track.id.bytes()
    );
    assert_eq!(music.get_str("name").unwrap(), track.name);
    assert_eq!(music.get_str("author").unwrap(), track.author);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_writes_change_the_library_version_and_the_digest_is_indexed() {
    let uri = test_uri();
    let database = unique_database("interop_version");
    let store = MongoStore::connect(&uri, options_for(&database))
        .await
        .unwrap();
    let db = plain(&uri, &database).await;
    let musics = plain_collection(&db, "musics");

    let empty = store.library_version().await.unwrap();
    // The seed knows nothing of our counter: inserting and deleting are seen all the same.
    let inserted = musics
        .insert_one(doc! { "name": "Vogue", "author": "Madonna" })
        .await
        .unwrap();
    let with_one = store.library_version().await.unwrap();
    assert_ne!(with_one, empty, "a track the seed inserted");
    assert_eq!(store.library_version().await.unwrap(), with_one);
    let second = musics
        .insert_one(doc! { "name": "Frozen", "author": "Madonna" })
        .await
        .unwrap();
    let with_two = store.library_version().await.unwrap();
    assert_ne!(with_two, with_one);
    musics
        .delete_one(doc! { "_id": inserted.inserted_id })
        .await
        .unwrap();
    let after_delete = store.library_version().await.unwrap();
    assert_ne!(after_delete, with_two, "a track the seed deleted");
    musics
        .delete_one(doc! { "_id": second.inserted_id })
        .await
        .unwrap();
    assert_ne!(store.library_version().await.unwrap(), after_delete);

    // The indexes lookups need, on the seed's collection and on ours.
    for (collection, index) in [
        ("musics", "source_sha256_created_at_id"),
        ("user_keys", "user_created_at_id"),
        ("stars", "user_kind_item"),
        ("ratings", "user_kind_item"),
        ("plays", "user_track"),
        ("playlists", "name_id"),
    ] {
        let names = plain_collection(&db, collection)
            .list_index_names()
            .await
            .unwrap();
        assert!(names.iter().any(|n| n == index), "{collection}: {names:?}");
    }
}

/// A database an older Legato wrote (waveforms inside `musics`, a retirement pending in the
/// track document, a track without keys) is upgraded once, at the first start: the waveform
/// moves to `track_peaks` and still shows, the keys are written, the retirement is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_layout_is_upgraded_once() {
    let uri = test_uri();
    let database = unique_database("upgrade");
    let db = plain(&uri, &database).await;
    let musics = plain_collection(&db, "musics");
    let peaks: Vec<f64> = (0..400).map(|i| f64::from(i) / 400.0).collect();
    let old = ObjectId::new();
    musics
        .insert_one(doc! {
            "_id": old, "name": "Old Song", "author": "Older",
            "duration": 12.0, "segments": 2_i64, "playlist": "index.m3u8",
            "created_at": 1_700_000_000_000_i64, "status": "ready",
            "analysis": { "loudness_lufs": -14.0, "true_peak_dbtp": -1.0, "peaks": peaks.clone() },
            "generation": 3_i64, "retire_after": 1_i64,
        })
        .await
        .unwrap();

    let store = MongoStore::connect(&uri, options_for(&database))
        .await
        .unwrap();
    let raw = musics.find_one(doc! { "_id": old }).await.unwrap().unwrap();
    let analysis = raw.get_document("analysis").unwrap();
    assert!(!analysis.contains_key("peaks"), "{raw}");
    assert_eq!(raw.get_str("name_key").unwrap(), "old song");
    let id = TrackId::from_bytes(old.bytes());
    let shown = store.get_track(&id).await.unwrap();
    let shown_peaks = shown.analysis.unwrap().peaks;
    assert_eq!(shown_peaks.len(), 400);
    assert!((f64::from(shown_peaks[200]) - 0.5).abs() < 1e-6);
    let listed = store
        .list_tracks(&ListQuery {
            peaks: true,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.tracks[0].analysis.as_ref().unwrap().peaks.len(), 400);
    let compact = store.list_tracks(&ListQuery::default()).await.unwrap();
    assert!(
        compact.tracks[0]
            .analysis
            .as_ref()
            .unwrap()
            .peaks
            .is_empty()
    );

    let due = store.due_retirements(2, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the pending retirement is queued");
    assert_eq!((due[0].track_id, due[0].generation), (id, 3));
    let schema = plain_collection(&db, "legato_meta")
        .find_one(doc! { "_id": "schema" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(schema.get_i64("version").unwrap(), 2);
    assert_eq!(
        plain_collection(&db, "track_peaks")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
}

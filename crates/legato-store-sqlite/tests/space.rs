//! Deleted tracks give their space back to the file system, and a database made before they
//! did is converted when it is opened.

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk};
use legato_store_sqlite::SqliteStore;

/// The database and its write-ahead log, in bytes.
fn on_disk(dir: &std::path::Path) -> u64 {
    ["legato.sqlite3", "legato.sqlite3-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|m| m.len())
        .sum()
}

/// A track of 24 chunks of 256 KiB (6 MiB).
async fn insert_big_track(store: &SqliteStore, n: u32) -> legato_store::TrackId {
    let track = sample_track(&format!("Big {n}"), "Space");
    let id = track.id;
    let chunks: Vec<Chunk> = (0..24)
        .map(|i| Chunk::new(format!("seg{i:03}.ts"), vec![n as u8; 256 * 1024]))
        .collect();
    store
        .insert_track(track, Box::new(chunks.into_iter().map(Ok)))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn deleting_tracks_gives_their_space_back_to_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let empty = on_disk(dir.path());
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(insert_big_track(&store, n).await);
    }
    let full = on_disk(dir.path());
    assert!(full > empty + 20 * 1024 * 1024, "{empty} -> {full}");
    for id in &ids {
        store.delete_track(id).await.unwrap();
    }
    let after = on_disk(dir.path());
    assert!(
        after < empty + 2 * 1024 * 1024,
        "deleted 24 MiB of tracks: {full} bytes on disk before, {after} after ({empty} empty)"
    );
}

#[tokio::test]
async fn a_database_of_before_is_converted_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legato.sqlite3");
    {
        // The shape an earlier version made: auto_vacuum off.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
        let mode: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, 0);
    }
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let id = insert_big_track(&store, 1).await;
    let full = on_disk(dir.path());
    store.delete_track(&id).await.unwrap();
    assert!(
        on_disk(dir.path()) + 4 * 1024 * 1024 < full,
        "the space stayed in the file"
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
}

//! Rough throughput of the MongoDB store against the SQLite one: track inserts and segment
//! reads per second on the same data.
//!
//! ```text
//! cargo run --release -p legato-store-mongo --example bench -- mongodb://127.0.0.1:27017/ [tracks] [segments] [reads]
//! ```
// A tool for tests and benchmarks, not a server: a failure stops it with its message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use legato_store::conformance::sample_track;
use legato_store::{Chunk, DynStore, TrackId};
use legato_store_mongo::{MongoOptions, MongoStore};
use legato_store_sqlite::SqliteStore;

/// About ten seconds of 128 kbit/s MP3 in MPEG-TS.
const SEGMENT_BYTES: usize = 200 * 1024;
const READERS: usize = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .expect("usage: bench MONGODB_URI [tracks] [segments] [reads]");
    let tracks: u32 = args.next().map_or(10, |a| a.parse().unwrap());
    let segments: u32 = args.next().map_or(24, |a| a.parse().unwrap());
    let reads: usize = args.next().map_or(400, |a| a.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let sqlite: DynStore =
        legato_store::Store::local(Arc::new(SqliteStore::open_dir(dir.path()).unwrap()));
    let database = format!("legato_bench_{}", std::process::id());
    let mongo: DynStore = legato_store::Store::local(Arc::new(
        MongoStore::connect(
            &uri,
            MongoOptions {
                database: Some(database),
                gc_on_start: false,
                ..MongoOptions::default()
            },
        )
        .await
        .unwrap(),
    ));
    println!(
        "{tracks} tracks x {segments} segments of {} KiB, {reads} reads by {READERS} readers",
        SEGMENT_BYTES / 1024
    );
    for (label, store) in [("sqlite", sqlite), ("mongo", mongo)] {
        run(label, store, tracks, segments, reads).await;
    }
}

async fn run(label: &str, store: DynStore, tracks: u32, segments: u32, reads: usize) {
    let started = Instant::now();
    let mut ids: Vec<TrackId> = Vec::new();
    for t in 0..tracks {
        let mut track = sample_track(&format!("Bench {t}"), "bench");
        track.segments = segments;
        let chunks = (0..segments).map(move |i| {
            Ok(Chunk::new(
                format!("seg{i:03}.ts"),
                vec![i as u8; SEGMENT_BYTES],
            ))
        });
        let head = std::iter::once(Ok(Chunk::new("index.m3u8", "#EXTM3U\n")));
        ids.push(
            store
                .insert_track(track, Box::new(head.chain(chunks)))
                .await
                .unwrap()
                .id,
        );
    }
    let took = started.elapsed().as_secs_f64();
    let stored = f64::from(tracks * segments) * SEGMENT_BYTES as f64 / 1e6;
    println!(
        "{label:>6}: insert {:.1} tracks/s, {:.0} segments/s ({:.0} MB/s)",
        f64::from(tracks) / took,
        f64::from(tracks * segments) / took,
        stored / took
    );

    let ids = Arc::new(ids);
    let started = Instant::now();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (store, ids) = (store.clone(), ids.clone());
        readers.push(tokio::spawn(async move {
            for n in 0..reads / READERS {
                let k = r * 7919 + n * 104_729;
                let id = ids[k % ids.len()];
                let name = format!("seg{:03}.ts", k % segments as usize);
                assert_eq!(
                    store.get_chunk(&id, &name).await.unwrap().len(),
                    SEGMENT_BYTES
                );
            }
        }));
    }
    for reader in readers {
        reader.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{label:>6}: read {:.0} segments/s ({:.1} ms each per reader)",
        reads as f64 / took,
        took * 1000.0 * READERS as f64 / reads as f64
    );
}

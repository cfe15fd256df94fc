//! Fills a store with a large library through the `Store` API (metadata only, no audio), for
//! `bench/library.py`.
//!
//! ```text
//! cargo run --release -p legato-store-mongo --example library -- DATA_DIR|MONGODB_URI TRACKS
//! ```
//!
//! A `mongodb://` URI fills its database (the URI's path, else `openfaas`); anything else is a
//! data folder for the SQLite store. Track `i` (from 0) is named `<Mood> <Thing> n<i:06>`
//! and by `<First> <Last>`, so that, with 100,000 tracks, a search for `n004242` matches one
//! track, `<First> <Last>` 100 and `<Mood>` 10,000. Every track has a 400-value waveform,
//! four variants and a duration of up to ten minutes.
//!
//! Albums, for `bench/subsonic.py`: tracks `10a..10a+9` form album `a` (10,000 albums with
//! 100,000 tracks), `<Word> r<a:05>` by the tracks' artist (who is also the album artist), track
//! numbers 1 to 10 on disc 1, a year in 1960..2019 and one of 20 genres. Album words are none of
//! the track names' or artists' words, so the searches above match the same tracks whether
//! albums are searched or not; `r04242` matches one album, `<Word>` 400.
// A tool for tests and benchmarks, not a server: a failure stops it with its message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use legato_store::conformance::sample_track;
use legato_store::{Analysis, DynStore, TrackId};
use legato_store_mongo::{MongoOptions, MongoStore};
use legato_store_sqlite::SqliteStore;

/// Ten moods, one in ten tracks each; accents included, so folding is exercised at scale.
const MOODS: [&str; 10] = [
    "Amber", "Blue", "Café", "Dawn", "Échos", "Fjörd", "Golden", "Hollow", "Ivory", "Jade",
];
const THINGS: [&str; 10] = [
    "Night", "River", "Lights", "Garden", "Motel", "Signal", "Harbor", "Static", "Window", "Engine",
];
/// 40 × 25 = 1,000 artists, 100 tracks each with 100,000 tracks.
const FIRST: [&str; 40] = [
    "Ada", "Bruno", "Chloé", "Dmitri", "Elsa", "Farid", "Greta", "Hiro", "Inès", "Jonas", "Kofi",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tariq", "Uma",
    "Viktor", "Wen", "Xavier", "Yara", "Zoltan", "Amara", "Björn", "Carmen", "Dario", "Emre",
    "Freya", "Gustav", "Hana", "Ivo", "Jade", "Kenji", "Lucía", "Milo", "Noor",
];
const LAST: [&str; 25] = [
    "Abara",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "García",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quist",
    "Rossi",
    "Šimek",
    "Tanaka",
    "Ulrich",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zhou",
];

/// 25 album words, each in 1 album of 25.
const ALBUM_WORDS: [&str; 25] = [
    "Atlas", "Borealis", "Cinder", "Delta", "Ember", "Fable", "Glacier", "Horizon", "Isthmus",
    "Juniper", "Kestrel", "Lantern", "Meridian", "Nocturne", "Orbit", "Prism", "Quarry", "Reverie",
    "Solstice", "Tundra", "Umbra", "Vertigo", "Wildfire", "Zenith", "Cascade",
];
/// 20 genres, album `a` has `GENRES[a % 20]`.
const GENRES: [&str; 20] = [
    "Rock",
    "Jazz",
    "Pop",
    "Electronic",
    "Classical",
    "Hip-Hop",
    "Folk",
    "Blues",
    "Metal",
    "Reggae",
    "Soul",
    "Country",
    "Funk",
    "Punk",
    "Ambient",
    "Latin",
    "House",
    "Techno",
    "Gospel",
    "World",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: library DATA_DIR|MONGODB_URI TRACKS");
    let tracks: u32 = args.next().map_or(100_000, |a| a.parse().unwrap());
    let store: DynStore = if target.starts_with("mongodb://") {
        legato_store::Store::local(Arc::new(
            MongoStore::connect(
                &target,
                MongoOptions {
                    gc_on_start: false,
                    ..MongoOptions::default()
                },
            )
            .await
            .unwrap(),
        ))
    } else {
        legato_store::Store::local(Arc::new(
            SqliteStore::open_dir(std::path::Path::new(&target)).unwrap(),
        ))
    };
    let started = Instant::now();
    // A few inserts in flight: the SQLite store serialises them on its writer anyway.
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..tracks {
        if pending.len() >= 4 {
            pending.join_next().await.unwrap().unwrap();
        }
        let store = store.clone();
        pending.spawn(async move {
            store
                .insert_track(track(i), Box::new(std::iter::empty()))
                .await
                .unwrap();
        });
        if i > 0 && (i % 10_000 == 0 || i == 1_000) {
            eprintln!("{i} tracks in {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "{tracks} tracks in {:.1} s into {}",
        started.elapsed().as_secs_f64(),
        store.describe()
    );
}

fn track(i: u32) -> legato_store::Track {
    let n = i as usize;
    let name = format!("{} {} n{i:06}", MOODS[n % 10], THINGS[(n / 10) % 10],);
    let artist = (n / 10) % 1000;
    let author = format!("{} {}", FIRST[artist % 40], LAST[artist / 40]);
    let mut track = sample_track(&name, &author);
    track.id = TrackId::generate();
    track.created_at = 1_700_000_000_000 + i64::from(i) * 1000;
    track.duration = f64::from((i * 7919) % 600) + 0.5;
    let album = n / 10;
    track.album = Some(format!("{} r{album:05}", ALBUM_WORDS[album % 25]));
    track.album_artist = Some(track.author.clone());
    track.year = Some(1960 + (album % 60) as i32);
    track.genre = Some(GENRES[album % 20].to_owned());
    track.track_number = Some(i % 10 + 1);
    track.disc_number = Some(1);
    track.analysis = Some(Analysis {
        loudness_lufs: Some(-14.0 + f64::from(i % 50) / 10.0),
        true_peak_dbtp: Some(-1.0),
        peaks: (0..400)
            .map(|k| ((k * 37 + i) % 1000) as f32 / 1000.0)
            .collect(),
    });
    track
}

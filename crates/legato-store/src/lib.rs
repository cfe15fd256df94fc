//! The storage contracts of Legato.
//!
//! Two contracts, composed in one place:
//! - a [`Catalog`] (tracks, jobs, the library, users and their state), implemented by the
//!   SQLite and MongoDB backends;
//! - a [`Blobs`] store (chunk bytes: put, get, ranged get, delete, list, a presigned URL where
//!   the backend has one), implemented by SQLite and MongoDB over their chunk rows (the seed's
//!   `chunks` collection on MongoDB) and by the object store.
//!
//! A [`Store`] is a catalog plus where its chunk bytes live: in the catalog's own rows
//! ([`Store::local`]) or in a separate blob store ([`Store::with_objects`]). Handlers and the
//! ingest pipeline hold a [`DynStore`]; the binary composes it at start-up. Nothing outside a
//! backend crate and that one place names a concrete backend.
//!
//! Invariants every store upholds, checked by the [`conformance`] stories:
//! - **Publish-last.** A track becomes visible (listed, gettable, streamable) only once every
//!   chunk of it is stored; a failed insert leaves nothing visible behind.
//! - **Objects first.** With a separate blob store, a chunk's bytes are stored before the row
//!   that names it, and a track's rows are removed before its bytes.
//! - **Chunks are immutable.** A chunk's bytes never change for a given `(track id, name)`, so
//!   caches and HTTP validators may rely on them forever.

pub mod accounts;
mod blobs;
mod catalog;
mod error;
mod id;
pub mod keys;
mod model;
mod store;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;

use futures_core::stream::BoxStream;

pub use accounts::{
    Accounts, ItemKind, ItemRef, PlayCount, Playlist, PlaylistPatch, User, UserKey, UserMarks,
};
pub use blobs::{Blobs, slice_range};
pub use catalog::Catalog;
pub use error::StoreError;
pub use id::{InvalidTrackId, TrackId};
pub use model::{
    Analysis, Changes, Chunk, ChunkSource, Enqueued, Job, JobCounts, JobKind, JobState, ListQuery,
    Page, Retirement, SortKey, SortOrder, SourceInfo, Track, TrackPatch, TrackStatus, Variant,
};
pub use store::{Migrated, Store};

/// Result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Names under which a track's media playlist may be asked for. The first is what Legato
/// writes; the second is the seed's name, which its web page and its stored tracks use.
pub const PLAYLIST_NAMES: [&str; 2] = ["index.m3u8", "outputlist.m3u8"];

/// The media type of a chunk, by its name's extension: what the streaming function answers
/// and what an object store keeps with the object (so a CDN serves it right).
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        // RFC 4337; the init segment and the media segments alike.
        "mp4" | "m4s" => "audio/mp4",
        "jpg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// Tracks as a backend reads them, for [`Catalog::stream_tracks`].
pub type TrackStream = BoxStream<'static, Result<Track>>;

/// The shared handle handlers hold.
pub type DynStore = Arc<Store>;

//! Every index the store declares, in one table: `ensure_indexes` creates them, and the
//! query-shape test (tests/query_shape.rs) checks every query the store sends against them.

/// One declared index.
#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub collection: &'static str,
    pub name: &'static str,
    /// Fields in order, each ascending.
    pub keys: &'static [&'static str],
    pub unique: bool,
}

const fn index(
    collection: &'static str,
    name: &'static str,
    keys: &'static [&'static str],
) -> IndexSpec {
    IndexSpec {
        collection,
        name,
        keys,
        unique: false,
    }
}

const fn unique(
    collection: &'static str,
    name: &'static str,
    keys: &'static [&'static str],
) -> IndexSpec {
    IndexSpec {
        collection,
        name,
        keys,
        unique: true,
    }
}

/// The indexes, beside the `_id` index every collection has.
pub const INDEXES: &[IndexSpec] = &[
    // Streaming by the seed's functions (Legato finds its own chunks by `_id`); no chunk
    // stored twice.
    unique("chunks", "music_id_chunk_name", &["music_id", "chunk_name"]),
    // A list in each order the API offers, ties broken by `_id`.
    index("musics", "created_at_id", &["created_at", "_id"]),
    index("musics", "name_key_id", &["name_key", "_id"]),
    index("musics", "author_key_id", &["author_key", "_id"]),
    index("musics", "duration_id", &["duration", "_id"]),
    // Search: anchored prefixes of the words of name and author (multikey).
    index("musics", "words_id", &["words", "_id"]),
    // Duplicate uploads, asked on every upload: the oldest track of a digest.
    index(
        "musics",
        "source_sha256_created_at_id",
        &["source.sha256", "created_at", "_id"],
    ),
    // Tracks a stopped process left processing (start-up).
    index("musics", "status_created_at", &["status", "created_at"]),
    // Pending retirements (until the upgrade queues them in `retirements`).
    index("musics", "retire_after_id", &["retire_after", "_id"]),
    // Copies of the library following its changes (the Subsonic snapshot).
    index("musics", "changed_at", &["changed_at"]),
    index("track_deletions", "at", &["at"]),
    index("retirements", "after", &["after"]),
    index("pending_writes", "at", &["at"]),
    // Claiming: of each kind, lapsed leases, then due jobs, oldest first; counting the queue.
    index(
        "jobs",
        "state_kind_lease_created",
        &["state", "kind", "lease_until", "created_at"],
    ),
    // A reprocessing's first claim comes after the track's highest logged one.
    index("job_log", "track_claim", &["track", "claim"]),
    // The accounts.
    index(
        "user_keys",
        "user_created_at_id",
        &["user", "created_at", "_id"],
    ),
    index("user_keys", "user_label", &["user", "label"]),
    unique("stars", "user_kind_item", &["user", "kind", "item"]),
    unique("ratings", "user_kind_item", &["user", "kind", "item"]),
    unique("plays", "user_track", &["user", "track"]),
    index("playlists", "owner", &["owner"]),
    index("playlists", "name_id", &["name", "_id"]),
];

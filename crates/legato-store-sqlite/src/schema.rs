//! The schema and its migrations, from version 1 to [`SCHEMA_VERSION`].

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use legato_store::{Result, StoreError, keys};

use crate::accounts;
use crate::rows::map_err;

pub(crate) const SCHEMA_VERSION: i64 = 8;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tracks (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    author      TEXT NOT NULL,
    duration    REAL NOT NULL,
    segments    INTEGER NOT NULL,
    playlist    TEXT NOT NULL,
    codec       TEXT,
    bitrate     INTEGER,
    sample_rate INTEGER,
    channels    INTEGER,
    size        INTEGER,
    created_at  INTEGER NOT NULL,
    album       TEXT,
    year        INTEGER,
    status      TEXT NOT NULL DEFAULT 'ready',
    error       TEXT,
    variants    TEXT,
    cover       TEXT,
    analysis    TEXT,
    source      TEXT
);
CREATE INDEX IF NOT EXISTS tracks_created_at ON tracks (created_at);
CREATE TABLE IF NOT EXISTS chunks (
    track_id TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    bytes    BLOB NOT NULL,
    UNIQUE (track_id, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    track_id    TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    claims      INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, lease_until);
";

/// Schema version 4: search and sort keys, their indexes, the full-text index and the waveform
/// apart. The tokenizer sees keys we folded already (see `legato_store::keys`); its own
/// folding only repeats ours, and its categories are the characters our words are made of.
pub(crate) const V4_SCHEMA: &str = "
ALTER TABLE tracks ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
ALTER TABLE tracks ADD COLUMN author_key TEXT NOT NULL DEFAULT '';
CREATE TABLE track_peaks (
    track_id TEXT PRIMARY KEY NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    peaks    TEXT NOT NULL
);
INSERT INTO track_peaks (track_id, peaks)
    SELECT id, json_extract(analysis, '$.peaks') FROM tracks
    WHERE json_valid(analysis) AND json_type(analysis, '$.peaks') = 'array';
UPDATE tracks SET analysis = json_remove(analysis, '$.peaks')
    WHERE json_valid(analysis) AND json_type(analysis, '$.peaks') IS NOT NULL;
DROP INDEX IF EXISTS tracks_created_at;
CREATE INDEX tracks_by_created_at ON tracks (created_at, id);
CREATE INDEX tracks_by_duration ON tracks (duration, id);
";

/// Created once the keys of existing rows are filled in.
pub(crate) const V4_INDEXES: &str = "
CREATE INDEX tracks_by_name ON tracks (name_key, id);
CREATE INDEX tracks_by_author ON tracks (author_key, id);
CREATE VIRTUAL TABLE tracks_fts USING fts5 (
    name_key, author_key, content = 'tracks', content_rowid = 'rowid',
    tokenize = \"unicode61 remove_diacritics 2 categories 'L* N* Co M*'\", prefix = '1 2 3'
);
CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO tracks_fts (rowid, name_key, author_key)
        VALUES (new.rowid, new.name_key, new.author_key);
END;
CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, name_key, author_key)
        VALUES ('delete', old.rowid, old.name_key, old.author_key);
END;
CREATE TRIGGER tracks_fts_update AFTER UPDATE OF name_key, author_key ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, name_key, author_key)
        VALUES ('delete', old.rowid, old.name_key, old.author_key);
    INSERT INTO tracks_fts (rowid, name_key, author_key)
        VALUES (new.rowid, new.name_key, new.author_key);
END;
INSERT INTO tracks_fts (tracks_fts) VALUES ('rebuild');
";

/// Schema version 5: tracks still processing found without reading the table (the check at
/// start-up read all of a 100,000-track library).
pub(crate) const V5_SCHEMA: &str = "
CREATE INDEX tracks_processing ON tracks (created_at) WHERE status = 'processing';
";

/// Schema version 6: reprocessing. A job has a kind; a track records the generation (claim)
/// of its current renditions, the fence of the next replacement, and until when the
/// renditions it replaced are kept (`retire_after`, NULL once they are removed).
pub(crate) const V6_SCHEMA: &str = "
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'ingest';
ALTER TABLE tracks ADD COLUMN generation INTEGER;
ALTER TABLE tracks ADD COLUMN retire_after INTEGER;
CREATE INDEX tracks_retiring ON tracks (retire_after) WHERE retire_after IS NOT NULL;
";

/// Schema version 7: more tags (album artist, genre, track and disc numbers); the source's
/// SHA-256 indexed (an upload looks it up every time: the index is on the same expression the
/// lookup reads, since `source` is JSON); the library's version, bumped by triggers on every
/// change of `tracks` (any connection, any process), which caches of the library poll; and the
/// accounts (users, their API keys, stars, ratings, plays, playlists).
pub(crate) const V7_SCHEMA: &str = "
ALTER TABLE tracks ADD COLUMN album_artist TEXT;
ALTER TABLE tracks ADD COLUMN genre TEXT;
ALTER TABLE tracks ADD COLUMN track_number INTEGER;
ALTER TABLE tracks ADD COLUMN disc_number INTEGER;
CREATE INDEX tracks_by_source_sha256 ON tracks (json_extract(source, '$.sha256'), created_at, id)
    WHERE source IS NOT NULL;
CREATE TABLE library_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO library_version (id, version) VALUES (1, 0);
CREATE TRIGGER tracks_version_insert AFTER INSERT ON tracks BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER tracks_version_update AFTER UPDATE ON tracks BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER tracks_version_delete AFTER DELETE ON tracks BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
END;
";

/// Schema version 8: every change of a track is numbered, so a copy of the library (the
/// Subsonic snapshot) follows the changes instead of reading everything again. The triggers
/// that count changes in `library_version` also stamp the changed row's `change_seq` with the
/// new count (the nested update does not fire them again: recursive triggers are off, and
/// `WHEN` makes sure), and a deleted track leaves its id in `track_deletions`. Writes are
/// serialised by SQLite, so numbers follow commit order and a reader never skips one.
pub(crate) const V8_SCHEMA: &str = "
ALTER TABLE tracks ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tracks_by_change ON tracks (change_seq);
CREATE TABLE track_deletions (
    id         TEXT PRIMARY KEY NOT NULL,
    change_seq INTEGER NOT NULL
);
CREATE INDEX track_deletions_by_change ON track_deletions (change_seq);
DROP TRIGGER tracks_version_insert;
DROP TRIGGER tracks_version_update;
DROP TRIGGER tracks_version_delete;
CREATE TRIGGER tracks_version_insert AFTER INSERT ON tracks BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
    UPDATE tracks SET change_seq = (SELECT version FROM library_version WHERE id = 1)
        WHERE rowid = NEW.rowid;
    DELETE FROM track_deletions WHERE id = NEW.id;
END;
CREATE TRIGGER tracks_version_update AFTER UPDATE ON tracks
    WHEN NEW.change_seq IS OLD.change_seq BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
    UPDATE tracks SET change_seq = (SELECT version FROM library_version WHERE id = 1)
        WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER tracks_version_delete AFTER DELETE ON tracks BEGIN
    UPDATE library_version SET version = version + 1 WHERE id = 1;
    INSERT OR REPLACE INTO track_deletions (id, change_seq)
        VALUES (OLD.id, (SELECT version FROM library_version WHERE id = 1));
END;
";

/// Columns added by schema version 2 (adaptive bitrate, tags, async ingest, analysis).
pub(crate) const V2_COLUMNS: [&str; 7] = [
    "album TEXT",
    "year INTEGER",
    "status TEXT NOT NULL DEFAULT 'ready'",
    "error TEXT",
    "variants TEXT",
    "cover TEXT",
    "analysis TEXT",
];

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(map_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}: \
             upgrade legato"
        )));
    }
    if version == SCHEMA_VERSION {
        // Up to date: no write at start-up.
        return Ok(());
    }
    // All steps in one transaction: a crash halfway leaves the previous version intact.
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(map_err)?;
    if version == 1 {
        for column in V2_COLUMNS {
            tx.execute_batch(&format!("ALTER TABLE tracks ADD COLUMN {column}"))
                .map_err(map_err)?;
        }
    }
    // Version 3: originals kept (`tracks.source`) and durable ingest jobs (`jobs`, created by
    // SCHEMA below).
    if (1..3).contains(&version) {
        tx.execute_batch("ALTER TABLE tracks ADD COLUMN source TEXT")
            .map_err(map_err)?;
    }
    tx.execute_batch(SCHEMA).map_err(map_err)?;
    if version < 4 {
        migrate_to_v4(&tx)?;
    }
    if version < 5 {
        tx.execute_batch(V5_SCHEMA).map_err(map_err)?;
    }
    if version < 6 {
        tx.execute_batch(V6_SCHEMA).map_err(map_err)?;
    }
    if version < 7 {
        tx.execute_batch(V7_SCHEMA).map_err(map_err)?;
        tx.execute_batch(accounts::SCHEMA).map_err(map_err)?;
    }
    if version < 8 {
        tx.execute_batch(V8_SCHEMA).map_err(map_err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(map_err)?;
    tx.commit().map_err(map_err)
}

pub(crate) fn migrate_to_v4(conn: &Connection) -> Result<()> {
    conn.execute_batch(V4_SCHEMA).map_err(map_err)?;
    {
        let mut rows = conn
            .prepare("SELECT rowid, name, author FROM tracks")
            .map_err(map_err)?;
        let mut update = conn
            .prepare("UPDATE tracks SET name_key = ?2, author_key = ?3 WHERE rowid = ?1")
            .map_err(map_err)?;
        let mut rows = rows.query([]).map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let rowid: i64 = row.get(0).map_err(map_err)?;
            let name: String = row.get(1).map_err(map_err)?;
            let author: String = row.get(2).map_err(map_err)?;
            update
                .execute(params![rowid, keys::fold(&name), keys::fold(&author)])
                .map_err(map_err)?;
        }
    }
    conn.execute_batch(V4_INDEXES).map_err(map_err)
}

//! The embedded default store: one SQLite file holding tracks and their chunks.
//!
//! SQLite is synchronous, so every operation runs on tokio's blocking pool and the async
//! workers that stream segments are never held up by a write. Writes go through one
//! connection (SQLite allows one writer at a time anyway, and a single writer never meets
//! `SQLITE_BUSY`); reads use a small pool of their own connections, which WAL mode lets run
//! beside the writer.
//!
//! An insert is one transaction: the track row and every chunk commit together or not at
//! all, so a crash or a failing chunk source never leaves a half-stored track.
//!
//! # Lists of any size
//!
//! Each track row carries `name_key` and `author_key` ([`legato_store::keys::fold`]: the
//! same keys the MongoDB store keeps, so both order and match alike). Every order the API
//! offers has an index `(key, id)`, and paging skips through that index alone before reading
//! the rows of the page. Search goes through `tracks_fts`, an FTS5 index over the two keys
//! kept in step by triggers; a query becomes word prefixes (`"beyon"*`). The waveform lives in
//! its own table, `track_peaks`, so listing never reads it unless asked to.

mod accounts;
mod blobs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use legato_store::{
    Analysis, Catalog, ChunkSource, Enqueued, Job, JobCounts, JobKind, JobState, ListQuery, Page,
    Result, Retirement, SortKey, SortOrder, StoreError, Track, TrackId, TrackPatch, TrackStatus,
    TrackStream, keys,
};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

/// File name of the database inside the data folder.
pub const DATABASE_FILE: &str = "legato.sqlite3";

/// Media read connections kept open; beyond this, a connection is opened for one read and
/// closed after it.
const MEDIA_READERS: usize = 8;

/// Metadata read connections kept open (each with its own page cache).
const METADATA_READERS: usize = 4;
/// Source readers kept open: a worker or two and a download at a time.
const BULK_READERS: usize = 2;

/// SQLite's page cache per metadata connection, in KiB: the order indexes of a 100,000-track
/// library fit, so a page deep in a list reads no page twice from the OS.
const METADATA_CACHE_KIB: i64 = 16 * 1024;

/// Tracks read ahead of a streaming list's client.
const STREAM_BUFFER: usize = 256;

const SCHEMA_VERSION: i64 = 8;

/// Bytes of the database file each media connection may map into memory.
const MMAP_BYTES: i64 = 1 << 30;

/// What a connection is for, which decides whether it maps the file into memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// Writes: through SQLite's page cache.
    Writer,
    /// Track rows, lists, searches, jobs: through SQLite's page cache, bounded per connection
    /// ([`METADATA_CACHE_KIB`]). Mapped, every page an index walk or a scan touched would stay
    /// in the process's resident memory, once per connection (a 100,000-track library took
    /// 440 MB that way).
    Metadata,
    /// Chunk blobs (segments, playlists, covers): through the memory map, which saves a
    /// system call per page of a 100-300 KB segment.
    Media,
    /// Pieces of stored sources, read once from start to end (to process or download them):
    /// through SQLite's default small page cache, not the map, where a 500 MB source would
    /// stay resident in the process once read.
    Bulk,
}

const SCHEMA: &str = "
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

const JOB_COLUMNS: &str = "track_id, state, attempts, claims, owner, lease_until, last_error, \
                           created_at, updated_at, kind";

const TRACK_COLUMNS: &str = "id, name, author, duration, segments, playlist, codec, bitrate, \
                             sample_rate, channels, size, created_at, album, year, status, error, \
                             variants, cover, analysis, source, album_artist, genre, \
                             track_number, disc_number";

/// Schema version 4: search and sort keys, their indexes, the full-text index and the waveform
/// apart. The tokenizer sees keys we folded already (see `legato_store::keys`); its own
/// folding only repeats ours, and its categories are the characters our words are made of.
const V4_SCHEMA: &str = "
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
const V4_INDEXES: &str = "
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
const V5_SCHEMA: &str = "
CREATE INDEX tracks_processing ON tracks (created_at) WHERE status = 'processing';
";

/// Schema version 6: reprocessing. A job has a kind; a track records the generation (claim)
/// of its current renditions, the fence of the next replacement, and until when the
/// renditions it replaced are kept (`retire_after`, NULL once they are removed).
const V6_SCHEMA: &str = "
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
const V7_SCHEMA: &str = "
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
const V8_SCHEMA: &str = "
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

/// The oldest track whose source has a given SHA-256, through `tracks_by_source_sha256`
/// (the expression and the partial index's condition are the index's own).
/// A failed track of the file comes after one that is not (an upload after a failure is a
/// new track); sorting the few tracks of one file costs nothing.
const FIND_BY_SOURCE_SHA256: &str = "WHERE source IS NOT NULL \
     AND json_extract(source, '$.sha256') = ?1 ORDER BY status = 'failed', created_at, id LIMIT 1";

/// Tracks left `processing` by a server that stopped, without a durable job to finish them
/// (uploads made before version 3).
const FAIL_STALE_PROCESSING: &str = "UPDATE tracks SET status = 'failed', \
     error = 'processing was interrupted (the server stopped); upload the file again' \
     WHERE status = 'processing' AND created_at < ?1 \
     AND id NOT IN (SELECT track_id FROM jobs)";

/// Columns added by schema version 2 (adaptive bitrate, tags, async ingest, analysis).
const V2_COLUMNS: [&str; 7] = [
    "album TEXT",
    "year INTEGER",
    "status TEXT NOT NULL DEFAULT 'ready'",
    "error TEXT",
    "variants TEXT",
    "cover TEXT",
    "analysis TEXT",
];

pub struct SqliteStore {
    path: PathBuf,
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    media_readers: Mutex<Vec<Connection>>,
    bulk_readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating when missing) the database in `data_dir`.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data folder {}: {e}",
                data_dir.display()
            ))
        })?;
        Self::open_file(&data_dir.join(DATABASE_FILE))
    }

    /// Opens (creating when missing) the database file at `path`.
    pub fn open_file(path: &Path) -> Result<Self> {
        let writer = connect(path, Role::Writer)?;
        migrate(&writer)?;
        make_reclaimable(&writer, path);
        keep_reserve(&reserve_path(path));
        // One reader of each kind opened now (well under a millisecond) spares the first
        // requests the open.
        let inner = Inner {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![connect(path, Role::Metadata)?]),
            media_readers: Mutex::new(vec![connect(path, Role::Media)?]),
            bulk_readers: Mutex::new(Vec::new()),
        };
        Ok(Self {
            path: path.to_owned(),
            inner: Arc::new(inner),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.read_as(Role::Metadata, work).await
    }

    async fn read_as<T, F>(&self, role: Role, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let conn = inner.take_reader(role)?;
            let result = work(&conn);
            inner.give_back(role, conn);
            result
        })
        .await
    }

    async fn chunk(
        &self,
        role: Role,
        id: &TrackId,
        name: &str,
        sql: &'static str,
    ) -> Result<Bytes> {
        let (id, name) = (*id, name.to_owned());
        self.read_as(role, move |conn| {
            conn.prepare_cached(sql)
                .map_err(map_err)?
                .query_row(params![id.to_string(), name], |row| {
                    row.get::<_, Vec<u8>>(0)
                })
                .optional()
                .map_err(map_err)?
                .map(Bytes::from)
                .ok_or_else(|| StoreError::NotFound(format!("chunk {name} of track {id}")))
        })
        .await
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn)
        })
        .await
    }
}

impl Inner {
    fn pool(&self, role: Role) -> &Mutex<Vec<Connection>> {
        match role {
            Role::Media => &self.media_readers,
            Role::Bulk => &self.bulk_readers,
            Role::Metadata | Role::Writer => &self.readers,
        }
    }

    /// A read connection from the role's pool, or a new one when all are in use.
    fn take_reader(&self, role: Role) -> Result<Connection> {
        let pooled = self
            .pool(role)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => connect(&self.path, role),
        }
    }

    fn give_back(&self, role: Role, conn: Connection) {
        let kept = match role {
            Role::Media => MEDIA_READERS,
            Role::Bulk => BULK_READERS,
            Role::Metadata | Role::Writer => METADATA_READERS,
        };
        let mut readers = self
            .pool(role)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if readers.len() < kept {
            readers.push(conn);
        }
    }
}

async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

fn connect(path: &Path, role: Role) -> Result<Connection> {
    let writable = role == Role::Writer;
    let flags = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Unavailable(format!("cannot open the database {}: {e}", path.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
    match role {
        Role::Media => conn.pragma_update(None, "mmap_size", MMAP_BYTES),
        // Negative: a size in KiB rather than in pages.
        Role::Metadata => conn.pragma_update(None, "cache_size", -METADATA_CACHE_KIB),
        Role::Writer | Role::Bulk => Ok(()),
    }
    .map_err(map_err)?;
    if writable {
        // Bigger pages mean fewer overflow pages per blob; only takes effect on a new file.
        conn.pragma_update(None, "page_size", 16_384)
            .map_err(map_err)?;
        // Deleted tracks give their pages back to the file system (see `reclaim`); like the
        // page size, this takes effect on a new file (`make_reclaimable` converts an old one).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(map_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(map_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(map_err)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(map_err)?;
    Ok(conn)
}

/// Disk kept aside next to the database so that tracks can still be deleted when the disk
/// is full: SQLite needs to write (its journal) even to delete.
const RESERVE_BYTES: usize = 8 * 1024 * 1024;

fn reserve_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".reserve");
    PathBuf::from(name)
}

/// Writes the reserve file (real blocks, not a sparse file) when it is missing and the
/// disk has room for it several times over; a failure only costs the reserve.
fn keep_reserve(reserve: &Path) {
    if reserve.exists() {
        return;
    }
    // Re-armed as soon as it fits with as much again to spare: a reserve that waits for a
    // roomy disk is missing at the second full disk.
    let roomy = rustix::fs::statvfs(reserve.parent().unwrap_or(Path::new(".")))
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize) > 2 * RESERVE_BYTES as u64)
        .unwrap_or(false);
    if !roomy {
        return;
    }
    if let Err(err) = std::fs::write(reserve, vec![0u8; RESERVE_BYTES]) {
        let _ = std::fs::remove_file(reserve);
        tracing::warn!(error = %err, "could not keep a disk reserve for deletes");
    }
}

/// Databases this size or smaller are converted to incremental vacuum at start-up; a larger
/// one would hold the start for long (the whole file is rewritten).
const CONVERT_AT_START_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Converts a database made before deleted tracks gave their space back (`auto_vacuum`
/// NONE) into one that does: one `VACUUM`, which rewrites the file and needs as much free
/// disk again. Skipped, with a warning, when the file is large or the disk too full.
fn make_reclaimable(conn: &Connection, path: &Path) {
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .unwrap_or(2);
    if mode != 0 {
        return;
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    let free = rustix::fs::statvfs(path.parent().unwrap_or(Path::new(".")))
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    if size > CONVERT_AT_START_BYTES || free < size.saturating_mul(2) + RESERVE_BYTES as u64 {
        tracing::warn!(
            bytes = size,
            free,
            "this database keeps the space of deleted tracks for new ones but does not give it \
             back to the disk; it is converted at a start with twice its size free (and at most \
             2 GiB)"
        );
        return;
    }
    let started = std::time::Instant::now();
    let converted = conn
        .pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .and_then(|()| conn.execute_batch("VACUUM"));
    match converted {
        Ok(()) => tracing::info!(
            bytes = size,
            seconds = started.elapsed().as_secs_f64(),
            "the database now gives the space of deleted tracks back to the disk"
        ),
        Err(err) => {
            tracing::warn!(error = %err, "could not convert the database to incremental vacuum")
        }
    }
}

/// Gives the pages a delete freed back to the file system: moves pages from the end of the
/// file into the free ones, truncates it, and checkpoints the write-ahead log so that the
/// file really shrinks. Best effort: what is not returned now is reused by the next writes.
fn reclaim(conn: &Connection) {
    let started = std::time::Instant::now();
    let freed: i64 = conn
        .pragma_query_value(None, "freelist_count", |row| row.get(0))
        .unwrap_or(0);
    if freed == 0 {
        return;
    }
    // The pragma frees one page per step: stepped to its end.
    let vacuumed = conn
        .prepare("PRAGMA incremental_vacuum")
        .and_then(|mut stmt| {
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        });
    if let Err(err) = vacuumed {
        tracing::warn!(error = %err, "could not give freed pages back to the disk");
        return;
    }
    if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %err, "the checkpoint after a reclaim did not finish");
    }
    tracing::debug!(
        pages = freed,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "gave freed pages back to the disk"
    );
}

/// Frees the reserve; true when there was one.
fn release_reserve(reserve: &Path) -> bool {
    std::fs::remove_file(reserve).is_ok()
}

fn migrate(conn: &Connection) -> Result<()> {
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

fn migrate_to_v4(conn: &Connection) -> Result<()> {
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

fn map_err(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(err.to_string())
        }
        Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(err.to_string()),
        // Retrying does not help a full disk: it is its own error (507 at the API).
        Some(ErrorCode::DiskFull) => StoreError::Full(err.to_string()),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

fn not_found(id: &TrackId) -> StoreError {
    StoreError::NotFound(format!("track {id}"))
}

/// Where `peaks` stands in a row of [`TRACK_COLUMNS`] followed by `peaks`.
const PEAKS_COLUMN: usize = 24;

/// A track from a row of [`TRACK_COLUMNS`], followed by `peaks` when `with_peaks`.
fn track_from_row_with(row: &rusqlite::Row<'_>, with_peaks: bool) -> rusqlite::Result<Track> {
    let mut track = track_from_row(row)?;
    if with_peaks
        && let Some(analysis) = track.analysis.as_mut()
        && let Some(peaks) = json_column::<Vec<f32>>(row, PEAKS_COLUMN)?
    {
        analysis.peaks = peaks;
    }
    Ok(track)
}

fn track_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Track> {
    let id: String = row.get(0)?;
    let id = id.parse::<TrackId>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Track {
        id,
        name: row.get(1)?,
        author: row.get(2)?,
        duration: row.get(3)?,
        segments: row.get(4)?,
        playlist: row.get(5)?,
        codec: row.get(6)?,
        bitrate: row.get(7)?,
        sample_rate: row.get(8)?,
        channels: row.get(9)?,
        size: row.get::<_, Option<i64>>(10)?.map(|s| s.max(0) as u64),
        created_at: row.get(11)?,
        album: row.get(12)?,
        year: row.get(13)?,
        status: row
            .get::<_, String>(14)
            .map(|s| TrackStatus::parse(&s).unwrap_or_default())?,
        error: row.get(15)?,
        variants: json_column(row, 16)?.unwrap_or_default(),
        cover: row.get(17)?,
        analysis: json_column(row, 18)?,
        source: json_column(row, 19)?,
        album_artist: row.get(20)?,
        genre: row.get(21)?,
        track_number: row.get(22)?,
        disc_number: row.get(23)?,
    })
}

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let id: String = row.get(0)?;
    let track_id = id.parse::<TrackId>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let state: String = row.get(1)?;
    Ok(Job {
        track_id,
        state: JobState::parse(&state).unwrap_or(JobState::Queued),
        attempts: row.get(2)?,
        claims: row.get::<_, i64>(3)?.max(0) as u64,
        owner: row.get(4)?,
        lease_until: row.get(5)?,
        last_error: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        kind: JobKind::parse(&row.get::<_, String>(9)?).unwrap_or_default(),
    })
}

fn claims_param(claims: u64) -> i64 {
    i64::try_from(claims).unwrap_or(i64::MAX)
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        }),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The analysis as stored in the track row (without the waveform) and the waveform, which
/// has a table of its own.
fn split_analysis(analysis: &Analysis) -> Result<(String, Option<String>)> {
    let small = Analysis {
        peaks: Vec::new(),
        ..analysis.clone()
    };
    let mut small = serde_json::to_value(&small).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if let Some(object) = small.as_object_mut() {
        object.remove("peaks");
    }
    let peaks = (!analysis.peaks.is_empty())
        .then(|| to_json(&analysis.peaks))
        .transpose()?;
    Ok((small.to_string(), peaks))
}

fn write_peaks(conn: &Connection, id: &TrackId, peaks: Option<&str>) -> Result<()> {
    match peaks {
        Some(peaks) => conn
            .prepare_cached("INSERT OR REPLACE INTO track_peaks (track_id, peaks) VALUES (?1, ?2)")
            .map_err(map_err)?
            .execute(params![id.to_string(), peaks]),
        None => conn
            .prepare_cached("DELETE FROM track_peaks WHERE track_id = ?1")
            .map_err(map_err)?
            .execute([id.to_string()]),
    }
    .map_err(map_err)?;
    Ok(())
}

/// Inserts the track row (inside the caller's transaction).
fn insert_row(conn: &Connection, track: &Track) -> Result<()> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let (analysis, peaks) = match &track.analysis {
        Some(analysis) => {
            let (small, peaks) = split_analysis(analysis)?;
            (Some(small), peaks)
        }
        None => (None, None),
    };
    let source = track.source.as_ref().map(to_json).transpose()?;
    conn.execute(
        &format!(
            "INSERT INTO tracks ({TRACK_COLUMNS}, name_key, author_key) VALUES (?1, ?2, ?3, ?4, \
             ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
             ?23, ?24, ?25, ?26)"
        ),
        params![
            track.id.to_string(),
            track.name,
            track.author,
            track.duration,
            track.segments,
            track.playlist,
            track.codec,
            track.bitrate,
            track.sample_rate,
            track.channels,
            track.size.map(|s| s.min(i64::MAX as u64) as i64),
            track.created_at,
            track.album,
            track.year,
            track.status.as_str(),
            track.error,
            variants,
            track.cover,
            analysis,
            source,
            track.album_artist,
            track.genre,
            track.track_number,
            track.disc_number,
            keys::fold(&track.name),
            keys::fold(&track.author),
        ],
    )
    .map_err(map_err)?;
    if peaks.is_some() {
        write_peaks(conn, &track.id, peaks.as_deref())?;
    }
    Ok(())
}

/// Writes the media fields of a processing track and makes it ready (inside the caller's
/// transaction); `false` when it is no longer processing (deleted, or published by another
/// process). Name and author are left alone: a rename made meanwhile stays.
fn publish_row(conn: &Connection, track: &Track) -> Result<bool> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let source = track.source.as_ref().map(to_json).transpose()?;
    let changed = conn
        .execute(
            "UPDATE tracks SET duration = ?2, segments = ?3, playlist = ?4, codec = ?5, \
             bitrate = ?6, sample_rate = ?7, channels = ?8, size = ?9, status = ?10, \
             error = ?11, variants = ?12, cover = ?13, source = COALESCE(?14, source) \
             WHERE id = ?1 AND status = 'processing'",
            params![
                track.id.to_string(),
                track.duration,
                track.segments,
                track.playlist,
                track.codec,
                track.bitrate,
                track.sample_rate,
                track.channels,
                track.size.map(|s| s.min(i64::MAX as u64) as i64),
                track.status.as_str(),
                track.error,
                variants,
                track.cover,
                source,
            ],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

/// Switches the media fields of a track that is not processing to `track`'s (inside the
/// caller's transaction), for the claim `claims`: `false` when that claim is not the running
/// job of the track, the track is processing or gone, or a later claim published already.
fn replace_row(conn: &Connection, track: &Track, claims: u64, retire_after: i64) -> Result<bool> {
    let running: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE track_id = ?1 AND claims = ?2 \
             AND state = 'running')",
        )
        .map_err(map_err)?
        .query_row(params![track.id.to_string(), claims_param(claims)], |row| {
            row.get(0)
        })
        .map_err(map_err)?;
    if !running {
        return Ok(false);
    }
    let source = track.source.as_ref().map(to_json).transpose()?;
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let changed = conn
        .execute(
            "UPDATE tracks SET duration = ?2, segments = ?3, playlist = ?4, codec = ?5, \
             bitrate = ?6, sample_rate = ?7, channels = ?8, size = ?9, status = 'ready', \
             error = NULL, variants = ?10, cover = ?11, generation = ?12, \
             retire_after = MAX(COALESCE(retire_after, 0), ?13), source = COALESCE(?14, source), \
             album = COALESCE(?15, album), year = COALESCE(?16, year), \
             album_artist = COALESCE(?17, album_artist), genre = COALESCE(?18, genre), \
             track_number = COALESCE(?19, track_number), disc_number = COALESCE(?20, disc_number) \
             WHERE id = ?1 AND status != 'processing' AND COALESCE(generation, 0) < ?12",
            params![
                track.id.to_string(),
                track.duration,
                track.segments,
                track.playlist,
                track.codec,
                track.bitrate,
                track.sample_rate,
                track.channels,
                track.size.map(|s| s.min(i64::MAX as u64) as i64),
                variants,
                track.cover,
                claims_param(claims),
                retire_after,
                source,
                track.album,
                track.year,
                track.album_artist,
                track.genre,
                track.track_number,
                track.disc_number,
            ],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

/// Writes every chunk the source yields (inside the caller's transaction).
fn insert_chunks(conn: &Connection, id: &TrackId, chunks: ChunkSource) -> Result<()> {
    let mut insert = conn
        .prepare_cached("INSERT INTO chunks (track_id, name, bytes) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    let id = id.to_string();
    for chunk in chunks {
        let chunk = chunk?;
        insert
            .execute(params![id, chunk.name, &chunk.bytes[..]])
            .map_err(map_err)?;
    }
    Ok(())
}

fn select_track(conn: &Connection, id: &TrackId) -> Result<Track> {
    conn.prepare_cached(&format!(
        "SELECT {TRACK_COLUMNS}, peaks FROM tracks LEFT JOIN track_peaks ON track_id = id \
         WHERE id = ?1"
    ))
    .map_err(map_err)?
    .query_row([id.to_string()], |row| track_from_row_with(row, true))
    .optional()
    .map_err(map_err)?
    .ok_or_else(|| not_found(id))
}

/// An FTS5 query for the words of a search: each a quoted prefix (so nothing in it is read as
/// an operator), all required. `None` when the search has no words: it matches nothing.
fn fts_query(search: &str) -> Option<String> {
    let words = keys::query_words(search);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The pieces of SQL a list query is made of.
struct ListSql {
    /// `SELECT … FROM …`, the track columns (and the waveform when asked).
    select: String,
    /// `WHERE` filter on `tracks` (empty for none), reading the FTS query as `?1`.
    filter: &'static str,
    /// `ORDER BY …`, total thanks to the id.
    order: String,
    /// The FTS query, when searching.
    fts: Option<String>,
    /// The index that holds the order (its entries carry the rowid).
    index: &'static str,
}

/// From this many matches on, a search page is found by walking the order's index and keeping
/// the rows that match: with a match in every few entries, the page is reached after a few
/// hundred entries, where sorting every match would first read each matching row (10,000 rows
/// of a 100,000-track library took 20 ms). Fewer matches are cheaper read and sorted.
const WALK_INDEX_FROM_MATCHES: i64 = 2000;

impl ListSql {
    /// `None` when the search can match nothing.
    fn new(query: &ListQuery) -> Option<Self> {
        let fts = match query.search.as_deref() {
            Some(search) => Some(fts_query(search)?),
            None => None,
        };
        let direction = match query.order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        let (column, index) = match query.sort {
            SortKey::CreatedAt => ("created_at", "tracks_by_created_at"),
            SortKey::Name => ("name_key", "tracks_by_name"),
            SortKey::Author => ("author_key", "tracks_by_author"),
            SortKey::Duration => ("duration", "tracks_by_duration"),
        };
        let select = if query.peaks {
            format!(
                "SELECT {TRACK_COLUMNS}, peaks FROM tracks LEFT JOIN track_peaks ON track_id = id"
            )
        } else {
            format!("SELECT {TRACK_COLUMNS} FROM tracks")
        };
        Some(Self {
            select,
            filter: if fts.is_some() {
                "WHERE tracks.rowid IN (SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH ?1)"
            } else {
                "WHERE ?1 IS NULL"
            },
            order: format!("ORDER BY {column} {direction}, id {direction}"),
            fts,
            index,
        })
    }
}

#[async_trait]
impl Catalog for SqliteStore {
    async fn insert_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            insert_row(&tx, &track)?;
            insert_chunks(&tx, &track.id, chunks)?;
            // Dropping `tx` on any early return above rolls everything back.
            tx.commit().map_err(map_err)?;
            Ok(track)
        })
        .await
    }

    async fn insert_pending(&self, track: Track) -> Result<Track> {
        self.write(move |conn| {
            insert_row(conn, &track)?;
            Ok(track)
        })
        .await
    }

    async fn complete_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            // The condition first: a process that lost the race writes no chunk.
            if !publish_row(&tx, &track)? {
                return Err(not_found(&track.id));
            }
            insert_chunks(&tx, &track.id, chunks)?;
            let published = select_track(&tx, &track.id)?;
            tx.commit().map_err(map_err)?;
            Ok(published)
        })
        .await
    }

    async fn accept_track(&self, track: Track, source: ChunkSource) -> Result<Track> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            insert_row(&tx, &track)?;
            insert_chunks(&tx, &track.id, source)?;
            tx.execute(
                "INSERT INTO jobs (track_id, state, created_at, updated_at, lease_until) \
                 VALUES (?1, 'queued', ?2, ?2, 0)",
                params![track.id.to_string(), track.created_at],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(track)
        })
        .await
    }

    async fn publish_with_follow_up(
        &self,
        track: Track,
        chunks: ChunkSource,
        after_claims: u64,
    ) -> Result<Track> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            insert_row(&tx, &track)?;
            insert_chunks(&tx, &track.id, chunks)?;
            tx.execute(
                "INSERT INTO jobs (track_id, state, created_at, updated_at, lease_until, \
                 claims, kind) VALUES (?1, 'queued', ?2, ?2, 0, ?3, 'reprocess')",
                params![
                    track.id.to_string(),
                    track.created_at,
                    claims_param(after_claims)
                ],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(track)
        })
        .await
    }

    async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        self.chunk(
            Role::Bulk,
            id,
            name,
            "SELECT bytes FROM chunks WHERE track_id = ?1 AND name = ?2",
        )
        .await
    }

    async fn chunk_names(&self, id: &TrackId) -> Result<Vec<String>> {
        let id = *id;
        self.read(move |conn| {
            conn.prepare_cached("SELECT name FROM chunks WHERE track_id = ?1")
                .map_err(map_err)?
                .query_map([id.to_string()], |row| row.get(0))
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(map_err)
        })
        .await
    }

    async fn clear_chunk_bytes(&self, id: &TrackId, name: &str) -> Result<()> {
        let (id, name) = (*id, name.to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE chunks SET bytes = x'' WHERE track_id = ?1 AND name = ?2")
                .map_err(map_err)?
                .execute(params![id.to_string(), name])
                .map_err(map_err)?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("chunk {name} of track {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn delete_chunks(&self, id: &TrackId, names: Vec<String>) -> Result<()> {
        let id = *id;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut delete = tx
                    .prepare_cached("DELETE FROM chunks WHERE track_id = ?1 AND name = ?2")
                    .map_err(map_err)?;
                for name in &names {
                    delete
                        .execute(params![id.to_string(), name])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            // Retired renditions and the pieces of a published source give their space back.
            reclaim(conn);
            Ok(())
        })
        .await
    }

    async fn claim_job(&self, owner: &str, now_ms: i64, lease_until: i64) -> Result<Option<Job>> {
        let owner = owner.to_owned();
        // One writer connection: the select and the update cannot interleave with another
        // claim of this process, and SQLite's write lock orders claims of other processes.
        // Uploads first ('ingest' < 'reprocess'): a `reprocess --all` never delays them.
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE jobs SET state = 'running', owner = ?1, lease_until = ?3, \
                 attempts = attempts + 1, claims = claims + 1, updated_at = ?2 \
                 WHERE track_id = (SELECT track_id FROM jobs \
                     WHERE (state = 'queued' AND lease_until <= ?2) \
                        OR (state = 'running' AND lease_until < ?2) \
                     ORDER BY kind, created_at, rowid LIMIT 1) \
                 RETURNING {JOB_COLUMNS}"
            ))
            .map_err(map_err)?
            .query_row(params![owner, now_ms, lease_until], job_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn renew_job(&self, id: &TrackId, claims: u64, lease_until: i64) -> Result<bool> {
        let id = *id;
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE jobs SET lease_until = ?3 \
                     WHERE track_id = ?1 AND claims = ?2 AND state = 'running'",
                    params![id.to_string(), claims_param(claims), lease_until],
                )
                .map_err(map_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_job(
        &self,
        id: &TrackId,
        claims: u64,
        due_ms: i64,
        error: Option<&str>,
        counted: bool,
    ) -> Result<()> {
        let (id, error) = (*id, error.map(str::to_owned));
        self.write(move |conn| {
            conn.execute(
                "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = ?3, \
                 last_error = COALESCE(?4, last_error), updated_at = ?3, \
                 attempts = attempts - (CASE WHEN ?5 THEN 0 ELSE 1 END) \
                 WHERE track_id = ?1 AND claims = ?2 AND state = 'running'",
                params![id.to_string(), claims_param(claims), due_ms, error, counted],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn finish_job(&self, id: &TrackId, claims: u64) -> Result<()> {
        let id = *id;
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM jobs WHERE track_id = ?1 AND claims = ?2",
                params![id.to_string(), claims_param(claims)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn follow_up_job(&self, id: &TrackId, claims: u64, now_ms: i64) -> Result<()> {
        let id = *id;
        self.write(move |conn| {
            conn.execute(
                "UPDATE jobs SET kind = 'reprocess', state = 'queued', owner = NULL, \
                 lease_until = 0, attempts = 0, last_error = NULL, created_at = ?3, \
                 updated_at = ?3 WHERE track_id = ?1 AND claims = ?2",
                params![id.to_string(), claims_param(claims), now_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn fail_job(&self, id: &TrackId, claims: u64, error: &str) -> Result<()> {
        let (id, error) = (*id, error.to_owned());
        self.write(move |conn| {
            conn.execute(
                "UPDATE jobs SET state = 'failed', owner = NULL, last_error = ?3 \
                 WHERE track_id = ?1 AND claims = ?2",
                params![id.to_string(), claims_param(claims), error],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn enqueue_job(&self, id: &TrackId, now_ms: i64) -> Result<()> {
        let id = *id;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO jobs (track_id, state, created_at, updated_at, lease_until) \
                 VALUES (?1, 'queued', ?2, ?2, 0) \
                 ON CONFLICT (track_id) DO UPDATE SET state = 'queued', attempts = 0, \
                 owner = NULL, lease_until = 0, last_error = NULL, updated_at = ?2 \
                 WHERE state = 'failed'",
                params![id.to_string(), now_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn enqueue_reprocess(
        &self,
        id: &TrackId,
        now_ms: i64,
        after_claims: u64,
    ) -> Result<Enqueued> {
        let id = *id;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM tracks WHERE id = ?1",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(map_err)?;
            match status.as_deref() {
                None => return Err(not_found(&id)),
                Some("processing") => {
                    return Err(StoreError::Invalid(format!(
                        "track {id} is still processing"
                    )));
                }
                Some(_) => {}
            }
            let changed = tx
                .execute(
                    "INSERT INTO jobs (track_id, state, created_at, updated_at, lease_until, \
                     claims, kind) VALUES (?1, 'queued', ?2, ?2, 0, ?3, 'reprocess') \
                     ON CONFLICT (track_id) DO UPDATE SET state = 'queued', attempts = 0, \
                     owner = NULL, lease_until = 0, last_error = NULL, updated_at = ?2, \
                     created_at = ?2, kind = 'reprocess', claims = MAX(claims, ?3) \
                     WHERE state = 'failed'",
                    params![id.to_string(), now_ms, claims_param(after_claims)],
                )
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(if changed == 1 {
                Enqueued::Queued
            } else {
                Enqueued::Pending
            })
        })
        .await
    }

    async fn replace_renditions(
        &self,
        track: Track,
        chunks: ChunkSource,
        claims: u64,
        retire_after_ms: i64,
    ) -> Result<Track> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            // The fence first: a lost claim writes no chunk. One transaction: readers see
            // the old renditions or the new ones, never a mix.
            if !replace_row(&tx, &track, claims, retire_after_ms)? {
                return Err(not_found(&track.id));
            }
            insert_chunks(&tx, &track.id, chunks)?;
            let published = select_track(&tx, &track.id)?;
            tx.commit().map_err(map_err)?;
            Ok(published)
        })
        .await
    }

    async fn due_retirements(&self, now_ms: i64, limit: u32) -> Result<Vec<Retirement>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, generation, retire_after FROM tracks \
                 WHERE retire_after IS NOT NULL AND retire_after <= ?1 \
                 ORDER BY retire_after LIMIT ?2",
            )
            .map_err(map_err)?
            .query_map(params![now_ms, limit], |row| {
                let id: String = row.get(0)?;
                let track_id = id.parse::<TrackId>().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?;
                Ok(Retirement {
                    track_id,
                    generation: row.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64,
                    after_ms: row.get(2)?,
                })
            })
            .map_err(map_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_err)
        })
        .await
    }

    async fn end_retirement(&self, id: &TrackId, after_ms: i64) -> Result<()> {
        let id = *id;
        self.write(move |conn| {
            conn.execute(
                "UPDATE tracks SET retire_after = NULL WHERE id = ?1 AND retire_after = ?2",
                params![id.to_string(), after_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_job(&self, id: &TrackId) -> Result<Option<Job>> {
        let id = *id;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE track_id = ?1"
            ))
            .map_err(map_err)?
            .query_row([id.to_string()], job_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn job_counts(&self) -> Result<JobCounts> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COALESCE(SUM(state = 'queued' AND kind = 'ingest'), 0), \
                 COALESCE(SUM(state = 'running'), 0) FROM jobs",
            )
            .map_err(map_err)?
            .query_row([], |row| {
                Ok(JobCounts {
                    queued: row.get::<_, i64>(0)?.max(0) as u64,
                    running: row.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .map_err(map_err)
        })
        .await
    }

    async fn fail_track(&self, id: &TrackId, error: &str) -> Result<()> {
        let (id, error) = (*id, error.to_owned());
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE tracks SET status = 'failed', error = ?2 WHERE id = ?1",
                    params![id.to_string(), error],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(not_found(&id));
            }
            Ok(())
        })
        .await
    }

    async fn set_analysis(&self, id: &TrackId, analysis: &Analysis) -> Result<()> {
        let id = *id;
        let (analysis, peaks) = split_analysis(analysis)?;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let changed = tx
                .execute(
                    "UPDATE tracks SET analysis = ?2 WHERE id = ?1",
                    params![id.to_string(), analysis],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(not_found(&id));
            }
            write_peaks(&tx, &id, peaks.as_deref())?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn fail_stale_processing(&self, before_ms: i64) -> Result<u64> {
        self.write(move |conn| {
            let changed = conn
                .execute(FAIL_STALE_PROCESSING, [before_ms])
                .map_err(map_err)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn list_tracks(&self, query: &ListQuery) -> Result<Page> {
        let Some(sql) = ListSql::new(query) else {
            return Ok(Page {
                tracks: Vec::new(),
                total: 0,
            });
        };
        let (limit, offset, peaks) = (
            query.limit,
            i64::try_from(query.offset).unwrap_or(i64::MAX),
            query.peaks,
        );
        self.read(move |conn| {
            let ListSql {
                select,
                filter,
                order,
                fts,
                index,
            } = sql;
            // One snapshot for the count and the page, so they agree.
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            let total: i64 = match &fts {
                Some(fts) => conn
                    .prepare_cached("SELECT COUNT(*) FROM tracks_fts WHERE tracks_fts MATCH ?1")
                    .map_err(map_err)?
                    .query_row([fts], |row| row.get(0)),
                None => conn
                    .prepare_cached("SELECT COUNT(*) FROM tracks")
                    .map_err(map_err)?
                    .query_row([], |row| row.get(0)),
            }
            .map_err(map_err)?;
            let walk = if fts.is_some() && total >= WALK_INDEX_FROM_MATCHES {
                format!("INDEXED BY {index}")
            } else {
                String::new()
            };
            // The page is found on the order's index alone (skipping `offset` entries there is
            // cheap), then only its rows are read.
            let page = format!(
                "{select} WHERE tracks.rowid IN (SELECT rowid FROM tracks {walk} {filter} {order} \
                 LIMIT ?2 OFFSET ?3) {order}"
            );
            let tracks = conn
                .prepare_cached(&page)
                .map_err(map_err)?
                .query_map(params![fts, limit, offset], |row| {
                    track_from_row_with(row, peaks)
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            snapshot.commit().map_err(map_err)?;
            Ok(Page {
                tracks,
                total: total.max(0) as u64,
            })
        })
        .await
    }

    async fn stream_tracks(&self, query: &ListQuery) -> Result<TrackStream> {
        let Some(sql) = ListSql::new(query) else {
            return Ok(Box::pin(futures_util::stream::empty()));
        };
        let (offset, peaks) = (i64::try_from(query.offset).unwrap_or(i64::MAX), query.peaks);
        // A bounded channel: the reading thread waits while the client is slow, so at most
        // this many tracks are held whatever the library's size.
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Track>>(STREAM_BUFFER);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner.take_reader(Role::Metadata) {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            };
            let ListSql {
                select,
                filter,
                order,
                fts,
                ..
            } = sql;
            let result = (|| {
                let mut statement = conn
                    .prepare(&format!("{select} {filter} {order} LIMIT -1 OFFSET ?2"))
                    .map_err(map_err)?;
                let rows = statement
                    .query_map(params![fts, offset], |row| track_from_row_with(row, peaks))
                    .map_err(map_err)?;
                for track in rows {
                    if sender.blocking_send(track.map_err(map_err)).is_err() {
                        // The client went away.
                        break;
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                let _ = sender.blocking_send(Err(e));
            }
            inner.give_back(Role::Metadata, conn);
        });
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        )))
    }

    async fn get_track(&self, id: &TrackId) -> Result<Track> {
        let id = *id;
        self.read(move |conn| select_track(conn, &id)).await
    }

    async fn update_track(&self, id: &TrackId, patch: &TrackPatch) -> Result<Track> {
        let (id, patch) = (*id, patch.clone());
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE tracks SET name = COALESCE(?2, name), author = COALESCE(?3, author), \
                     name_key = COALESCE(?4, name_key), author_key = COALESCE(?5, author_key) \
                     WHERE id = ?1",
                    params![
                        id.to_string(),
                        patch.name,
                        patch.author,
                        patch.name.as_deref().map(keys::fold),
                        patch.author.as_deref().map(keys::fold),
                    ],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(not_found(&id));
            }
            select_track(conn, &id)
        })
        .await
    }

    async fn delete_track(&self, id: &TrackId) -> Result<()> {
        let id = *id;
        let reserve = reserve_path(&self.path);
        self.write(move |conn| {
            let delete = |conn: &mut Connection| {
                let tx = conn.transaction().map_err(map_err)?;
                tx.execute("DELETE FROM chunks WHERE track_id = ?1", [id.to_string()])
                    .map_err(map_err)?;
                tx.execute("DELETE FROM jobs WHERE track_id = ?1", [id.to_string()])
                    .map_err(map_err)?;
                let deleted = tx
                    .execute("DELETE FROM tracks WHERE id = ?1", [id.to_string()])
                    .map_err(map_err)?;
                if deleted == 0 {
                    return Err(not_found(&id));
                }
                tx.commit().map_err(map_err)
            };
            let deleted = match delete(conn) {
                // Even a delete writes (the journal): on a full disk, give up the reserve
                // kept for this moment and try once more, so space can be freed.
                Err(StoreError::Full(_)) if release_reserve(&reserve) => {
                    tracing::warn!("the disk is full: released the reserve to delete a track");
                    delete(conn)
                }
                other => other,
            };
            if deleted.is_ok() {
                reclaim(conn);
            }
            keep_reserve(&reserve);
            deleted
        })
        .await
    }

    async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        // Only a ready track is streamed (a processing one holds its source already).
        self.chunk(
            Role::Media,
            id,
            name,
            "SELECT c.bytes FROM chunks c JOIN tracks t ON t.id = c.track_id \
             WHERE c.track_id = ?1 AND c.name = ?2 AND t.status = 'ready'",
        )
        .await
    }

    async fn find_by_source_sha256(&self, sha256: &str) -> Result<Option<Track>> {
        let sha256 = sha256.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TRACK_COLUMNS}, peaks FROM tracks LEFT JOIN track_peaks ON track_id = id \
                 {FIND_BY_SOURCE_SHA256}"
            ))
            .map_err(map_err)?
            .query_row([sha256], |row| track_from_row_with(row, true))
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn change_cursor(&self) -> Result<u64> {
        self.library_version().await.map(|v| v.max(1))
    }

    async fn changes_since(&self, cursor: u64) -> Result<Option<legato_store::Changes>> {
        if cursor == 0 {
            return Ok(None);
        }
        let since = i64::try_from(cursor).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // One read transaction: the cursor and the rows agree.
            let tx = conn.unchecked_transaction().map_err(map_err)?;
            let now: i64 = tx
                .prepare_cached("SELECT version FROM library_version WHERE id = 1")
                .map_err(map_err)?
                .query_row([], |row| row.get(0))
                .map_err(map_err)?;
            let changed = tx
                .prepare_cached(&format!(
                    "SELECT {TRACK_COLUMNS} FROM tracks INDEXED BY tracks_by_change \
                     WHERE change_seq > ?1 ORDER BY change_seq"
                ))
                .map_err(map_err)?
                .query_map([since], track_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<Track>>>()
                .map_err(map_err)?;
            let deleted = tx
                .prepare_cached(
                    "SELECT id FROM track_deletions WHERE change_seq > ?1 ORDER BY change_seq",
                )
                .map_err(map_err)?
                .query_map([since], |row| row.get::<_, String>(0))
                .map_err(map_err)?
                .filter_map(|id| id.ok()?.parse::<TrackId>().ok())
                .collect();
            Ok(Some(legato_store::Changes {
                cursor: u64::try_from(now).unwrap_or(0).max(cursor),
                changed,
                deleted,
            }))
        })
        .await
    }

    async fn library_version(&self) -> Result<u64> {
        self.read(|conn| {
            conn.prepare_cached("SELECT version FROM library_version WHERE id = 1")
                .map_err(map_err)?
                .query_row([], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(map_err)
                .map(|v| v.unwrap_or(0).max(0) as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_are_quoted_word_prefixes() {
        assert_eq!(
            fts_query("Beyoncé AND \"x\" NEAR(*)").as_deref(),
            Some("\"beyonce\"* \"and\"* \"x\"* \"near\"*")
        );
        assert_eq!(fts_query(" -%* "), None);
    }

    #[tokio::test]
    async fn upgrades_a_version_1_database_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE tracks (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, \
             author TEXT NOT NULL, duration REAL NOT NULL, segments INTEGER NOT NULL, \
             playlist TEXT NOT NULL, codec TEXT, bitrate INTEGER, sample_rate INTEGER, \
             channels INTEGER, size INTEGER, created_at INTEGER NOT NULL);
             CREATE TABLE chunks (track_id TEXT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE, \
             name TEXT NOT NULL, bytes BLOB NOT NULL, UNIQUE (track_id, name));
             INSERT INTO tracks VALUES ('65a1f0c2e4b0a1b2c3d4e5f6', 'Old', 'Timer', 12.5, 2, \
             'index.m3u8', 'mp3', 128, 44100, 2, 1000, 1700000000000);
             INSERT INTO chunks VALUES ('65a1f0c2e4b0a1b2c3d4e5f6', 'index.m3u8', x'2345');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open_file(&path).unwrap();
        let id: TrackId = "65a1f0c2e4b0a1b2c3d4e5f6".parse().unwrap();
        let track = store.get_track(&id).await.unwrap();
        assert_eq!(
            (track.name.as_str(), track.status),
            ("Old", TrackStatus::Ready)
        );
        assert!(track.variants.is_empty() && track.album.is_none());
        assert_eq!(
            &store.get_chunk(&id, "index.m3u8").await.unwrap()[..],
            b"\x23\x45"
        );
    }

    #[tokio::test]
    async fn upgrades_a_version_2_database_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = Connection::open(&path).unwrap();
        // Version 2 as it shipped: SCHEMA without what version 3 added (`source`, `jobs`),
        // with the waveform inside `analysis`.
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch("ALTER TABLE tracks DROP COLUMN source; DROP TABLE jobs;")
            .unwrap();
        conn.execute_batch(
            "INSERT INTO tracks (id, name, author, duration, segments, playlist, created_at, \
             analysis) VALUES \
             ('65a1f0c2e4b0a1b2c3d4e5f6', 'Déjà Vu', 'BEYONCÉ', 240.5, 24, 'index.m3u8', 2, \
              '{\"loudness_lufs\":-9.5,\"true_peak_dbtp\":-0.5,\"peaks\":[0.25,0.5]}'), \
             ('65a1f0c2e4b0a1b2c3d4e5f7', 'zebra', 'Abba', 10.0, 1, 'index.m3u8', 1, NULL), \
             ('65a1f0c2e4b0a1b2c3d4e5f8', 'Apple', 'Zed', 20.0, 2, 'index.m3u8', 3, NULL);
             INSERT INTO chunks VALUES ('65a1f0c2e4b0a1b2c3d4e5f6', 'index.m3u8', x'2345');
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open_file(&path).unwrap();
        let id: TrackId = "65a1f0c2e4b0a1b2c3d4e5f6".parse().unwrap();
        let track = store.get_track(&id).await.unwrap();
        assert_eq!(
            track.analysis,
            Some(Analysis {
                loudness_lufs: Some(-9.5),
                true_peak_dbtp: Some(-0.5),
                peaks: vec![0.25, 0.5],
            })
        );
        let search = |q: &str| ListQuery {
            search: Some(q.into()),
            ..ListQuery::default()
        };
        let found = store.list_tracks(&search("beyonce deja")).await.unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(found.tracks[0].id, id);
        assert!(found.tracks[0].analysis.as_ref().unwrap().peaks.is_empty());
        assert_eq!(store.list_tracks(&search("ab")).await.unwrap().total, 1);
        let by_name = store
            .list_tracks(&ListQuery {
                sort: SortKey::Name,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        let names: Vec<_> = by_name.tracks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Apple", "Déjà Vu", "zebra"]);
        assert_eq!(
            &store.get_chunk(&id, "index.m3u8").await.unwrap()[..],
            b"\x23\x45"
        );
        // Written after the upgrade: indexed by the triggers.
        let mut track = legato_store::conformance::sample_track("Ünïcode", "x");
        track.id = TrackId::generate();
        store
            .insert_track(track, Box::new(std::iter::empty()))
            .await
            .unwrap();
        assert_eq!(
            store.list_tracks(&search("UNICODE")).await.unwrap().total,
            1
        );
        drop(store);
        // Opened again: already at the current version, nothing to do.
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(conn);
        let store = SqliteStore::open_file(&path).unwrap();
        assert_eq!(store.list_tracks(&search("zed")).await.unwrap().total, 1);
    }

    #[test]
    fn list_paths_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SqliteStore::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        for sort in [
            SortKey::CreatedAt,
            SortKey::Name,
            SortKey::Author,
            SortKey::Duration,
        ] {
            for search in [None, Some("abc".to_owned())] {
                let sql = ListSql::new(&ListQuery {
                    sort,
                    search: search.clone(),
                    ..ListQuery::default()
                })
                .unwrap();
                let inner = format!(
                    "SELECT rowid FROM tracks {} {} LIMIT 50 OFFSET 10",
                    sql.filter, sql.order
                );
                let plan: Vec<String> = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {inner}"))
                    .unwrap()
                    .query_map([sql.fts.as_deref()], |row| row.get::<_, String>(3))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                // No step reads the whole table: the page comes from an index.
                assert!(
                    plan.iter().all(|step| step != "SCAN tracks"),
                    "{sort:?} {search:?}: {plan:?}"
                );
                if search.is_none() {
                    assert!(
                        plan.iter().any(|s| s.contains("COVERING INDEX tracks_by_"))
                            && plan.iter().all(|s| !s.contains("TEMP B-TREE")),
                        "{sort:?}: {plan:?}"
                    );
                } else {
                    assert!(
                        plan.iter().any(|s| s.contains("VIRTUAL TABLE INDEX")),
                        "{sort:?}: {plan:?}"
                    );
                    // Many matches: the order's index is walked, nothing is sorted.
                    let walk = format!(
                        "SELECT rowid FROM tracks INDEXED BY {} {} {} LIMIT 50 OFFSET 10",
                        sql.index, sql.filter, sql.order
                    );
                    let plan: Vec<String> = conn
                        .prepare(&format!("EXPLAIN QUERY PLAN {walk}"))
                        .unwrap()
                        .query_map([sql.fts.as_deref()], |row| row.get::<_, String>(3))
                        .unwrap()
                        .collect::<rusqlite::Result<_>>()
                        .unwrap();
                    assert!(
                        plan.iter()
                            .any(|s| s.contains(&format!("COVERING INDEX {}", sql.index)))
                            && plan.iter().all(|s| !s.contains("TEMP B-TREE")),
                        "{sort:?}: {plan:?}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn upgrades_a_version_4_database_and_finds_interrupted_processing_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SqliteStore::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{UNDO_V7} DROP INDEX tracks_processing; \
             DROP INDEX tracks_retiring; ALTER TABLE tracks DROP COLUMN retire_after; \
             ALTER TABLE tracks DROP COLUMN generation; ALTER TABLE jobs DROP COLUMN kind; \
             INSERT INTO tracks (id, name, author, duration, segments, playlist, created_at, \
             status) VALUES ('65a1f0c2e4b0a1b2c3d4e5f6', 'Stuck', 'X', 1.0, 0, 'index.m3u8', 5, \
             'processing'); \
             PRAGMA user_version = 4;"
        ))
        .unwrap();
        drop(conn);
        let store = SqliteStore::open_file(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FAIL_STALE_PROCESSING}"))
            .unwrap()
            .query_map([0], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|s| s.contains("INDEX tracks_processing"))
                && plan.iter().all(|s| s != "SCAN tracks"),
            "{plan:?}"
        );
        assert_eq!(store.fail_stale_processing(10).await.unwrap(), 1);
        let id: TrackId = "65a1f0c2e4b0a1b2c3d4e5f6".parse().unwrap();
        assert_eq!(
            store.get_track(&id).await.unwrap().status,
            TrackStatus::Failed
        );
    }

    #[tokio::test]
    async fn a_search_with_many_matches_pages_as_one_with_few() {
        use futures_util::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_file(&dir.path().join("db")).unwrap();
        let matching = usize::try_from(WALK_INDEX_FROM_MATCHES).unwrap() + 100;
        for i in 0..matching + 300 {
            let word = if i < matching { "Echo" } else { "Other" };
            let mut track = legato_store::conformance::sample_track(
                &format!("{word} {}", (i * 7919) % 1000),
                &format!("Artist {}", i % 13),
            );
            track.id = TrackId::generate();
            track.created_at = i64::try_from(i % 50).unwrap();
            track.duration = f64::from(u32::try_from((i * 31) % 97).unwrap());
            store
                .insert_track(track, Box::new(std::iter::empty()))
                .await
                .unwrap();
        }
        for sort in [
            SortKey::CreatedAt,
            SortKey::Name,
            SortKey::Author,
            SortKey::Duration,
        ] {
            for order in [SortOrder::Asc, SortOrder::Desc] {
                let query = ListQuery {
                    search: Some("echo".into()),
                    sort,
                    order,
                    ..ListQuery::default()
                };
                // Every match in order, read without the index walk.
                let all: Vec<TrackId> = store
                    .stream_tracks(&query)
                    .await
                    .unwrap()
                    .map_ok(|t| t.id)
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(all.len(), matching);
                for offset in [0, 1000, matching - 30] {
                    let page = store
                        .list_tracks(&ListQuery {
                            limit: 50,
                            offset: u64::try_from(offset).unwrap(),
                            ..query.clone()
                        })
                        .await
                        .unwrap();
                    assert_eq!(page.total, u64::try_from(matching).unwrap());
                    let ids: Vec<TrackId> = page.tracks.iter().map(|t| t.id).collect();
                    let expected: Vec<TrackId> =
                        all.iter().skip(offset).take(50).copied().collect();
                    assert_eq!(ids, expected, "{sort:?} {order:?} at {offset}");
                }
            }
        }
    }

    /// What schema version 7 added, taken away again (to make a database of an older version).
    /// Undoes versions 8 and 7 of a fresh database (8's triggers replaced 7's).
    const UNDO_V7: &str = "DROP TRIGGER tracks_version_insert; DROP TRIGGER tracks_version_update; \
         DROP TRIGGER tracks_version_delete; DROP INDEX tracks_by_change; \
         ALTER TABLE tracks DROP COLUMN change_seq; DROP TABLE track_deletions; \
         DROP TABLE library_version; \
         DROP INDEX tracks_by_source_sha256; ALTER TABLE tracks DROP COLUMN album_artist; \
         ALTER TABLE tracks DROP COLUMN genre; ALTER TABLE tracks DROP COLUMN track_number; \
         ALTER TABLE tracks DROP COLUMN disc_number; DROP TABLE playlist_entries; \
         DROP TABLE playlists; DROP TABLE plays; DROP TABLE ratings; DROP TABLE stars; \
         DROP TABLE user_keys; DROP TABLE users;";

    #[tokio::test]
    async fn upgrades_a_version_6_database_and_finds_sources_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SqliteStore::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{UNDO_V7} \
             INSERT INTO tracks (id, name, author, duration, segments, playlist, created_at, \
             source) VALUES ('65a1f0c2e4b0a1b2c3d4e5f6', 'Kept', 'X', 1.0, 0, 'index.m3u8', 5, \
             '{{\"format\":\"mp3\",\"size\":3,\"sha256\":\"{sha}\",\"file_name\":null,\"pieces\":1}}'); \
             PRAGMA user_version = 6;",
            sha = "ab".repeat(32)
        ))
        .unwrap();
        drop(conn);
        let store = SqliteStore::open_file(&path).unwrap();
        let old = store
            .find_by_source_sha256(&"ab".repeat(32))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (old.name.as_str(), old.album_artist, old.track_number),
            ("Kept", None, None)
        );
        let before = store.library_version().await.unwrap();
        let mut track = legato_store::conformance::sample_track("New", "x");
        track.id = TrackId::generate();
        store
            .insert_track(track, Box::new(std::iter::empty()))
            .await
            .unwrap();
        assert_ne!(store.library_version().await.unwrap(), before);

        let conn = Connection::open(&path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {TRACK_COLUMNS}, peaks FROM tracks \
                 LEFT JOIN track_peaks ON track_id = id {FIND_BY_SOURCE_SHA256}"
            ))
            .unwrap()
            .query_map(["ab".repeat(32)], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|s| s.contains("USING INDEX tracks_by_source_sha256"))
                && plan.iter().all(|s| s != "SCAN tracks"),
            "{plan:?}"
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SqliteStore::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open_file(&path).err().unwrap();
        assert!(err.to_string().contains("upgrade legato"), "{err}");
    }
}

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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use legato_store::{
    Analysis, ChunkSource, Job, JobCounts, JobState, ListQuery, Page, Result, SortKey, SortOrder,
    Store, StoreError, Track, TrackId, TrackPatch, TrackStatus,
};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

/// File name of the database inside the data folder.
pub const DATABASE_FILE: &str = "legato.sqlite3";

/// Read connections kept open; more readers than this wait for one to come back.
const READERS: usize = 8;

const SCHEMA_VERSION: i64 = 3;

/// Bytes of the database file each connection may map into memory.
const MMAP_BYTES: i64 = 1 << 30;

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

const JOB_COLUMNS: &str =
    "track_id, state, attempts, claims, owner, lease_until, last_error, created_at, updated_at";

const TRACK_COLUMNS: &str = "id, name, author, duration, segments, playlist, codec, bitrate, \
                             sample_rate, channels, size, created_at, album, year, status, error, \
                             variants, cover, analysis, source";

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
        let writer = connect(path, true)?;
        migrate(&writer)?;
        keep_reserve(&reserve_path(path));
        // One reader opened now (well under a millisecond) spares the first request the open.
        let reader = connect(path, false)?;
        let inner = Inner {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![reader]),
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
        let inner = self.inner.clone();
        blocking(move || {
            let conn = match inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
            {
                Some(conn) => conn,
                None => connect(&inner.path, false)?,
            };
            let result = work(&conn);
            let mut readers = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if readers.len() < READERS {
                readers.push(conn);
            }
            result
        })
        .await
    }

    async fn chunk(&self, id: &TrackId, name: &str, sql: &'static str) -> Result<Bytes> {
        let (id, name) = (*id, name.to_owned());
        self.read(move |conn| {
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

async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

fn connect(path: &Path, writable: bool) -> Result<Connection> {
    let flags = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Unavailable(format!("cannot open the database {}: {e}", path.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
    // Segments are blobs of 100-300 KB: reading them through a memory map saves a system
    // call per page, which is most of a cold segment read.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(map_err)?;
    if writable {
        // Bigger pages mean fewer overflow pages per blob; only takes effect on a new file.
        conn.pragma_update(None, "page_size", 16_384)
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
    let roomy = rustix::fs::statvfs(reserve.parent().unwrap_or(Path::new(".")))
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize) > 4 * RESERVE_BYTES as u64)
        .unwrap_or(false);
    if !roomy {
        return;
    }
    if let Err(err) = std::fs::write(reserve, vec![0u8; RESERVE_BYTES]) {
        let _ = std::fs::remove_file(reserve);
        tracing::warn!(error = %err, "could not keep a disk reserve for deletes");
    }
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
    if version == 1 {
        for column in V2_COLUMNS {
            conn.execute_batch(&format!("ALTER TABLE tracks ADD COLUMN {column}"))
                .map_err(map_err)?;
        }
    }
    // Version 3: originals kept (`tracks.source`) and durable ingest jobs (`jobs`, created by
    // SCHEMA below).
    if (1..3).contains(&version) {
        conn.execute_batch("ALTER TABLE tracks ADD COLUMN source TEXT")
            .map_err(map_err)?;
    }
    conn.execute_batch(SCHEMA).map_err(map_err)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(map_err)?;
    Ok(())
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

/// Inserts the track row (inside the caller's transaction).
fn insert_row(conn: &Connection, track: &Track) -> Result<()> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let analysis = track.analysis.as_ref().map(to_json).transpose()?;
    let source = track.source.as_ref().map(to_json).transpose()?;
    conn.execute(
        &format!(
            "INSERT INTO tracks ({TRACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
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
        ],
    )
    .map_err(map_err)?;
    Ok(())
}

/// Writes the media fields of a processing track and makes it ready (inside the caller's
/// transaction); `false` when it is no longer processing (deleted, or published by another
/// process). Name and author are left alone: a rename made meanwhile stays.
fn publish_row(conn: &Connection, track: &Track) -> Result<bool> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let changed = conn
        .execute(
            "UPDATE tracks SET duration = ?2, segments = ?3, playlist = ?4, codec = ?5, \
             bitrate = ?6, sample_rate = ?7, channels = ?8, size = ?9, status = ?10, \
             error = ?11, variants = ?12, cover = ?13 WHERE id = ?1 AND status = 'processing'",
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
    conn.prepare_cached(&format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE id = ?1"))
        .map_err(map_err)?
        .query_row([id.to_string()], track_from_row)
        .optional()
        .map_err(map_err)?
        .ok_or_else(|| not_found(id))
}

/// `%needle%` for LIKE with the wildcards in `needle` escaped, so search is literal.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[async_trait]
impl Store for SqliteStore {
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

    async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        self.chunk(
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
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn claim_job(&self, owner: &str, now_ms: i64, lease_until: i64) -> Result<Option<Job>> {
        let owner = owner.to_owned();
        // One writer connection: the select and the update cannot interleave with another
        // claim of this process, and SQLite's write lock orders claims of other processes.
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE jobs SET state = 'running', owner = ?1, lease_until = ?3, \
                 attempts = attempts + 1, claims = claims + 1, updated_at = ?2 \
                 WHERE track_id = (SELECT track_id FROM jobs \
                     WHERE (state = 'queued' AND lease_until <= ?2) \
                        OR (state = 'running' AND lease_until < ?2) \
                     ORDER BY created_at, rowid LIMIT 1) \
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
                "SELECT COALESCE(SUM(state = 'queued'), 0), COALESCE(SUM(state = 'running'), 0) \
                 FROM jobs",
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
        let analysis = to_json(analysis)?;
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE tracks SET analysis = ?2 WHERE id = ?1",
                    params![id.to_string(), analysis],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(not_found(&id));
            }
            Ok(())
        })
        .await
    }

    async fn fail_stale_processing(&self, before_ms: i64) -> Result<u64> {
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE tracks SET status = 'failed', \
                     error = 'processing was interrupted (the server stopped); upload the file again' \
                     WHERE status = 'processing' AND created_at < ?1 \
                     AND id NOT IN (SELECT track_id FROM jobs)",
                    [before_ms],
                )
                .map_err(map_err)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn list_tracks(&self, query: &ListQuery) -> Result<Page> {
        let query = query.clone();
        self.read(move |conn| {
            let filter = if query.search.is_some() {
                "WHERE name LIKE ?1 ESCAPE '\\' OR author LIKE ?1 ESCAPE '\\'"
            } else {
                "WHERE ?1 IS NULL"
            };
            let pattern = query.search.as_deref().map(like_pattern);
            let direction = match query.order {
                SortOrder::Asc => "ASC",
                SortOrder::Desc => "DESC",
            };
            let column = match query.sort {
                SortKey::CreatedAt => "created_at",
                SortKey::Name => "name COLLATE NOCASE",
                SortKey::Author => "author COLLATE NOCASE",
                SortKey::Duration => "duration",
            };
            // rowid breaks ties in insertion order, so paging is stable.
            let sql = format!(
                "SELECT {TRACK_COLUMNS} FROM tracks {filter} \
                 ORDER BY {column} {direction}, rowid {direction} LIMIT ?2 OFFSET ?3"
            );
            let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
            let tracks = conn
                .prepare_cached(&sql)
                .map_err(map_err)?
                .query_map(params![pattern, query.limit, offset], track_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM tracks {filter}"))
                .map_err(map_err)?
                .query_row([pattern], |row| row.get(0))
                .map_err(map_err)?;
            Ok(Page {
                tracks,
                total: total.max(0) as u64,
            })
        })
        .await
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
                    "UPDATE tracks SET name = COALESCE(?2, name), author = COALESCE(?3, author) \
                     WHERE id = ?1",
                    params![id.to_string(), patch.name, patch.author],
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
            match delete(conn) {
                // Even a delete writes (the journal): on a full disk, give up the reserve
                // kept for this moment and try once more, so space can be freed.
                Err(StoreError::Full(_)) if release_reserve(&reserve) => {
                    tracing::warn!("the disk is full: released the reserve to delete a track");
                    delete(conn)
                }
                other => {
                    keep_reserve(&reserve);
                    other
                }
            }
        })
        .await
    }

    async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        // Only a ready track is streamed (a processing one holds its source already).
        self.chunk(
            id,
            name,
            "SELECT c.bytes FROM chunks c JOIN tracks t ON t.id = c.track_id \
             WHERE c.track_id = ?1 AND c.name = ?2 AND t.status = 'ready'",
        )
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
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

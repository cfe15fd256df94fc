//! Connections: one writer, pools of readers by role, the blocking pool every call runs on,
//! and the space kept in reserve so a full disk still lets deletes through.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use legato_store::{Result, StoreError, TrackId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::map_err;

/// Media read connections kept open; beyond this, a connection is opened for one read and
/// closed after it.
pub(crate) const MEDIA_READERS: usize = 8;

/// Metadata read connections kept open (each with its own page cache).
pub(crate) const METADATA_READERS: usize = 4;

/// Source readers kept open: a worker or two and a download at a time.
pub(crate) const BULK_READERS: usize = 2;

/// SQLite's page cache per metadata connection, in KiB: the order indexes of a 100,000-track
/// library fit, so a page deep in a list reads no page twice from the OS.
pub(crate) const METADATA_CACHE_KIB: i64 = 16 * 1024;

/// Bytes of the database file each media connection may map into memory.
pub(crate) const MMAP_BYTES: i64 = 1 << 30;

/// What a connection is for, which decides whether it maps the file into memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
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

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) writer: Mutex<Connection>,
    pub(crate) readers: Mutex<Vec<Connection>>,
    pub(crate) media_readers: Mutex<Vec<Connection>>,
    pub(crate) bulk_readers: Mutex<Vec<Connection>>,
}

impl Inner {
    pub(crate) fn pool(&self, role: Role) -> &Mutex<Vec<Connection>> {
        match role {
            Role::Media => &self.media_readers,
            Role::Bulk => &self.bulk_readers,
            Role::Metadata | Role::Writer => &self.readers,
        }
    }

    /// A read connection from the role's pool, or a new one when all are in use.
    pub(crate) fn take_reader(&self, role: Role) -> Result<Connection> {
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

    pub(crate) fn give_back(&self, role: Role, conn: Connection) {
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

pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

pub(crate) fn connect(path: &Path, role: Role) -> Result<Connection> {
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
pub(crate) const RESERVE_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn reserve_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".reserve");
    PathBuf::from(name)
}

/// Writes the reserve file (real blocks, not a sparse file) when it is missing and the
/// disk has room for it several times over; a failure only costs the reserve.
pub(crate) fn keep_reserve(reserve: &Path) {
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
pub(crate) const CONVERT_AT_START_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Converts a database made before deleted tracks gave their space back (`auto_vacuum`
/// NONE) into one that does: one `VACUUM`, which rewrites the file and needs as much free
/// disk again. Skipped, with a warning, when the file is large or the disk too full.
pub(crate) fn make_reclaimable(conn: &Connection, path: &Path) {
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
pub(crate) fn reclaim(conn: &Connection) {
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
pub(crate) fn release_reserve(reserve: &Path) -> bool {
    std::fs::remove_file(reserve).is_ok()
}

/// How the store's operations reach SQLite: on the blocking pool, through a reader of the
/// right role or the one writer.
impl SqliteStore {
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.read_as(Role::Metadata, work).await
    }

    pub(crate) async fn read_as<T, F>(&self, role: Role, work: F) -> Result<T>
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

    pub(crate) async fn chunk(
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

    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
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

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
//!
//! # Files
//!
//! This file holds the store and the catalog's tracks and jobs; `schema` the schema and its
//! migrations, `connection` the writer, the readers' pools and the space reserve, `rows` the
//! mapping between rows and the model, `query` the SQL of lists and searches, `accounts` the
//! listeners' tables, `blobs` the blob contract over the `chunks` table.

mod accounts;
mod blobs;
mod connection;
mod query;
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use legato_store::{
    Analysis, Catalog, ChunkSource, Enqueued, Job, JobCounts, ListQuery, Page, Result, Retirement,
    StoreError, Track, TrackId, TrackPatch, TrackStream, keys,
};
use rusqlite::{Connection, OptionalExtension, params};

use connection::{
    Inner, Role, connect, keep_reserve, make_reclaimable, reclaim, release_reserve, reserve_path,
};
use query::{FAIL_STALE_PROCESSING, FIND_BY_SOURCE_SHA256, ListSql, WALK_INDEX_FROM_MATCHES};
use rows::{
    JOB_COLUMNS, TRACK_COLUMNS, claims_param, insert_chunks, insert_row, job_from_row, map_err,
    not_found, publish_row, replace_row, select_track, split_analysis, track_from_row,
    track_from_row_with, write_peaks,
};
use schema::migrate;

/// File name of the database inside the data folder.
pub const DATABASE_FILE: &str = "legato.sqlite3";

/// Tracks read ahead of a streaming list's client.
const STREAM_BUFFER: usize = 256;

pub struct SqliteStore {
    path: PathBuf,
    inner: Arc<Inner>,
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
    use crate::query::fts_query;
    use crate::schema::{SCHEMA, SCHEMA_VERSION};
    use legato_store::{SortKey, SortOrder, TrackStatus};

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

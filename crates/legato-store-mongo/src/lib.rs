//! Legato's MongoDB store, sharing one database with the seed's Python functions.
//!
//! The schema is the seed's: tracks in `musics`, one document per playlist or segment in
//! `chunks` (`docs/mongodb.md` lists every field and index). Legato adds fields the seed
//! ignores, and reads the seed's sparser documents by filling in what they lack, so each side
//! lists and streams the other's tracks.
//!
//! # Publish-last without transactions
//!
//! MongoDB gives atomicity per document only (multi-document transactions need a replica
//! set, and FerretDB has none), so an insert is ordered instead: the chunks are written
//! first, in small batches as the [`ChunkSource`] yields them, and the `musics` document
//! last. Readers never see a track before all its chunks exist, because [`Catalog::get_chunk`]
//! answers only for chunks whose track document exists. A failed insert removes the chunks
//! it wrote; a delete removes the track document first, then its chunks. Whatever a crash
//! leaves between two such steps is chunks no track refers to, which
//! [`MongoStore::collect_garbage`] removes (it runs once in the background at start-up).
//!
//! # Search and order
//!
//! Collation would give case-insensitive order, but FerretDB has none, and FerretDB uses no
//! index at all. So every `musics` document carries keys our code computes
//! ([`legato_store::keys`], the same as the SQLite store's): `name_key` and `author_key` (the
//! folded name and author, sorted by plain binary comparison) and `words` (the distinct words
//! of both, searched by anchored prefix). They are written with the document and on every
//! rename; a document without them (the seed's, or one written before them) gets them before
//! the next list reads the collection ([`MongoStore::backfill_keys`]).
//!
//! # Files
//!
//! This file holds the connection and the catalog's implementation; `schema` the document
//! shapes and names, `indexes` the indexes every query uses, `upgrade` the layout upgrade,
//! `reads` and `writes` the helpers of reading and writing tracks, `library` the library's
//! version, `jobs` the queue's helpers, `garbage` the collection of what a crash left,
//! `accounts` the listeners' collections, `blobs` the blob contract over `chunks`.
//!
//! # Failures
//!
//! One pooled client serves the whole process. It connects lazily, selects a server for at
//! most [`MongoOptions::server_selection_timeout`] (2 s by default), and every operation is
//! bounded by [`MongoOptions::operation_timeout`]: an unreachable database turns into
//! [`StoreError::Unavailable`] within seconds, and the driver reconnects by itself once the
//! server is back.

mod accounts;
mod blobs;
mod error;
mod garbage;
pub mod indexes;
mod jobs;
mod library;
mod options;
mod reads;
mod schema;
mod upgrade;
mod writes;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::TryChunksError};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Cursor, IndexModel};

use legato_store::{
    Analysis, Catalog, ChunkSource, Enqueued, Job, JobCounts, JobKind, JobState, ListQuery, Page,
    Result, Retirement, StoreError, Track, TrackId, TrackPatch, TrackStatus, TrackStream,
};

pub use options::{DEFAULT_DATABASE, MongoOptions, redact_uri};

use error::{is_duplicate_key, map_err};
use library::{Fnv1a, LibraryLook};
use reads::{PageAt, PageCursor};
use schema::{CHUNKS, DELETIONS, JOB_LOG, JOBS, META, MUSICS, PEAKS, PENDING_WRITES, RETIREMENTS};

/// A batch of chunks is inserted once it holds this many bytes…
const BATCH_BYTES: usize = 2 << 20;
/// …or this many chunks.
const BATCH_CHUNKS: usize = 64;
/// Ids per `$in` when removing chunks by id or looking tracks up by id.
const ID_BATCH: usize = 1000;

/// A search matching at most this many tracks is read through the `words` index and sorted
/// in memory; one matching more walks the order's index instead ([`MongoStore::search_plan`]).
const FEW_MATCHES: u64 = 1000;
/// Copies of one upload read to find the oldest that did not fail.
const DIGEST_COPIES: i64 = 32;
const WORDS_INDEX: &str = "words_id";
/// The comments that name a search's plan on its `find` (see tests/query_shape.rs).
pub const SORT_FEW_COMMENT: &str = "legato:sort-few-matches";
pub const WALK_ORDER_COMMENT: &str = "legato:walk-order-index";

#[derive(Debug, Clone, Copy)]
enum SearchPlan {
    SortFew,
    WalkOrder,
}

/// How far before its cursor `changes_since` reads again.
const CHANGE_MARGIN: Duration = Duration::from_secs(30);
/// How often, at most, the keys of documents another program inserted are looked for.
const FOREIGN_BACKFILL_INTERVAL: Duration = Duration::from_secs(30);
/// Tracks converted at a time from a streaming list's cursor.
const STREAM_BATCH: usize = 256;

/// The MongoDB-backed [`Store`]. Cheap to clone: clones share one client and its pool.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    database: String,
    musics: Collection<Document>,
    chunks: Collection<Document>,
    jobs: Collection<Document>,
    job_log: Collection<Document>,
    meta: Collection<Document>,
    peaks: Collection<Document>,
    retirements: Collection<Document>,
    pending_writes: Collection<Document>,
    deletions: Collection<Document>,
    users: Collection<Document>,
    user_keys: Collection<Document>,
    stars: Collection<Document>,
    ratings: Collection<Document>,
    plays: Collection<Document>,
    playlists: Collection<Document>,
    /// The URI with its password redacted.
    shown_uri: String,
    /// Secrets to scrub from error messages built from the driver's.
    secrets: Vec<String>,
    options: MongoOptions,
    indexes_ready: AtomicBool,
    /// The library's `(counter, document count)` as last read, to tell a change the seed made
    /// (the count moved, the counter did not) from ours.
    last_library: Mutex<LibraryLook>,
    /// Where recent pages of each order ended, so the next page starts there (keyset paging
    /// inside; the API pages by offset).
    page_cursors: Mutex<HashMap<PageAt, PageCursor>>,
    /// When the keys of documents written by another program were last looked for.
    last_backfill: Mutex<Option<std::time::Instant>>,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("uri", &self.inner.shown_uri)
            .field("database", &self.inner.database)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl MongoStore {
    /// Connects to the database the URI names (`mongodb://user:pass@host:27017/openfaas`;
    /// [`DEFAULT_DATABASE`] when it names none, [`MongoOptions::database`] overrides it).
    ///
    /// The driver connects lazily, so this returns quickly even when the server is down: the
    /// indexes are then created by the first insert, and operations fail with
    /// [`StoreError::Unavailable`] until the server is back. A malformed URI, a password
    /// without a user name, or a server that refuses the credentials fail here.
    pub async fn connect(uri: &str, options: MongoOptions) -> Result<Self> {
        let shown_uri = redact_uri(uri);
        let mut secrets: Vec<String> = options.password.iter().cloned().collect();
        secrets.extend(options::uri_password(uri).map(str::to_owned));
        secrets.retain(|s| !s.is_empty());
        let scrub = |message: String| scrub(message, &secrets);

        let parsed = tokio::time::timeout(options.operation_timeout, ClientOptions::parse(uri))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("resolving the MongoDB URI {shown_uri} timed out"))
            })?;
        let mut client_options = parsed.map_err(|e| match map_err(e) {
            StoreError::Unavailable(m) => {
                StoreError::Unavailable(scrub(format!("resolving {shown_uri}: {m}")))
            }
            other => StoreError::Invalid(scrub(format!("MongoDB URI {shown_uri}: {other}"))),
        })?;
        if let Some(password) = &options.password {
            match client_options.credential.as_mut() {
                Some(credential) if credential.username.is_some() => {
                    credential.password = Some(password.clone());
                }
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "a MongoDB password was given but the URI {shown_uri} names no user: \
                         write mongodb://USER@host/…"
                    )));
                }
            }
        }
        client_options.server_selection_timeout = Some(options.server_selection_timeout);
        client_options.command_event_handler = options.command_events.clone();
        client_options.connect_timeout = Some(options.connect_timeout);
        if options.max_pool_size.is_some() {
            client_options.max_pool_size = options.max_pool_size;
        }
        if client_options.app_name.is_none() {
            client_options.app_name = Some("legato".to_owned());
        }
        let database = options
            .database
            .clone()
            .or_else(|| client_options.default_database.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(client_options).map_err(|e| {
            StoreError::Invalid(scrub(format!("MongoDB client {shown_uri}: {}", map_err(e))))
        })?;
        let db = client.database(&database);
        let store = Self {
            inner: Arc::new(Inner {
                musics: db.collection(MUSICS),
                chunks: db.collection(CHUNKS),
                jobs: db.collection(JOBS),
                job_log: db.collection(JOB_LOG),
                meta: db.collection(META),
                peaks: db.collection(PEAKS),
                retirements: db.collection(RETIREMENTS),
                pending_writes: db.collection(PENDING_WRITES),
                deletions: db.collection(DELETIONS),
                users: db.collection(schema::USERS),
                user_keys: db.collection(schema::USER_KEYS),
                stars: db.collection(schema::STARS),
                ratings: db.collection(schema::RATINGS),
                plays: db.collection(schema::PLAYS),
                playlists: db.collection(schema::PLAYLISTS),
                client,
                database,
                shown_uri,
                secrets,
                options,
                indexes_ready: AtomicBool::new(false),
                last_library: Mutex::new(LibraryLook::default()),
                page_cursors: Mutex::new(HashMap::new()),
                last_backfill: Mutex::new(None),
            }),
        };

        match store.ensure_indexes().await {
            Ok(()) => {}
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(store = %store.describe(), %why,
                    "MongoDB is unreachable; starting anyway, indexes will be created later");
            }
            Err(other) => return Err(other),
        }
        if store.inner.options.gc_on_start {
            // Tracks the seed inserted while no Legato ran get their keys.
            store.backfill_in_background();
            let gc = store.clone();
            tokio::spawn(async move {
                match gc.collect_garbage().await {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::info!(removed, "removed chunks no track refers to")
                    }
                    Err(e) => tracing::warn!(error = %e, "garbage collection of chunks failed"),
                }
            });
        }
        tracing::info!(store = %store.describe(), "MongoDB store ready");
        Ok(store)
    }

    /// The database in use.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    /// Creates the indexes the store relies on ([`indexes::INDEXES`]), unless done already,
    /// then upgrades the layout ([`upgrade`](Self::upgrade)); idempotent.
    pub async fn ensure_indexes(&self) -> Result<()> {
        if self.inner.indexes_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let db = self.inner.client.database(&self.inner.database);
        for spec in indexes::INDEXES {
            let mut keys = Document::new();
            for key in spec.keys {
                keys.insert(*key, 1);
            }
            let model = IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(spec.name.to_owned())
                        .unique(spec.unique.then_some(true))
                        .build(),
                )
                .build();
            let collection = db.collection::<Document>(spec.collection);
            self.tolerate_existing(collection.create_index(model), spec.name)
                .await?;
        }
        self.upgrade().await?;
        self.inner.indexes_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Queues (or moves) a track's pending retirement in `retirements`.
    pub(crate) async fn queue_retirement(
        &self,
        id: &TrackId,
        after: i64,
        generation: i64,
    ) -> Result<()> {
        self.timed(
            self.inner
                .retirements
                .replace_one(
                    doc! { "_id": id.to_string() },
                    doc! { "_id": id.to_string(), "after": after, "generation": generation },
                )
                .upsert(true),
        )
        .await?;
        Ok(())
    }

    /// Creates an index, accepting one with the same keys under another name (the driver's
    /// error code says so).
    async fn tolerate_existing<T, F>(&self, create: F, name: &str) -> Result<()>
    where
        F: IntoFuture<Output = mongodb::error::Result<T>>,
    {
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, create).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if error::is_index_conflict(&e) => {
                tracing::warn!(index = name, message = %map_err(e),
                    "an index with these keys exists under another name; using it");
                Ok(())
            }
            Ok(Err(e)) => Err(self.scrubbed(map_err(e))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {limit:?}"
            ))),
        }
    }

    /// Inserts `{_id: key, track, …fields}` into the job log; `false` when that key is
    /// there already (another process recorded it first).
    async fn record_once(&self, key: &str, track: &TrackId, mut fields: Document) -> Result<bool> {
        fields.insert("_id", key);
        fields.insert("track", track.to_string());
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, self.inner.job_log.insert_one(fields).into_future()).await
        {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if is_duplicate_key(&e) => Ok(false),
            Ok(Err(e)) => Err(self.scrubbed(map_err(e))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {limit:?}"
            ))),
        }
    }

    /// Runs one driver operation within the operation timeout.
    async fn timed<T, F>(&self, operation: F) -> Result<T>
    where
        F: IntoFuture<Output = mongodb::error::Result<T>>,
    {
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, operation).await {
            Ok(result) => result.map_err(|e| self.scrubbed(map_err(e))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {limit:?}"
            ))),
        }
    }

    /// Runs a `find` and reads all it returns, within the operation timeout.
    async fn find_all<F>(&self, find: F) -> Result<Vec<Document>>
    where
        F: IntoFuture<Output = mongodb::error::Result<Cursor<Document>>>,
    {
        self.timed(async { find.await?.try_collect().await }).await
    }

    fn scrubbed(&self, err: StoreError) -> StoreError {
        if self.inner.secrets.is_empty() {
            return err;
        }
        let secrets = &self.inner.secrets;
        match err {
            StoreError::NotFound(m) => StoreError::NotFound(scrub(m, secrets)),
            StoreError::Invalid(m) => StoreError::Invalid(scrub(m, secrets)),
            StoreError::Unavailable(m) => StoreError::Unavailable(scrub(m, secrets)),
            StoreError::Source(m) => StoreError::Source(scrub(m, secrets)),
            StoreError::Backend(m) => StoreError::Backend(scrub(m, secrets)),
            StoreError::Full(m) => StoreError::Full(scrub(m, secrets)),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Claim counts are stored as 64-bit integers.
pub(crate) fn claims_bson(claims: u64) -> i64 {
    i64::try_from(claims).unwrap_or(i64::MAX)
}

fn scrub(mut message: String, secrets: &[String]) -> String {
    for secret in secrets {
        if !secret.is_empty() && message.contains(secret.as_str()) {
            message = message.replace(secret.as_str(), "***");
        }
    }
    message
}

fn not_found(id: &TrackId) -> StoreError {
    StoreError::NotFound(format!("track {id}"))
}

#[async_trait]
impl Catalog for MongoStore {
    async fn insert_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        self.ensure_indexes().await?;
        // No look first for a track with this id (a miss reads every document on FerretDB):
        // the chunks' `_id`s and the document's are unique, and a write that meets one made
        // by someone else stops there and removes only what it wrote.
        let id = track.id;
        self.begin_write(&id).await?;
        let result = self.insert_track_written(track, chunks).await;
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.end_write(&id).await;
        }
        result
    }

    async fn insert_pending(&self, track: Track) -> Result<Track> {
        self.ensure_indexes().await?;
        self.timed(self.inner.musics.insert_one(schema::track_doc(&track)))
            .await?;
        self.bump_library().await;
        Ok(track)
    }

    async fn complete_track(&self, track: Track, chunks: ChunkSource) -> Result<Track> {
        let oid = schema::object_id(&track.id);
        let music_id = track.id.to_string();
        let written = self.write_all_chunks(&track.id, chunks).await?;
        // Publish last: the chunks are all there before the document says `ready`. Of two
        // processes racing on one job, the one that records the publication first publishes:
        // an insert under a unique `_id` is atomic on MongoDB and FerretDB alike, where a
        // conditional update is not atomic on FerretDB.
        let still_processing = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": oid, "status": "processing" })
                    .projection(doc! { "_id": 1 }),
            )
            .await;
        let ours = match still_processing {
            Ok(Some(_)) => {
                self.record_once(&format!("{music_id}/publish"), &track.id, doc! {})
                    .await
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        let replaced = match ours {
            Ok(true) => {
                self.timed(
                    self.inner
                        .musics
                        .find_one_and_update(
                            doc! { "_id": oid, "status": "processing" },
                            doc! { "$set": schema::publish_set(&track) },
                        )
                        .return_document(ReturnDocument::After),
                )
                .await
            }
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        match replaced {
            Ok(Some(doc)) => {
                self.bump_library().await;
                self.track_from_doc(doc).await
            }
            Ok(None) => {
                // Deleted, failed or published meanwhile: these chunks belong to no track.
                self.discard_chunks(&track.id, &written).await;
                Err(not_found(&track.id))
            }
            Err(e) => {
                self.discard_chunks(&track.id, &written).await;
                Err(e)
            }
        }
    }

    async fn fail_track(&self, id: &TrackId, error: &str) -> Result<()> {
        let result = self
            .timed(self.inner.musics.update_one(
                doc! { "_id": schema::object_id(id) },
                doc! { "$set": { "status": "failed", "error": error, "changed_at": now_ms() } },
            ))
            .await?;
        if result.matched_count == 0 {
            return Err(not_found(id));
        }
        self.bump_library().await;
        Ok(())
    }

    async fn set_analysis(&self, id: &TrackId, analysis: &Analysis) -> Result<()> {
        let value = schema::analysis_bson(analysis)
            .ok_or_else(|| StoreError::Invalid("the analysis cannot be stored".into()))?;
        let oid = schema::object_id(id);
        let result = self
            .timed(self.inner.musics.update_one(
                doc! { "_id": oid },
                doc! { "$set": { "analysis": value, "changed_at": now_ms() } },
            ))
            .await?;
        if result.matched_count == 0 {
            return Err(not_found(id));
        }
        self.write_peaks(oid, analysis).await?;
        self.bump_library().await;
        Ok(())
    }

    async fn fail_stale_processing(&self, before_ms: i64) -> Result<u64> {
        // The tracks still processing from before (few: those a stopped process left, through
        // the `status_created_at` index), less those a job will finish (an `_id` lookup each).
        let candidates = self
            .find_all(
                self.inner
                    .musics
                    .find(doc! { "status": "processing", "created_at": { "$lt": before_ms } })
                    .projection(doc! { "_id": 1 }),
            )
            .await?;
        let mut failed = 0;
        for candidate in candidates {
            let Ok(oid) = candidate.get_object_id("_id") else {
                continue;
            };
            let job = self
                .timed(
                    self.inner
                        .jobs
                        .find_one(doc! { "_id": oid.to_hex() })
                        .projection(doc! { "_id": 1 }),
                )
                .await?;
            if job.is_some() {
                continue;
            }
            let result = self
                .timed(self.inner.musics.update_one(
                    doc! { "_id": oid, "status": "processing" },
                    doc! { "$set": {
                        "status": "failed",
                        "error": "processing was interrupted (the server stopped); upload the file again",
                        "changed_at": now_ms(),
                    } },
                ))
                .await?;
            failed += result.modified_count;
        }
        if failed > 0 {
            self.bump_library().await;
        }
        Ok(failed)
    }

    async fn list_tracks(&self, query: &ListQuery) -> Result<Page> {
        let Some(filter) = Self::list_filter(query) else {
            return Ok(Page {
                tracks: Vec::new(),
                total: 0,
            });
        };
        let plan = match query.search {
            None => None,
            Some(_) => match self.few_matches(&filter, query).await? {
                Some(docs) => {
                    let total = docs.len() as u64;
                    let page = docs
                        .into_iter()
                        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
                        .take(query.limit as usize)
                        .collect();
                    let tracks = self.listed(page, query.peaks).await?;
                    return Ok(Page { tracks, total });
                }
                None => Some(SearchPlan::WalkOrder),
            },
        };
        // Without a search the count is the collection's, from its statistics (every
        // document is a track; no document is read), read with the library's counter: a page
        // that starts where the last one of the same order ended, the library unchanged,
        // starts from that track (keyset), not by skipping the pages before it. A search with
        // many matches counts them in the `words` index.
        if plan.is_none() {
            let page = |start: Option<Document>| async move {
                if query.limit == 0 {
                    // MongoDB reads a limit of 0 as "no limit".
                    return Ok(Vec::new());
                }
                self.find_all(
                    self.list_find(doc! {}, query, None, start)
                        .limit(i64::from(query.limit)),
                )
                .await
            };
            let (library, docs) = if query.offset == 0 {
                tokio::try_join!(self.library_state(), page(None))?
            } else {
                let library = self.library_state().await?;
                (library, page(self.page_start(query, library)).await?)
            };
            self.remember_page_end(query, library, &docs);
            let tracks = self.listed(docs, query.peaks).await?;
            return Ok(Page {
                tracks,
                total: library.1,
            });
        }
        let count = self.timed(
            self.inner
                .musics
                .count_documents(filter.clone())
                .hint(mongodb::options::Hint::Name(WORDS_INDEX.to_owned())),
        );
        let page = async {
            if query.limit == 0 {
                return Ok(Vec::new());
            }
            self.find_all(
                self.list_find(filter.clone(), query, plan, None)
                    .limit(i64::from(query.limit)),
            )
            .await
        };
        let (total, docs) = tokio::try_join!(count, page)?;
        let tracks = self.listed(docs, query.peaks).await?;
        Ok(Page { tracks, total })
    }

    async fn stream_tracks(&self, query: &ListQuery) -> Result<TrackStream> {
        let Some(filter) = Self::list_filter(query) else {
            return Ok(Box::pin(futures_util::stream::empty()));
        };
        let plan = match query.search {
            None => None,
            Some(_) => match self.few_matches(&filter, query).await? {
                Some(docs) => {
                    let docs: Vec<Document> = docs
                        .into_iter()
                        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
                        .collect();
                    let tracks = self.listed(docs, query.peaks).await?;
                    return Ok(futures_util::stream::iter(tracks.into_iter().map(Ok)).boxed());
                }
                None => Some(SearchPlan::WalkOrder),
            },
        };
        let cursor = self
            .timed(
                self.list_find(filter, query, plan, None)
                    .batch_size(STREAM_BATCH as u32),
            )
            .await?;
        let store = self.clone();
        let peaks = query.peaks;
        let tracks = cursor
            .map_err(map_err)
            .try_chunks(STREAM_BATCH)
            .map_err(|TryChunksError(_, e)| e)
            .and_then(move |docs| {
                let store = store.clone();
                async move { store.listed(docs, peaks).await }
            })
            .map_ok(|tracks| futures_util::stream::iter(tracks.into_iter().map(Ok)))
            .try_flatten();
        let store = self.clone();
        Ok(tracks.map_err(move |e| store.scrubbed(e)).boxed())
    }

    async fn get_track(&self, id: &TrackId) -> Result<Track> {
        let doc = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": schema::object_id(id) })
                    .projection(doc! { "words": 0, "name_key": 0, "author_key": 0 }),
            )
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut track = [self.track_from_doc(doc).await?];
        // Only a track with an analysis has a waveform to look up (looking for one that is not
        // there reads the whole collection on FerretDB).
        self.attach_peaks(&mut track).await?;
        let [track] = track;
        Ok(track)
    }

    async fn update_track(&self, id: &TrackId, patch: &TrackPatch) -> Result<Track> {
        if patch.is_empty() {
            return self.get_track(id).await;
        }
        // The keys depend on both fields: read the other one first (a rename racing another
        // rename of the same track may leave keys of the older name, which the next rename
        // mends; the seed never renames).
        let current = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": schema::object_id(id) })
                    .projection(doc! { "name": 1, "author": 1 }),
            )
            .await?
            .ok_or_else(|| not_found(id))?;
        let old = |field| current.get_str(field).unwrap_or_default().to_owned();
        let name = patch.name.clone().unwrap_or_else(|| old("name"));
        let author = patch.author.clone().unwrap_or_else(|| old("author"));
        let mut set = schema::key_fields(&name, &author);
        set.insert("changed_at", now_ms());
        if patch.name.is_some() {
            set.insert("name", name);
        }
        if patch.author.is_some() {
            set.insert("author", author);
        }
        let doc = self
            .timed(
                self.inner
                    .musics
                    .find_one_and_update(
                        doc! { "_id": schema::object_id(id) },
                        doc! { "$set": set },
                    )
                    .return_document(ReturnDocument::After),
            )
            .await?
            .ok_or_else(|| not_found(id))?;
        self.bump_library().await;
        self.track_from_doc(doc).await
    }

    async fn delete_track(&self, id: &TrackId) -> Result<()> {
        // Between the document and the chunks the track is half deleted: recorded, so that
        // garbage collection finishes what a crash interrupts.
        self.begin_write(id).await?;
        let deleted = self
            .timed(
                self.inner
                    .musics
                    .delete_one(doc! { "_id": schema::object_id(id) }),
            )
            .await?;
        if deleted.deleted_count == 0 {
            self.end_write(id).await;
            return Err(not_found(id));
        }
        self.bump_library().await;
        // What goes with the document: a failure is logged, and the delete stands.
        let hex = id.to_string();
        let recorded = self
            .inner
            .deletions
            .replace_one(doc! { "_id": &hex }, doc! { "_id": &hex, "at": now_ms() });
        self.after_delete(
            id,
            recorded.upsert(true),
            "recorded as deleted (Subsonic snapshots keep it until they read everything)",
        )
        .await;
        self.after_delete(
            id,
            self.inner.retirements.delete_one(doc! { "_id": &hex }),
            "its retirement",
        )
        .await;
        self.after_delete(
            id,
            self.inner.job_log.delete_many(doc! { "track": &hex }),
            "its job log",
        )
        .await;
        self.after_delete(
            id,
            self.inner
                .peaks
                .delete_one(doc! { "_id": schema::object_id(id) }),
            "its waveform",
        )
        .await;
        self.after_delete(
            id,
            self.inner.jobs.delete_one(doc! { "_id": &hex }),
            "its job (which will find no track and end)",
        )
        .await;
        // The track is gone for every reader now; chunks left by a failure here are garbage.
        match self
            .timed(
                self.inner
                    .chunks
                    .delete_many(doc! { "music_id": id.to_string() }),
            )
            .await
        {
            Ok(_) => self.end_write(id).await,
            Err(e) => tracing::warn!(track = %id, error = %e,
                "track deleted but not its chunks; garbage collection will remove them"),
        }
        Ok(())
    }

    async fn get_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let exists = self.track_streamable(schema::object_id(id));
        let chunk = self.chunk_bytes(id, name);
        let (exists, chunk) = tokio::try_join!(exists, chunk)?;
        match (exists, chunk) {
            (true, Some(Bson::Binary(binary))) => Ok(Bytes::from(binary.bytes)),
            (true, Some(other)) => Err(StoreError::Backend(format!(
                "chunk {name} of track {id} holds a {:?}, not binary data",
                other.element_type()
            ))),
            _ => Err(StoreError::NotFound(format!("chunk {name} of track {id}"))),
        }
    }

    async fn accept_track(&self, track: Track, source: ChunkSource) -> Result<Track> {
        self.ensure_indexes().await?;
        let id = track.id;
        self.begin_write(&id).await?;
        let job = doc! {
            "_id": id.to_string(),
            "state": "queued",
            "attempts": 0_i64,
            "claims": 0_i64,
            "lease_until": 0_i64,
            "created_at": track.created_at,
            "updated_at": track.created_at,
        };
        let result = self.accept_track_written(track, source, job).await;
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.end_write(&id).await;
        }
        result
    }

    async fn publish_with_follow_up(
        &self,
        track: Track,
        chunks: ChunkSource,
        after_claims: u64,
    ) -> Result<Track> {
        self.ensure_indexes().await?;
        let id = track.id;
        self.begin_write(&id).await?;
        let job = doc! {
            "_id": id.to_string(),
            "state": "queued",
            "kind": JobKind::Reprocess.as_str(),
            "attempts": 0_i64,
            "claims": claims_bson(after_claims),
            "lease_until": 0_i64,
            "created_at": track.created_at,
            "updated_at": track.created_at,
        };
        let result = self.accept_track_written(track, chunks, job).await;
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.end_write(&id).await;
        }
        result
    }

    async fn get_stored_chunk(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let exists = self.track_exists(schema::object_id(id));
        let chunk = self.chunk_bytes(id, name);
        let (exists, chunk) = tokio::try_join!(exists, chunk)?;
        match (exists, chunk) {
            (true, Some(Bson::Binary(binary))) => Ok(Bytes::from(binary.bytes)),
            (true, Some(_)) => Err(StoreError::Backend(format!(
                "chunk {name} of track {id} does not hold binary data"
            ))),
            _ => Err(StoreError::NotFound(format!("chunk {name} of track {id}"))),
        }
    }

    async fn chunk_names(&self, id: &TrackId) -> Result<Vec<String>> {
        Ok(self
            .find_all(
                self.inner
                    .chunks
                    .find(doc! { "music_id": id.to_string() })
                    .projection(doc! { "_id": 0, "chunk_name": 1 }),
            )
            .await?
            .iter()
            .filter_map(|d| d.get_str("chunk_name").ok().map(str::to_owned))
            .collect())
    }

    async fn clear_chunk_bytes(&self, id: &TrackId, name: &str) -> Result<()> {
        let empty = mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: Vec::new(),
        };
        let result = self
            .timed(self.inner.chunks.update_one(
                doc! { "music_id": id.to_string(), "chunk_name": name },
                doc! { "$set": { "chunk_bytes": empty } },
            ))
            .await?;
        if result.matched_count == 0 {
            return Err(StoreError::NotFound(format!("chunk {name} of track {id}")));
        }
        Ok(())
    }

    async fn delete_chunks(&self, id: &TrackId, names: Vec<String>) -> Result<()> {
        for batch in names.chunks(ID_BATCH) {
            self.timed(self.inner.chunks.delete_many(doc! {
                "music_id": id.to_string(),
                "chunk_name": { "$in": batch.to_vec() },
            }))
            .await?;
        }
        Ok(())
    }

    async fn claim_job(&self, owner: &str, now_ms: i64, lease_until: i64) -> Result<Option<Job>> {
        // A few candidates at most: another process may win each one.
        for _ in 0..5 {
            let Some(candidate) = self.next_due_job(now_ms).await? else {
                return Ok(None);
            };
            let claims = candidate.claims + 1;
            let id = candidate.track_id;
            // The claim is the unique record of claim number `claims`: whoever inserts it
            // holds the job (atomic on FerretDB too, where findAndModify is not).
            let record = doc! { "claim": claims_bson(claims), "owner": owner, "at": now_ms };
            if !self
                .record_once(&format!("{id}/claim/{claims}"), &id, record)
                .await?
            {
                self.pass_a_dead_claim(&candidate, claims, now_ms, lease_until - now_ms)
                    .await?;
                continue;
            }
            self.timed(self.inner.jobs.update_one(
                doc! { "_id": id.to_string() },
                doc! {
                    "$set": {
                        "state": "running",
                        "owner": owner,
                        "lease_until": lease_until,
                        "updated_at": now_ms,
                        "claims": claims_bson(claims),
                        "attempts": i64::from(candidate.attempts) + 1,
                    },
                },
            ))
            .await?;
            return Ok(Some(Job {
                state: legato_store::JobState::Running,
                attempts: candidate.attempts + 1,
                claims,
                owner: Some(owner.to_owned()),
                lease_until,
                updated_at: now_ms,
                ..candidate
            }));
        }
        Ok(None)
    }

    async fn renew_job(&self, id: &TrackId, claims: u64, lease_until: i64) -> Result<bool> {
        let result = self
            .timed(self.inner.jobs.update_one(
                doc! { "_id": id.to_string(), "claims": claims_bson(claims), "state": "running" },
                doc! { "$set": { "lease_until": lease_until } },
            ))
            .await?;
        Ok(result.matched_count == 1)
    }

    async fn release_job(
        &self,
        id: &TrackId,
        claims: u64,
        due_ms: i64,
        error: Option<&str>,
        counted: bool,
    ) -> Result<()> {
        let mut set = doc! {
            "state": "queued",
            "owner": Bson::Null,
            "lease_until": due_ms,
            "updated_at": due_ms,
        };
        if let Some(error) = error {
            set.insert("last_error", error);
        }
        let mut update = doc! { "$set": set };
        if !counted {
            update.insert("$inc", doc! { "attempts": -1_i64 });
        }
        self.timed(self.inner.jobs.update_one(
            doc! { "_id": id.to_string(), "claims": claims_bson(claims), "state": "running" },
            update,
        ))
        .await?;
        Ok(())
    }

    async fn finish_job(&self, id: &TrackId, claims: u64) -> Result<()> {
        self.timed(
            self.inner
                .jobs
                .delete_one(doc! { "_id": id.to_string(), "claims": claims_bson(claims) }),
        )
        .await?;
        Ok(())
    }

    async fn follow_up_job(&self, id: &TrackId, claims: u64, now_ms: i64) -> Result<()> {
        self.timed(self.inner.jobs.update_one(
            doc! { "_id": id.to_string(), "claims": claims_bson(claims) },
            doc! { "$set": {
                "kind": JobKind::Reprocess.as_str(), "state": "queued", "owner": Bson::Null,
                "lease_until": 0_i64, "attempts": 0_i64, "last_error": Bson::Null,
                "created_at": now_ms, "updated_at": now_ms,
            } },
        ))
        .await?;
        Ok(())
    }

    async fn fail_job(&self, id: &TrackId, claims: u64, error: &str) -> Result<()> {
        self.timed(self.inner.jobs.update_one(
            doc! { "_id": id.to_string(), "claims": claims_bson(claims) },
            doc! { "$set": { "state": "failed", "owner": Bson::Null, "last_error": error } },
        ))
        .await?;
        Ok(())
    }

    async fn enqueue_job(&self, id: &TrackId, now_ms: i64) -> Result<()> {
        let existing = self
            .timed(self.inner.jobs.find_one(doc! { "_id": id.to_string() }))
            .await?;
        match existing.as_ref().and_then(schema::job_from_doc) {
            Some(job) if job.state != legato_store::JobState::Failed => Ok(()),
            Some(_) => {
                self.timed(self.inner.jobs.update_one(
                    doc! { "_id": id.to_string(), "state": "failed" },
                    doc! { "$set": {
                        "state": "queued", "attempts": 0_i64, "owner": Bson::Null,
                        "lease_until": 0_i64, "last_error": Bson::Null, "updated_at": now_ms,
                    } },
                ))
                .await?;
                Ok(())
            }
            None => {
                let job = doc! {
                    "_id": id.to_string(), "state": "queued", "attempts": 0_i64,
                    "claims": 0_i64, "lease_until": 0_i64,
                    "created_at": now_ms, "updated_at": now_ms,
                };
                match self.timed(self.inner.jobs.insert_one(job)).await {
                    // Queued by another process meanwhile: that is what we wanted.
                    Ok(_) | Err(StoreError::Invalid(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn enqueue_reprocess(
        &self,
        id: &TrackId,
        now_ms: i64,
        after_claims: u64,
    ) -> Result<Enqueued> {
        self.ensure_indexes().await?;
        let status = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": schema::object_id(id) })
                    .projection(doc! { "status": 1 }),
            )
            .await?
            .ok_or_else(|| not_found(id))?;
        if status.get_str("status").ok() == Some(TrackStatus::Processing.as_str()) {
            return Err(StoreError::Invalid(format!(
                "track {id} is still processing"
            )));
        }
        // Claim numbers already in the job log cannot be claimed again (each claim is a
        // unique log entry): the new job starts after the highest.
        let logged = self
            .timed(
                self.inner
                    .job_log
                    .find_one(doc! { "track": id.to_string(), "claim": { "$gte": 0_i64 } })
                    .sort(doc! { "claim": -1 })
                    .projection(doc! { "claim": 1 }),
            )
            .await?
            .and_then(|doc| match doc.get("claim") {
                Some(Bson::Int64(n)) => u64::try_from(*n).ok(),
                Some(Bson::Int32(n)) => u64::try_from(*n).ok(),
                _ => None,
            })
            .unwrap_or(0);
        let existing = self
            .timed(self.inner.jobs.find_one(doc! { "_id": id.to_string() }))
            .await?;
        match existing.as_ref().and_then(schema::job_from_doc) {
            Some(job) if job.state != JobState::Failed => Ok(Enqueued::Pending),
            Some(job) => {
                let claims = job.claims.max(after_claims).max(logged);
                let result = self
                    .timed(self.inner.jobs.update_one(
                        doc! { "_id": id.to_string(), "state": "failed" },
                        doc! { "$set": {
                            "state": "queued", "kind": JobKind::Reprocess.as_str(),
                            "attempts": 0_i64, "owner": Bson::Null, "lease_until": 0_i64,
                            "last_error": Bson::Null, "claims": claims_bson(claims),
                            "created_at": now_ms, "updated_at": now_ms,
                        } },
                    ))
                    .await?;
                Ok(if result.matched_count == 1 {
                    Enqueued::Queued
                } else {
                    Enqueued::Pending
                })
            }
            None => {
                let claims = after_claims.max(logged);
                let job = doc! {
                    "_id": id.to_string(), "state": "queued",
                    "kind": JobKind::Reprocess.as_str(), "attempts": 0_i64,
                    "claims": claims_bson(claims), "lease_until": 0_i64,
                    "created_at": now_ms, "updated_at": now_ms,
                };
                match self.timed(self.inner.jobs.insert_one(job)).await {
                    Ok(_) => Ok(Enqueued::Queued),
                    // Queued by another process meanwhile.
                    Err(StoreError::Invalid(_)) => Ok(Enqueued::Pending),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn replace_renditions(
        &self,
        track: Track,
        chunks: ChunkSource,
        claims: u64,
        retire_after_ms: i64,
    ) -> Result<Track> {
        let oid = schema::object_id(&track.id);
        let music_id = track.id.to_string();
        let generation = claims_bson(claims);
        // The fence, checked before any chunk is written: the claim is the running one, and
        // no later claim has published. MongoDB has no transaction across the two
        // collections (and FerretDB's conditional updates are not atomic): the track
        // document's `generation` condition is what keeps an older claim from ever replacing
        // a newer one's renditions.
        let running = self
            .timed(self.inner.jobs.find_one(doc! {
                "_id": &music_id, "claims": generation, "state": "running",
            }))
            .await?
            .is_some();
        let replaceable = doc! {
            "_id": oid,
            "status": { "$ne": TrackStatus::Processing.as_str() },
            "$or": [
                { "generation": { "$exists": false } },
                { "generation": { "$lt": generation } },
            ],
        };
        if !running
            || self
                .timed(
                    self.inner
                        .musics
                        .find_one(replaceable.clone())
                        .projection(doc! { "_id": 1 }),
                )
                .await?
                .is_none()
        {
            return Err(not_found(&track.id));
        }
        let written = self.write_all_chunks(&track.id, chunks).await?;
        // Queued before the switch, so the sweep cannot miss it; an entry whose switch then
        // fails is dropped by the sweep (the document's `retire_after` is the truth).
        if let Err(e) = self
            .queue_retirement(&track.id, retire_after_ms, generation)
            .await
        {
            self.discard_chunks(&track.id, &written).await;
            return Err(e);
        }
        // Publish last: one document update switches every media field at once.
        let set = schema::replace_set(&track, generation, retire_after_ms);
        let replaced = self
            .timed(
                self.inner
                    .musics
                    .find_one_and_update(
                        replaceable,
                        doc! { "$set": &set, "$unset": schema::replace_unset(&set) },
                    )
                    .return_document(ReturnDocument::After),
            )
            .await;
        match replaced {
            Ok(Some(doc)) => {
                self.bump_library().await;
                self.track_from_doc(doc).await
            }
            Ok(None) => {
                self.discard_chunks(&track.id, &written).await;
                Err(not_found(&track.id))
            }
            Err(e) => {
                self.discard_chunks(&track.id, &written).await;
                Err(e)
            }
        }
    }

    /// From `retirements` (a small collection, read through its `after` index), each entry
    /// checked against its track document by `_id`: an entry the document does not confirm
    /// (its switch failed, or the track is gone) is dropped, or moved to the time the
    /// document gives.
    async fn due_retirements(&self, now_ms: i64, limit: u32) -> Result<Vec<Retirement>> {
        let queued = self
            .find_all(
                self.inner
                    .retirements
                    .find(doc! { "after": { "$lte": now_ms } })
                    .sort(doc! { "after": 1 })
                    .limit(i64::from(limit)),
            )
            .await?;
        let mut due = Vec::new();
        for entry in queued {
            let Some(id) = entry
                .get_str("_id")
                .ok()
                .and_then(|hex| hex.parse::<TrackId>().ok())
            else {
                continue;
            };
            let after = schema::integer(entry.get("after")).unwrap_or(0);
            let track = self
                .timed(
                    self.inner
                        .musics
                        .find_one(doc! { "_id": schema::object_id(&id) })
                        .projection(doc! { "_id": 1, "generation": 1, "retire_after": 1 }),
                )
                .await?;
            let truth = track.as_ref().and_then(|doc| {
                Some((
                    schema::integer(doc.get("retire_after"))?,
                    schema::integer(doc.get("generation")).unwrap_or(0),
                ))
            });
            match truth {
                Some((retire_after, generation)) if retire_after <= now_ms => {
                    due.push(Retirement {
                        track_id: id,
                        generation: u64::try_from(generation).unwrap_or(0),
                        after_ms: retire_after,
                    });
                }
                Some((retire_after, generation)) => {
                    self.queue_retirement(&id, retire_after, generation).await?;
                }
                None => {
                    self.timed(
                        self.inner
                            .retirements
                            .delete_one(doc! { "_id": id.to_string(), "after": after }),
                    )
                    .await?;
                }
            }
        }
        Ok(due)
    }

    async fn end_retirement(&self, id: &TrackId, after_ms: i64) -> Result<()> {
        self.timed(self.inner.musics.update_one(
            doc! { "_id": schema::object_id(id), "retire_after": after_ms },
            doc! { "$unset": { "retire_after": "" } },
        ))
        .await?;
        self.timed(
            self.inner
                .retirements
                .delete_one(doc! { "_id": id.to_string(), "after": after_ms }),
        )
        .await?;
        Ok(())
    }

    async fn get_job(&self, id: &TrackId) -> Result<Option<Job>> {
        Ok(self
            .timed(self.inner.jobs.find_one(doc! { "_id": id.to_string() }))
            .await?
            .as_ref()
            .and_then(schema::job_from_doc))
    }

    async fn job_counts(&self) -> Result<JobCounts> {
        // An ingest's kind is "ingest", or none (written before kinds existed).
        let queued = self.timed(self.inner.jobs.count_documents(doc! {
            "state": "queued", "kind": { "$in": [Bson::Null, Bson::String(JobKind::Ingest.as_str().to_owned())] },
        }));
        let running = self.timed(self.inner.jobs.count_documents(doc! { "state": "running" }));
        let (queued, running) = tokio::try_join!(queued, running)?;
        Ok(JobCounts { queued, running })
    }

    async fn find_by_source_sha256(&self, sha256: &str) -> Result<Option<Track>> {
        // The oldest that is not failed (an upload after a failure is a new track), else the
        // oldest: one range of the digest's index, a few documents long.
        let copies = self
            .find_all(
                self.inner
                    .musics
                    .find(doc! { "source.sha256": sha256 })
                    .sort(doc! { "source.sha256": 1, "created_at": 1, "_id": 1 })
                    .limit(DIGEST_COPIES)
                    .projection(doc! { "words": 0, "name_key": 0, "author_key": 0 }),
            )
            .await?;
        let failed = |doc: &Document| doc.get_str("status") == Ok(TrackStatus::Failed.as_str());
        let chosen = match copies.iter().position(|doc| !failed(doc)) {
            Some(i) => copies.into_iter().nth(i),
            None => copies.into_iter().next(),
        };
        match chosen {
            Some(doc) => self.track_from_doc(doc).await.map(Some),
            None => Ok(None),
        }
    }

    /// The counter in `legato_meta` that every change Legato makes to `musics` increments,
    /// mixed with the collection's estimated document count (from its metadata: no document
    /// is read). The seed's functions write `musics` without knowing of the counter; when the
    /// count moves and the counter does not, this process counts the change itself (so the
    /// version moves for every replica and never comes back to an earlier value) and writes
    /// the keys of the documents the seed inserted.
    async fn library_version(&self) -> Result<u64> {
        let (counter, count) = self.library_state().await?;
        let mut hash = Fnv1a::default();
        hash.write(&counter.to_le_bytes());
        hash.write(&count.to_le_bytes());
        Ok(hash.0)
    }

    async fn change_cursor(&self) -> Result<u64> {
        Ok(u64::try_from(now_ms()).unwrap_or(0))
    }

    /// From `changed_at` (indexed) and `track_deletions`, re-reading [`CHANGE_MARGIN`] before
    /// the cursor: a write is stamped before it lands, and processes' clocks differ.
    async fn changes_since(&self, cursor: u64) -> Result<Option<legato_store::Changes>> {
        let margin = i64::try_from(CHANGE_MARGIN.as_millis()).unwrap_or(i64::MAX);
        let cursor_ms = i64::try_from(cursor).unwrap_or(i64::MAX);
        if cursor == 0 {
            return Ok(None);
        }
        let now = now_ms();
        let since = cursor_ms - margin;
        let lean = doc! { "words": 0, "name_key": 0, "author_key": 0, "analysis.peaks": 0 };
        let changed = self.find_all(
            self.inner
                .musics
                .find(doc! { "changed_at": { "$gte": since } })
                .sort(doc! { "changed_at": 1 })
                .projection(lean.clone()),
        );
        // The seed stamps nothing, but what it inserts has a new ObjectId. (What it deletes
        // is seen at the next full read: see the Subsonic snapshot in legato-http.)
        let since_secs = u32::try_from(since.max(0) / 1000).unwrap_or(u32::MAX);
        let inserted = self.find_all(
            self.inner
                .musics
                .find(doc! { "_id": { "$gte": ObjectId::from_parts(since_secs, [0; 5], [0; 3]) } })
                .sort(doc! { "_id": 1 })
                .projection(lean),
        );
        let deleted = self.find_all(
            self.inner
                .deletions
                .find(doc! { "at": { "$gte": since } })
                .sort(doc! { "at": 1 }),
        );
        let (mut changed, inserted, deleted) = tokio::try_join!(changed, inserted, deleted)?;
        let known: HashSet<ObjectId> = changed
            .iter()
            .filter_map(|d| d.get_object_id("_id").ok())
            .collect();
        changed.extend(
            inserted
                .into_iter()
                .filter(|d| d.get_object_id("_id").is_ok_and(|id| !known.contains(&id))),
        );
        Ok(Some(legato_store::Changes {
            cursor: u64::try_from(now).unwrap_or(cursor).max(cursor),
            changed: self.tracks_from_docs(changed).await?,
            deleted: deleted
                .iter()
                .filter_map(|d| d.get_str("_id").ok()?.parse().ok())
                .collect(),
        }))
    }

    async fn ping(&self) -> Result<()> {
        self.timed(
            self.inner
                .client
                .database(&self.inner.database)
                .run_command(doc! { "ping": 1 }),
        )
        .await
        .map(drop)
    }

    fn describe(&self) -> String {
        format!(
            "mongodb:{} (database {})",
            self.inner.shown_uri, self.inner.database
        )
    }
}

//! From a spooled upload to a published track: Legato's ingest pipeline, with no HTTP in it.
//!
//! An upload arrives as a [`Spooled`] file with what its sender said about it ([`Upload`]).
//! [`Pipeline::accept`] probes it, and stores it durably: an MP3 is cut into its bit-exact
//! rendition at once and published with a queued follow-up; anything else is stored as its
//! source with a queued job. Workers ([`Pipeline::spawn_workers`], any process sharing the
//! store) claim jobs under a lease, plan the renditions from the probed input, produce
//! them, lay them out as chunks ([`layout`] names every one) and publish; then the track is
//! analysed (loudness, true peak, waveform). Reprocessings replace a ready track's
//! renditions in one switch and retire the old ones after a grace period.
//!
//! Errors are [`IngestError`]s; `legato-http` maps them to statuses in one place.
//!
//! Modules, in the order an upload meets them: [`spool`] (the upload's bytes), `accept`
//! (admission, probing, the track, the first publish, waiting), [`jobs`] (workers, leases,
//! publishing, retiring), `produce` (planning and producing the renditions), [`layout`]
//! (chunk names), [`source`] (the original rebuilt from the store), `analysis`.

mod accept;
mod analysis;
mod error;
mod formats;
pub mod jobs;
pub mod layout;
mod produce;
pub mod source;
pub mod spool;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use legato_store::{DynStore, StoreError, Track, TrackId};
use tokio::sync::watch;

pub use accept::{DEFAULT_AUTHOR, DEFAULT_NAME, Outcome};
pub use error::{IngestError, spool_error};
pub use formats::{source_content_type, source_format_name};
pub use jobs::{JobDone, JobHub};
pub use spool::{
    MAX_COVER_BYTES, MAX_TEXT_CHARS, Spooled, SpooledReader, Upload, clean_text, cover_mime,
    temp_file,
};

/// The histogram of ingest durations, by kind (`single`, `ladder`, `reprocess`).
pub const INGEST_SECONDS: &str = "legato_ingest_duration_seconds";

/// What the pipeline is asked to make, and how its workers behave.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Target segment length in seconds.
    pub segment_seconds: f64,
    /// MP3 ladder rungs (kbit/s) encoded beside an MP3 upload's own frames.
    pub ladder_kbps: Vec<u32>,
    /// AAC-LC rungs (kbit/s), in fMP4.
    pub aac_ladder_kbps: Vec<u32>,
    /// Whether a lossless upload gets a lossless FLAC rung (fMP4).
    pub lossless: bool,
    /// Uploads stored at once by this process (a processing slot each).
    pub max_concurrent_ingests: usize,
    /// How long an upload waits for its first rendition before it is answered "processing".
    pub sync_ingest_timeout: Duration,
    /// Workers per process.
    pub ingest_workers: usize,
    /// Jobs queued (across every process on the store) beyond which uploads are refused.
    pub max_queued_jobs: u64,
    /// A claim's lease; renewed every third of it while the work runs.
    pub job_lease: Duration,
    /// Claims of one job before it fails.
    pub job_max_attempts: u32,
    /// How long a stopping process finishes its current job before releasing it.
    pub job_shutdown_grace: Duration,
    /// How often idle workers look for jobs queued by other processes.
    pub job_poll_interval: Duration,
    /// How long replaced renditions outlive the replaced track's duration.
    pub retire_grace: Duration,
}

/// A cache of chunk bytes outside the store (the server's segment cache), told when the
/// pipeline removes chunks, so no copy outlives them.
#[async_trait::async_trait]
pub trait ChunkCache: Send + Sync {
    async fn forget(&self, id: TrackId, names: &[String]);
}

/// The pipeline of one process: its store, settings, processing slots and workers' hub.
/// Cheap to clone (one shared value).
#[derive(Clone)]
pub struct Pipeline(Arc<Shared>);

/// What every part of the pipeline shares.
pub struct Shared {
    pub store: DynStore,
    pub config: IngestConfig,
    /// Processing slots of this process.
    ingests: tokio::sync::Semaphore,
    /// One analysis at a time: each decodes its file once more.
    analyses: Arc<tokio::sync::Semaphore>,
    pub(crate) jobs: JobHub,
    same_file: accept::SameFile,
    cache: Option<Arc<dyn ChunkCache>>,
}

impl std::ops::Deref for Pipeline {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Pipeline {
    /// A pipeline over `store`; `cache`, when the process keeps chunks in memory, is told
    /// of every chunk the pipeline removes.
    pub fn new(store: DynStore, config: IngestConfig, cache: Option<Arc<dyn ChunkCache>>) -> Self {
        let slots = config.max_concurrent_ingests.max(1);
        Self(Arc::new(Shared {
            store,
            config,
            ingests: tokio::sync::Semaphore::new(slots),
            analyses: Arc::new(tokio::sync::Semaphore::new(1)),
            jobs: JobHub::default(),
            same_file: accept::SameFile::default(),
            cache,
        }))
    }

    /// Stores an upload durably and waits up to `sync_ingest_timeout` (not at all with
    /// `respond_async`) for its first rendition: see [`Outcome`].
    pub async fn accept(
        &self,
        upload: Upload,
        respond_async: bool,
    ) -> Result<Outcome, IngestError> {
        accept::accept(self, upload, respond_async).await
    }

    /// Whether an upload may be received now: a processing slot free in this process, and
    /// room in the store's queue.
    pub async fn admit(&self) -> Result<(), IngestError> {
        accept::admit(self).await
    }

    /// The renditions the settings ask for that `track` does not have yet (`128k`,
    /// `aac128k`, `flac`): what its follow-up job makes.
    pub fn coming(&self, track: &Track) -> Vec<String> {
        produce::coming(&self.config, track)
    }

    /// Starts this process's workers and the retirement sweep; they stop once `shutdown`
    /// turns true, and the returned task ends when each has finished or released its job.
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        jobs::spawn_workers(self, shutdown)
    }

    /// Removes the renditions reprocessings replaced whose grace period is over; returns
    /// how many chunks went.
    pub async fn retire_due(&self) -> Result<usize, StoreError> {
        jobs::retire_due(self).await
    }

    /// Tells an idle worker of this process that a job is queued (by this process).
    pub fn wake(&self) {
        self.jobs.wake();
    }

    async fn forget(&self, id: TrackId, names: &[String]) {
        if let Some(cache) = &self.cache {
            cache.forget(id, names).await;
        }
    }
}

/// Milliseconds since the Unix epoch, as tracks record `created_at`.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

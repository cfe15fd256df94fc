use std::time::Duration;

use crate::api_keys::ApiKeys;
use crate::signing::UrlSigner;

/// Settings of the HTTP layer. The binary fills them from flags, environment and secrets.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Target segment duration in seconds.
    pub segment_seconds: f64,
    /// Largest accepted upload (the audio file itself), in bytes.
    pub max_upload_bytes: u64,
    /// Origins allowed to call the API from a browser (`Access-Control-Allow-Origin`).
    pub cors_origins: CorsOrigins,
    /// Proxies whose `X-Forwarded-For` is believed (the OpenFaaS gateway, the watchdog, a
    /// load balancer): a client's address is the right-most entry that is not one of them.
    /// Empty: the peer's address, whatever the request says.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bytes of segments kept in memory by the streaming function.
    pub cache_bytes: u64,
    /// Path under which the streaming function is reachable from clients; playlist URLs
    /// handed out by crud start with it.
    pub streaming_path: String,
    /// Keys accepted for writes (and reads when `private`); empty means no key is needed.
    pub api_keys: ApiKeys,
    /// Reads need a key too.
    pub private: bool,
    /// Signs playback URLs when set; the streaming function then requires them.
    pub url_signer: Option<UrlSigner>,
    /// Ingests processed at once; more get 429.
    pub max_concurrent_ingests: usize,
    /// An upload that sends nothing for this long is dropped (408).
    pub upload_idle_timeout: Duration,
    /// Bitrates (kbit/s) of the MP3 renditions made for each track; an MP3 source is also
    /// kept as it is, and rungs at or above its bitrate are not made.
    pub ladder_kbps: Vec<u32>,
    /// Bitrates (kbit/s) of the AAC-LC renditions in fragmented MP4, each one of
    /// `legato_transcode::AAC_BITRATES`; for a lossy source, rungs above its bitrate are not
    /// made (the lowest always is). Empty: no AAC renditions.
    pub aac_ladder_kbps: Vec<u32>,
    /// A lossless FLAC rendition (fMP4) for FLAC uploads (their own frames) and WAV/AIFF
    /// uploads (encoded losslessly).
    pub lossless: bool,
    /// Processing that lasts longer than this goes on in the background (202).
    pub sync_ingest_timeout: Duration,
    /// Receiving uploads: the budget of bytes in flight, rate and time limits, free disk.
    pub receive: ReceiveLimits,
    /// Jobs this process works on at once.
    pub ingest_workers: usize,
    /// Jobs waiting in the store (all processes together) beyond which uploads get 429.
    pub max_queued_jobs: u64,
    /// A claim lasts this long unless renewed (renewed every third of it while working).
    pub job_lease: Duration,
    /// Claims of one job before it is failed (crashes count; releases at shutdown do not).
    pub job_max_attempts: u32,
    /// How long a stopping process may finish its current job before releasing it.
    pub job_shutdown_grace: Duration,
    /// How often an idle worker looks for jobs queued by other processes (and replaced
    /// renditions due for removal).
    pub job_poll_interval: Duration,
    /// How long the renditions a reprocessing replaced are kept beyond the old track's
    /// duration, for players that loaded their playlists before the switch.
    pub retire_grace: Duration,
    /// Seals Subsonic users' passwords; the OpenSubsonic API (`/rest`) is served when set.
    pub subsonic_secret: Option<crate::secret_key::SecretKey>,
    /// How segments reach players when the store keeps them in an object store.
    pub segment_delivery: SegmentDelivery,
    /// Bounds on what each listener stores through the Subsonic API.
    pub quotas: UserQuotas,
}

/// Bounds on what one listener may keep in the store through the Subsonic API (playlists,
/// stars, ratings, plays), so that one account cannot grow the store, or slow everyone's
/// listings, without limit. Admins have the same: the limits protect the server, not a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuotas {
    /// Playlists one user may own.
    pub max_playlists_per_user: u64,
    /// Entries (songs, repeats counted) one playlist may hold.
    pub max_playlist_entries: usize,
    /// Bytes of parameters (query and form body together) of a request that stores user
    /// state (`createPlaylist`, `updatePlaylist`, `star`, `scrobble`, …).
    pub max_state_request_bytes: u64,
}

impl Default for UserQuotas {
    fn default() -> Self {
        Self {
            max_playlists_per_user: 100,
            max_playlist_entries: 2_000,
            // 2,000 `songId=<24 hex digits>&` pairs are 64 KiB: room for them and the rest.
            max_state_request_bytes: 128 * 1024,
        }
    }
}

/// How the streaming function hands out segments (init segments, covers: every chunk but
/// playlists) that an object store holds. Playlists are always answered by the function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SegmentDelivery {
    /// The function reads the object (through its segment cache) and answers the bytes.
    #[default]
    Proxy,
    /// The function answers 302 to a presigned URL of the object, valid this long.
    Redirect { expires: Duration },
    /// Playlists name segments by absolute URLs under this base (a CDN in front of the
    /// bucket, ending with the bucket's root); a signed track's URLs carry its token, which
    /// the CDN checks (see the README).
    Cdn { base_url: String },
}

/// Origins allowed by CORS: any (`*`), or a list of exact origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    /// Exact origins such as `https://music.example`, already validated.
    List(Vec<String>),
}

/// Limits on receiving upload bodies, apart from processing them: a slow client holds
/// only its own share of these, never a processing slot.
#[derive(Debug, Clone)]
pub struct ReceiveLimits {
    /// Bytes of upload bodies being received at once, across all uploads; an upload that
    /// would exceed it is refused (429) before its body is read.
    pub bytes_in_flight: u64,
    /// After `idle` has passed, an upload must average at least this many bytes per second.
    pub min_bytes_per_second: u64,
    /// Longest time a body may take to arrive, however fast it trickles.
    pub max_duration: Duration,
    /// Uploads that would leave less free disk than this (in the spool and the store's
    /// folder) are refused (507) before their body is read.
    pub min_free_disk_bytes: u64,
    /// The store's folder, whose free space is checked (the spool's is checked too).
    pub data_dir: Option<std::path::PathBuf>,
    /// A small body (a PATCH's JSON, a Subsonic form) must be whole within this plus its
    /// length at `min_bytes_per_second`: one byte now and then never holds a connection.
    pub small_body_grace: Duration,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        Self {
            // Two default-sized uploads at once: spooled to disk, so this bounds disk and the
            // time a burst holds, not memory.
            bytes_in_flight: 1024 * 1024 * 1024,
            min_bytes_per_second: 16 * 1024,
            max_duration: Duration::from_secs(1800),
            min_free_disk_bytes: 256 * 1024 * 1024,
            data_dir: None,
            small_body_grace: Duration::from_secs(5),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            segment_seconds: 10.0,
            max_upload_bytes: 512 * 1024 * 1024,
            cors_origins: CorsOrigins::Any,
            trusted_proxies: Vec::new(),
            cache_bytes: 256 * 1024 * 1024,
            streaming_path: "/function/streaming".to_owned(),
            api_keys: ApiKeys::default(),
            private: false,
            url_signer: None,
            max_concurrent_ingests: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            upload_idle_timeout: Duration::from_secs(30),
            ladder_kbps: vec![64, 128, 192],
            aac_ladder_kbps: vec![64, 128, 256],
            lossless: true,
            sync_ingest_timeout: Duration::from_secs(5),
            receive: ReceiveLimits::default(),
            // Sized for a 2-core, 1 GB replica: one transcode at a time leaves a core for
            // serving, and the memory of one long file.
            ingest_workers: 1,
            max_queued_jobs: 16,
            job_lease: Duration::from_secs(30),
            job_max_attempts: 3,
            job_shutdown_grace: Duration::ZERO,
            job_poll_interval: Duration::from_secs(1),
            retire_grace: Duration::from_secs(600),
            subsonic_secret: None,
            segment_delivery: SegmentDelivery::Proxy,
            quotas: UserQuotas::default(),
        }
    }
}

impl HttpConfig {
    /// The ingest pipeline's part of these settings.
    pub fn ingest(&self) -> legato_ingest::IngestConfig {
        legato_ingest::IngestConfig {
            segment_seconds: self.segment_seconds,
            ladder_kbps: self.ladder_kbps.clone(),
            aac_ladder_kbps: self.aac_ladder_kbps.clone(),
            lossless: self.lossless,
            max_concurrent_ingests: self.max_concurrent_ingests,
            sync_ingest_timeout: self.sync_ingest_timeout,
            ingest_workers: self.ingest_workers,
            max_queued_jobs: self.max_queued_jobs,
            job_lease: self.job_lease,
            job_max_attempts: self.job_max_attempts,
            job_shutdown_grace: self.job_shutdown_grace,
            job_poll_interval: self.job_poll_interval,
            retire_grace: self.retire_grace,
        }
    }
}

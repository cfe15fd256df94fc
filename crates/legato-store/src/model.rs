use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{StoreError, TrackId};

/// A stored track's metadata. Chunks (the playlist and segments) are stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub id: TrackId,
    pub name: String,
    pub author: String,
    /// Seconds, frame exact.
    pub duration: f64,
    /// Number of media segments.
    pub segments: u32,
    /// Name of the playlist chunk: `index.m3u8` for Legato's tracks, `outputlist.m3u8` for
    /// tracks the seed wrote.
    pub playlist: String,
    /// `mp3`, or `None` for a track whose metadata we do not know (the seed stored none).
    pub codec: Option<String>,
    /// Average kbit/s of the stored audio.
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// Bytes of audio kept (the MPEG frames, without container).
    pub size: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub album: Option<String>,
    pub year: Option<i32>,
    /// The album's artist when the tags name one apart from the track's (compilations).
    #[serde(default)]
    pub album_artist: Option<String>,
    #[serde(default)]
    pub genre: Option<String>,
    /// Position on its disc, from the tags.
    #[serde(default)]
    pub track_number: Option<u32>,
    #[serde(default)]
    pub disc_number: Option<u32>,
    /// Whether the media is ready to stream. Tracks written by the seed have none: ready.
    pub status: TrackStatus,
    /// Why processing failed, for a `Failed` track.
    pub error: Option<String>,
    /// The renditions of an adaptive-bitrate track, lowest first; empty for a single-rendition
    /// track (whose playlist is a media playlist).
    pub variants: Vec<Variant>,
    /// Name of the cover image chunk (`cover.jpg` or `cover.png`).
    pub cover: Option<String>,
    /// Loudness and waveform, once computed.
    pub analysis: Option<Analysis>,
    /// The uploaded file, kept byte for byte; `None` for tracks stored before originals
    /// were kept (they cannot be downloaded or reprocessed).
    #[serde(default)]
    pub source: Option<SourceInfo>,
}

/// The original upload of a track, stored as chunks beside its renditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `mp3`, `flac`, `wav`, `aiff`, `ogg`, `mp4` or `aac`.
    pub format: String,
    /// Bytes of the file.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The file name the client gave, if any.
    pub file_name: Option<String>,
    /// Number of pieces it is stored in (the layout names them); 0 when `remainder` is set.
    pub pieces: u32,
    /// For an MP3 whose frames are its `original` rendition: the chunk holding the rest of
    /// its bytes (tags, Info frame, junk) and the names of those segments, so the audio is
    /// not stored twice. `None` when the file is stored whole in `pieces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remainder: Option<String>,
}

/// Where a durable ingest job is in its life. A job that succeeds is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker (or for its retry time, `lease_until`).
    Queued,
    /// Claimed by `owner` until `lease_until`; claimable again once that has passed.
    Running,
    /// Given up: `last_error` says why.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Makes the first renditions of an accepted upload (its track is `processing`).
    #[default]
    Ingest,
    /// Rebuilds the renditions of a track from its stored source while the track stays
    /// playable on its current ones; the new set replaces them at once
    /// ([`Catalog::replace_renditions`](crate::Catalog::replace_renditions)).
    Reprocess,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Reprocess => "reprocess",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ingest" => Self::Ingest,
            "reprocess" => Self::Reprocess,
            _ => return None,
        })
    }
}

/// The processing of one track, recorded in the store so that any process can finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub track_id: TrackId,
    pub kind: JobKind,
    pub state: JobState,
    /// Claims of the current run; bounded, so a file that kills its process cannot loop.
    pub attempts: u32,
    /// Claims ever made on this track's jobs: the fencing token of the current claim, and
    /// what makes the chunk names of each attempt unique.
    pub claims: u64,
    /// Who holds the claim (host and process).
    pub owner: Option<String>,
    /// Milliseconds since the epoch: end of the claim's lease, or a queued job's retry time.
    pub lease_until: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Whether [`Catalog::enqueue_reprocess`](crate::Catalog::enqueue_reprocess) queued a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A job is queued now (a new one, or a failed one queued again).
    Queued,
    /// A job of the track was queued or running already: nothing changed.
    Pending,
}

/// Renditions a reprocessing replaced, kept for players still holding their playlists: the
/// chunks of every generation before `generation` may be removed once `after_ms` has
/// passed. The store records the pair with the replacement and hands it back when due; what
/// a generation's chunks are named is the caller's business (the HTTP crate's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    pub track_id: TrackId,
    /// The claim count (fencing token) of the job that made the current renditions.
    pub generation: u64,
    /// Milliseconds since the epoch.
    pub after_ms: i64,
}

/// How many jobs wait and run, for admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: u64,
    pub running: u64,
}

/// Where a track is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Accepted; its media is being made. Listed, never streamed.
    Processing,
    #[default]
    Ready,
    /// Processing failed; `error` says why. Listed so the uploader learns of it.
    Failed,
}

impl TrackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "processing" => Self::Processing,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One rendition of an adaptive-bitrate track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// `original` for the source kept bit-exact, else the bitrate (`128k`).
    pub name: String,
    /// Average kbit/s.
    pub bitrate: u32,
    /// Peak bit/s over any segment (EXT-X-STREAM-INF BANDWIDTH).
    pub bandwidth: u64,
    /// Average bit/s (AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
    /// RFC 6381 codec string, `mp4a.40.34` for MP3.
    pub codecs: String,
    /// Name of its media playlist chunk.
    pub playlist: String,
}

/// Loudness (EBU R128) and a waveform of the track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub loudness_lufs: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
    /// Peak values in 0..1 over the track, evenly spaced; empty in list entries unless asked
    /// for ([`ListQuery::peaks`]).
    #[serde(default)]
    pub peaks: Vec<f32>,
}

/// One named blob of a track: its playlist or one of its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub name: String,
    pub bytes: Bytes,
}

impl Chunk {
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

/// The chunks of a track being inserted, produced one at a time.
pub type ChunkSource = Box<dyn Iterator<Item = Result<Chunk, StoreError>> + Send>;

/// Fields a client may change after upload.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TrackPatch {
    pub name: Option<String>,
    pub author: Option<String>,
}

impl TrackPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.author.is_none()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortKey {
    #[default]
    CreatedAt,
    Name,
    Author,
    Duration,
}

impl SortKey {
    pub const NAMES: [&'static str; 4] = ["created_at", "name", "author", "duration"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created_at" | "added" => Self::CreatedAt,
            "name" | "title" => Self::Name,
            "author" | "artist" => Self::Author,
            "duration" => Self::Duration,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// What changed in the library after a cursor ([`Catalog::changes_since`](crate::Catalog::changes_since)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// The cursor to ask from next time.
    pub cursor: u64,
    /// Tracks added or changed (of any status, without their waveform), oldest change first.
    pub changed: Vec<Track>,
    /// Tracks removed.
    pub deleted: Vec<TrackId>,
}

/// What `list` returns: a page of tracks and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub tracks: Vec<Track>,
    pub total: u64,
}

/// Search, order and paging for `list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Words each of which starts a word of the name or the author, case and accents ignored
    /// (the rules are in [`keys`](crate::keys)).
    pub search: Option<String>,
    /// Ignored by [`Catalog::stream_tracks`](crate::Catalog::stream_tracks), which has none.
    pub limit: u32,
    pub offset: u64,
    pub sort: SortKey,
    pub order: SortOrder,
    /// Whether the tracks carry their waveform (`analysis.peaks`, about 2.7 KB of JSON per
    /// track); without it a list reads and sends a tenth of the bytes.
    pub peaks: bool,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            search: None,
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
            sort: SortKey::default(),
            order: SortOrder::default(),
            peaks: false,
        }
    }
}

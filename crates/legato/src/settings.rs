//! The settings the commands share: the server's flags (`HttpArgs`, `ConnectionArgs`), the
//! store's (`StoreArgs`, `BlobsArgs`), their parsers, and what a bad setting exits with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use legato_http::{CorsOrigins, HttpConfig, ReceiveLimits, SegmentDelivery, UserQuotas};

/// Bytes in a megabyte, as the flags count them. Every `*_mb` flag is bounded well below
/// `u64::MAX / MB` by its parser.
const MB: u64 = 1024 * 1024;
use legato_http::auth::ApiKeys;
use legato_http::signing::UrlSigner;

/// A setting that cannot work: a file it names that cannot be read, flags that contradict
/// each other, a store address of no known kind. The process exits with status 2, as for a
/// flag clap refuses; a failure of what the settings reach (a database that does not answer)
/// stays status 1.
#[derive(Debug)]
pub struct BadSetting(String);

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadSetting {}

/// Marks an error as a [`BadSetting`], keeping its whole message.
pub trait SettingResult<T> {
    fn setting(self) -> anyhow::Result<T>;
}

impl<T> SettingResult<T> for anyhow::Result<T> {
    fn setting(self) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::new(BadSetting(format!("{err:#}"))))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LEGATO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "LEGATO_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Store URI: `mongodb://user@host:27017/openfaas`, a SQLite file path or `sqlite:PATH`
    /// (default: DATA/legato.sqlite3).
    #[arg(long, env = "LEGATO_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// File holding the MongoDB password (an OpenFaaS secret), spliced into the store URI.
    #[arg(long, env = "LEGATO_STORE_PASSWORD_FILE")]
    pub store_password_file: Option<PathBuf>,
    /// Key that seals Subsonic users' passwords (default: DATA/secret.key, created with mode
    /// 0600 when absent). Keep it apart from backups of the store.
    #[arg(long, env = "LEGATO_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub blobs: BlobsArgs,
}

/// Where chunk bytes go when not in the store itself.
#[derive(Debug, Clone, Default, Args)]
pub struct BlobsArgs {
    /// Keep segments (every chunk but playlists) in an S3-compatible object store:
    /// `s3://bucket/prefix?endpoint=http://host:8333&region=us-east-1` (endpoint for
    /// SeaweedFS, MinIO and others; without it, AWS S3).
    #[arg(long, env = "LEGATO_BLOBS")]
    pub blobs: Option<String>,
    /// File holding the object store's access key id (default: `AWS_ACCESS_KEY_ID`).
    #[arg(
        long,
        env = "LEGATO_BLOBS_ACCESS_KEY_FILE",
        requires = "blobs_secret_key_file"
    )]
    pub blobs_access_key_file: Option<PathBuf>,
    /// File holding the object store's secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    #[arg(
        long,
        env = "LEGATO_BLOBS_SECRET_KEY_FILE",
        requires = "blobs_access_key_file"
    )]
    pub blobs_secret_key_file: Option<PathBuf>,
    /// Objects no track names (left by a crash mid-write) are removed once this old, in
    /// seconds (a sweep runs every --blobs-gc-every-seconds).
    #[arg(long, env = "LEGATO_BLOBS_GC_GRACE_SECONDS", default_value_t = 6 * 3600,
          value_parser = clap::value_parser!(u64).range(0..=30 * 86_400))]
    pub blobs_gc_grace_seconds: u64,
    /// Seconds between sweeps for such objects.
    #[arg(long, env = "LEGATO_BLOBS_GC_EVERY_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub blobs_gc_every_seconds: u64,
}

impl StoreArgs {
    /// The Subsonic password key, created when absent.
    pub fn secret_key(&self) -> anyhow::Result<legato_http::subsonic::SecretKey> {
        let path = self
            .secret_key_file
            .clone()
            .unwrap_or_else(|| self.data.join("secret.key"));
        legato_http::subsonic::SecretKey::load_or_create(&path)
            .with_context(|| format!("cannot read or create the secret key {}", path.display()))
            .setting()
    }
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Target segment duration in seconds.
    #[arg(long, env = "LEGATO_SEGMENT_SECONDS", default_value_t = 10.0,
          value_parser = parse_segment_seconds)]
    pub segment_seconds: f64,
    /// Largest accepted upload, in megabytes.
    #[arg(long, env = "LEGATO_MAX_UPLOAD_MB", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub max_upload_mb: u64,
    /// Origins allowed to call the API from a browser: `*`, or origins such as
    /// `https://music.example`, separated by commas.
    #[arg(long, env = "LEGATO_CORS_ORIGIN", default_value = "*", value_parser = parse_cors_origins)]
    pub cors_origin: CorsOrigins,
    /// Proxies (CIDR ranges or addresses, separated by commas) whose X-Forwarded-For names the
    /// client: the sign-in limiter counts the right-most address that is not one of them.
    /// Unset: the peer's address, whatever the request says.
    #[arg(long, env = "LEGATO_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Memory for cached segments, in megabytes (0 turns the cache off).
    #[arg(long, env = "LEGATO_CACHE_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub cache_mb: u64,
    /// File of API keys, one per line; writes then need `Authorization: Bearer <key>`.
    #[arg(long, env = "LEGATO_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Require an API key for reads too.
    #[arg(long, env = "LEGATO_PRIVATE", value_parser = clap::builder::BoolishValueParser::new())]
    pub private: bool,
    /// File holding the secret that signs playback URLs; streams then need `?exp=&sig=`.
    #[arg(long, env = "LEGATO_STREAM_SIGNING_KEY_FILE")]
    pub stream_signing_key_file: Option<PathBuf>,
    /// How long a signed playback URL stays valid, in seconds.
    #[arg(long, env = "LEGATO_SIGNED_URL_SECONDS", default_value_t = 6 * 3600,
          value_parser = clap::value_parser!(u64).range(10..=31_536_000))]
    pub signed_url_seconds: u64,
    /// How players get segments kept in an object store (--blobs): `proxy` (this process
    /// reads and answers them), `redirect` (302 to a presigned URL) or `cdn` (playlists name
    /// them under --segment-base-url).
    #[arg(long, env = "LEGATO_SEGMENTS", default_value = "proxy", value_enum)]
    pub segments: SegmentMode,
    /// In `cdn` mode, the URL of the CDN in front of the bucket, at the bucket's root:
    /// a segment is `<base>/<prefix><track id>/<name>`.
    #[arg(long, env = "LEGATO_SEGMENT_BASE_URL")]
    pub segment_base_url: Option<String>,
    /// In `redirect` mode, how long a presigned URL lasts, in seconds.
    #[arg(long, env = "LEGATO_SEGMENT_REDIRECT_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..=604_800))]
    pub segment_redirect_seconds: u64,
    /// Uploads processed at once; more are answered 429 (default: the number of cores).
    #[arg(long, env = "LEGATO_MAX_CONCURRENT_INGESTS",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_concurrent_ingests: Option<u64>,
    /// Bitrates (kbit/s) of the MP3 renditions of each track, e.g. `64,128,192`; `none` keeps
    /// only the uploaded MP3 (other formats then get one 192k rendition).
    #[arg(long, env = "LEGATO_LADDER", default_value = "64,128,192", value_parser = parse_ladder)]
    pub ladder: Ladder,
    /// Bitrates (kbit/s) of the AAC-LC renditions (fragmented MP4) of each track, from
    /// 32, 48, 64, 96, 128, 192, 256; `none` makes none. A lossy upload gets none above its
    /// own bitrate but the lowest.
    #[arg(long, env = "LEGATO_AAC_LADDER", default_value = "64,128,256", value_parser = parse_aac_ladder)]
    pub aac_ladder: Ladder,
    /// Whether FLAC, WAV and AIFF uploads get a lossless FLAC rendition (fragmented MP4).
    #[arg(long, env = "LEGATO_LOSSLESS", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub lossless: bool,
    /// Processing that lasts longer than this answers 202 and goes on in the background.
    #[arg(long, env = "LEGATO_SYNC_INGEST_SECONDS", default_value_t = 5.0,
          value_parser = parse_sync_seconds)]
    pub sync_ingest_seconds: f64,
    /// Ingest jobs this process works on at once.
    #[arg(long, env = "LEGATO_INGEST_WORKERS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub ingest_workers: u64,
    /// Jobs waiting in the store beyond which uploads are answered 429 with Retry-After.
    #[arg(long, env = "LEGATO_MAX_QUEUED_JOBS", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_queued_jobs: u64,
    /// Seconds a job's claim lasts unless renewed; a dead process's job is taken over after it.
    #[arg(long, env = "LEGATO_JOB_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub job_lease_seconds: u64,
    /// Claims of one job before it is given up (a crash counts, a shutdown does not).
    #[arg(long, env = "LEGATO_JOB_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub job_max_attempts: u32,
    /// Seconds a stopping process may finish its current job; 0 releases it at once.
    #[arg(long, env = "LEGATO_JOB_SHUTDOWN_GRACE_SECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub job_shutdown_grace_seconds: u64,
    /// Seconds the renditions a reprocessing replaced are kept beyond the track's duration
    /// (players that loaded the old playlists finish on them), then removed.
    #[arg(long, env = "LEGATO_RETIRE_GRACE_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub retire_grace_seconds: u64,
    /// Seconds an upload may send nothing before it is dropped (408).
    #[arg(long, env = "LEGATO_UPLOAD_IDLE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_idle_seconds: u64,
    /// Megabytes of upload bodies received at once, across all uploads; an upload that does
    /// not fit is answered 429 before its body is read.
    #[arg(long, env = "LEGATO_UPLOAD_BUDGET_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub upload_budget_mb: u64,
    /// Slowest average an upload may keep (KiB/s) once its first idle period has passed; a
    /// slower one is dropped (408). 0 turns the check off.
    #[arg(long, env = "LEGATO_UPLOAD_MIN_KIB_PER_SECOND", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub upload_min_kib_per_second: u64,
    /// Longest time an upload body may take to arrive, in seconds (408 after).
    #[arg(long, env = "LEGATO_UPLOAD_MAX_SECONDS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub upload_max_seconds: u64,
    /// Free disk (MB) kept in the data folder and the temporary folder: an upload that would
    /// leave less is refused (507) before its body is read.
    #[arg(long, env = "LEGATO_MIN_FREE_DISK_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub min_free_disk_mb: u64,
    /// Playlists one Subsonic user may own (admins too); a new one beyond is refused.
    #[arg(long, env = "LEGATO_MAX_PLAYLISTS_PER_USER", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_playlists_per_user: u64,
    /// Songs one playlist may hold (repeats counted); a change that would go beyond is refused.
    #[arg(long, env = "LEGATO_MAX_PLAYLIST_ENTRIES", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_playlist_entries: u64,
    /// KiB of parameters (query and form body together) of a Subsonic request that stores
    /// user state (createPlaylist, updatePlaylist, star, setRating, scrobble, …).
    #[arg(long, env = "LEGATO_MAX_STATE_REQUEST_KB", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(4..=65_536))]
    pub max_state_request_kb: u64,
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

/// Limits on connections, whatever their requests.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Seconds a client has to send a request's headers, counted from when the connection
    /// is ready for one; also how long an idle keep-alive connection is kept.
    #[arg(long, env = "LEGATO_HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_seconds: u64,
    /// Seconds without a byte moving on a connection, either way, before it is closed.
    #[arg(long, env = "LEGATO_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_seconds: u64,
    /// Connections open at once; at the cap a new one replaces the connection idle longest
    /// (a second or more), or is answered 503 and closed when all are busy (default: 4096,
    /// or less when the limit on open files is lower).
    #[arg(long, env = "LEGATO_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Connections one client address may hold at once; more from it are answered 503 while
    /// other addresses are served (default: an eighth of --max-connections, at least 16). The
    /// --trusted-proxies are exempt.
    #[arg(long, env = "LEGATO_MAX_CONNECTIONS_PER_ADDRESS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_address: Option<u64>,
}

impl ConnectionArgs {
    /// The limits, for a server whose synchronous ingests wait up to `sync_ingest` (a client
    /// waiting for one sees no byte move meanwhile, so the idle timeout outlasts that wait, or
    /// its answer would be cut off), behind `proxies` (exempt from the per-address share).
    pub fn limits(
        &self,
        sync_ingest: std::time::Duration,
        proxies: &[ipnet::IpNet],
    ) -> legato_http::ConnectionLimits {
        let idle = std::time::Duration::from_secs(self.idle_timeout_seconds);
        let max_connections = self
            .max_connections
            .map_or_else(legato_http::connections::default_max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
        legato_http::ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: idle.max(sync_ingest + std::time::Duration::from_secs(10)),
            max_connections,
            max_per_address: self.max_connections_per_address.map_or_else(
                || legato_http::connections::default_max_per_address(max_connections),
                |n| usize::try_from(n).unwrap_or(usize::MAX),
            ),
            shared_addresses: proxies.to_vec(),
        }
    }
}

/// A CIDR range (`10.0.0.0/8`) or one address (`127.0.0.1`, `::1`).
fn parse_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!(
                "'{}' is not an address or a CIDR range such as 10.0.0.0/8",
                value.escape_debug()
            )
        })
}

/// `*`, or a comma-separated list of `scheme://host[:port]` origins.
fn parse_cors_origins(value: &str) -> Result<CorsOrigins, String> {
    if value.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for part in value.split(',') {
        let origin = part.trim();
        if origin.is_empty() {
            continue;
        }
        if !is_origin(origin) {
            return Err(format!(
                "'{}' is not an origin: write `*` or origins such as https://music.example \
                 or http://localhost:3000, separated by commas",
                origin.escape_debug()
            ));
        }
        origins.push(origin.trim_end_matches('/').to_ascii_lowercase());
    }
    if origins.is_empty() {
        return Err("give `*` or at least one origin".into());
    }
    Ok(CorsOrigins::List(origins))
}

/// `http(s)://host[:port]`, with no path, query, credentials or stray characters.
fn is_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            || (host.starts_with('[')
                && host.ends_with(']')
                && host[1..host.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':')));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}

fn parse_sync_seconds(value: &str) -> Result<f64, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    if seconds.is_finite() && (0.0..=3600.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("'{value}' is not from 0 to 3600 seconds"))
    }
}

#[derive(Debug, Clone)]
pub struct Ladder(pub Vec<u32>);

/// Bitrates separated by commas (`64,128,192`, `64k`), each once, or `none`. An empty value
/// and a rung named twice are refused: both are mistakes (an unset variable, a typo), and
/// taking them silently would change which renditions every upload gets.
fn parse_ladder(value: &str) -> Result<Ladder, String> {
    match value.trim() {
        "none" => return Ok(Ladder(Vec::new())),
        "" => return Err("empty: give bitrates such as 64,128,192, or none".into()),
        _ => {}
    }
    let mut rungs = value
        .split(',')
        .map(|part| {
            let part = part.trim().trim_end_matches(['k', 'K']);
            part.parse::<u32>()
                .ok()
                .filter(|kbps| (8..=320).contains(kbps))
                .ok_or_else(|| format!("'{part}' is not a bitrate from 8 to 320 kbit/s"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rungs.sort_unstable();
    if let Some(twice) = rungs.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("{} kbit/s is named twice", twice[0]));
    }
    Ok(Ladder(rungs))
}

fn parse_aac_ladder(value: &str) -> Result<Ladder, String> {
    let ladder = parse_ladder(value)?;
    match ladder
        .0
        .iter()
        .find(|kbps| !legato_transcode::AAC_BITRATES.contains(kbps))
    {
        Some(bad) => Err(format!(
            "{bad} kbit/s is not an AAC-LC rung; use some of {:?}",
            legato_transcode::AAC_BITRATES
        )),
        None => Ok(ladder),
    }
}

fn parse_segment_seconds(value: &str) -> Result<f64, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    if seconds.is_finite() && (1.0..=60.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err("segments must last from 1 to 60 seconds".into())
    }
}

impl HttpArgs {
    /// The HTTP settings; `default_key_file` is read when no key file is given and it exists
    /// (the OpenFaaS secret).
    pub fn config(
        &self,
        default_key_file: Option<&Path>,
        default_signing_key_file: Option<&Path>,
    ) -> anyhow::Result<HttpConfig> {
        let key_file = match (&self.api_key_file, default_key_file) {
            (Some(file), _) => Some(file.as_path()),
            (None, Some(file)) if file.exists() => Some(file),
            _ => None,
        };
        let api_keys = match key_file {
            Some(file) => {
                let keys = ApiKeys::from_file(file)
                    .with_context(|| format!("cannot read the API keys in {}", file.display()))?;
                anyhow::ensure!(
                    !keys.is_empty(),
                    "the API key file {} holds no key",
                    file.display()
                );
                keys
            }
            None => ApiKeys::default(),
        };
        anyhow::ensure!(
            !(self.private && api_keys.is_empty()),
            "--private needs API keys: give --api-key-file"
        );
        let signing_key_file = match (&self.stream_signing_key_file, default_signing_key_file) {
            (Some(file), _) => Some(file.as_path()),
            (None, Some(file)) if file.exists() => Some(file),
            _ => None,
        };
        let url_signer = match signing_key_file {
            Some(file) => {
                let key = std::fs::read(file).with_context(|| {
                    format!("cannot read the stream signing key in {}", file.display())
                })?;
                let key = key.trim_ascii().to_vec();
                anyhow::ensure!(
                    key.len() >= 16,
                    "the stream signing key in {} is shorter than 16 bytes",
                    file.display()
                );
                Some(UrlSigner::new(
                    key,
                    std::time::Duration::from_secs(self.signed_url_seconds),
                ))
            }
            None => None,
        };
        let segment_delivery = match (self.segments, &self.segment_base_url) {
            (SegmentMode::Proxy, _) => SegmentDelivery::Proxy,
            (SegmentMode::Redirect, _) => SegmentDelivery::Redirect {
                expires: std::time::Duration::from_secs(self.segment_redirect_seconds),
            },
            (SegmentMode::Cdn, Some(base))
                if base.starts_with("https://") || base.starts_with("http://") =>
            {
                SegmentDelivery::Cdn {
                    base_url: base.trim_end_matches('/').to_owned(),
                }
            }
            (SegmentMode::Cdn, _) => anyhow::bail!(
                "--segments cdn needs --segment-base-url (LEGATO_SEGMENT_BASE_URL), the http(s) \
                 URL of the CDN in front of the bucket"
            ),
        };
        let defaults = HttpConfig::default();
        Ok(HttpConfig {
            segment_delivery,
            url_signer,
            max_concurrent_ingests: self
                .max_concurrent_ingests
                .map_or(defaults.max_concurrent_ingests, |n| n as usize),
            upload_idle_timeout: std::time::Duration::from_secs(self.upload_idle_seconds),
            ladder_kbps: self.ladder.0.clone(),
            aac_ladder_kbps: self.aac_ladder.0.clone(),
            lossless: self.lossless,
            // Validated by the flag's parser: finite, 0 to 3600.
            sync_ingest_timeout: std::time::Duration::try_from_secs_f64(self.sync_ingest_seconds)
                .unwrap_or(defaults.sync_ingest_timeout),
            segment_seconds: self.segment_seconds,
            max_upload_bytes: self.max_upload_mb * MB,
            cors_origins: self.cors_origin.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            cache_bytes: self.cache_mb * MB,
            receive: ReceiveLimits {
                bytes_in_flight: self.upload_budget_mb * MB,
                min_bytes_per_second: self.upload_min_kib_per_second * 1024,
                max_duration: std::time::Duration::from_secs(self.upload_max_seconds),
                min_free_disk_bytes: self.min_free_disk_mb * MB,
                data_dir: None,
                ..ReceiveLimits::default()
            },
            api_keys,
            private: self.private,
            ingest_workers: usize::try_from(self.ingest_workers).unwrap_or(1),
            max_queued_jobs: self.max_queued_jobs,
            job_lease: std::time::Duration::from_secs(self.job_lease_seconds),
            job_max_attempts: self.job_max_attempts,
            job_shutdown_grace: std::time::Duration::from_secs(self.job_shutdown_grace_seconds),
            retire_grace: std::time::Duration::from_secs(self.retire_grace_seconds),
            quotas: UserQuotas {
                max_playlists_per_user: self.max_playlists_per_user,
                max_playlist_entries: usize::try_from(self.max_playlist_entries)
                    .unwrap_or(usize::MAX),
                max_state_request_bytes: self.max_state_request_kb * 1024,
            },
            ..defaults
        })
    }
}

/// `--segments`: see [`SegmentDelivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SegmentMode {
    Proxy,
    Redirect,
    Cdn,
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use legato_http::HttpConfig;
use legato_http::auth::ApiKeys;
use legato_http::signing::UrlSigner;

#[derive(Debug, Parser)]
#[command(
    name = "legato",
    version,
    about = "Serverless music streaming over HLS"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve both functions and the web player on one port (the all-in-one server).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(crate::client_cli::ClientCommand),
    /// Run one OpenFaaS function (`crud` or `streaming`) behind of-watchdog.
    Function(crate::function::FunctionArgs),
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
    /// Access-Control-Allow-Origin: `*` or one origin.
    #[arg(long, env = "LEGATO_CORS_ORIGIN", default_value = "*")]
    pub cors_origin: String,
    /// Memory for cached segments, in megabytes.
    #[arg(long, env = "LEGATO_CACHE_MB", default_value_t = 256)]
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
          value_parser = clap::value_parser!(u64).range(10..))]
    pub signed_url_seconds: u64,
    /// Uploads processed at once; more are answered 429 (default: the number of cores).
    #[arg(long, env = "LEGATO_MAX_CONCURRENT_INGESTS",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_concurrent_ingests: Option<u64>,
    /// Bitrates (kbit/s) of the MP3 renditions of each track, e.g. `64,128,192`; `none` keeps
    /// only the uploaded MP3 (other formats then get one 192k rendition).
    #[arg(long, env = "LEGATO_LADDER", default_value = "64,128,192", value_parser = parse_ladder)]
    pub ladder: Ladder,
    /// Processing that lasts longer than this answers 202 and goes on in the background.
    #[arg(long, env = "LEGATO_SYNC_INGEST_SECONDS", default_value_t = 5.0)]
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
    /// Seconds an upload may send nothing before it is dropped (408).
    #[arg(long, env = "LEGATO_UPLOAD_IDLE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_idle_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct Ladder(pub Vec<u32>);

fn parse_ladder(value: &str) -> Result<Ladder, String> {
    if matches!(value.trim(), "none" | "") {
        return Ok(Ladder(Vec::new()));
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
    rungs.dedup();
    Ok(Ladder(rungs))
}

fn parse_segment_seconds(value: &str) -> Result<f64, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    if (1.0..=60.0).contains(&seconds) {
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
        let defaults = HttpConfig::default();
        Ok(HttpConfig {
            url_signer,
            max_concurrent_ingests: self
                .max_concurrent_ingests
                .map_or(defaults.max_concurrent_ingests, |n| n as usize),
            upload_idle_timeout: std::time::Duration::from_secs(self.upload_idle_seconds),
            ladder_kbps: self.ladder.0.clone(),
            sync_ingest_timeout: std::time::Duration::from_secs_f64(
                self.sync_ingest_seconds.clamp(0.0, 3600.0),
            ),
            segment_seconds: self.segment_seconds,
            max_upload_bytes: self.max_upload_mb * 1024 * 1024,
            cors_origin: self.cors_origin.clone(),
            cache_bytes: self.cache_mb * 1024 * 1024,
            api_keys,
            private: self.private,
            ingest_workers: usize::try_from(self.ingest_workers).unwrap_or(1),
            max_queued_jobs: self.max_queued_jobs,
            job_lease: std::time::Duration::from_secs(self.job_lease_seconds),
            job_max_attempts: self.job_max_attempts,
            job_shutdown_grace: std::time::Duration::from_secs(self.job_shutdown_grace_seconds),
            ..defaults
        })
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => crate::serve::serve(args).await.map(|()| ExitCode::SUCCESS),
            Command::Client(cmd) => crate::client_cli::run(cmd).await,
            Command::Function(args) => crate::function::run(args).await.map(|()| ExitCode::SUCCESS),
        }
    }
}

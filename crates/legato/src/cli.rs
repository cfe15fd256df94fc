use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use legato_http::HttpConfig;

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
    pub fn config(&self) -> HttpConfig {
        HttpConfig {
            segment_seconds: self.segment_seconds,
            max_upload_bytes: self.max_upload_mb * 1024 * 1024,
            cors_origin: self.cors_origin.clone(),
            cache_bytes: self.cache_mb * 1024 * 1024,
            ..HttpConfig::default()
        }
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => crate::serve::serve(args).await.map(|()| ExitCode::SUCCESS),
        }
    }
}

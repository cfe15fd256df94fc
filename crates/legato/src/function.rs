//! `legato function crud|streaming`: one OpenFaaS function, served at the root for
//! of-watchdog in HTTP mode (the gateway strips `/function/<name>`).
//!
//! Configuration comes from the environment (stack.yml's `environment:`) and secrets from
//! files under the OpenFaaS secrets folder, never from environment variables. Start-up does
//! only what the first request cannot do without: read configuration, open the store
//! handle (MongoDB connects lazily), bind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use legato_http::AppState;

use crate::cli::{HttpArgs, StoreArgs};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FunctionName {
    /// Add, list, show, edit and delete tracks.
    Crud,
    /// Serve playlists and segments.
    Streaming,
}

/// Secret file names, as `faas-cli secret create` names them.
pub const STORE_URI_SECRET: &str = "legato-store-uri";
pub const STORE_PASSWORD_SECRET: &str = "legato-store-password";
pub const API_KEY_SECRET: &str = "legato-api-key";
pub const SIGNING_KEY_SECRET: &str = "legato-stream-signing-key";

#[derive(Debug, Args)]
pub struct FunctionArgs {
    /// Which function to run.
    #[arg(value_enum)]
    pub function: FunctionName,
    /// Address to listen on (of-watchdog's `upstream_url`).
    #[arg(long, env = "LEGATO_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Folder of the OpenFaaS secrets.
    #[arg(
        long,
        env = "LEGATO_SECRETS_DIR",
        default_value = "/var/openfaas/secrets"
    )]
    pub secrets_dir: PathBuf,
    /// Store URI when it holds no secret (e.g. `sqlite:/tmp/legato.sqlite3`); otherwise put
    /// it in the secret `legato-store-uri`.
    #[arg(long, env = "LEGATO_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// File holding the MongoDB password (default: the secret `legato-store-password`).
    #[arg(long, env = "LEGATO_STORE_PASSWORD_FILE")]
    pub store_password_file: Option<PathBuf>,
    /// Let the crud function accept writes without an API key (never on a public gateway).
    #[arg(long, env = "LEGATO_ALLOW_ANONYMOUS_WRITES", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_anonymous_writes: bool,
    #[command(flatten)]
    pub http: HttpArgs,
}

pub async fn run(args: FunctionArgs) -> anyhow::Result<()> {
    let secrets = &args.secrets_dir;
    let store_uri = match &args.store {
        Some(uri) => uri.clone(),
        None => read_secret(secrets, STORE_URI_SECRET)?.with_context(|| {
            format!(
                "no store configured: create the secret `{STORE_URI_SECRET}` \
                 (faas-cli secret create {STORE_URI_SECRET} --from-literal 'mongodb://…') \
                 or set LEGATO_STORE; looked in {}",
                secrets.display()
            )
        })?,
    };
    let password_file = args
        .store_password_file
        .clone()
        .or_else(|| Some(secrets.join(STORE_PASSWORD_SECRET)).filter(|p| p.exists()));
    let config = args.http.config(
        Some(&secrets.join(API_KEY_SECRET)),
        Some(&secrets.join(SIGNING_KEY_SECRET)),
    )?;
    if matches!(args.function, FunctionName::Crud)
        && config.api_keys.is_empty()
        && !args.allow_anonymous_writes
    {
        anyhow::bail!(
            "the crud function needs an API key for writes: create the secret `{API_KEY_SECRET}` \
             (one key per line) or set LEGATO_API_KEY_FILE; to accept anonymous writes anyway, \
             set LEGATO_ALLOW_ANONYMOUS_WRITES=true"
        );
    }

    let store = crate::store::open(&StoreArgs {
        data: PathBuf::from("/tmp/legato"),
        store: Some(store_uri),
        store_password_file: password_file,
    })
    .await?;
    let state = AppState::new(store, config);
    if matches!(args.function, FunctionName::Crud) {
        // Replicas share the store: only work older than any ingest can last is abandoned.
        legato_http::spawn_maintenance(&state, std::time::Duration::from_secs(3600));
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Every crud replica works on the shared job queue.
    let workers = matches!(args.function, FunctionName::Crud)
        .then(|| legato_http::jobs::spawn_workers(&state, stopping));
    let router = match args.function {
        FunctionName::Crud => legato_http::crud_router(state.clone()),
        FunctionName::Streaming => legato_http::streaming_router(state.clone()),
    };
    let router = legato_http::function_app(router, &state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        function = ?args.function,
        store = %state.store.describe(),
        "listening on {}",
        args.listen
    );
    let shutdown = async move {
        crate::serve::shutdown_signal().await;
        let _ = stop.send(true);
    };
    legato_http::serve(listener, router, shutdown)
        .await
        .context("the function stopped with an error")?;
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    Ok(())
}

/// The trimmed contents of a secret file, or `None` when there is no such secret.
fn read_secret(dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read the secret {}", path.display())),
    }
}

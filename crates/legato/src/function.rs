//! `legato function crud|streaming`: one OpenFaaS function, served at the root for
//! of-watchdog in HTTP mode (the gateway strips `/function/<name>`).
//!
//! Configuration comes from the environment (stack.yml's `environment:`) and secrets from
//! files under the OpenFaaS secrets folder, never from environment variables. Start-up does
//! only what the first request cannot do without: read configuration, open the store
//! handle (MongoDB connects lazily), bind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::settings::SettingResult;
use clap::{Args, ValueEnum};
use legato_http::AppState;

use crate::settings::{BlobsArgs, HttpArgs, StoreArgs};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FunctionName {
    /// Add, list, show, edit and delete tracks.
    Crud,
    /// Serve playlists and segments.
    Streaming,
    /// The OpenSubsonic API, under `/rest`, for Subsonic apps.
    Subsonic,
}

/// Secret file names, as `faas-cli secret create` names them.
pub const STORE_URI_SECRET: &str = "legato-store-uri";
pub const STORE_PASSWORD_SECRET: &str = "legato-store-password";
pub const API_KEY_SECRET: &str = "legato-api-key";
pub const SIGNING_KEY_SECRET: &str = "legato-stream-signing-key";
pub const SUBSONIC_KEY_SECRET: &str = "legato-subsonic-key";
pub const BLOBS_ACCESS_KEY_SECRET: &str = "legato-blobs-access-key";
pub const BLOBS_SECRET_KEY_SECRET: &str = "legato-blobs-secret-key";

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
    /// Seconds to keep serving after SIGTERM before finishing the requests in flight and
    /// exiting. of-watchdog forwards SIGTERM at once but keeps routing requests for its
    /// `healthcheck_interval`; the default is that interval (or the watchdog's own default,
    /// its `write_timeout`) plus one second, read from the environment the watchdog passes
    /// down, and 0 when neither is set.
    #[arg(long, env = "LEGATO_SHUTDOWN_DELAY_SECONDS")]
    pub shutdown_delay_seconds: Option<u64>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub blobs: BlobsArgs,
}

/// The object store's credentials default to the secrets `legato-blobs-access-key` and
/// `legato-blobs-secret-key` when both exist.
fn blobs_with_secrets(args: &BlobsArgs, secrets: &Path) -> BlobsArgs {
    let mut args = args.clone();
    let (access, secret) = (
        secrets.join(BLOBS_ACCESS_KEY_SECRET),
        secrets.join(BLOBS_SECRET_KEY_SECRET),
    );
    if args.blobs_access_key_file.is_none() && access.exists() && secret.exists() {
        args.blobs_access_key_file = Some(access);
        args.blobs_secret_key_file = Some(secret);
    }
    args
}

impl FunctionArgs {
    /// How long to keep serving after SIGTERM.
    pub fn shutdown_delay(&self) -> Duration {
        if let Some(seconds) = self.shutdown_delay_seconds {
            return Duration::from_secs(seconds);
        }
        let watchdog = ["healthcheck_interval", "write_timeout"]
            .iter()
            .find_map(|name| std::env::var(name).ok().and_then(|v| go_duration(&v)));
        // The margin covers a request the watchdog accepted just before it stopped routing.
        watchdog.map_or(Duration::ZERO, |interval| interval + Duration::from_secs(1))
    }
}

/// A duration as of-watchdog reads it: whole seconds (`5`) or Go's notation (`5s`, `1m30s`,
/// `500ms`, `1.5s`).
fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest.get(..number_end)?.parse().ok()?;
        rest = rest.get(number_end..)?;
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_end)? {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = rest.get(unit_end..)?;
        total += value * scale;
    }
    (!text.is_empty() && total.is_finite()).then(|| Duration::from_secs_f64(total))
}

pub async fn run(args: FunctionArgs) -> anyhow::Result<()> {
    let secrets = &args.secrets_dir;
    let store_uri = match &args.store {
        Some(uri) => uri.clone(),
        None => read_secret(secrets, STORE_URI_SECRET)
            .and_then(|uri| {
                uri.with_context(|| {
                    format!(
                        "no store configured: create the secret `{STORE_URI_SECRET}` \
                         (faas-cli secret create {STORE_URI_SECRET} --from-literal \
                         'mongodb://…') or set LEGATO_STORE; looked in {}",
                        secrets.display()
                    )
                })
            })
            .setting()?,
    };
    let password_file = args
        .store_password_file
        .clone()
        .or_else(|| Some(secrets.join(STORE_PASSWORD_SECRET)).filter(|p| p.exists()));
    let mut config = args
        .http
        .config(
            Some(&secrets.join(API_KEY_SECRET)),
            Some(&secrets.join(SIGNING_KEY_SECRET)),
        )
        .setting()?;
    if matches!(args.function, FunctionName::Subsonic) {
        // The secrets folder is read-only: the key is made once by the operator, and the
        // same file is given to `legato user` (--secret-key-file).
        let path = secrets.join(SUBSONIC_KEY_SECRET);
        if !path.exists() {
            return Err(anyhow::anyhow!(
                "the subsonic function needs the key that seals passwords: create the secret \
                 `{SUBSONIC_KEY_SECRET}` (faas-cli secret create {SUBSONIC_KEY_SECRET} \
                 --from-literal \"$(openssl rand -hex 32)\") and add users with \
                 `legato user add NAME --store URI --secret-key-file FILE-WITH-THAT-KEY`; looked in {}",
                secrets.display()
            ))
            .setting();
        }
        config.subsonic_secret = Some(
            legato_http::subsonic::SecretKey::load_or_create(&path)
                .with_context(|| format!("cannot read the secret {}", path.display()))
                .setting()?,
        );
    }
    if matches!(args.function, FunctionName::Crud)
        && config.api_keys.is_empty()
        && !args.allow_anonymous_writes
    {
        return Err(anyhow::anyhow!(
            "the crud function needs an API key for writes: create the secret `{API_KEY_SECRET}` \
             (one key per line) or set LEGATO_API_KEY_FILE; to accept anonymous writes anyway, \
             set LEGATO_ALLOW_ANONYMOUS_WRITES=true"
        ))
        .setting();
    }

    let store = crate::store::open(&StoreArgs {
        data: PathBuf::from("/tmp/legato"),
        store: Some(store_uri),
        store_password_file: password_file,
        secret_key_file: None,
        blobs: blobs_with_secrets(&args.blobs, secrets),
    })
    .await?;
    let limits = args
        .http
        .connections
        .limits(config.sync_ingest_timeout, &config.trusted_proxies);
    let state = AppState::new(store, config);
    if matches!(args.function, FunctionName::Crud) {
        // Replicas share the store: only work older than any ingest can last is abandoned.
        legato_http::spawn_maintenance(&state, std::time::Duration::from_secs(3600));
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Every crud replica works on the shared job queue.
    let workers =
        matches!(args.function, FunctionName::Crud).then(|| state.ingest.spawn_workers(stopping));
    let router = match args.function {
        FunctionName::Crud => legato_http::crud_router(state.clone()),
        FunctionName::Streaming => legato_http::streaming_router(state.clone()),
        FunctionName::Subsonic => axum::Router::new()
            .nest(
                "/rest",
                legato_http::subsonic_router(state.clone())
                    .context("the subsonic function has no secret key")?,
            )
            .route(
                "/healthz",
                axum::routing::get(legato_http::healthz).with_state(state.clone()),
            ),
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
    let delay = args.shutdown_delay();
    let shutdown = async move {
        crate::serve::shutdown_signal().await;
        // Workers stop claiming at once and release (or finish) their jobs, so another
        // replica takes them while this one drains.
        let _ = stop.send(true);
        if !delay.is_zero() {
            // The watchdog still routes requests here until its health check has turned:
            // stopping now would turn them into 500s.
            tracing::info!(
                "still serving for {} s while the watchdog stops routing",
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
        tracing::info!("no new requests: finishing those in flight");
    };
    // The same connection hygiene as `legato serve` (header and idle timeouts, a cap on
    // connections): the flags are accepted here, so they act here.
    legato_http::serve_with_limits(listener, router, limits, shutdown)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_credentials_come_from_the_openfaas_secrets_when_both_exist() {
        let secrets = tempfile::tempdir().unwrap();
        let given = BlobsArgs {
            blobs: Some("s3://media?endpoint=http://s3:8333".into()),
            ..BlobsArgs::default()
        };
        std::fs::write(secrets.path().join(BLOBS_ACCESS_KEY_SECRET), "AKID").unwrap();
        let one = blobs_with_secrets(&given, secrets.path());
        assert_eq!(
            one.blobs_access_key_file, None,
            "half a credential is not used"
        );
        std::fs::write(secrets.path().join(BLOBS_SECRET_KEY_SECRET), "secret").unwrap();
        let both = blobs_with_secrets(&given, secrets.path());
        assert_eq!(
            both.blobs_access_key_file,
            Some(secrets.path().join(BLOBS_ACCESS_KEY_SECRET))
        );
        assert_eq!(
            both.blobs_secret_key_file,
            Some(secrets.path().join(BLOBS_SECRET_KEY_SECRET))
        );
        // Files named by the environment win.
        let named = BlobsArgs {
            blobs_access_key_file: Some("/run/a".into()),
            blobs_secret_key_file: Some("/run/s".into()),
            ..given
        };
        let kept = blobs_with_secrets(&named, secrets.path());
        assert_eq!(kept.blobs_access_key_file, Some("/run/a".into()));
    }

    #[test]
    fn go_durations_read_as_the_watchdog_reads_them() {
        assert_eq!(go_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration(""), None);
        assert_eq!(go_duration("5 seconds"), None);
        assert_eq!(go_duration("s"), None);
    }
}

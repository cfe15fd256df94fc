use anyhow::Context;

use crate::settings::SettingResult;
use legato_http::AppState;

use crate::settings::ServeArgs;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = crate::store::open(&args.store).await?;
    let mut config = args.http.config(None, None).setting()?;
    // Free space is checked where the SQLite store writes (a MongoDB store has its own disk).
    config.receive.data_dir = Some(args.store.data.clone());
    config.subsonic_secret = Some(args.store.secret_key()?);
    let limits = args
        .http
        .connections
        .limits(config.sync_ingest_timeout, &config.trusted_proxies);
    let state = AppState::new(store, config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(
        store = %state.store.describe(),
        "listening on http://{address}/ (web player at /, functions under /function/, Subsonic API at /rest)"
    );
    // Tracks of a version without durable jobs that a stop left processing are over; those
    // with a job are taken up again by the workers.
    legato_http::spawn_maintenance(&state, std::time::Duration::ZERO);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let workers = state.ingest.spawn_workers(stopping);
    let router = legato_http::app(state);
    let shutdown = async move {
        shutdown_signal().await;
        // Workers stop claiming and release (or finish) their jobs while requests drain.
        let _ = stop.send(true);
    };
    legato_http::serve_with_limits(listener, router, limits, shutdown)
        .await
        .context("the server stopped with an error")?;
    let _ = workers.await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what OpenFaaS and systemd send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

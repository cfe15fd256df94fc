//! Legato's HTTP surface, as a library.
//!
//! Each OpenFaaS function is one router ([`crud_router`], [`streaming_router`]) that expects to
//! be mounted at the root, as the gateway strips `/function/<name>`; [`app`] nests both under
//! the gateway's paths, with the web player at `/`, for the all-in-one `legato serve`. Every
//! failure is an [`ApiError`], turned into a status and a JSON body in one place
//! ([`error`]). [`serve`] takes a bound listener so tests can use port 0.

pub mod api_keys;
pub mod auth;
pub mod config;
pub mod connections;
pub mod crud;
pub mod error;
pub mod finish_body;
mod logging;
pub mod metrics;
pub mod openapi;
pub mod original;
pub mod params;
pub mod ranges;
pub mod schemas;
pub mod secret_key;
mod security;
pub mod signing;
pub mod state;
pub mod streaming;
pub mod subsonic;
mod ui;
pub mod upload;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{CorsOrigins, HttpConfig, ReceiveLimits, SegmentDelivery, UserQuotas};
pub use connections::{ConnectionLimits, serve_with_limits};
pub use error::ApiError;
pub use state::AppState;

/// The crud function's routes, relative to the function's root.
pub fn crud_router(state: AppState) -> Router {
    Router::new()
        .route("/", get(crud::list).post(crud::create))
        .route(
            "/{id}",
            get(crud::show).patch(crud::update).delete(crud::delete),
        )
        .route("/{id}/file", get(crud::download))
        .route("/{id}/reprocess", post(crud::reprocess))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        // Probes, scrapers and the API description need no key: added after the key check.
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::serve))
        .route_layer(axum::middleware::from_fn(metrics::record))
        // Uploads enforce their own, larger limit while streaming to disk.
        .layer(DefaultBodyLimit::disable())
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The streaming function's routes, relative to the function's root.
pub fn streaming_router(state: AppState) -> Router {
    Router::new()
        .route("/{id}/{name}", get(streaming::chunk))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::serve))
        .route_layer(axum::middleware::from_fn(metrics::record))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The OpenSubsonic API's routes (the `subsonic` function), relative to `/rest`; `None`
/// without a secret key to seal passwords with.
pub fn subsonic_router(state: AppState) -> Option<Router> {
    let secret = state.config.subsonic_secret.clone()?;
    Some(subsonic::router(state, secret).route_layer(axum::middleware::from_fn(metrics::record)))
}

/// Both functions under the gateway's paths, the OpenSubsonic API under `/rest` (when
/// configured) and the web player at `/`: `legato serve`.
pub fn app(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let rest = subsonic_router(state.clone());
    let router = match rest {
        Some(rest) => Router::new().nest("/rest", rest),
        None => Router::new(),
    };
    router
        .route("/", get(ui::index))
        .route("/healthz", get(healthz).with_state(state.clone()))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::serve))
        .nest("/function/crud", crud_router(state.clone()))
        .nest("/function/streaming", streaming_router(state))
        .route("/{*path}", get(ui::file))
        .fallback(no_route)
        .layer(cors)
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(logging::log_request))
}

/// An error answered to a request that carried a body may leave that body unread, and then
/// the connection cannot carry another request: say so (`Connection: close`), or a client
/// that pools connections sends its next request into a closing socket.
async fn close_after_refused_body(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// One function's router at the root, as of-watchdog proxies to it. Every answer waits
/// until the request body has been read ([`finish_body`]): the watchdog turns an earlier one
/// into a 500.
pub fn function_app(router: Router, state: &AppState) -> Router {
    let idle = state.config.upload_idle_timeout;
    router
        .fallback(no_route)
        .layer(axum::middleware::from_fn(move |request, next| {
            finish_body::finish_body(idle, request, next)
        }))
        .layer(cors_layer(&state.config.cors_origins))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(logging::log_request))
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests;
/// with the default [`ConnectionLimits`] (see [`serve_with_limits`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, ConnectionLimits::default(), shutdown).await
}

/// Fails tracks left `processing` by a stopped process: at once for those older than
/// `grace`, then every ten minutes, in the background (start-up does not wait for it).
pub fn spawn_maintenance(state: &AppState, grace: Duration) {
    let store = state.store.clone();
    tokio::spawn(async move {
        loop {
            let before =
                legato_ingest::now_millis() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            match store.fail_stale_processing(before).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(tracks = n, "marked failed: processing was interrupted"),
                Err(e) => tracing::warn!(error = %e, "could not check for interrupted processing"),
            }
            if grace.is_zero() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
}

/// Liveness and readiness: answers 200 when the store answers, saying whether the disk has
/// room for uploads (a full disk still serves reads and deletes, so it is not a failure).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "the store answers", body = schemas::Health),
        (status = 503, description = "the store cannot be reached", body = schemas::ErrorBody),
    ))]
pub async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    tokio::time::timeout(Duration::from_secs(3), state.store.ping())
        .await
        .map_err(|_| {
            ApiError::Store(legato_store::StoreError::Unavailable(
                "the store did not answer within 3 s".into(),
            ))
        })??;
    let receive = &state.config.receive;
    let free = receive
        .data_dir
        .as_deref()
        .and_then(upload::free_disk_bytes);
    let full = free.is_some_and(|free| free < receive.min_free_disk_bytes.max(1));
    let mut body = serde_json::json!({
        "status": if full { "storage-full" } else { "ok" },
        // What a client checks a file against before reading it (`legato add`).
        "max_upload_bytes": state.config.max_upload_bytes,
    });
    if let Some(free) = free {
        body["free_disk_mb"] = (free / (1024 * 1024)).into();
    }
    if full {
        body["message"] = "the disk is full: uploads are refused (507) until space is freed; \
            reads and deletes work"
            .into();
    }
    Ok(axum::Json(body))
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        // Validated at start-up; an origin that is not a header value cannot be listed.
        CorsOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        }
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::RANGE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("prefer"),
            HeaderName::from_static(subsonic::CSRF_HEADER),
        ])
        .expose_headers([
            header::LOCATION,
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ETAG,
            HeaderName::from_static("x-total-count"),
        ])
        .max_age(Duration::from_secs(3600))
}

async fn no_route(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::NoRoute(uri.path().chars().take(200).collect())
}

async fn method_not_allowed(method: Method) -> impl IntoResponse {
    ApiError::MethodNotAllowed(method.to_string())
}

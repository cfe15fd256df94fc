//! Prometheus metrics: requests by route and status, durations, bytes served, ingest
//! durations, cache hits and misses, store errors. Exposed at `/metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "legato_http_requests_total";
pub const REQUEST_SECONDS: &str = "legato_http_request_duration_seconds";
pub const RESPONSE_BYTES: &str = "legato_http_response_bytes_total";
pub const INGEST_SECONDS: &str = legato_ingest::INGEST_SECONDS;
pub const CACHE_HITS: &str = "legato_segment_cache_hits_total";
pub const CACHE_MISSES: &str = "legato_segment_cache_misses_total";
pub const STORE_ERRORS: &str = "legato_store_errors_total";
pub const CONNECTIONS_REFUSED: &str = "legato_http_connections_refused_total";
/// Connections closed, at the connection limit, to make room for a new one.
pub const CONNECTIONS_EVICTED: &str = "legato_http_connections_evicted_total";

/// The process-wide recorder; installed on first use (a process has one).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(REQUEST_SECONDS.to_owned()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(INGEST_SECONDS.to_owned()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        300.0,
                    ],
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        // Fails only when another recorder is already installed (a host application's);
        // then our handle renders nothing, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub async fn render() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// Records one request; the route label is the matched route pattern, so ids do not make
/// the label set grow without bound.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("route", route.clone()),
        ("method", method),
        ("status", status),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    if let Some(bytes) = response_bytes(&response) {
        metrics::counter!(RESPONSE_BYTES, "route" => route).increment(bytes);
    }
    response
}

/// Bytes of a response body: its `Content-Length`, or the exact size the body knows.
pub fn response_bytes(response: &Response) -> Option<u64> {
    use axum::body::HttpBody;
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| response.body().size_hint().exact())
}

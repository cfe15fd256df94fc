//! One log line per request: method, path, status, bytes, duration and the OpenFaaS call id.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let call_id = request
        .headers()
        .get("x-call-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let bytes = crate::metrics::response_bytes(&response);
    tracing::info!(
        target: "legato::request",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        bytes,
        ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        call_id = call_id.as_deref(),
        "request"
    );
    response
}

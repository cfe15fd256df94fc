//! Reading a request body to its end before answering, for the functions behind of-watchdog.
//!
//! of-watchdog forwards a body without its `Content-Length` (the function sees it chunked)
//! and cannot pass on an answer given before the body is read: when the function stops
//! reading, the watchdog's copy of the body meets a broken pipe and it answers 500 with an
//! empty body instead of the function's 413. So behind the watchdog every answer waits until
//! the body has been read: whatever a handler leaves unread is read here and dropped.
//! The watchdog's `read_timeout` bounds how long a client may keep sending; the idle
//! timeout and [`MAX_FINISH`] bound it when the function is reached directly.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::Mutex;

/// Longest time spent reading the rest of a body after its answer is ready.
pub const MAX_FINISH: Duration = Duration::from_secs(600);

/// Middleware: passes the request on, then reads what the handler left of its body, then
/// answers. `idle` is the longest pause in the body tolerated while finishing it.
pub async fn finish_body(idle: Duration, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // The handler reads through a shared handle; the stream itself stays here, so whatever
    // the handler drops unread can still be read afterwards.
    let shared = Arc::new(Mutex::new(body.into_data_stream()));
    let reader = futures_util::stream::unfold(shared.clone(), |shared| async move {
        let item = shared.lock().await.next().await;
        item.map(|item| (item, shared))
    });
    let request = Request::from_parts(parts, Body::from_stream(reader));
    let response = next.run(request).await;
    let mut rest = shared.lock().await;
    let drained = read_to_end(&mut rest, idle).await;
    if drained > 0 {
        tracing::debug!(
            bytes = drained,
            status = response.status().as_u16(),
            "read the unread rest of the body before answering"
        );
    }
    response
}

/// Reads and drops a body until its end, an error, `idle` of silence or [`MAX_FINISH`].
async fn read_to_end(stream: &mut BodyDataStream, idle: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + MAX_FINISH;
    let mut drained = 0u64;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => drained += chunk.len() as u64,
            _ => break,
        }
    }
    drained
}

//! Accepting connections with limits of our own, so that clients who open sockets and send
//! nothing (or one byte now and then) cannot hold the server.
//!
//! `axum::serve` has no timeouts and no connection limit; this loop drives hyper directly:
//! - the header read timeout (hyper's own) runs from the moment a connection is ready for a
//!   request, so it also bounds how long an idle keep-alive connection waits for the next one;
//! - a connection on which no byte moves either way for `idle_timeout` is asked to close
//!   (requests in flight finish), then dropped after another `idle_timeout`;
//! - at `max_connections`, a new connection takes the place of the connection that has
//!   waited longest on its client (no byte either way for at least [`EVICTABLE_AFTER`]: a
//!   socket opened and left silent, a body trickled a byte at a time, a keep-alive between
//!   requests), which is closed; when every connection is busy, the new one gets a short
//!   `503` and is closed at once, rather than waiting in the kernel's backlog or exhausting
//!   file descriptors. Holding slots then costs an attacker a steady stream of new
//!   connections, and a listener whose request is on its way always gets in;
//! - beyond `max_per_address` connections from one client address (proxies every client
//!   comes through excepted), that address's new connections get the same `503`, so one
//!   client holding sockets leaves the rest of the cap to the others.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// Limits on connections, whatever their requests.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time allowed to send a request's headers, counted from when the connection is ready
    /// for a request (its opening, or the end of the previous response).
    pub header_timeout: Duration,
    /// A connection on which no byte moves for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; at the cap a new one replaces the connection idle longest
    /// (see [`EVICTABLE_AFTER`]), or is answered 503 and closed when all are busy.
    pub max_connections: usize,
    /// Connections one client address may hold at once (its share of `max_connections`);
    /// more from it are answered 503 and closed, while other addresses are served.
    pub max_per_address: usize,
    /// Addresses exempt from the share: proxies every client comes through (the watchdog on
    /// loopback, the gateway), the `--trusted-proxies`.
    pub shared_addresses: Vec<ipnet::IpNet>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_per_address: default_max_per_address(default_max_connections()),
            shared_addresses: Vec::new(),
        }
    }
}

/// 4096, or less when the process may not open that many files (each connection is one,
/// and the store, spool and ffmpeg need some too).
pub fn default_max_connections() -> usize {
    let wanted = 4096;
    match open_files_limit() {
        Some(limit) => wanted.min(limit.saturating_sub(256).max(16)),
        None => wanted,
    }
}

/// An eighth of the connection cap (at least 16): a household behind one address opens a
/// few connections per app; a client holding sockets open leaves seven eighths to the others.
pub fn default_max_per_address(max_connections: usize) -> usize {
    (max_connections / 8).max(16).min(max_connections)
}

/// A connection on which nothing moved for this long may be closed to make room for a new
/// one when the server is at its connection limit. A response being written or a request
/// being sent at any useful rate moves bytes far more often.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// The connections being served, for the limit and for choosing which one makes room.
struct Open {
    max: usize,
    next_id: AtomicU64,
    held: std::sync::Mutex<std::collections::HashMap<u64, Held>>,
}

/// One connection in [`Open`].
struct Held {
    activity: Arc<Activity>,
    /// Requests received whole whose answer the server is still working on: the
    /// connection is waiting on us, not on its client, however long nothing moves.
    awaiting_server: Arc<AtomicU64>,
    evict: Arc<tokio::sync::Notify>,
}

/// A connection's place in [`Open`]; given back when dropped (unless it was evicted, which
/// gave it back already).
struct OpenSlot {
    open: Arc<Open>,
    id: u64,
    activity: Arc<Activity>,
    awaiting_server: Arc<AtomicU64>,
    evict: Arc<tokio::sync::Notify>,
}

impl Open {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            next_id: AtomicU64::new(0),
            held: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Held>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection: a free one, or the place of the connection that has
    /// waited longest on its client (told to close). `None` when every connection is busy.
    fn take(self: &Arc<Self>) -> Option<OpenSlot> {
        let mut held = self.lock();
        if held.len() >= self.max {
            let (&longest, waited) = held
                .iter()
                .filter(|(_, h)| h.awaiting_server.load(Ordering::Relaxed) == 0)
                .map(|(id, h)| (id, h.activity.idle_for()))
                .max_by_key(|(_, waited)| *waited)?;
            if waited < EVICTABLE_AFTER {
                return None;
            }
            if let Some(evicted) = held.remove(&longest) {
                metrics::counter!(crate::metrics::CONNECTIONS_EVICTED).increment(1);
                evicted.evict.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let awaiting_server = Arc::new(AtomicU64::new(0));
        let evict = Arc::new(tokio::sync::Notify::new());
        held.insert(
            id,
            Held {
                activity: activity.clone(),
                awaiting_server: awaiting_server.clone(),
                evict: evict.clone(),
            },
        );
        Some(OpenSlot {
            open: self.clone(),
            id,
            activity,
            awaiting_server,
            evict,
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

/// Connections held per client address.
#[derive(Default)]
struct PerAddress {
    held: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    address: std::net::IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, address: std::net::IpAddr, max: usize) -> Option<AddressSlot> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(address).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self
            .table
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.address);
            }
        }
    }
}

/// The soft limit on open files, from `/proc/self/limits` (no libc call needed).
pub fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The answer to a connection over the limit, written once: the same security headers as
/// every other answer (`security::data_headers`), then the error as JSON.
static REFUSAL: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = "{\"error\":{\"code\":\"too-many-connections\",\
                \"message\":\"the server is at its connection limit\"}}\n";
    let mut answer = String::from(
        "HTTP/1.1 503 Service Unavailable\r\n\
         content-type: application/json\r\n\
         retry-after: 1\r\n\
         connection: close\r\n",
    );
    for (name, value) in crate::security::data_headers() {
        answer.push_str(&format!("{}: {value}\r\n", name.as_str()));
    }
    answer.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    answer.into_bytes()
});

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Trailing slashes are trimmed before routing: `/function/crud/` is `/function/crud`.
    let service = NormalizePathLayer::trim_trailing_slash().layer(router);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let open = Open::new(limits.max_connections);
    let per_address = Arc::new(PerAddress::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors (or another transient failure): wait rather
                    // than spin and flood the log.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        // Its address's share first, so that one client holding sockets never takes the
        // slots other clients need.
        let address = peer.ip();
        let address_slot = if limits
            .shared_addresses
            .iter()
            .any(|net| net.contains(&address))
        {
            None
        } else {
            match per_address.take(address, limits.max_per_address.max(1)) {
                Some(slot) => Some(slot),
                None => {
                    metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
                    refuse(stream);
                    continue;
                }
            }
        };
        let Some(slot) = open.take() else {
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let awaiting_server = slot.awaiting_server.clone();
        let router = service.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |request: axum::extract::Request<hyper::body::Incoming>| {
                let turn = ServersTurn::new(awaiting_server.clone());
                let (mut parts, body) = request.into_parts();
                // Handlers that limit per client (sign-in failures) read the peer from the
                // request.
                parts.extensions.insert(axum::extract::ConnectInfo(peer));
                if hyper::body::Body::is_end_stream(&body) {
                    turn.begin();
                }
                let body = Watched {
                    inner: body,
                    turn: turn.clone(),
                };
                let answered = tower::ServiceExt::oneshot(
                    router.clone(),
                    axum::extract::Request::from_parts(parts, body),
                );
                async move {
                    let response = answered.await;
                    turn.end();
                    response
                }
            },
        ));
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let idle = limits.idle_timeout;
        let header_timeout = limits.header_timeout;
        tasks.spawn(async move {
            let _address_slot = address_slot;
            let activity = slot.activity.clone();
            let evict = slot.evict.clone();
            let _slot = slot;
            // hyper's header timer starts once the protocol is known, which needs a first
            // byte: a connection that sends nothing at all is timed out here.
            let mut first = [0u8; 1];
            let has_sent = tokio::select! {
                peeked = tokio::time::timeout(header_timeout, stream.peek(&mut first)) => {
                    matches!(peeked, Ok(Ok(1)))
                }
                // Stopping: a connection that has sent nothing has no request to finish (a
                // client's pooled spare would otherwise hold the shutdown for the timeout).
                _ = stop.changed() => false,
                () = evict.notified() => false,
            };
            if !has_sent {
                return;
            }
            activity.touch();
            let io = TokioIo::new(Tracked {
                inner: stream,
                activity: activity.clone(),
            });
            let connection = builder.serve_connection_with_upgrades(io, service);
            let mut connection = std::pin::pin!(connection);
            let mut closing_since: Option<Instant> = None;
            loop {
                let check = tokio::time::sleep(
                    idle.min(Duration::from_secs(1))
                        .max(Duration::from_millis(50)),
                );
                tokio::select! {
                    _ = connection.as_mut() => break,
                    // Its place went to a new connection: closed without a word (it was
                    // waiting on its client, who may open another).
                    () = evict.notified() => break,
                    _ = stop.changed() => {
                        connection.as_mut().graceful_shutdown();
                        // Finish what is in flight, within the idle timeout.
                        let _ = tokio::time::timeout(idle, connection.as_mut()).await;
                        break;
                    }
                    () = check => {
                        if let Some(since) = closing_since {
                            if since.elapsed() >= idle {
                                break;
                            }
                        } else if activity.idle_for() >= idle {
                            connection.as_mut().graceful_shutdown();
                            closing_since = Some(Instant::now());
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One request's part in its connection's [`Held::awaiting_server`]: counted from when its
/// body is whole until its response is ready.
#[derive(Clone)]
struct ServersTurn {
    counter: Arc<AtomicU64>,
    /// 0: the body is still coming; 1: counted; 2: answered.
    state: Arc<std::sync::atomic::AtomicU8>,
}

impl ServersTurn {
    fn new(counter: Arc<AtomicU64>) -> Self {
        Self {
            counter,
            state: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        }
    }

    fn begin(&self) {
        if self
            .state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.counter.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn end(&self) {
        if self.state.swap(2, Ordering::AcqRel) == 1 {
            self.counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A request body that starts its request's [`ServersTurn`] once it has all come in.
struct Watched {
    inner: hyper::body::Incoming,
    turn: ServersTurn,
}

impl hyper::body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.turn.begin();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Answers 503 to a connection over the limit without reading it, and closes it. The
/// socket's send buffer is empty, so the short answer is written at once or not at all.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(&REFUSAL);
    drop(stream);
}

/// When a byte last moved on a connection.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.started.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A stream that records when bytes move through it.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_declares_its_exact_length() {
        let text = std::str::from_utf8(&REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    /// `Open` at its limit with one connection whose activity is `idle_for` old.
    fn full_with(idle_for: Duration, awaiting_server: u64) -> (Arc<Open>, OpenSlot) {
        let open = Open::new(1);
        let held = open.take().expect("a free place");
        let old = Arc::new(Activity {
            started: Instant::now()
                .checked_sub(idle_for)
                .expect("an instant that old"),
            last_ms: AtomicU64::new(0),
        });
        if let Some(entry) = open.lock().get_mut(&held.id) {
            entry.activity = old;
        }
        held.awaiting_server
            .store(awaiting_server, Ordering::Relaxed);
        (open, held)
    }

    #[test]
    fn at_the_limit_the_connection_waiting_longest_on_its_client_makes_room() {
        use futures_util::FutureExt;
        let (open, held) = full_with(Duration::from_secs(5), 0);
        let newcomer = open.take().expect("room made");
        assert!(
            held.evict.notified().now_or_never().is_some(),
            "the idle connection was not told to close"
        );
        assert_eq!(open.lock().len(), 1);
        // The evicted one gives nothing back twice: its place is the newcomer's.
        drop(held);
        assert_eq!(open.lock().len(), 1);
        drop(newcomer);
        assert!(open.lock().is_empty());
    }

    #[test]
    fn busy_connections_and_those_awaiting_their_answer_are_kept() {
        let (open, _held) = full_with(Duration::from_millis(200), 0);
        assert!(
            open.take().is_none(),
            "a connection moving bytes was evicted"
        );
        let (open, _held) = full_with(Duration::from_secs(30), 1);
        assert!(
            open.take().is_none(),
            "a connection waiting for its answer was evicted"
        );
    }

    /// A connection that never sent a byte (a client's pooled spare) does not hold a
    /// shutdown for the header timeout: the server stops at once.
    #[tokio::test]
    async fn a_silent_connection_does_not_delay_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(30),
            ..ConnectionLimits::default()
        };
        let server = tokio::spawn(serve_with_limits(
            listener,
            Router::new(),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        let _silent = TcpStream::connect(addr).await.unwrap();
        // The accept loop has taken the connection once a second one is answered.
        let mut probe = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut probe, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        tokio::io::AsyncReadExt::read_exact(&mut probe, &mut answer)
            .await
            .unwrap();
        assert_eq!(&answer, b"HTTP/1.1 404");
        drop(probe);
        let _ = stop.send(());
        let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(
            finished.is_ok(),
            "the server waited on a connection that had sent nothing"
        );
    }
}

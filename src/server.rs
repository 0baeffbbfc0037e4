//! HTTP serving the components share (the apiserver, the kubelet's server, health endpoints):
//! connections that never finish their headers are closed, and no server holds more than a set
//! number of connections at once, so a client that opens connections and sends nothing cannot
//! take a server's descriptors or keep it from answering `/readyz`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How long a client may take to send a request's headers (upstream's apiserver: 32 s,
/// `ReadHeaderTimeout`). An idle kept-alive connection is closed after as long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

/// The largest request head accepted (upstream: `MaxHeaderBytes`, 1 MiB).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// A server's limits: how many connections it holds at once (further clients wait in the
/// listen backlog until one closes), and how long a client may take to send its headers.
#[derive(Clone, Debug)]
pub struct Limits {
    connections: Arc<Semaphore>,
    /// Connections open now (slots taken by an accepted connection).
    open: Arc<AtomicUsize>,
    header_read_timeout: Duration,
}

/// A connection slot: taken before a connection is accepted, counted as open once it is.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Option<Arc<AtomicUsize>>,
}

impl Slot {
    /// The slot now holds an accepted connection (until it is dropped).
    pub fn occupy(mut self, limits: &Limits) -> Self {
        limits.open.fetch_add(1, Ordering::Relaxed);
        self.open = Some(limits.open.clone());
        self
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Limits {
    /// The apiserver's default: room for a thousand in-process kubelets' connections, well under
    /// a process's 20,000 descriptors (each in-process connection takes two).
    pub const APISERVER: usize = 8192;
    /// A kubelet's server or a health endpoint: the apiserver's proxied requests and probes.
    pub const SMALL: usize = 256;

    /// At most `max` connections at once (at least one), headers within
    /// [`HEADER_READ_TIMEOUT`].
    pub fn new(max: usize) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max.max(1))),
            open: Arc::new(AtomicUsize::new(0)),
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }

    /// How many connections are open now.
    pub fn in_use(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The same, with another header timeout.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Wait for a free connection slot.
    pub async fn acquire(&self) -> Option<Slot> {
        let permit = self.connections.clone().acquire_owned().await.ok()?;
        Some(Slot {
            _permit: permit,
            open: None,
        })
    }

    /// The next connection and its slot, or `None` once `shutdown` completes. The slot comes
    /// first: beyond the cap, clients wait in the listen backlog. (The listener itself waits out
    /// accept errors such as running out of descriptors, instead of spinning.)
    pub async fn accept<L: Listener>(
        &self,
        listener: &mut L,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Option<(Option<Slot>, L::Io)> {
        let slot = tokio::select! {
            slot = self.acquire() => slot,
            () = shutdown.as_mut() => return None,
        };
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.as_mut() => return None,
        };
        Some((slot, io))
    }

    /// An HTTP/1.1 connection builder with these limits.
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_HEADER_BYTES);
        builder
    }
}

/// Graceful shutdown for connections that may be upgraded (`kubectl exec` and friends switch
/// protocols), which hyper-util's `GracefulShutdown` cannot watch: on [`Drain::shutdown`] every
/// watched connection finishes the request it is serving and closes, and `shutdown` returns once
/// all have. A connection that has been upgraded is no longer watched: its session runs on.
#[derive(Debug)]
pub struct Drain {
    signal: tokio_util::sync::CancellationToken,
    open: tokio::sync::mpsc::Sender<()>,
    closed: tokio::sync::mpsc::Receiver<()>,
}

impl Default for Drain {
    fn default() -> Self {
        let (open, closed) = tokio::sync::mpsc::channel(1);
        Self {
            signal: tokio_util::sync::CancellationToken::new(),
            open,
            closed,
        }
    }
}

impl Drain {
    /// A drain with nothing to watch yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watch `connection` (with upgrades enabled).
    pub fn watch<I, S, B>(
        &self,
        connection: hyper::server::conn::http1::UpgradeableConnection<I, S>,
    ) -> impl Future<Output = hyper::Result<()>> + Send + 'static
    where
        S: hyper::service::HttpService<Incoming, ResBody = B> + Send + 'static,
        S::Future: Send,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let signal = self.signal.clone();
        let open = self.open.clone();
        async move {
            let _open = open;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => result,
                () = signal.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
    }

    /// Ask every watched connection to finish, and wait until they have.
    pub async fn shutdown(self) {
        let Self {
            signal,
            open,
            mut closed,
        } = self;
        signal.cancel();
        drop(open);
        // Each connection holds a sender; recv returns None once all are gone.
        while closed.recv().await.is_some() {}
    }
}

/// Serve `router` on `listener` within `limits` until `shutdown` completes; then let open
/// connections finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limit: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = Drain::new();
    tokio::pin!(shutdown);
    let mut listener = listener;
    while let Some((permit, tcp)) = limit.accept(&mut listener, shutdown.as_mut()).await {
        let permit = permit.map(|slot| slot.occupy(&limit));
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(
            limit
                .http1()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::trace!(cause = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let s = stop.clone();
        tokio::spawn(async move {
            serve(listener, router, limits, async move { s.cancelled().await }).await
        });
        (addr, stop)
    }

    async fn healthz(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_connection_that_never_sends_its_headers_is_closed() {
        let timeout = Duration::from_millis(300);
        let (addr, stop) = start(Limits::new(4).with_header_read_timeout(timeout)).await;
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
            .await
            .expect("the server closes the connection within its header timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed_too() {
        let timeout = Duration::from_millis(300);
        let (addr, stop) = start(Limits::new(4).with_header_read_timeout(timeout)).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the server closes an idle connection within its header timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn held_connections_beyond_the_cap_wait_and_do_not_break_the_server() {
        let limits = Limits::new(2);
        let (addr, stop) = start(limits.clone()).await;
        let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Barrier: both are accepted and hold the two slots.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while limits.in_use() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "in use: {}",
                limits.in_use()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A third client is queued, not refused, and not served while both are held ...
        let third = tokio::spawn(healthz(addr));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!third.is_finished(), "served beyond the cap");
        assert_eq!(limits.in_use(), 2);
        // ... and is served as soon as one of the held connections goes away.
        b.shutdown().await.unwrap();
        drop(b);
        let answer = tokio::time::timeout(Duration::from_secs(10), third)
            .await
            .expect("served once a slot frees")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.cancel();
    }
}

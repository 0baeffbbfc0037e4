//! Connections: accept, serve HTTP/1.1, and move a connection that streams a watch to a runtime
//! of its own.
//!
//! A watch event leaves through its connection's task. On the runtime that handles requests,
//! that task queues behind every request being handled: with 64 busy writers, a woken watch
//! connection waited its turn behind up to 64 requests (milliseconds) before it could write an
//! event the store already had. So while a connection streams a watch, its task lives on a small
//! runtime that does nothing else: its two threads sleep until an event wakes them, and the
//! operating system tends to run a waking thread before threads that have been running. When the
//! watch ends, the connection moves back.
//!
//! A connection's future is moved between runtimes whole, between two polls. The first poll on
//! the new runtime polls everything the connection waits on (socket, response body, timers)
//! and so registers the new task's waker with each; a stale wake of the old task is harmless.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::response::Response;
use axum::Router;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Marks a response whose body streams for a long time (a watch): its connection is served on
/// the streaming runtime until the body ends.
#[derive(Clone, Copy, Debug)]
pub(super) struct Streaming;

/// The runtime watch connections are moved to while they stream.
struct StreamingRuntime(Option<Runtime>);

impl StreamingRuntime {
    fn start() -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("apiserver-watch")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
    }

    fn handle(&self) -> Option<Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }
}

impl Drop for StreamingRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another one would block the caller's thread.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether a connection's current response streams (it then belongs on the streaming runtime).
struct Placement {
    streaming: AtomicBool,
    /// The server's count of responses streaming now (watches).
    watches: Arc<AtomicUsize>,
}

/// Sets its connection back to the request runtime when the streamed body is dropped.
struct EndOfStream(Arc<Placement>);

impl Drop for EndOfStream {
    fn drop(&mut self) {
        self.0.streaming.store(false, Ordering::Release);
        self.0.watches.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's future that moves itself to the runtime its placement asks for whenever it
/// is waiting.
struct Roaming {
    connection: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    placement: Arc<Placement>,
    streaming: bool,
    requests: Handle,
    streams: Handle,
}

impl Future for Roaming {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(connection) = this.connection.as_mut() else {
            return Poll::Ready(());
        };
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let wanted = this.placement.streaming.load(Ordering::Acquire);
        if wanted != this.streaming {
            let moved = Roaming {
                connection: this.connection.take(),
                placement: this.placement.clone(),
                streaming: wanted,
                requests: this.requests.clone(),
                streams: this.streams.clone(),
            };
            let target = if wanted {
                &this.streams
            } else {
                &this.requests
            };
            drop(target.spawn(moved));
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Note a streaming response on its connection's placement.
fn place(response: Response, placement: &Arc<Placement>) -> Response {
    if response.extensions().get::<Streaming>().is_none() {
        return response;
    }
    placement.streaming.store(true, Ordering::Release);
    placement.watches.fetch_add(1, Ordering::Relaxed);
    let end = EndOfStream(placement.clone());
    response.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _ = &end;
            chunk
        }))
    })
}

/// A response whose length is not known beforehand streams (a watch, a followed log proxied from
/// a kubelet): it ends once the server drains, so that a stop keeps its deadline however long a
/// client would follow. Responses of a known length are left to finish.
fn end_when_draining(response: Response, draining: &CancellationToken) -> Response {
    if response.body().size_hint().exact().is_some() {
        return response;
    }
    let draining = draining.clone().cancelled_owned();
    response.map(|body| Body::from_stream(body.into_data_stream().take_until(draining)))
}

/// Serve `app` on `listener` until `shutdown` completes, then let open connections finish
/// (after `before_drain` has run, which ends the watches, and streamed responses have been
/// ended). At most `limit` connections are held at once, and a connection that does not send
/// its headers in time is closed ([`crate::server`]).
pub(super) async fn serve(
    mut listener: TcpListener,
    app: Router,
    limit: crate::server::Limits,
    watches: Arc<AtomicUsize>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    before_drain: impl FnOnce(),
) -> std::io::Result<()> {
    let streaming = StreamingRuntime::start()?;
    let streams = streaming.handle().unwrap_or_else(Handle::current);
    let requests = Handle::current();
    let graceful = crate::server::Drain::new();
    let draining = CancellationToken::new();
    tokio::pin!(shutdown);
    while let Some((permit, tcp)) = limit.accept(&mut listener, shutdown.as_mut()).await {
        // No Nagle: a watch writes small chunks one after another, and each must leave at once.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
        }
        let placement = Arc::new(Placement {
            streaming: AtomicBool::new(false),
            watches: watches.clone(),
        });
        let service = {
            let app = app.clone();
            let placement = placement.clone();
            let draining = draining.clone();
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let call = app.clone().oneshot(request.map(Body::new));
                let placement = placement.clone();
                let draining = draining.clone();
                async move {
                    let response = place(call.await?, &placement);
                    Ok::<_, std::convert::Infallible>(end_when_draining(response, &draining))
                }
            })
        };
        let permit = permit.map(|slot| slot.occupy(&limit));
        let connection = limit
            .http1()
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let connection = graceful.watch(connection);
        requests.spawn(Roaming {
            connection: Some(Box::pin(async move {
                let _permit = permit;
                if let Err(e) = connection.await {
                    tracing::trace!(cause = %e, "connection ended with an error");
                }
            })),
            placement,
            streaming: false,
            requests: requests.clone(),
            streams: streams.clone(),
        });
    }
    drop(listener);
    before_drain();
    draining.cancel();
    graceful.shutdown().await;
    drop(streaming);
    Ok(())
}

//! Benchmarks behind `kubespec bench`. They measure the reference cluster from outside, over
//! loopback HTTP, and check the correctness of what they measure (every watcher sees every write
//! exactly once, in order; every pod ends up bound) so a fast wrong answer cannot pass.

mod api;
mod kubelet;
mod scheduler;
mod suite;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub use api::{api, run_api, ApiBenchArgs, ApiBenchReport};
pub use kubelet::{kubelet, KubeletBenchArgs};
pub use scheduler::{scheduler, SchedulerBenchArgs};
pub use suite::{suite, SuiteBenchArgs, SuiteBenchReport};

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster did not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    /// An HTTP exchange failed.
    #[error("HTTP to the apiserver failed: {0}")]
    Http(String),
    /// The server answered a write with an unexpected status.
    #[error("write {name} answered {status}: {body}")]
    Write {
        /// The object written.
        name: String,
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// A watcher saw something other than every write once, in order.
    #[error("watcher {watcher}: {problem}")]
    Watch {
        /// Which watcher.
        watcher: usize,
        /// What it saw.
        problem: String,
    },
    /// Arguments that cannot work.
    #[error("{0}")]
    Args(String),
}

/// Result type of benchmarks.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub(crate) async fn connect(addr: std::net::SocketAddr) -> Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The resourceVersion of a list (a one-item page), to watch from.
pub(crate) async fn list_rv(sender: &mut Sender, path: &str) -> Result<String> {
    let req = hyper::Request::get(format!("{path}?limit=1"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Http(e.to_string()))?;
    let (_, bytes) = exchange(sender, req).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::Http(e.to_string()))?;
    Ok(v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string())
}

/// Send a request and read the whole answer: its status and body.
pub(crate) async fn exchange(
    sender: &mut Sender,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes)> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}

/// Start a GET whose answer streams (a watch); its events arrive on the returned body (the
/// connection's driver task holds the connection open).
pub(crate) async fn open_stream(sender: &mut Sender, path: &str) -> Result<hyper::body::Incoming> {
    let req = hyper::Request::get(path)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    Ok(resp.into_body())
}

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

/// What the controller-manager gives a namespace, for benches that run none: the `default`
/// ServiceAccount (the ServiceAccount admission refuses pods without it) and the
/// `kube-root-ca.crt` ConfigMap with the CA the apiserver publishes (a pod's API access volume
/// waits for it on the kubelet).
pub(crate) async fn controller_manager_stand_in(
    client: &kube::Client,
    namespace: &str,
) -> Result<()> {
    use crate::k8s::serviceaccount::{
        AUTHENTICATION_CONFIGMAP, CLIENT_CA_KEY, DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIGMAP,
        ROOT_CA_KEY,
    };
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use kube::api::{Api, PostParams};

    let fail = |what: &str, e: kube::Error| Error::Http(format!("cannot {what}: {e}"));
    let ca = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get(AUTHENTICATION_CONFIGMAP)
        .await
        .map_err(|e| fail("read the cluster's CA", e))?
        .data
        .and_then(|d| d.get(CLIENT_CA_KEY).cloned())
        .unwrap_or_default();
    let mut account = ServiceAccount::default();
    account.metadata.name = Some(DEFAULT_SERVICE_ACCOUNT.into());
    let mut bundle = ConfigMap::default();
    bundle.metadata.name = Some(ROOT_CA_CONFIGMAP.into());
    bundle.data = Some([(ROOT_CA_KEY.to_string(), ca)].into());
    let created = |r: kube::Result<()>, what: &str| match r {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(fail(what, e)),
    };
    let pp = PostParams::default();
    created(
        Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .create(&pp, &account)
            .await
            .map(drop),
        "create the default ServiceAccount",
    )?;
    created(
        Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .create(&pp, &bundle)
            .await
            .map(drop),
        "create kube-root-ca.crt",
    )
}

//! The reference apiserver: the only component that touches the store.
//!
//! Requests are routed by the registry of kinds (`registry.rs`); wire formats (JSON, YAML,
//! protobuf request bodies, Tables, watch streams) are decoded and encoded at the edge
//! (`rest/`, `watch.rs`), and everything behind sees objects as JSON that k8s-openapi types
//! admit (`strategy.rs`).
//!
//! Layout:
//! - `registry`: the table of served kinds.
//! - `rest`: routing and the verbs: `read` (get, list), `write` (create, update, patch, apply),
//!   `delete`, `subresource` (binding, scale, log), with one retry-on-conflict for them all.
//! - `body`: request bodies (content type; JSON, YAML bounded in depth, protobuf).
//! - `patch`: JSON patch within upstream's limits, merge patch, and apply's field ownership.
//! - `proxy`: the apiserver as a kubelet client (`pods/log`), vouching before sending the token.
//! - `watch`: watch streams with bookmarks, timeouts and selector transitions.
//! - `serve`: connections, and the runtime watch connections move to while they stream.
//! - `strategy`: decoding, defaulting and validation per kind; `containers`: a pod's containers
//!   as upstream validates them; `services`: a Service's defaults, update hooks, validation and
//!   node port allocation.
//! - `kubernetes_service`: the `default/kubernetes` Service, Endpoints and EndpointSlice that
//!   point clients at this apiserver, kept as upstream's apiserver keeps them.
//! - `strategic`: strategic merge patch.
//! - `protobuf`: protobuf request bodies (the schema in the data file `protobuf_schema.txt`).
//! - `selector`: label and field selectors.
//! - `table`: server-side Tables as kubectl prints them.
//! - `discovery`: /version, /api, /apis.
//! - `openapi`: OpenAPI v3 documents for `kubectl explain` and validation.
//! - `openapi_v2`: the Swagger 2.0 document, as protobuf, that kubectl 1.27 reads on every apply
//!   (`definitions`, `paths`, gnostic's `messages`, and their `encode`ing).
//! - `serviceaccount`: the ServiceAccount admission plugin (a pod's account, its API access
//!   volume and mounts); `tokens`: `serviceaccounts/token` and the key that signs tokens; `pki`:
//!   the cluster's CA, made once and published for the other components.
//! - `error`: Status errors.

pub(crate) mod body;
mod componentstatus;
mod containers;
pub mod discovery;
pub mod error;
mod fieldpath;
mod go_shape;
mod kubernetes_service;
pub(crate) mod managed_fields;
pub mod openapi;
pub mod openapi_v2;
pub(crate) mod patch;
pub mod pki;
mod priority;
pub mod protobuf;
mod proxy;
pub mod registry;
pub(crate) mod rest;
pub mod selector;
mod serve;
mod serviceaccount;
mod services;
pub mod strategic;
pub mod strategy;
pub mod table;
mod tokens;
pub mod validation;
mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::{EtcdStore, MemoryStore, Store};

pub use error::{ApiError, Cause};

/// Apiserver settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many writes the store keeps for watches to resume from.
    pub history_limit: usize,
    /// How many bytes of objects those writes may hold at most.
    pub history_bytes: usize,
    /// The namespaces that exist from the start.
    pub initial_namespaces: Vec<String>,
    /// The bearer token the apiserver presents to kubelets (for `pods/log`), when kubelets
    /// require one.
    pub kubelet_token: Option<String>,
    /// How many client connections the apiserver holds at once (more wait to be accepted).
    pub max_connections: usize,
    /// How long a request's body may take to arrive (upstream's `--request-timeout`, 60 s).
    pub request_timeout: std::time::Duration,
    /// The address clients inside the cluster reach this apiserver at (upstream's
    /// `--advertise-address`): the `kubernetes` Service's endpoint. `None`: the address it
    /// listens on (loopback when it listens on every address).
    pub advertise_address: Option<std::net::IpAddr>,
    /// The etcd endpoints that hold the objects (upstream's `--etcd-servers`); empty: the
    /// in-memory store.
    pub etcd_servers: Vec<String>,
    /// The components `componentstatus` checks, by name, and the URL of each one's health
    /// check: upstream checks the controller-manager and the scheduler on the apiserver's own
    /// machine (https://127.0.0.1:10257/healthz and :10259); the reference components serve
    /// plain HTTP, on `--health-port`.
    pub component_statuses: Vec<(String, String)>,
    /// How often the history in etcd is compacted (upstream's `--etcd-compaction-interval`,
    /// 5 minutes): each time, to the revision of the previous time.
    pub etcd_compaction_interval: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history_limit: 100_000,
            history_bytes: crate::store::DEFAULT_HISTORY_BYTES,
            initial_namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            kubelet_token: None,
            max_connections: crate::server::Limits::APISERVER,
            request_timeout: std::time::Duration::from_secs(60),
            advertise_address: None,
            etcd_servers: Vec::new(),
            component_statuses: vec![
                (
                    "controller-manager".into(),
                    "http://127.0.0.1:10257/healthz".into(),
                ),
                ("scheduler".into(), "http://127.0.0.1:10259/healthz".into()),
            ],
            etcd_compaction_interval: std::time::Duration::from_secs(5 * 60),
        }
    }
}

/// The shared state of one apiserver.
pub struct ApiServer {
    store: Arc<dyn Store>,
    clock: Clock,
    /// Cancelled when the server stops: long-running requests (watches) end with it.
    shutdown: CancellationToken,
    /// Bearer token for kubelet requests.
    kubelet_token: Option<String>,
    /// How many connections [`serve`] holds at once, and how many it holds now.
    limits: crate::server::Limits,
    /// How long a request's body may take to arrive.
    pub(crate) request_timeout: std::time::Duration,
    /// Where clients inside the cluster reach this apiserver (`Config::advertise_address`).
    advertise_address: Option<std::net::IpAddr>,
    /// Watches streaming now.
    watches: Arc<std::sync::atomic::AtomicUsize>,
    /// Held while a Service's cluster IP and node ports are allocated and written, so that no
    /// two writes are given the same ones.
    service_allocation: tokio::sync::Mutex<()>,
    /// The key that signs service account tokens (none if the system could not make one).
    tokens: Option<tokens::Issuer>,
    /// What `componentstatus` checks (`Config::component_statuses`).
    component_statuses: Vec<(String, String)>,
}

impl ApiServer {
    /// An apiserver over an in-memory store, with the initial namespaces created.
    pub async fn new(config: &Config, clock: Clock) -> Arc<Self> {
        Self::with_store(
            Arc::new(MemoryStore::with_limits(
                config.history_limit,
                config.history_bytes,
            )),
            config,
            clock,
        )
        .await
    }

    /// An apiserver over the store `config` names: etcd when it gives `etcd_servers` (the
    /// history compacted every `etcd_compaction_interval` while the apiserver runs), else
    /// memory.
    ///
    /// # Errors
    /// When etcd does not answer.
    pub async fn open(
        config: &Config,
        clock: Clock,
    ) -> Result<Arc<Self>, crate::store::ConnectError> {
        if config.etcd_servers.is_empty() {
            return Ok(Self::new(config, clock).await);
        }
        let store =
            EtcdStore::connect(&config.etcd_servers, Arc::new(registry::stored_attrs)).await?;
        let server = Self::with_store(Arc::new(store.clone()), config, clock).await;
        tokio::spawn(compact_etcd(
            store,
            config.etcd_compaction_interval,
            server.shutdown.clone(),
        ));
        Ok(server)
    }

    /// An apiserver over any store, with the initial namespaces created (if missing) and the
    /// cluster's CA published (made if the store holds none).
    pub async fn with_store(store: Arc<dyn Store>, config: &Config, clock: Clock) -> Arc<Self> {
        let server = Arc::new(Self {
            store,
            clock,
            shutdown: CancellationToken::new(),
            kubelet_token: config.kubelet_token.clone(),
            limits: crate::server::Limits::new(config.max_connections),
            request_timeout: config.request_timeout,
            advertise_address: config.advertise_address,
            watches: Arc::default(),
            service_allocation: tokio::sync::Mutex::new(()),
            tokens: tokens::Issuer::generate()
                .map_err(|_| tracing::error!("cannot make a key to sign service account tokens"))
                .ok(),
            component_statuses: config.component_statuses.clone(),
        });
        for ns in &config.initial_namespaces {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match server
                .create_internal(registry::core("namespaces"), None, body)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => {
                    tracing::error!(namespace = %ns, cause = %e, "cannot create an initial namespace")
                }
            }
        }
        pki::publish_cluster_ca(&server).await;
        priority::bootstrap(&server).await;
        server
    }

    /// How many watches are streaming now.
    pub fn open_watches(&self) -> usize {
        self.watches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many client connections are open now.
    pub fn open_connections(&self) -> usize {
        self.limits.in_use()
    }

    /// The cluster clock the apiserver stamps objects with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Compact etcd's history every `interval`, to the revision seen the time before (what
/// kube-apiserver's compactor does), until `stop`.
async fn compact_etcd(store: EtcdStore, interval: std::time::Duration, stop: CancellationToken) {
    let mut previous = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Some(revision) = previous {
            if let Err(e) = store.compact(revision).await {
                tracing::warn!(revision, cause = %e, "cannot compact etcd");
            }
        }
        previous = Some(store.current_revision()).filter(|r| *r > 0);
    }
}

/// Serve the API on `listener` until `shutdown` completes.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    server: Arc<ApiServer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "apiserver listening");
    let token = server.shutdown.clone();
    let limit = server.limits.clone();
    let watches = server.watches.clone();
    // The `kubernetes` Service and its endpoints exist before the first client connects, and
    // are repaired while the server runs.
    kubernetes_service::reconcile(&server, addr).await;
    let reconciler = tokio::spawn(kubernetes_service::run(server.clone(), addr));
    let app = rest::router(server);
    // Watches never finish by themselves: end them so the graceful shutdown completes.
    let served = serve::serve(listener, app, limit, watches, shutdown, move || {
        token.cancel()
    })
    .await;
    reconciler.abort();
    served
}

//! Assembles the reference components into a running cluster on loopback and describes how to
//! reach it (URL, kubeconfig, kube client).
//!
//! This module owns start-up order and shutdown; it must not reach into a component's state.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use crate::apiserver::{self, ApiServer};
use crate::clock::Clock;
use crate::controllers::nodelifecycle::NodeLifecycleConfig;
use crate::controllers::ControllerManagerConfig;
use crate::leader::LeaseConfig;

/// Errors starting or describing a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver could not listen on the requested address.
    #[error("cannot listen on {addr}: {source} (is the port in use? pass another --port, or 0 for a free one)")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The listener's error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig to {path}: {source}")]
    WriteKubeconfig {
        /// Where it was to be written.
        path: String,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// A kube client could not be built for the cluster.
    #[error("cannot build a client for {url}: {source}")]
    Client {
        /// The cluster URL.
        url: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to run the reference cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Loopback address and port of the apiserver; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Cluster seconds per wall second.
    pub time_scale: f64,
    /// Apiserver settings.
    pub apiserver: apiserver::Config,
    /// How many controller-manager replicas campaign for the lease (0: none run).
    pub controller_managers: usize,
    /// How many scheduler replicas campaign for the lease (0: none run).
    pub schedulers: usize,
    /// Leader election timing for both (upstream 15/10/2 s); identities are filled per replica.
    pub lease_duration: Duration,
    /// Renew deadline.
    pub renew_deadline: Duration,
    /// Retry period.
    pub retry_period: Duration,
    /// Node lifecycle timing.
    pub node_lifecycle: NodeLifecycleConfig,
    /// How many nodes (each a reference kubelet) the cluster has, named `node-1`, `node-2`, ...
    pub nodes: usize,
    /// CPU capacity of each node.
    pub node_cpu: String,
    /// Memory capacity of each node.
    pub node_memory: String,
    /// The user's image models for every node's runtime.
    pub image_models: Vec<crate::kubelet::runtime::models::ImageModel>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 1.0,
            apiserver: apiserver::Config::default(),
            controller_managers: 1,
            schedulers: 1,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            node_lifecycle: NodeLifecycleConfig::default(),
            nodes: 0,
            node_cpu: "4".into(),
            node_memory: "8Gi".into(),
            image_models: Vec::new(),
        }
    }
}

impl ClusterConfig {
    /// Only the apiserver (no control loops): for tests and benchmarks of the API alone.
    pub fn apiserver_only() -> Self {
        Self {
            controller_managers: 0,
            schedulers: 0,
            ..Self::default()
        }
    }

    fn lease(&self, name: &str, identity: String) -> LeaseConfig {
        LeaseConfig {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            ..LeaseConfig::new(name, identity)
        }
    }
}

/// One running replica of a component that campaigns for a lease.
pub struct Replica {
    identity: String,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Replica {
    /// The replica's leader election identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Stop gracefully: a leader releases its lease.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Kill it: no release, the others wait out the lease.
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// Whether it has stopped.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// A running reference cluster. Dropping it without [`RunningCluster::stop`] aborts its tasks.
pub struct RunningCluster {
    addr: SocketAddr,
    clock: Clock,
    apiserver: Arc<ApiServer>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    controller_managers: Vec<Replica>,
    schedulers: Vec<Replica>,
    kubelets: Vec<crate::kubelet::KubeletHandle>,
}

impl RunningCluster {
    /// Start the cluster's components and return once the apiserver accepts connections.
    ///
    /// # Errors
    /// [`Error::Listen`] when the address cannot be bound.
    pub async fn start(config: ClusterConfig) -> Result<Self> {
        let clock = Clock::new(config.time_scale);
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| Error::Listen {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.addr,
            source,
        })?;
        let apiserver = ApiServer::new(&config.apiserver, clock.clone()).await;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = apiserver.clone();
        let task = tokio::spawn(async move {
            if let Err(e) =
                apiserver::serve(listener, server, async move { token.cancelled().await }).await
            {
                tracing::error!(cause = %e, "apiserver stopped with an error");
            }
        });
        let url = format!("http://{addr}");
        let mut controller_managers = Vec::new();
        for _ in 0..config.controller_managers {
            let identity = crate::leader::new_identity();
            let cm = ControllerManagerConfig {
                lease: config.lease(crate::controllers::COMPONENT, identity.clone()),
                node_lifecycle: config.node_lifecycle.clone(),
            };
            let stop = shutdown.child_token();
            let handle = tokio::spawn(crate::controllers::run(
                client_for(&url)?,
                clock.clone(),
                cm,
                stop.clone(),
            ));
            controller_managers.push(Replica {
                identity,
                stop,
                handle,
            });
        }
        let mut schedulers = Vec::new();
        for _ in 0..config.schedulers {
            let identity = crate::leader::new_identity();
            let lease = config.lease(crate::scheduler::LEASE_NAME, identity.clone());
            let stop = shutdown.child_token();
            let handle = tokio::spawn(crate::scheduler::run_replica(
                client_for(&url)?,
                clock.clone(),
                lease,
                stop.clone(),
            ));
            schedulers.push(Replica {
                identity,
                stop,
                handle,
            });
        }
        let mut tasks = vec![task];
        let mut kubelets = Vec::new();
        for i in 0..config.nodes {
            let mut kc = crate::kubelet::KubeletConfig::new(&format!("node-{}", i + 1));
            kc.cpu = config.node_cpu.clone();
            kc.memory = config.node_memory.clone();
            kc.image_models = config.image_models.clone();
            kc.auth_token = config.apiserver.kubelet_token.clone();
            let (handle, task) =
                crate::kubelet::start(client_for(&url)?, clock.clone(), kc, shutdown.child_token());
            kubelets.push(handle);
            tasks.push(task);
        }
        Ok(Self {
            addr,
            clock,
            apiserver,
            shutdown,
            tasks,
            controller_managers,
            schedulers,
            kubelets,
        })
    }

    /// The controller-manager replicas.
    pub fn controller_managers(&self) -> &[Replica] {
        &self.controller_managers
    }

    /// The scheduler replicas.
    pub fn schedulers(&self) -> &[Replica] {
        &self.schedulers
    }

    /// The kubelets, one per node.
    pub fn kubelets(&self) -> &[crate::kubelet::KubeletHandle] {
        &self.kubelets
    }

    /// The apiserver's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The apiserver's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The cluster clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The in-process apiserver (for benchmarks that measure it without HTTP).
    pub fn apiserver(&self) -> &Arc<ApiServer> {
        &self.apiserver
    }

    /// A kubeconfig that reaches this cluster.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url())
    }

    /// Write the kubeconfig to `path`.
    ///
    /// # Errors
    /// [`Error::WriteKubeconfig`].
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.kubeconfig()).map_err(|source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// A kube client for this cluster.
    ///
    /// # Errors
    /// [`Error::Client`].
    pub fn client(&self) -> Result<kube::Client> {
        client_for(&self.url())
    }

    /// Stop every component and wait for them.
    pub async fn stop(mut self) {
        // Components first (leaders release their leases), then the apiserver.
        for r in self.controller_managers.iter().chain(&self.schedulers) {
            r.stop();
        }
        for r in self
            .controller_managers
            .drain(..)
            .chain(self.schedulers.drain(..))
        {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), r.handle).await;
        }
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
        for r in self.controller_managers.iter().chain(&self.schedulers) {
            r.abort();
        }
    }
}

/// A kubeconfig with one cluster, user and context named `kubespec`.
pub fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubespec\n  cluster:\n    server: {url}\nusers:\n- name: kubespec\n  user: {{}}\ncontexts:\n- name: kubespec\n  context:\n    cluster: kubespec\n    user: kubespec\n    namespace: default\ncurrent-context: kubespec\npreferences: {{}}\n"
    )
}

/// A kube client for a cluster URL with no credentials.
///
/// # Errors
/// [`Error::Client`].
pub fn client_for(url: &str) -> Result<kube::Client> {
    use kube::client::ConfigExt;

    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::Client {
            url: url.to_string(),
            source: kube::Error::InferKubeconfig(kube::config::KubeconfigError::ParseClusterUrl(e)),
        })?;
    let config = kube::Config::new(uri);
    if config.cluster_url.scheme() != Some(&http::uri::Scheme::HTTP) {
        return kube::Client::try_from(config).map_err(|source| Error::Client {
            url: url.to_string(),
            source,
        });
    }
    // The reference cluster speaks plain HTTP on loopback: a client without a TLS stack (kube's
    // default builds one per client, with the system's root certificates, which adds up with a
    // thousand kubelets in one process).
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    // The same connect, read and write deadlines kube's default client sets.
    let mut connector = hyper_timeout::TimeoutConnector::new(http);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

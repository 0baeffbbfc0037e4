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

use crate::apiserver::{self, ApiServer};
use crate::clock::Clock;

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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 1.0,
            apiserver: apiserver::Config::default(),
        }
    }
}

/// A running reference cluster. Dropping it without [`RunningCluster::stop`] aborts its tasks.
pub struct RunningCluster {
    addr: SocketAddr,
    clock: Clock,
    apiserver: Arc<ApiServer>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
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
        Ok(Self {
            addr,
            clock,
            apiserver,
            shutdown,
            tasks: vec![task],
        })
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
    let uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::Client {
            url: url.to_string(),
            source: kube::Error::InferKubeconfig(kube::config::KubeconfigError::ParseClusterUrl(e)),
        })?;
    let config = kube::Config::new(uri);
    kube::Client::try_from(config).map_err(|source| Error::Client {
        url: url.to_string(),
        source,
    })
}

//! Assembles the reference components into a running cluster on loopback and describes how to
//! reach it (URL, kubeconfig, kube client).
//!
//! This module owns start-up order, the readiness barrier, faults (stop or kill a leader, a
//! kubelet; add a node; withdraw an image from the registry) and shutdown; it must not reach into
//! a component's state.

pub mod addons;
pub mod control_plane;
pub mod kubeconfig;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use crate::apiserver::{self, ApiServer};
use crate::clock::Clock;
use crate::controllers::nodelifecycle::NodeLifecycleConfig;
use crate::controllers::ControllerManagerConfig;
use crate::leader::LeaseConfig;
use crate::runtime::Health;

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
    /// The store (etcd) did not answer.
    #[error(transparent)]
    Store(#[from] crate::store::ConnectError),
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig to {path}: {source}")]
    WriteKubeconfig {
        /// Where it was to be written.
        path: String,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The cluster did not become ready in time.
    #[error("the cluster was not ready after {timeout:?}: still waiting for {missing}")]
    NotReady {
        /// How long it waited.
        timeout: Duration,
        /// What was still missing.
        missing: String,
    },
    /// Components did not stop within the deadline and were aborted.
    #[error("these components did not stop within {deadline:?} and were aborted: {late}")]
    StopTimeout {
        /// The deadline.
        deadline: Duration,
        /// The components aborted.
        late: String,
    },
    /// No running replica holds the component's Lease.
    #[error("no running {component} replica leads (the Lease is held by {holder})")]
    NoLeader {
        /// The component.
        component: Elected,
        /// Who holds the Lease.
        holder: String,
    },
    /// The cluster has no node of that name.
    #[error("the cluster has no node {0:?}")]
    NoSuchNode(String),
    /// The node's kubelet is not running.
    #[error("the kubelet of node {0:?} is not running")]
    KubeletNotRunning(String),
    /// A node of that name exists already.
    #[error("the cluster already has a node {0:?}")]
    NodeExists(String),
    /// A node's static pod directory could not be created.
    #[error("cannot create the static pod directory {path}: {source}")]
    StaticPodDir {
        /// The directory.
        path: String,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// A request to the apiserver failed.
    #[error("cannot {what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// kube's error.
        #[source]
        source: kube::Error,
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
    /// When cluster time read the wall time (see [`Clock::with_epoch`]); `None`: at start.
    pub epoch: Option<chrono::DateTime<chrono::Utc>>,
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
    /// The pod garbage collector's settings.
    pub pod_gc: crate::controllers::podgc::PodGcConfig,
    /// How many nodes (each a reference kubelet) the cluster has, named `node-1`, `node-2`, ...
    pub nodes: usize,
    /// CPU capacity of each node.
    pub node_cpu: String,
    /// Memory capacity of each node.
    pub node_memory: String,
    /// The user's image models for every node's runtime.
    pub image_models: Vec<crate::kubelet::runtime::models::ImageModel>,
    /// When set, every node watches `<dir>/<node name>` for static pod manifests.
    pub static_pod_dir: Option<std::path::PathBuf>,
    /// How long a pod sandbox takes to start on every node (see
    /// [`crate::kubelet::KubeletConfig::sandbox_start`]).
    pub sandbox_start: Duration,
    /// How long (wall time) [`RunningCluster::start`] waits for the cluster to be ready.
    pub ready_timeout: Duration,
    /// Run a kube-proxy for every node (which makes Service IPs reach their endpoints from
    /// the node's pods).
    pub kube_proxy: bool,
    /// Lay the cluster out as kubeadm does: the control plane's static pod manifests on the
    /// first node (see [`control_plane`]; into `static_pod_dir`, or a directory of the
    /// cluster's own) and, with `kube_proxy`, kube-proxy's DaemonSet (see [`addons`]).
    pub system_pods: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 1.0,
            epoch: None,
            apiserver: apiserver::Config::default(),
            controller_managers: 1,
            schedulers: 1,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            node_lifecycle: NodeLifecycleConfig::default(),
            pod_gc: Default::default(),
            nodes: 0,
            node_cpu: "4".into(),
            node_memory: "8Gi".into(),
            image_models: Vec::new(),
            static_pod_dir: None,
            sandbox_start: Duration::from_millis(500),
            ready_timeout: Duration::from_secs(60),
            kube_proxy: true,
            system_pods: true,
        }
    }
}

impl ClusterConfig {
    /// Only the apiserver (no control loops): for tests and benchmarks of the API alone.
    pub fn apiserver_only() -> Self {
        Self {
            controller_managers: 0,
            schedulers: 0,
            kube_proxy: false,
            system_pods: false,
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

/// A component that runs as replicas campaigning for one Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elected {
    /// kube-controller-manager (`kube-system/kube-controller-manager`).
    ControllerManager,
    /// kube-scheduler (`kube-system/kube-scheduler`).
    Scheduler,
}

impl Elected {
    /// The name of the component's Lease in `kube-system`.
    pub fn lease_name(self) -> &'static str {
        match self {
            Self::ControllerManager => crate::controllers::COMPONENT,
            Self::Scheduler => crate::scheduler::LEASE_NAME,
        }
    }
}

impl std::fmt::Display for Elected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ControllerManager => "controller-manager",
            Self::Scheduler => "scheduler",
        })
    }
}

/// One running replica of a component that campaigns for a lease.
pub struct Replica {
    identity: String,
    /// Its control loops' health checks (what its `/healthz` would answer).
    health: Health,
    stop: CancellationToken,
    abort: tokio::task::AbortHandle,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Its health check server, if it serves one (it dies with the replica).
    health_server: Option<tokio::task::AbortHandle>,
}

impl Replica {
    fn new(
        identity: String,
        stop: CancellationToken,
        handle: JoinHandle<()>,
        health: Health,
    ) -> Self {
        Self {
            identity,
            health,
            stop,
            abort: handle.abort_handle(),
            handle: Mutex::new(Some(handle)),
            health_server: None,
        }
    }

    /// Serve the replica's `/healthz` on `listener` until it stops or is killed, as its
    /// process would.
    fn serve_health(mut self, listener: Option<TcpListener>) -> Self {
        if let Some(listener) = listener {
            let stop = self.stop.clone();
            let task = tokio::spawn(crate::server::serve(
                listener,
                self.health.router(),
                crate::server::Limits::new(crate::server::Limits::SMALL),
                async move { stop.cancelled().await },
            ));
            self.health_server = Some(task.abort_handle());
        }
        self
    }

    /// The replica's leader election identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Its control loops' health checks: a loop that died shows as failed until it runs again.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Stop as on SIGTERM: a kube-scheduler leader releases its lease; a
    /// kube-controller-manager does not (upstream sets no ReleaseOnCancel for it).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Kill it: no release, the others wait out the lease.
    pub fn abort(&self) {
        self.abort.abort();
        if let Some(server) = &self.health_server {
            server.abort();
        }
    }

    /// Whether it has stopped.
    pub fn is_finished(&self) -> bool {
        self.abort.is_finished()
    }

    /// Wait until it has stopped, at most until `deadline`; then kill it. Returns whether it
    /// stopped by itself.
    async fn join(&self, deadline: tokio::time::Instant) -> bool {
        let handle = self.handle.lock().take();
        let Some(handle) = handle else {
            return true;
        };
        if tokio::time::timeout_at(deadline, handle).await.is_ok() {
            return true;
        }
        self.abort();
        false
    }
}

/// How long a stopped component may take to finish before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// One node: its kubelet's settings and, while it runs, the kubelet.
struct NodeAgent {
    config: crate::kubelet::KubeletConfig,
    running: Option<RunningKubelet>,
}

struct RunningKubelet {
    handle: crate::kubelet::KubeletHandle,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A running reference cluster. Dropping it without [`RunningCluster::stop`] aborts its tasks.
pub struct RunningCluster {
    addr: SocketAddr,
    clock: Clock,
    apiserver: Arc<ApiServer>,
    shutdown: CancellationToken,
    server: Mutex<Option<JoinHandle<()>>>,
    controller_managers: Vec<Replica>,
    schedulers: Vec<Replica>,
    nodes: Mutex<Vec<NodeAgent>>,
    registry: Arc<crate::kubelet::runtime::Registry>,
    node_template: ClusterConfig,
    /// The static pod directory the cluster made for itself (removed with it).
    _manifests: Option<tempfile::TempDir>,
}

impl RunningCluster {
    /// Start the cluster's components and return once it is ready: the apiserver accepts
    /// connections, every node is Ready and every elected component has a leader.
    ///
    /// # Errors
    /// [`Error::Listen`] when the address cannot be bound; [`Error::NotReady`] when the cluster
    /// is not ready within `config.ready_timeout`.
    pub async fn start(config: ClusterConfig) -> Result<Self> {
        let clock = match config.epoch {
            Some(epoch) => Clock::with_epoch(config.time_scale, epoch),
            None => Clock::new(config.time_scale),
        };
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
        // The first controller-manager and scheduler serve their health checks on loopback,
        // where the apiserver's componentstatus checks them (upstream checks the ones on its
        // own machine).
        let health_listener = |replicas: usize| async move {
            match replicas {
                0 => None,
                _ => TcpListener::bind(("127.0.0.1", 0)).await.ok(),
            }
        };
        let mut cm_health = health_listener(config.controller_managers).await;
        let mut scheduler_health = health_listener(config.schedulers).await;
        let local = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        let (cm_listener_addr, scheduler_listener_addr) =
            (local(&cm_health), local(&scheduler_health));
        let endpoint_of = |a: &Option<SocketAddr>| {
            a.map(|a| control_plane::Endpoint::new(a.ip().to_string(), a.port()))
        };
        let mut apiserver_config = config.apiserver.clone();
        for (name, listener) in [
            ("controller-manager", &cm_health),
            ("scheduler", &scheduler_health),
        ] {
            if let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok()) {
                for (component, url) in &mut apiserver_config.component_statuses {
                    if component == name {
                        *url = format!("http://{addr}/healthz");
                    }
                }
            }
        }
        let apiserver = ApiServer::open(&apiserver_config, clock.clone()).await?;
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
            let health = Health::new();
            let cm = ControllerManagerConfig {
                lease: config.lease(crate::controllers::COMPONENT, identity.clone()),
                node_lifecycle: config.node_lifecycle.clone(),
                pod_gc: config.pod_gc.clone(),
                // The CA the apiserver publishes, read over the API as a controller-manager of
                // its own process would.
                root_ca: None,
                health: health.clone(),
            };
            let stop = shutdown.child_token();
            let handle = tokio::spawn(crate::controllers::run(
                client_as(&url, crate::controllers::COMPONENT)?,
                clock.clone(),
                cm,
                stop.clone(),
            ));
            controller_managers
                .push(Replica::new(identity, stop, handle, health).serve_health(cm_health.take()));
        }
        let mut schedulers = Vec::new();
        for _ in 0..config.schedulers {
            let identity = crate::leader::new_identity();
            let lease = config.lease(crate::scheduler::LEASE_NAME, identity.clone());
            let stop = shutdown.child_token();
            let health = Health::new();
            let handle = tokio::spawn(crate::scheduler::run_replica(
                client_as(&url, crate::scheduler::COMPONENT)?,
                clock.clone(),
                lease,
                health.clone(),
                stop.clone(),
            ));
            schedulers.push(
                Replica::new(identity, stop, handle, health).serve_health(scheduler_health.take()),
            );
        }
        let mut node_template = config.clone();
        let mut own_manifests = None;
        if config.system_pods && config.nodes > 0 {
            let dir = match &config.static_pod_dir {
                Some(dir) => dir.clone(),
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("kubespec-manifests-")
                        .tempdir()
                        .map_err(|source| Error::StaticPodDir {
                            path: std::env::temp_dir().display().to_string(),
                            source,
                        })?;
                    let path = dir.path().to_path_buf();
                    own_manifests = Some(dir);
                    path
                }
            };
            node_template.static_pod_dir = Some(dir.clone());
            let plane = control_plane::ControlPlane {
                apiserver: Some(control_plane::Endpoint::new(
                    addr.ip().to_string(),
                    addr.port(),
                )),
                controller_manager: endpoint_of(&cm_listener_addr),
                scheduler: endpoint_of(&scheduler_listener_addr),
                etcd: apiserver_config
                    .etcd_servers
                    .first()
                    .and_then(|url| control_plane::Endpoint::of_url(url)),
            };
            control_plane::write(&plane, &dir.join("node-1"))
                .map_err(|(path, source)| Error::StaticPodDir { path, source })?;
        }
        let cluster = Self {
            addr,
            clock,
            apiserver,
            shutdown,
            server: Mutex::new(Some(task)),
            controller_managers,
            schedulers,
            nodes: Mutex::new(Vec::new()),
            registry: crate::kubelet::runtime::Registry::new(),
            node_template,
            _manifests: own_manifests,
        };
        for i in 0..config.nodes {
            cluster.add_node(&format!("node-{}", i + 1), None, None)?;
        }
        cluster.ready(config.ready_timeout).await?;
        if config.kube_proxy && config.system_pods {
            // kubeadm's addon phase: kube-proxy's DaemonSet shows a pod on every node.
            addons::install_kube_proxy(&cluster.client()?, &cluster.url())
                .await
                .map_err(|source| Error::Api {
                    what: "install the kube-proxy addon".into(),
                    source,
                })?;
        }
        Ok(cluster)
    }

    /// Wait until every running node is Ready and every elected component (with at least one
    /// replica running) has a leader among its replicas. Watches, does not poll.
    ///
    /// # Errors
    /// [`Error::NotReady`] naming what is still missing when `timeout` (wall time) passes.
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::Node;
        use kube::runtime::watcher;

        let client = self.client()?;
        let stop = self.shutdown.child_token();
        let _guard = stop.clone().drop_guard();
        let nodes = crate::runtime::Informer::start(
            kube::Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            stop.clone(),
        );
        let leases = crate::runtime::Informer::start(
            kube::Api::<Lease>::namespaced(client, "kube-system"),
            watcher::Config::default(),
            stop.clone(),
        );
        let mut node_changes = nodes.subscribe();
        let mut lease_changes = leases.subscribe();
        let missing = || -> Vec<String> {
            let mut missing = Vec::new();
            let store = nodes.store();
            for name in self.node_names(true) {
                let ready = store
                    .get(&kube::runtime::reflector::ObjectRef::new(&name))
                    .is_some_and(|n| crate::k8s::node_is_ready(&n));
                if !ready {
                    missing.push(format!("node {name} Ready"));
                }
            }
            for (component, replicas) in [
                (Elected::ControllerManager, &self.controller_managers),
                (Elected::Scheduler, &self.schedulers),
            ] {
                if replicas.iter().all(Replica::is_finished) {
                    continue;
                }
                let holder = leases
                    .store()
                    .get(
                        &kube::runtime::reflector::ObjectRef::new(component.lease_name())
                            .within("kube-system"),
                    )
                    .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
                    .unwrap_or_default();
                if !replicas.iter().any(|r| r.identity == holder) {
                    missing.push(format!("a {component} leader"));
                }
            }
            missing
        };
        let wait = async {
            nodes.ready().await;
            leases.ready().await;
            loop {
                if missing().is_empty() {
                    return;
                }
                tokio::select! {
                    _ = node_changes.recv() => {}
                    _ = lease_changes.recv() => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::NotReady {
                timeout,
                missing: missing().join(", "),
            }),
        }
    }

    /// The controller-manager replicas.
    pub fn controller_managers(&self) -> &[Replica] {
        &self.controller_managers
    }

    /// The scheduler replicas.
    pub fn schedulers(&self) -> &[Replica] {
        &self.schedulers
    }

    /// The replicas of `component`.
    pub fn replicas(&self, component: Elected) -> &[Replica] {
        match component {
            Elected::ControllerManager => &self.controller_managers,
            Elected::Scheduler => &self.schedulers,
        }
    }

    /// The identity holding `component`'s Lease, read through the API (None when nobody holds it).
    ///
    /// # Errors
    /// [`Error::Api`] when the Lease cannot be read.
    pub async fn leader(&self, component: Elected) -> Result<Option<String>> {
        use k8s_openapi::api::coordination::v1::Lease;
        let leases = kube::Api::<Lease>::namespaced(self.client()?, "kube-system");
        let lease = leases
            .get_opt(component.lease_name())
            .await
            .map_err(|source| Error::Api {
                what: format!("read the Lease kube-system/{}", component.lease_name()),
                source,
            })?;
        Ok(lease
            .and_then(|l| l.spec?.holder_identity)
            .filter(|h| !h.is_empty()))
    }

    /// The replica of `component` that currently leads.
    async fn leading_replica(&self, component: Elected) -> Result<&Replica> {
        let holder = self.leader(component).await?;
        self.replicas(component)
            .iter()
            .find(|r| Some(r.identity()) == holder.as_deref() && !r.is_finished())
            .ok_or_else(|| Error::NoLeader {
                component,
                holder: holder.unwrap_or_else(|| "nobody".into()),
            })
    }

    /// Stop the leading replica of `component` as on SIGTERM (see [`Replica::stop`]) and wait
    /// until it has stopped (it is killed if it takes longer than 10 s); returns its identity.
    ///
    /// # Errors
    /// [`Error::NoLeader`] when no running replica leads.
    pub async fn stop_leader(&self, component: Elected) -> Result<String> {
        let replica = self.leading_replica(component).await?;
        replica.stop();
        replica
            .join(tokio::time::Instant::now() + STOP_DEADLINE)
            .await;
        Ok(replica.identity.clone())
    }

    /// Kill the leading replica of `component` (no release: the others wait out the Lease);
    /// returns its identity.
    ///
    /// # Errors
    /// [`Error::NoLeader`] when no running replica leads.
    pub async fn kill_leader(&self, component: Elected) -> Result<String> {
        let replica = self.leading_replica(component).await?;
        replica.abort();
        replica
            .join(tokio::time::Instant::now() + STOP_DEADLINE)
            .await;
        Ok(replica.identity.clone())
    }

    /// The names of the cluster's nodes (only those whose kubelet runs, with `running`).
    pub fn node_names(&self, running: bool) -> Vec<String> {
        self.nodes
            .lock()
            .iter()
            .filter(|n| !running || n.running.is_some())
            .map(|n| n.config.node_name.clone())
            .collect()
    }

    /// Handles of the running kubelets, one per node.
    pub fn kubelets(&self) -> Vec<crate::kubelet::KubeletHandle> {
        self.nodes
            .lock()
            .iter()
            .filter_map(|n| Some(n.running.as_ref()?.handle.clone()))
            .collect()
    }

    /// The registry every node pulls images from.
    pub fn registry(&self) -> &Arc<crate::kubelet::runtime::Registry> {
        &self.registry
    }

    /// Add a node run by a new reference kubelet (capacity as the cluster's nodes unless given).
    /// Returns at once; the node registers and turns Ready on its own.
    ///
    /// # Errors
    /// [`Error::NodeExists`] when a node of that name exists.
    pub fn add_node(&self, name: &str, cpu: Option<&str>, memory: Option<&str>) -> Result<()> {
        let mut nodes = self.nodes.lock();
        if nodes.iter().any(|n| n.config.node_name == name) {
            return Err(Error::NodeExists(name.to_string()));
        }
        let template = &self.node_template;
        let mut kc = crate::kubelet::KubeletConfig::new(name);
        kc.cpu = cpu.unwrap_or(&template.node_cpu).to_string();
        kc.memory = memory.unwrap_or(&template.node_memory).to_string();
        kc.image_models = template.image_models.clone();
        kc.auth_token = template.apiserver.kubelet_token.clone();
        kc.registry = self.registry.clone();
        kc.sandbox_start = template.sandbox_start;
        if let Some(dir) = &template.static_pod_dir {
            let dir = dir.join(name);
            std::fs::create_dir_all(&dir).map_err(|source| Error::StaticPodDir {
                path: dir.display().to_string(),
                source,
            })?;
            kc.pod_manifest_path = Some(dir);
        }
        let running = self.run_kubelet(&kc)?;
        if template.kube_proxy {
            // The node's kube-proxy writes the rules straight into the node's (simulated)
            // kernel, which its kubelet's runtime reads.
            tokio::spawn(crate::proxy::run(
                client_as(&self.url(), crate::proxy::COMPONENT)?,
                self.clock.clone(),
                crate::proxy::ProxyConfig::new(name),
                Arc::new(kc.netfilter.clone()),
                self.shutdown.child_token(),
            ));
        }
        nodes.push(NodeAgent {
            config: kc,
            running: Some(running),
        });
        Ok(())
    }

    fn run_kubelet(&self, config: &crate::kubelet::KubeletConfig) -> Result<RunningKubelet> {
        let stop = self.shutdown.child_token();
        let (handle, task) = crate::kubelet::start(
            client_as(&self.url(), "kubelet")?,
            self.clock.clone(),
            config.clone(),
            stop.clone(),
        );
        Ok(RunningKubelet { handle, stop, task })
    }

    fn take_kubelet(&self, node: &str) -> Result<RunningKubelet> {
        let mut nodes = self.nodes.lock();
        let agent = nodes
            .iter_mut()
            .find(|n| n.config.node_name == node)
            .ok_or_else(|| Error::NoSuchNode(node.to_string()))?;
        agent
            .running
            .take()
            .ok_or_else(|| Error::KubeletNotRunning(node.to_string()))
    }

    /// Stop `node`'s kubelet: it stops posting status and renewing its Lease, and its containers
    /// stop with it (in the simulator a node's containers live in its kubelet). The Node object
    /// stays; the node lifecycle controller notices as it would a node that went down.
    ///
    /// # Errors
    /// [`Error::NoSuchNode`], [`Error::KubeletNotRunning`].
    pub async fn stop_kubelet(&self, node: &str) -> Result<()> {
        let kubelet = self.take_kubelet(node)?;
        kubelet.stop.cancel();
        let abort = kubelet.task.abort_handle();
        if tokio::time::timeout(STOP_DEADLINE, kubelet.task)
            .await
            .is_err()
        {
            abort.abort();
        }
        Ok(())
    }

    /// Kill `node`'s kubelet abruptly (no request in flight is finished).
    ///
    /// # Errors
    /// [`Error::NoSuchNode`], [`Error::KubeletNotRunning`].
    pub async fn kill_kubelet(&self, node: &str) -> Result<()> {
        let kubelet = self.take_kubelet(node)?;
        kubelet.task.abort();
        kubelet.stop.cancel();
        let _ = tokio::time::timeout(STOP_DEADLINE, kubelet.task).await;
        Ok(())
    }

    /// Start `node`'s kubelet again (after a stop or kill, or restart a running one): it
    /// registers again and runs the pods bound to the node from scratch, as after a reboot.
    ///
    /// # Errors
    /// [`Error::NoSuchNode`].
    pub async fn restart_kubelet(&self, node: &str) -> Result<()> {
        match self.stop_kubelet(node).await {
            Ok(()) | Err(Error::KubeletNotRunning(_)) => {}
            Err(e) => return Err(e),
        }
        let mut nodes = self.nodes.lock();
        let agent = nodes
            .iter_mut()
            .find(|n| n.config.node_name == node)
            .ok_or_else(|| Error::NoSuchNode(node.to_string()))?;
        agent.running = Some(self.run_kubelet(&agent.config)?);
        Ok(())
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

    /// Stop every component as on SIGTERM (controller-managers and schedulers first, so a
    /// leading scheduler releases its Lease; then the kubelets; then the apiserver) and wait for
    /// them, at most `deadline` of wall time; whatever has not stopped by then is aborted.
    ///
    /// # Errors
    /// [`Error::StopTimeout`] naming the components that had to be aborted.
    pub async fn stop(&self, deadline: Duration) -> Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        let mut late = Vec::new();
        let replicas: Vec<&Replica> = self
            .controller_managers
            .iter()
            .chain(&self.schedulers)
            .collect();
        for r in &replicas {
            r.stop();
        }
        for r in &replicas {
            if !r.join(until).await {
                late.push(format!("replica {}", r.identity));
            }
        }
        let kubelets: Vec<(String, RunningKubelet)> = self
            .nodes
            .lock()
            .iter_mut()
            .filter_map(|n| Some((n.config.node_name.clone(), n.running.take()?)))
            .collect();
        for (_, k) in &kubelets {
            k.stop.cancel();
        }
        for (name, k) in kubelets {
            let abort = k.task.abort_handle();
            if tokio::time::timeout_at(until, k.task).await.is_err() {
                abort.abort();
                late.push(format!("kubelet {name}"));
            }
        }
        self.shutdown.cancel();
        let server = self.server.lock().take();
        if let Some(server) = server {
            let abort = server.abort_handle();
            if tokio::time::timeout_at(until, server).await.is_err() {
                abort.abort();
                late.push("apiserver".into());
            }
        }
        if late.is_empty() {
            Ok(())
        } else {
            Err(Error::StopTimeout {
                deadline,
                late: late.join(", "),
            })
        }
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.lock().as_ref() {
            server.abort();
        }
        for n in self.nodes.lock().iter() {
            if let Some(k) = &n.running {
                k.task.abort();
            }
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
    build_client(url, None)
}

/// A kube client for a cluster URL with no credentials, for a component: it sends the
/// component's User-Agent, which names it as the field manager of its writes.
///
/// # Errors
/// [`Error::Client`].
pub fn client_as(url: &str, component: &str) -> Result<kube::Client> {
    build_client(url, Some(component))
}

fn build_client(url: &str, component: Option<&str>) -> Result<kube::Client> {
    use kube::client::ConfigExt;

    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::Client {
            url: url.to_string(),
            source: kube::Error::InferKubeconfig(kube::config::KubeconfigError::ParseClusterUrl(e)),
        })?;
    let mut config = kube::Config::new(uri);
    if let Some(component) = component {
        let agent = crate::k8s::user_agent(component);
        let value = http::HeaderValue::from_str(&agent).map_err(|e| Error::Client {
            url: url.to_string(),
            source: kube::Error::HttpError(e.into()),
        })?;
        config.headers.push((http::header::USER_AGENT, value));
    }
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
    let headers = config
        .extra_headers_layer()
        .map_err(|source| Error::Client {
            url: url.to_string(),
            source,
        })?;
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .layer(headers)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

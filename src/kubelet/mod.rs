//! The reference kubelet: a node agent that is an API client like every component.
//!
//! It registers its Node, renews its Lease in `kube-node-lease`, posts node status, watches the
//! pods bound to it (`fieldSelector=spec.nodeName=<node>`) and runs each through a pod worker
//! (`worker`, whose life as explicit state is `pod_state`): volumes and configuration
//! (`volumes`), images and containers through the [`runtime::Runtime`] (a simulator of real
//! images), lifecycle hooks (`hooks`), probes (`prober`), restarts with back-off (`backoff`),
//! status (`status`) and graceful termination. Its HTTP server (`server`) serves `/healthz`,
//! `/pods` and container logs, which the apiserver proxies for `kubectl logs`. With
//! [`KubeletConfig::overlay`] it also keeps its node's routes to other nodes' pods and carries
//! their tunnels ([`overlay`]).
//!
//! All timers run on the cluster clock.

mod backoff;
mod hooks;
mod hosts;
mod node;
pub mod overlay;
mod pod_state;
mod prober;
pub mod runtime;
mod security;
mod server;
mod service_env;
mod static_pods;
pub mod status;
pub mod streaming;
mod volumes;
mod worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus, Service};
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::runtime::{Runtime, SimRuntime};
use crate::clock::Clock;
use crate::events::Recorder;
use crate::runtime::{Change, Informer};

/// FNV-1a (128-bit): the stable ids the kubelet derives from names and contents (machine id,
/// image digests, static pod config hashes).
pub(crate) fn fnv128(data: &[u8]) -> u128 {
    data.iter()
        .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58du128, |h, b| {
            (h ^ *b as u128).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        })
}

/// Kubelet settings (upstream defaults where upstream has them).
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// The node's name.
    pub node_name: String,
    /// Register the Node (`--register-node`); when false the Node must exist.
    pub register_node: bool,
    /// CPU capacity (`"4"`).
    pub cpu: String,
    /// Memory capacity (`"8Gi"`).
    pub memory: String,
    /// Pod capacity (110).
    pub max_pods: i64,
    /// The node's InternalIP (loopback).
    pub node_ip: IpAddr,
    /// The first three octets of this node's pod IPs (`[127, 42, 7]` -> 127.42.7.x, continuing
    /// into the following third octets). Random by default, so that clusters sharing one
    /// machine's loopback range do not hand out the same pod IPs.
    pub pod_cidr: [u8; 3],
    /// How often node status is checked (10 s).
    pub status_update_frequency: Duration,
    /// How often node status is posted even without change (5 min).
    pub status_report_frequency: Duration,
    /// The node Lease's duration (40 s).
    pub lease_duration_seconds: i32,
    /// How often the Lease is renewed (10 s).
    pub lease_renew_interval: Duration,
    /// The port of the kubelet's HTTP server (0: any free port on the node IP).
    pub port: u16,
    /// A directory of static pod manifests (`--pod-manifest-path`).
    pub pod_manifest_path: Option<std::path::PathBuf>,
    /// A URL serving static pod manifests (`--manifest-url`).
    pub manifest_url: Option<String>,
    /// The user's image models (see `runtime::models`), already validated.
    pub image_models: Vec<runtime::models::ImageModel>,
    /// When set, every kubelet endpoint but `/healthz` needs `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// How long a pod's sandbox takes to start before its first container (500 ms; containerd
    /// takes about that on a real node).
    pub sandbox_start: Duration,
    /// The registry images are pulled from (one per cluster, so an image withdrawn from it is
    /// gone for every node).
    pub registry: Arc<runtime::Registry>,
    /// The node's Service rules (its kernel's, which kube-proxy programs): the node's, so they
    /// outlive a kubelet restart.
    pub netfilter: Arc<crate::netfilter::Netfilter>,
    /// Container logs rotate at this size (upstream's `containerLogMaxSize`, 10 MiB); only the
    /// current file is served, as upstream serves it.
    pub container_log_max_size: usize,
    /// Carry pod traffic to other nodes through tunnels between kubelets (see [`overlay`]), for
    /// nodes that do not share the machine's loopback; off: pods reach each other directly.
    pub overlay: bool,
}

impl KubeletConfig {
    /// A node named `name`.
    pub fn new(name: &str) -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        Self {
            node_name: name.to_string(),
            register_node: true,
            cpu: "4".into(),
            memory: "8Gi".into(),
            max_pods: 110,
            node_ip: IpAddr::from([127, 0, 0, 1]),
            pod_cidr: [127, rng.random_range(10..=250), rng.random_range(0..=200)],
            status_update_frequency: Duration::from_secs(10),
            status_report_frequency: Duration::from_secs(300),
            lease_duration_seconds: 40,
            lease_renew_interval: Duration::from_secs(10),
            port: 0,
            pod_manifest_path: None,
            manifest_url: None,
            image_models: Vec::new(),
            auth_token: None,
            registry: runtime::Registry::new(),
            netfilter: crate::netfilter::Netfilter::new(),
            sandbox_start: Duration::from_millis(500),
            container_log_max_size: runtime::log::DEFAULT_MAX_SIZE,
            overlay: false,
        }
    }
}

/// A container's previous instance, for `logs --previous`: its id and its log (the runtime has
/// removed the container; the kubelet keeps its log).
pub(crate) type PreviousLog = (String, Arc<Mutex<runtime::log::Log>>);

/// Per (pod uid, container): the current instance's id, and the logs of the instances the
/// kubelet knows (the current one and the previous one), by id. The current instance's log is
/// kept here too, so that it can still be read between its removal (at a restart) and the next
/// time the worker reports.
type ContainerLogs = HashMap<(String, String), (Option<String>, Vec<PreviousLog>)>;

/// What the pod workers of one kubelet share.
pub(crate) struct Shared {
    client: Client,
    clock: Clock,
    runtime: Arc<dyn Runtime>,
    recorder: Recorder,
    config: KubeletConfig,
    next_ip: Mutex<u32>,
    /// Container instances and their logs per (pod uid, container), for the log endpoint.
    logs: Mutex<ContainerLogs>,
    /// The status each pod worker last computed, by pod uid (upstream's status manager cache,
    /// which the log endpoint consults).
    statuses: Mutex<HashMap<String, PodStatus>>,
    /// Pods this kubelet runs, by `namespace/name`, with their uid.
    pods: Mutex<HashMap<String, String>>,
    /// The latest version of every pod this kubelet runs, by uid (for `/pods`).
    pod_objects: Mutex<HashMap<String, Arc<Pod>>>,
    /// The kubelet's copies of the ConfigMaps and Secrets its pods' volumes show.
    volume_sources: volumes::SourceCache,
    /// The node's own filesystem, which hostPath volumes show.
    host_fs: Arc<runtime::Fs>,
    /// Probe results by (namespace, pod, uid, container, probe type, result), for `/metrics/probes`.
    probe_counts: Mutex<
        std::collections::BTreeMap<
            (String, String, String, String, &'static str, &'static str),
            u64,
        >,
    >,
    /// Every Service, for containers' Service variables (started once the node is registered).
    services: std::sync::OnceLock<Informer<Service>>,
}

impl Shared {
    fn allocate_ip(&self) -> IpAddr {
        let mut next = self.next_ip.lock();
        *next = next.wrapping_add(1);
        // Skip .0 and .255 in the last octet.
        while *next % 256 == 0 || *next % 256 == 255 {
            *next = next.wrapping_add(1);
        }
        let [a, b, c] = self.config.pod_cidr;
        let third = c.wrapping_add(((*next >> 8) & 0xff) as u8);
        IpAddr::from([a, b, third, (*next & 0xff) as u8])
    }

    fn remember_logs(
        &self,
        uid: &str,
        pod: &Pod,
        app: &[worker::ContainerSlot],
        init: &[worker::ContainerSlot],
    ) {
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        self.pods.lock().insert(key, uid.to_string());
        let mut logs = self.logs.lock();
        for slot in app.iter().chain(init) {
            let (id, previous) = slot.log_state();
            let current = id
                .as_ref()
                .and_then(|id| Some((id.clone(), self.runtime.log(id)?)));
            let known = current.into_iter().chain(previous).collect();
            logs.insert((uid.to_string(), slot.name().to_string()), (id, known));
        }
    }

    fn count_probe(
        &self,
        pod: &k8s_openapi::api::core::v1::ObjectReference,
        container: &str,
        probe_type: &'static str,
        ok: bool,
    ) {
        let key = (
            pod.namespace.clone().unwrap_or_default(),
            pod.name.clone().unwrap_or_default(),
            pod.uid.clone().unwrap_or_default(),
            container.to_string(),
            probe_type,
            if ok { "successful" } else { "failed" },
        );
        *self.probe_counts.lock().entry(key).or_default() += 1;
    }

    /// The Services the kubelet has read, once it has read them all at least once (upstream
    /// refuses to build a container's environment before that).
    async fn services(&self) -> Result<Vec<Arc<Service>>, String> {
        const NOT_YET: &str =
            "services have not yet been read at least once, cannot construct envvars";
        let informer = self.services.get().ok_or(NOT_YET)?;
        self.clock
            .timeout(Duration::from_secs(2), informer.ready())
            .await
            .map_err(|_| NOT_YET.to_string())?;
        Ok(informer.store().state())
    }

    fn remember_status(&self, uid: &str, status: &PodStatus) {
        self.statuses.lock().insert(uid.to_string(), status.clone());
    }

    fn forget_logs(&self, uid: &str) {
        self.probe_counts.lock().retain(|k, _| k.2 != uid);
        self.logs.lock().retain(|(u, _), _| u != uid);
        self.statuses.lock().remove(uid);
        self.pods.lock().retain(|_, u| u != uid);
        self.pod_objects.lock().remove(uid);
    }

    /// A pod this kubelet has, by namespace and name (the one its workers last reported, when
    /// an older pod of that name is still being cleaned up).
    pub(crate) fn pod_by_name(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let reported = self
            .pods
            .lock()
            .get(&format!("{namespace}/{name}"))
            .cloned();
        let objects = self.pod_objects.lock();
        if let Some(pod) = reported.and_then(|uid| objects.get(&uid)) {
            return Some(pod.clone());
        }
        objects
            .values()
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    }

    /// The running instance (its runtime id) of a pod's container, if it runs.
    pub(crate) fn running_container(&self, pod: &Pod, container: &str) -> Option<String> {
        let uid = pod.metadata.uid.clone()?;
        let id = self
            .logs
            .lock()
            .get(&(uid, container.to_string()))?
            .0
            .clone()?;
        matches!(
            self.runtime.state(&id),
            Some(runtime::ProcessState::Running { .. })
        )
        .then_some(id)
    }

    /// The status the kubelet last computed for a pod (none before its worker first did).
    pub(crate) fn computed_status(&self, uid: &str) -> Option<PodStatus> {
        self.statuses.lock().get(uid).cloned()
    }

    /// The log of a container instance of a pod, by the instance's id: as the kubelet kept it,
    /// or from the runtime.
    pub(crate) fn container_log(
        &self,
        uid: &str,
        container: &str,
        id: &str,
    ) -> Option<Arc<Mutex<runtime::log::Log>>> {
        let known = self
            .logs
            .lock()
            .get(&(uid.to_string(), container.to_string()))
            .and_then(|(_, known)| known.iter().find(|(i, _)| i == id).cloned());
        match known {
            Some((_, log)) => Some(log),
            None => self.runtime.log(id),
        }
    }
}

/// A running kubelet's handles: stop it, or make it fall silent (as a hung node).
#[derive(Clone)]
pub struct KubeletHandle {
    /// The node's name.
    pub node_name: String,
    paused: watch::Sender<bool>,
    /// How many times the kubelet has looked for (or tried to register) its Node so far.
    node_lookups: watch::Receiver<u32>,
}

impl KubeletHandle {
    /// How many times the kubelet has looked for its Node (with `register_node: false`) or
    /// tried to register it, so far: a barrier for "it looked and did nothing".
    pub fn node_lookups(&self) -> watch::Receiver<u32> {
        self.node_lookups.clone()
    }

    /// Stop (or resume) heartbeats and status reports, as a node whose kubelet hangs.
    pub fn set_silent(&self, silent: bool) {
        self.paused.send_replace(silent);
    }
}

/// Run a kubelet until `shutdown`.
pub async fn run(client: Client, clock: Clock, config: KubeletConfig, shutdown: CancellationToken) {
    let (handle, task) = start(client, clock, config, shutdown);
    drop(handle);
    task.await.ok();
}

/// Start a kubelet; returns its handle and the task that runs it.
pub fn start(
    client: Client,
    clock: Clock,
    config: KubeletConfig,
    shutdown: CancellationToken,
) -> (KubeletHandle, tokio::task::JoinHandle<()>) {
    let (paused, paused_rx) = watch::channel(false);
    let (lookups, node_lookups) = watch::channel(0);
    let handle = KubeletHandle {
        node_name: config.node_name.clone(),
        paused,
        node_lookups,
    };
    let runtime: Arc<dyn Runtime> = SimRuntime::with_registry(
        clock.clone(),
        config.image_models.clone(),
        config.registry.clone(),
        config.netfilter.clone(),
    )
    .with_log_max_size(config.container_log_max_size);
    let shared = Arc::new(Shared {
        recorder: Recorder::core(client.clone(), clock.clone(), "kubelet", &config.node_name),
        client,
        clock,
        runtime,
        config,
        next_ip: Mutex::new(1),
        logs: Mutex::new(HashMap::new()),
        statuses: Mutex::new(HashMap::new()),
        pods: Mutex::new(HashMap::new()),
        pod_objects: Mutex::new(HashMap::new()),
        probe_counts: Mutex::new(std::collections::BTreeMap::new()),
        services: std::sync::OnceLock::new(),
        volume_sources: volumes::SourceCache::default(),
        host_fs: Arc::new(runtime::Fs::node()),
    });
    let task = tokio::spawn(agent(shared, paused_rx, lookups, shutdown));
    (handle, task)
}

async fn agent(
    shared: Arc<Shared>,
    paused: watch::Receiver<bool>,
    lookups: watch::Sender<u32>,
    shutdown: CancellationToken,
) {
    let config = shared.config.clone();
    let port = match server::start(shared.clone(), shutdown.clone()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(node = %config.node_name, cause = %e, "cannot start the kubelet server");
            return;
        }
    };
    let Some(_node) = node::register(
        &shared.client,
        &shared.clock,
        &config,
        port,
        &shared.recorder,
        &lookups,
        &shutdown,
    )
    .await
    else {
        return;
    };
    if let Some(dir) = config.pod_manifest_path.clone() {
        tokio::spawn(static_pods::run(
            shared.clone(),
            static_pods::Source::Dir(dir),
            shutdown.clone(),
        ));
    }
    if let Some(url) = config.manifest_url.clone() {
        tokio::spawn(static_pods::run(
            shared.clone(),
            static_pods::Source::Url(url),
            shutdown.clone(),
        ));
    }
    tokio::spawn(node::heartbeat(
        shared.client.clone(),
        shared.clock.clone(),
        config.clone(),
        paused.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(node::report_status(
        shared.client.clone(),
        shared.clock.clone(),
        config.clone(),
        port,
        || serde_json::json!([]),
        paused.clone(),
        shutdown.clone(),
    ));

    if config.overlay {
        tokio::spawn(overlay::run(
            shared.client.clone(),
            config.netfilter.clone(),
            config.node_name.clone(),
            overlay::pod_range(config.pod_cidr),
            config.auth_token.clone(),
            shutdown.clone(),
        ));
    }

    let _ = shared.services.set(Informer::start(
        Api::all(shared.client.clone()),
        watcher::Config::default(),
        shutdown.clone(),
    ));

    // Pods bound to this node.
    let api: Api<Pod> = Api::all(shared.client.clone());
    let informer = Informer::start(
        api,
        watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name)),
        shutdown.clone(),
    );
    let mut changes = informer.subscribe();
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = informer.ready() => {}
    }
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
    let dispatch =
        |pod: Arc<Pod>, workers: &mut HashMap<String, watch::Sender<Option<Arc<Pod>>>>| {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            shared.pod_objects.lock().insert(uid.clone(), pod.clone());
            match workers.get(&uid) {
                Some(tx) if !tx.is_closed() => {
                    tx.send_replace(Some(pod));
                }
                _ => {
                    let (tx, rx) = watch::channel(Some(pod));
                    tokio::spawn(worker::run(shared.clone(), rx));
                    workers.insert(uid, tx);
                }
            }
        };
    for pod in informer.store().state() {
        dispatch(pod, &mut workers);
    }
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = changes.recv() => c,
        };
        match change {
            Ok(Change::Applied(pod)) => {
                // A silent (hung) kubelet does not act on new pods either.
                if !*paused.borrow() {
                    dispatch(pod, &mut workers);
                }
            }
            Ok(Change::Deleted(pod)) => {
                if let Some(tx) = workers.remove(pod.metadata.uid.as_deref().unwrap_or_default()) {
                    tx.send_replace(None);
                }
            }
            Ok(Change::Resync) | Err(_) => {
                for pod in informer.store().state() {
                    dispatch(pod, &mut workers);
                }
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
    for (_, tx) in workers.drain() {
        tx.send_replace(None);
    }
}

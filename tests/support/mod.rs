//! Shared plumbing for the tests: one builder for every test's reference cluster, waits on
//! watches with deadlines in cluster time ([`waits`]), nodes, and a stand-in kubelet that only
//! speaks the API (heartbeats, Ready pods, finishing graceful deletions).

#![allow(dead_code)]

pub mod cli;
pub mod etcd;
pub mod seen;
pub mod waits;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use kubespec::clock::{format_micro_time, format_time, Clock};
use kubespec::cluster::{ClusterConfig, RunningCluster};
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[allow(unused_imports)] // not every test waits on watches
pub use waits::{minutes, Waits};

/// How a test's reference cluster is built: the whole control plane (one controller-manager,
/// one scheduler) on a real-time clock and no nodes, unless asked otherwise; without kubeadm's
/// system pods (control-plane mirror pods, kube-proxy's DaemonSet), so a test sees only the pods
/// it makes (`tests/control_plane_pods.rs` and the feature suite cover those).
pub fn cluster() -> ClusterBuilder {
    ClusterBuilder(ClusterConfig {
        system_pods: false,
        ..ClusterConfig::default()
    })
}

/// The settings of a test's reference cluster (see [`cluster`]).
#[must_use]
pub struct ClusterBuilder(ClusterConfig);

impl ClusterBuilder {
    /// Only the apiserver: no controller-manager, no scheduler.
    pub fn apiserver_only(mut self) -> Self {
        self.0.controller_managers = 0;
        self.0.schedulers = 0;
        self
    }

    /// Cluster seconds per wall second.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.0.time_scale = scale;
        self
    }

    /// How many controller-manager replicas campaign for the lease.
    pub fn controller_managers(mut self, n: usize) -> Self {
        self.0.controller_managers = n;
        self
    }

    /// How many scheduler replicas campaign for the lease.
    pub fn schedulers(mut self, n: usize) -> Self {
        self.0.schedulers = n;
        self
    }

    /// How many nodes, each a reference kubelet (`node-1`, `node-2`, ...).
    pub fn nodes(mut self, n: usize) -> Self {
        self.0.nodes = n;
        self
    }

    /// How many terminated pods the pod garbage collector leaves (upstream's
    /// `--terminated-pod-gc-threshold`, 12500).
    pub fn terminated_pod_gc_threshold(mut self, threshold: i32) -> Self {
        self.0.pod_gc.terminated_pod_gc_threshold = threshold;
        self
    }

    /// The user's image models for every node's runtime.
    pub fn image_models(
        mut self,
        models: Vec<kubespec::kubelet::runtime::models::ImageModel>,
    ) -> Self {
        self.0.image_models = models;
        self
    }

    /// How many revisions of watch history the apiserver keeps.
    pub fn history_limit(mut self, revisions: usize) -> Self {
        self.0.apiserver.history_limit = revisions;
        self
    }

    /// The bearer token between the apiserver and the kubelets.
    pub fn kubelet_token(mut self, token: &str) -> Self {
        self.0.apiserver.kubelet_token = Some(token.into());
        self
    }

    /// How long a request's body may take to arrive.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.0.apiserver.request_timeout = timeout;
        self
    }

    /// Start it and return once it is ready. Without a controller-manager, the initial
    /// namespaces get the `default` ServiceAccount it would make, so that pods can be created
    /// (the ServiceAccount admission refuses a pod whose account does not exist).
    pub async fn start(self) -> RunningCluster {
        let without_controllers = self.0.controller_managers == 0;
        let namespaces = self.0.apiserver.initial_namespaces.clone();
        let cluster = RunningCluster::start(self.0)
            .await
            .expect("the cluster starts");
        if without_controllers {
            let client = cluster.client().unwrap();
            for ns in namespaces {
                default_service_account(&client, &ns).await;
            }
        }
        cluster
    }
}

/// Create the `default` ServiceAccount of `namespace`, as the service account controller would
/// (for clusters that run no controller-manager).
pub async fn default_service_account(client: &Client, namespace: &str) {
    let account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
    match Api::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &account)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("cannot create the default ServiceAccount of {namespace}: {e}"),
    }
}

/// Register a Ready node with the given cpu.
pub async fn add_node(client: &Client, name: &str, cpu: &str) {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
        },
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

/// Stand-in for kubelets until the real one lands: only through the API, it renews the node
/// Leases of `nodes`, makes their bound pods Running and Ready, and finishes graceful deletions.
pub struct FakeKubelets {
    pub nodes: Arc<Mutex<HashSet<String>>>,
    stop: CancellationToken,
}

impl FakeKubelets {
    pub fn start(client: Client, clock: Clock, nodes: &[&str]) -> Self {
        let set: Arc<Mutex<HashSet<String>>> =
            Arc::new(Mutex::new(nodes.iter().map(|n| n.to_string()).collect()));
        let stop = CancellationToken::new();
        // Heartbeats every 10 s of cluster time.
        {
            let (client, clock, set, stop) =
                (client.clone(), clock.clone(), set.clone(), stop.clone());
            tokio::spawn(async move {
                let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
                loop {
                    let names: Vec<String> = set.lock().iter().cloned().collect();
                    for name in names {
                        let now = format_micro_time(clock.now());
                        let lease: Lease = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "kube-node-lease"},
                            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}})).unwrap();
                        let pp = PatchParams::apply("fake-kubelet").force();
                        let _ = leases.patch(&name, &pp, &Patch::Apply(&lease)).await;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = clock.sleep(Duration::from_secs(10)) => {}
                    }
                }
            });
        }
        // Pods: Ready once bound; deleted for good once marked for deletion.
        {
            let (client, clock, set, stop) =
                (client.clone(), clock.clone(), set.clone(), stop.clone());
            tokio::spawn(async move {
                let pods: Api<Pod> = Api::all(client.clone());
                let mut stream = watcher(pods, watcher::Config::default()).boxed();
                loop {
                    let event = tokio::select! {
                        _ = stop.cancelled() => return,
                        e = stream.next() => e,
                    };
                    let objects = match event {
                        Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                            vec![p]
                        }
                        Some(_) => continue,
                        None => return,
                    };
                    for pod in objects {
                        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                            continue;
                        };
                        if !set.lock().contains(&node) {
                            continue;
                        }
                        let ns = pod.metadata.namespace.clone().unwrap_or_default();
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                        if pod.metadata.deletion_timestamp.is_some() {
                            let _ = api
                                .delete(&name, &DeleteParams::default().grace_period(0))
                                .await;
                            continue;
                        }
                        let ready = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            });
                        if ready {
                            continue;
                        }
                        let now = format_time(clock.now());
                        let patch = json!({"status": {"phase": "Running", "podIP": "127.0.0.1", "startTime": now, "conditions": [
                            {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}]}});
                        let _ = api
                            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                            .await;
                    }
                }
            });
        }
        Self { nodes: set, stop }
    }

    /// Stop pretending to be the kubelet of `node` (no more heartbeats or pod updates).
    pub fn silence(&self, node: &str) {
        self.nodes.lock().remove(node);
    }
}

impl Drop for FakeKubelets {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Events about an object (by involvedObject.name), by last update, as `reason: message`, with
/// ` (xN)` when an identical event was recorded N times (upstream's aggregation).
///
/// Components write their events from a queue, after the state changes they record may already
/// be visible (as client-go's recorders do): the list is read until it has stayed the same for
/// 300 ms of wall time (at most 10 s), so what was recorded before the test looked is in it.
pub async fn events_for(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let read = || async {
        let list = api
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .unwrap();
        describe_events(list.items)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = read().await;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read().await;
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// Events by last update, as `reason: message`, with ` (xN)` when an identical event was
/// recorded N times.
pub fn describe_events(events: impl IntoIterator<Item = Event>) -> Vec<String> {
    let mut events: Vec<(String, String)> = events
        .into_iter()
        .map(|e| {
            let when = e.metadata.resource_version.clone().unwrap_or_default();
            let count = e.count.unwrap_or(1);
            let repeated = if count > 1 {
                format!(" (x{count})")
            } else {
                String::new()
            };
            (
                format!("{:0>20}", when),
                format!(
                    "{}: {}{repeated}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                ),
            )
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, e)| e).collect()
}

/// A deployment manifest.
pub fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
) -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": image, "resources": {"requests": {"cpu": "100m"}}}]}},
        },
    }))
    .unwrap()
}

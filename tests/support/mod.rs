//! Shared plumbing for the control-plane tests: a cluster, nodes, a stand-in kubelet that only
//! speaks the API (heartbeats, Ready pods, finishing graceful deletions), and waits with
//! deadlines that say what they saw.

#![allow(dead_code)]

pub mod cli;

use std::collections::HashSet;
use std::future::Future;
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

/// A cluster at `time_scale` with the given replicas.
pub async fn cluster(
    time_scale: f64,
    controller_managers: usize,
    schedulers: usize,
) -> RunningCluster {
    let config = ClusterConfig {
        time_scale,
        controller_managers,
        schedulers,
        ..ClusterConfig::default()
    };
    RunningCluster::start(config).await.expect("cluster starts")
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

/// Poll `check` until it returns `Ok`, for at most `timeout` of wall time; on expiry fail with
/// what was expected and the last thing seen.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// Events about an object (by involvedObject.name), by last update, as `reason: message`, with
/// ` (xN)` when an identical event was recorded N times (upstream's aggregation).
pub async fn events_for(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    let mut events: Vec<(String, String)> = list
        .items
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

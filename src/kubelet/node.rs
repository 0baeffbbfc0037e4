//! The node side of the kubelet: registration, the node Lease heartbeat, node status and the
//! node's events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::KubeletConfig;
use crate::clock::{format_micro_time, format_time, Clock};
use crate::events::{reference, EventType, Recorder};
use crate::k8s::{go_arch, GIT_VERSION};

/// The node's conditions, with upstream's reasons and messages.
fn conditions(now: &str, transition: &str) -> Value {
    json!([
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": transition},
        {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": transition},
        {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": transition},
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": transition},
    ])
}

fn node_status(
    config: &KubeletConfig,
    port: u16,
    now: &str,
    transition: &str,
    images: Value,
) -> Value {
    let resources = json!({"cpu": config.cpu, "memory": config.memory, "pods": config.max_pods.to_string(), "ephemeral-storage": "100Gi"});
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(now, transition),
        "addresses": [{"type": "InternalIP", "address": config.node_ip.to_string()}, {"type": "Hostname", "address": config.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": format!("{:032x}", super::fnv128(config.node_name.as_bytes())),
            "systemUUID": uuid::Uuid::from_u128(super::fnv128(config.node_name.as_bytes())).to_string(),
            "bootID": uuid::Uuid::new_v4().to_string(),
            "kernelVersion": "6.1.0-kubespec",
            "osImage": "kubespec simulated node",
            "containerRuntimeVersion": "kubespec-sim://0.1.0",
            "kubeletVersion": GIT_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": std::env::consts::OS,
            "architecture": go_arch(),
        },
        "images": images,
    })
}

/// Register the node (or wait for it when registration is off) and record the start-up events.
pub async fn register(
    client: &Client,
    clock: &Clock,
    config: &KubeletConfig,
    port: u16,
    recorder: &Recorder,
    lookups: &tokio::sync::watch::Sender<u32>,
    shutdown: &CancellationToken,
) -> Option<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let now = format_time(clock.now());
    let mut annotations = json!({"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"});
    let pod_range = config
        .overlay
        .then(|| super::overlay::pod_range(config.pod_cidr).to_string());
    if let Some(range) = &pod_range {
        annotations[super::overlay::ANNOTATION] = json!(range);
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": config.node_name, "labels": {
            "kubernetes.io/hostname": config.node_name,
            "kubernetes.io/os": std::env::consts::OS,
            "kubernetes.io/arch": go_arch(),
            "beta.kubernetes.io/os": std::env::consts::OS,
            "beta.kubernetes.io/arch": go_arch(),
        }, "annotations": annotations},
        "status": node_status(config, port, &now, &now, json!([])),
    }))
    .ok()?;
    let registered = loop {
        if config.register_node {
            match api.create(&PostParams::default(), &node).await {
                Ok(n) => break n,
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    // Already registered (a restart): reconcile the status.
                    let patch = json!({"status": node_status(config, port, &now, &now, json!([]))});
                    match api
                        .patch_status(
                            &config.node_name,
                            &PatchParams::default(),
                            &Patch::Merge(patch),
                        )
                        .await
                    {
                        Ok(n) => break n,
                        Err(e) => {
                            tracing::warn!(node = %config.node_name, cause = %e, "cannot update the node status")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %config.node_name, cause = %e, "cannot register the node; retrying")
                }
            }
        } else if let Ok(Some(existing)) = api.get_opt(&config.node_name).await {
            let patch = json!({"status": node_status(config, port, &now, &now, json!([]))});
            if let Ok(n) = api
                .patch_status(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
            {
                break n;
            }
            let _ = existing;
        }
        lookups.send_modify(|n| *n = n.saturating_add(1));
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = clock.sleep(Duration::from_secs(2)) => {}
        }
    };
    let registered = match pod_range {
        Some(range) => announce_pod_range(&api, registered, &range, clock, shutdown).await?,
        None => registered,
    };
    let node_ref = reference(&registered);
    let name = &config.node_name;
    recorder
        .record(
            &node_ref,
            EventType::Normal,
            "Starting",
            "",
            "Starting kubelet.",
        )
        .await;
    for reason in [
        "NodeHasSufficientMemory",
        "NodeHasNoDiskPressure",
        "NodeHasSufficientPID",
    ] {
        recorder
            .record(
                &node_ref,
                EventType::Normal,
                reason,
                "",
                &format!("Node {name} status is now: {reason}"),
            )
            .await;
    }
    recorder
        .record(
            &node_ref,
            EventType::Normal,
            "NodeAllocatableEnforced",
            "",
            "Updated Node Allocatable limit across pods",
        )
        .await;
    recorder
        .record(
            &node_ref,
            EventType::Normal,
            "NodeReady",
            "",
            &format!("Node {name} status is now: NodeReady"),
        )
        .await;
    Some(registered)
}

/// Make sure the Node announces the node's pod range (a Node registered before, or by someone
/// else, may not), retrying until it does or until `shutdown`.
async fn announce_pod_range(
    api: &Api<Node>,
    node: Node,
    range: &str,
    clock: &Clock,
    shutdown: &CancellationToken,
) -> Option<Node> {
    let announced = |n: &Node| {
        n.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::overlay::ANNOTATION))
            .is_some_and(|r| r == range)
    };
    if announced(&node) {
        return Some(node);
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"annotations": {super::overlay::ANNOTATION: range}}});
    loop {
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(n) => return Some(n),
            Err(e) => {
                tracing::warn!(node = %name, cause = %e, "cannot announce the node's pod range; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = clock.sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Renew the node Lease every `renew_interval` until `shutdown` (or until heartbeats are paused).
pub async fn heartbeat(
    client: Client,
    clock: Clock,
    config: KubeletConfig,
    paused: tokio::sync::watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    loop {
        if !*paused.borrow() {
            let now = format_micro_time(clock.now());
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": config.node_name, "namespace": "kube-node-lease",
                    "ownerReferences": []},
                "spec": {"holderIdentity": config.node_name, "leaseDurationSeconds": config.lease_duration_seconds, "renewTime": now},
            });
            let pp = PatchParams::apply("kubelet").force();
            if let Err(e) = api
                .patch(&config.node_name, &pp, &Patch::Apply(&lease))
                .await
            {
                tracing::debug!(node = %config.node_name, cause = %e, "cannot renew the node lease");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = clock.sleep(config.lease_renew_interval) => {}
        }
    }
}

/// Post node status every `status_update_frequency` when it changed, and at least every
/// `status_report_frequency` (a heartbeat through lastHeartbeatTime).
pub async fn report_status(
    client: Client,
    clock: Clock,
    config: KubeletConfig,
    port: u16,
    images: impl Fn() -> Value + Send,
    paused: tokio::sync::watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<Node> = Api::all(client);
    let started = clock.now();
    let mut last_report: DateTime<Utc> = started;
    let mut last_images = Value::Null;
    let mut was_paused = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = clock.sleep(config.status_update_frequency) => {}
        }
        if *paused.borrow() {
            was_paused = true;
            continue;
        }
        let now = clock.now();
        let images_now = images();
        // After a silence the node controller may have marked the node Unknown: report at once.
        let due = was_paused
            || now - last_report
                >= chrono::Duration::from_std(config.status_report_frequency).unwrap_or_default();
        was_paused = false;
        if !due && images_now == last_images {
            continue;
        }
        let stamp = format_time(now);
        let transition = format_time(started);
        let patch =
            json!({"status": node_status(&config, port, &stamp, &transition, images_now.clone())});
        match api
            .patch_status(
                &config.node_name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => {
                last_report = now;
                last_images = images_now;
            }
            Err(e) => {
                tracing::debug!(node = %config.node_name, cause = %e, "cannot post node status")
            }
        }
    }
}

//! The reference kubelet end to end: real images' behaviour, probes, restarts and back-off,
//! image pulls, volumes, restart policies and termination, observed only through the API.

#[path = "../support/mod.rs"]
mod support;

mod agnhost;
mod containers;
mod hooks;
mod network;
mod node;
mod overlay;
mod probes;
mod volumes;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use kubespec::harness::timeline::{Kind, Object, State};
use serde_json::json;
use support::{cluster, events_for, minutes, seen, Waits};

/// A cluster at 20x (ten minutes of cluster time are half a minute of wall time) with one node,
/// and watches on it.
async fn one_node() -> (kubespec::cluster::RunningCluster, Client, Waits) {
    let cluster = cluster().time_scale(20.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    (cluster, client, waits)
}

async fn create_pod(client: &Client, pod: serde_json::Value) -> Api<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    pods
}

fn container_status(pod: &Pod) -> serde_json::Value {
    serde_json::to_value(pod).unwrap()["status"]["containerStatuses"][0].clone()
}

/// Whether the first container of pod `name` runs; else its status.
fn running(s: &State, name: &str) -> Result<(), String> {
    let cs = seen::container_status(s, name);
    if cs["state"]["running"].is_object() {
        Ok(())
    } else {
        Err(cs.to_string())
    }
}

/// Pod `name` (as JSON) once it is in `phase`; else its status.
fn in_phase(s: &State, name: &str, phase: &str) -> Result<serde_json::Value, String> {
    let p = seen::pod_json(s, name);
    if p["status"]["phase"] == phase {
        Ok(p)
    } else {
        Err(p["status"].to_string())
    }
}

/// Whether pod `name` is gone.
fn gone(s: &State, name: &str) -> Result<(), String> {
    match seen::pod(s, name) {
        None => Ok(()),
        Some(p) => Err(format!("still there: {:?}", p.status)),
    }
}

fn ts(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or("1970-01-01T00:00:00Z"))
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

//! Node and pod fixtures shared by the plugins' unit tests.

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

pub(super) fn node(v: serde_json::Value) -> Node {
    serde_json::from_value(v).expect("node json")
}

pub(super) fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).expect("pod json")
}

/// A node offering `cpu`, `memory` and 110 pods.
pub(super) fn plain_node(name: &str, cpu: &str, memory: &str) -> Node {
    node(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}
    }))
}

pub(super) fn requesting(name: &str, cpu: &str, memory: &str) -> Pod {
    pod(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    }))
}

pub(super) fn best_effort(name: &str) -> Pod {
    pod(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
}

pub(super) fn best_index(scores: &[i64]) -> usize {
    let max = *scores.iter().max().unwrap();
    scores.iter().position(|s| *s == max).unwrap()
}

//! The node printer: readiness, roles, addresses and the node's reported system info.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{age, boolean, field, list, name_of, or_default, s, text, NONE, UNKNOWN};

fn node_status(node: &Value) -> String {
    // Only the Ready condition is summarised; a later duplicate wins.
    let ready = list(node, &["status", "conditions"])
        .iter()
        .filter(|c| text(c, &["type"]) == "Ready")
        .last();
    let mut parts: Vec<&str> = vec![match ready {
        Some(c) if text(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if boolean(node, &["spec", "unschedulable"]) {
        parts.push("SchedulingDisabled");
    }
    parts.join(",")
}

fn node_roles(node: &Value) -> String {
    const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
    const ROLE_LABEL: &str = "kubernetes.io/role";
    let mut roles: BTreeSet<String> = BTreeSet::new();
    if let Some(Value::Object(labels)) = field(node, &["metadata", "labels"]) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix(ROLE_PREFIX) {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if key == ROLE_LABEL {
                let value = value.as_str().unwrap_or("");
                if !value.is_empty() {
                    roles.insert(value.to_string());
                }
            }
        }
    }
    if roles.is_empty() {
        NONE.to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, type_: &str) -> String {
    list(node, &["status", "addresses"])
        .iter()
        .find(|a| text(a, &["type"]) == type_)
        .map(|a| text(a, &["address"]).to_string())
        .unwrap_or_else(|| NONE.to_string())
}

pub(super) fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let info =
        |key: &str| or_default(text(node, &["status", "nodeInfo", key]), UNKNOWN).to_string();
    vec![
        s(name_of(node)),
        s(node_status(node)),
        s(node_roles(node)),
        s(age(node, now)),
        s(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        s(node_address(node, "InternalIP")),
        s(node_address(node, "ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

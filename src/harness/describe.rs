//! What the timeline shows, in words: which objects a selector means, one line per pod or
//! workload, and an object's last events. Wait failures are built from these.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};

use super::params::{glob_match, Selector};
use super::timeline::{Kind, Object, State};

/// Every object the selector means that exists now.
pub fn current<'a>(state: &'a State, namespace: &str, selector: &Selector) -> Vec<&'a Object> {
    match selector {
        Selector::Named { kind, pattern } => state
            .of_kind(*kind)
            .filter(|o| named(o, *kind, pattern, namespace))
            .collect(),
        Selector::PodsOf { owner, name } => {
            let owners = owner_uids(state, *owner, name);
            state
                .of_kind(Kind::Pod)
                .filter(|o| controller_uid(o).is_some_and(|u| owners.contains(&u.to_string())))
                .collect()
        }
    }
}

/// Every object the selector means that the timeline ever saw (deleted ones too, in their last
/// state), by uid: events are scoped to these.
pub fn ever(state: &State, namespace: &str, selector: &Selector) -> Vec<Arc<Object>> {
    let mut by_uid: BTreeMap<String, Arc<Object>> = BTreeMap::new();
    let owners = match selector {
        Selector::PodsOf { owner, name } => Some(ever_owner_uids(state, *owner, name)),
        Selector::Named { .. } => None,
    };
    for e in &state.entries {
        let Some(o) = &e.object else { continue };
        let matches = match (selector, &owners) {
            (Selector::Named { kind, pattern }, _) => {
                o.kind() == *kind && named(o, *kind, pattern, namespace)
            }
            (Selector::PodsOf { .. }, Some(owners)) => {
                o.kind() == Kind::Pod
                    && controller_uid(o).is_some_and(|u| owners.contains(&u.to_string()))
            }
            _ => false,
        };
        if matches {
            by_uid.insert(o.uid().to_string(), o.clone());
        }
    }
    by_uid.into_values().collect()
}

/// Whether `o` is what `pattern` names: `NAME` in the scenario's scope, or `NAMESPACE/NAME`.
fn named(o: &Object, kind: Kind, pattern: &str, namespace: &str) -> bool {
    match pattern.split_once('/') {
        Some((ns, name)) => o.meta().namespace.as_deref() == Some(ns) && glob_match(name, o.name()),
        None => in_scope(o, kind, namespace) && glob_match(pattern, o.name()),
    }
}

fn in_scope(o: &Object, kind: Kind, namespace: &str) -> bool {
    match kind {
        Kind::Node => true,
        Kind::Lease => true,
        _ => o.meta().namespace.as_deref() == Some(namespace),
    }
}

/// The uid of the object's controller (its ownerReference with `controller: true`).
pub fn controller_uid(o: &Object) -> Option<&str> {
    o.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// The uids of the ReplicaSets that `owner`/`name` means: the ReplicaSet itself, or those a
/// Deployment controls.
fn owner_uids(state: &State, owner: Kind, name: &str) -> Vec<String> {
    match owner {
        Kind::ReplicaSet => state
            .of_kind(Kind::ReplicaSet)
            .filter(|o| o.name() == name)
            .map(|o| o.uid().to_string())
            .collect(),
        // A Job's pods are its own.
        Kind::Job => state
            .of_kind(Kind::Job)
            .filter(|o| o.name() == name)
            .map(|o| o.uid().to_string())
            .collect(),
        Kind::Deployment => {
            let deployments: Vec<String> = state
                .of_kind(Kind::Deployment)
                .filter(|o| o.name() == name)
                .map(|o| o.uid().to_string())
                .collect();
            state
                .of_kind(Kind::ReplicaSet)
                .filter(|o| controller_uid(o).is_some_and(|u| deployments.contains(&u.to_string())))
                .map(|o| o.uid().to_string())
                .collect()
        }
        _ => Vec::new(),
    }
}

fn ever_owner_uids(state: &State, owner: Kind, name: &str) -> Vec<String> {
    let mut deployments = Vec::new();
    let mut out = Vec::new();
    for e in &state.entries {
        let Some(o) = &e.object else { continue };
        if o.kind() == owner && o.name() == name {
            if owner != Kind::Deployment {
                out.push(o.uid().to_string());
            } else {
                deployments.push(o.uid().to_string());
            }
        }
    }
    if owner == Kind::Deployment {
        for e in &state.entries {
            let Some(o) = &e.object else { continue };
            if o.kind() == Kind::ReplicaSet
                && controller_uid(o).is_some_and(|u| deployments.contains(&u.to_string()))
            {
                out.push(o.uid().to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `ev` is about `o`: the same uid, or (as the kubelet writes node events, with the
/// node's name for a uid) the same kind, namespace and name.
pub fn event_is_about(ev: &Event, o: &Object) -> bool {
    let r = &ev.involved_object;
    if let Some(uid) = r.uid.as_deref().filter(|u| !u.is_empty()) {
        if uid == o.uid() {
            return true;
        }
        if uid != o.name() {
            return false;
        }
    }
    r.kind.as_deref() == Some(o.kind().as_str())
        && r.name.as_deref() == Some(o.name())
        && r.namespace.as_deref().unwrap_or_default()
            == o.meta().namespace.as_deref().unwrap_or_default()
}

/// How many occurrences an Event object stands for (upstream aggregates repeats into `count`
/// or `series.count`).
pub fn occurrences(ev: &Event) -> i32 {
    let series = ev.series.as_ref().and_then(|s| s.count).unwrap_or(0);
    ev.count.unwrap_or(1).max(series).max(1)
}

/// An event in one line: `Warning BackOff: Back-off restarting ... (x3)`.
pub fn event_line(ev: &Event) -> String {
    let n = occurrences(ev);
    let times = if n > 1 {
        format!(" (x{n})")
    } else {
        String::new()
    };
    format!(
        "{} {}: {}{times}",
        ev.type_.as_deref().unwrap_or("Normal"),
        ev.reason.as_deref().unwrap_or_default(),
        ev.message.as_deref().unwrap_or_default().trim_end()
    )
}

/// The last `n` events about `o`, oldest first.
pub fn last_events(state: &State, o: &Object, n: usize) -> Vec<String> {
    let mut latest: BTreeMap<String, (u64, &Event)> = BTreeMap::new();
    for (entry, ev) in state.event_entries() {
        if event_is_about(ev, o) {
            let name = ev.metadata.name.clone().unwrap_or_default();
            let first = latest.get(&name).map(|(s, _)| *s).unwrap_or(entry.seq);
            latest.insert(name, (first, ev));
        }
    }
    let mut events: Vec<(u64, &Event)> = latest.into_values().collect();
    events.sort_by_key(|(seq, _)| *seq);
    let skip = events.len().saturating_sub(n);
    events
        .into_iter()
        .skip(skip)
        .map(|(_, ev)| event_line(ev))
        .collect()
}

/// kubectl's columns of a pod (`NAME READY STATUS RESTARTS AGE IP NODE ...`), as kubectl get
/// prints them.
pub fn pod_columns(pod: &Pod, now: DateTime<Utc>) -> Vec<(String, String)> {
    table_columns("pods", &serde_json::to_value(pod).unwrap_or_default(), now)
}

/// kubectl's columns of any object of `resource` (`pods`, `deployments`, `nodes`, ...).
pub fn table_columns(
    resource: &str,
    obj: &serde_json::Value,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let columns = crate::apiserver::table::columns(resource);
    let cells = crate::apiserver::table::cells(resource, obj, now);
    columns
        .into_iter()
        .zip(cells)
        .map(|(c, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (c.name.to_ascii_uppercase(), v)
        })
        .collect()
}

/// The images of a ReplicaSet's pod template, container by container.
pub fn replica_set_images(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Vec<String> {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref()?.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A container's state in words: `running`, `waiting (CrashLoopBackOff)`,
/// `terminated (Error, exit code 1)`.
pub fn container_state(c: &k8s_openapi::api::core::v1::ContainerStatus) -> String {
    let state = c.state.as_ref();
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return "running".into();
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        return format!("waiting ({})", w.reason.as_deref().unwrap_or(""));
    }
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return format!(
            "terminated ({}, exit code {})",
            t.reason.as_deref().unwrap_or(""),
            t.exit_code
        );
    }
    "in no state".into()
}

/// One line about a pod: kubectl's READY, STATUS, RESTARTS and NODE, and its containers.
pub fn pod_line(pod: &Pod, now: DateTime<Utc>) -> String {
    let cols = pod_columns(pod, now);
    let col = |name: &str| {
        cols.iter()
            .find(|(c, _)| c == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    let mut containers = Vec::new();
    if let Some(status) = &pod.status {
        for cs in status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
        {
            let state = container_state(cs);
            containers.push(format!(
                "{} {state}, ready {}, restarts {}",
                cs.name, cs.ready, cs.restart_count
            ));
        }
    }
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("<none>");
    let deleting = if pod.metadata.deletion_timestamp.is_some() {
        ", being deleted"
    } else {
        ""
    };
    format!(
        "pod {}: phase {phase}, READY {} STATUS {} RESTARTS {} on {node}{deleting}{}",
        pod.metadata.name.as_deref().unwrap_or_default(),
        col("READY"),
        col("STATUS"),
        col("RESTARTS"),
        if containers.is_empty() {
            String::new()
        } else {
            format!("; {}", containers.join("; "))
        }
    )
}

/// What the timeline shows of some objects: a line each and their last events.
pub fn objects_report(state: &State, objects: &[&Object], now: DateTime<Utc>) -> String {
    if objects.is_empty() {
        return "  (no such object)".to_string();
    }
    let mut out = String::new();
    for o in objects {
        let line = match o {
            Object::Pod(p) => pod_line(p, now),
            other => {
                let resource = match other.kind() {
                    Kind::Deployment => "deployments",
                    Kind::ReplicaSet => "replicasets",
                    Kind::Node => "nodes",
                    Kind::Service => "services",
                    Kind::Endpoints => "endpoints",
                    Kind::Lease => "leases",
                    Kind::Job => "jobs",
                    _ => "events",
                };
                let cols = table_columns(resource, &other.to_json(), now);
                format!(
                    "{} {}: {}",
                    other.kind().as_str().to_ascii_lowercase(),
                    other.name(),
                    cols.iter()
                        .skip(1)
                        .map(|(c, v)| format!("{c} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        out.push_str("  ");
        out.push_str(&line);
        out.push('\n');
        let events = last_events(state, o, 4);
        if !events.is_empty() {
            out.push_str("    last events:\n");
            for e in events {
                out.push_str("      ");
                out.push_str(&e);
                out.push('\n');
            }
        }
    }
    out.trim_end().to_string()
}

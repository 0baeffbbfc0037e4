//! Readers of what a test's watches have seen ([`super::waits::Waits`]): the latest state of
//! the objects a check looks at.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod};
use kubespec::harness::timeline::{is_barrier, Kind, Object, State};

/// The latest state of `kind` `namespace`/`name`, as the watches saw it.
fn object<'a>(s: &'a State, kind: Kind, namespace: &str, name: &str) -> Option<&'a Object> {
    s.get(kind, namespace, name)
}

/// Pod `default/name`.
pub fn pod<'a>(s: &'a State, name: &str) -> Option<&'a Pod> {
    match object(s, Kind::Pod, "default", name)? {
        Object::Pod(p) => Some(p),
        _ => None,
    }
}

/// Pod `default/name` as JSON (null when there is none).
pub fn pod_json(s: &State, name: &str) -> serde_json::Value {
    serde_json::to_value(pod(s, name)).unwrap()
}

/// The first container status of pod `default/name` as JSON (null when there is none).
pub fn container_status(s: &State, name: &str) -> serde_json::Value {
    pod_json(s, name)["status"]["containerStatuses"][0].clone()
}

/// The pods labelled `app=<app>`.
pub fn pods_of<'a>(s: &'a State, app: &str) -> Vec<&'a Pod> {
    s.pods().filter(|p| labelled(&p.metadata, app)).collect()
}

/// Deployment `default/name`.
pub fn deployment<'a>(s: &'a State, name: &str) -> Option<&'a Deployment> {
    match object(s, Kind::Deployment, "default", name)? {
        Object::Deployment(d) => Some(d),
        _ => None,
    }
}

/// The ReplicaSets labelled `app=<app>`.
pub fn replicasets_of<'a>(s: &'a State, app: &str) -> Vec<&'a ReplicaSet> {
    s.of_kind(Kind::ReplicaSet)
        .filter_map(|o| match o {
            Object::ReplicaSet(rs) if labelled(&rs.metadata, app) => Some(rs),
            _ => None,
        })
        .collect()
}

/// Endpoints `default/name`.
pub fn endpoints<'a>(s: &'a State, name: &str) -> Option<&'a Endpoints> {
    match object(s, Kind::Endpoints, "default", name)? {
        Object::Endpoints(e) => Some(e),
        _ => None,
    }
}

/// Node `name`.
pub fn node<'a>(s: &'a State, name: &str) -> Option<&'a Node> {
    match object(s, Kind::Node, "", name)? {
        Object::Node(n) => Some(n),
        _ => None,
    }
}

/// Holder and transitions of the Lease `kube-system/name`.
pub fn lease_holder(s: &State, name: &str) -> Option<(String, i32)> {
    let Object::Lease(l) = object(s, Kind::Lease, "kube-system", name)? else {
        return None;
    };
    let spec = l.spec.as_ref()?;
    Some((
        spec.holder_identity.clone().unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0),
    ))
}

/// Events about `namespace`/`name` as [`super::events_for`] shows them.
pub fn events(s: &State, namespace: &str, name: &str) -> Vec<String> {
    super::describe_events(s.of_kind(Kind::Event).filter_map(|o| match o {
        Object::Event(e)
            if !is_barrier(e)
                && e.metadata.namespace.as_deref() == Some(namespace)
                && e.involved_object.name.as_deref() == Some(name) =>
        {
            Some(e.clone())
        }
        _ => None,
    }))
}

/// Whether an event about `namespace`/`name` reads `reason: message...` starting with `prefix`.
pub fn has_event(s: &State, namespace: &str, name: &str, prefix: &str) -> bool {
    events(s, namespace, name)
        .iter()
        .any(|e| e.starts_with(prefix))
}

fn labelled(meta: &kube::api::ObjectMeta, app: &str) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get("app"))
        .is_some_and(|a| a == app)
}

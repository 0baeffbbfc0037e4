//! Entry points for the fuzz targets (`tests/fuzz.rs`): each takes arbitrary bytes, feeds them
//! to one place where the cluster reads untrusted input, and must return without panicking,
//! hanging or allocating without bound, whatever the bytes. Errors are fine; they are the
//! expected answer to most inputs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::apiserver::registry::{self, Kind};
use crate::apiserver::selector::{FieldSelector, LabelSelector};
use crate::apiserver::strategy::Operation;
use crate::apiserver::{managed_fields, patch};

/// A stored object to patch and apply against.
fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default",
        "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {}}}}]},
        "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}],
            "env": [{"name": "A", "value": "1"}]}], "tolerations": [{"key": "k", "operator": "Exists"}]}})
}

fn kinds() -> [&'static Kind; 3] {
    [
        registry::core("pods"),
        registry::core("configmaps"),
        registry::lookup("apps", "v1", "deployments").unwrap_or(registry::core("pods")),
    ]
}

/// The first byte picks a variant; the rest is the payload.
fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// A request body in JSON, YAML or protobuf, decoded (on this thread, so a panic in a decoder
/// is seen) and admitted as a create and an update of a pod, a ConfigMap and a Deployment.
pub fn body(data: &[u8]) {
    let (pick, payload) = split(data);
    let decoded = match pick % 3 {
        0 => serde_json::from_slice::<Value>(payload).map_err(|e| e.to_string()),
        1 => crate::apiserver::body::decode_yaml_here(payload),
        _ => crate::apiserver::protobuf::decode_object(payload).map_err(|e| e.to_string()),
    };
    let Ok(value) = decoded else {
        return;
    };
    for kind in kinds() {
        let _ = (kind.admit)(kind, Operation::Create, value.clone(), None);
        let old = pod();
        let _ = (kind.admit)(kind, Operation::Update, value.clone(), Some(&old));
    }
}

/// A JSON, merge or strategic merge patch of a pod, and the same bytes as a server-side apply
/// configuration (conflicts and forced ownership).
pub fn patch(data: &[u8]) {
    let (pick, payload) = split(data);
    let content_type = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ][usize::from(pick) % 3];
    let Ok(patch) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let original = pod();
    let kind = registry::core("pods");
    if let Ok(patched) = patch::apply_patch(kind, content_type, &original, &patch) {
        let _ = (kind.admit)(kind, Operation::Update, patched, Some(&original));
    }
    let writer = managed_fields::Writer {
        manager: "fuzz",
        subresource: "",
        api_version: "v1".into(),
        has_status: true,
        now: "2026-01-01T00:00:00Z".into(),
    };
    let _ = managed_fields::apply(Some(&original), &patch, false, &writer);
    if let Ok(mut merged) = managed_fields::apply(Some(&original), &patch, true, &writer) {
        managed_fields::record_update(Some(&original), None, &mut merged, &writer);
    }
}

/// A label selector, and a field selector for pods, parsed and matched.
pub fn selectors(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let kind = registry::core("pods");
    let attrs = crate::apiserver::selector::attrs(kind, &pod());
    if let Ok(selector) = LabelSelector::parse(text) {
        let _ = selector.matches(&attrs);
    }
    if let Ok(selector) = FieldSelector::parse(kind, text) {
        let _ = selector.matches(&attrs);
    }
}

/// A script of the `sh` subset, run in a scratch container for at most 20 ms.
pub fn sh(data: &[u8]) {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        return;
    };
    let argv = ["sh".to_string(), "-c".to_string(), script.to_string()];
    let _ = runtime.block_on(crate::kubelet::runtime::exec_in_scratch(
        &argv,
        Duration::from_millis(20),
    ));
}

/// An image models file.
pub fn image_models(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::kubelet::runtime::models::parse("fuzz.yaml", text);
}

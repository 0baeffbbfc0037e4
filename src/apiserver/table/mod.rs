//! Server-side rendering of `meta.k8s.io/v1` Tables.
//!
//! `kubectl get` asks the apiserver for
//! `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns
//! and cells the server hands back.  This module reproduces the column sets and
//! per-object cell computations of the Kubernetes 1.33 apiserver's built-in
//! printers (pods, workloads, nodes, events, leases, namespaces, services,
//! endpoints, endpointslices, configmaps, secrets, serviceaccounts, ...), the generic
//! "Name / Created At" table used for every resource without a dedicated
//! printer, and apimachinery's `HumanDuration` used for every age column.
//!
//! Everything here is a pure function of the object JSON (as k8s-openapi would
//! serialize it) and a caller-supplied `now`: it never reads the store, never
//! looks at HTTP requests and never consults the wall clock.
//!
//! Behavioural notes that mirror the real server:
//! * The apiserver always generates tables in "wide" mode; priority-1 columns
//!   are always present and `kubectl` hides them unless `-o wide` is given.
//! * The printers run on defaulted objects, so where the real server's
//!   defaulting would have filled a field (replicas = 1, service type
//!   ClusterIP, port protocol TCP, secret type Opaque, pod phase Pending,
//!   namespace phase Active, ...) a missing field is read as that default.
//! * Column names, types, formats and priorities are exact; the column
//!   descriptions are our own short wording (upstream takes them from the
//!   API's field documentation).
//!
//! Laid out by responsibility: `columns` holds every printer's column definitions, `format` the
//! field readers and formatting the printers share, `pod`, `workloads`, `node`, `event` and
//! `service` (with endpoints and endpoint slices) the cell computations of those printers; this file dispatches on the resource,
//! prints the small resources (leases, namespaces, configmaps, secrets, serviceaccounts) and
//! builds the Table.

mod columns;
mod event;
mod format;
mod node;
mod pod;
mod service;
mod workloads;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use event::event_cells;
use format::{
    age, created_at_rfc3339, field, int_cell, list, name_of, object_len, or_default, s, text,
};
use node::node_cells;
use pod::{pod_cells, pod_row_conditions};
use service::{endpoint_slice_cells, format_endpoints, service_cells};
use workloads::{
    cronjob_cells, daemonset_cells, deployment_cells, job_cells, replicaset_cells,
    replication_controller_cells, statefulset_cells,
};

pub use columns::{columns, ColumnDefinition};
pub use format::human_duration;

// ---------------------------------------------------------------------------
// Resource dispatch.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Deployment,
    ReplicaSet,
    ReplicationController,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Node,
    Event,
    Lease,
    Namespace,
    Service,
    Endpoints,
    EndpointSlice,
    ConfigMap,
    Secret,
    ServiceAccount,
    ComponentStatus,
    PriorityClass,
    Default,
}

/// Maps a plural resource name (optionally qualified with its group, e.g.
/// `deployments.apps`, `events.events.k8s.io`) to the printer used for it.
fn printer_for(resource: &str) -> Printer {
    let lower = resource.trim().to_ascii_lowercase();
    let base = lower.split('.').next().unwrap_or("");
    match base {
        "pods" => Printer::Pod,
        "deployments" => Printer::Deployment,
        "replicasets" => Printer::ReplicaSet,
        "replicationcontrollers" => Printer::ReplicationController,
        "statefulsets" => Printer::StatefulSet,
        "daemonsets" => Printer::DaemonSet,
        "jobs" => Printer::Job,
        "cronjobs" => Printer::CronJob,
        "nodes" => Printer::Node,
        "events" => Printer::Event,
        "leases" => Printer::Lease,
        "namespaces" => Printer::Namespace,
        "services" => Printer::Service,
        "endpoints" => Printer::Endpoints,
        "endpointslices" => Printer::EndpointSlice,
        "configmaps" => Printer::ConfigMap,
        "secrets" => Printer::Secret,
        "serviceaccounts" => Printer::ServiceAccount,
        "componentstatuses" => Printer::ComponentStatus,
        "priorityclasses" => Printer::PriorityClass,
        _ => Printer::Default,
    }
}

/// Cells for one object (its JSON as k8s-openapi would serialize it), same
/// length and order as columns(resource). Cells are serde_json Values
/// (strings, integers).
pub fn cells(resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer_for(resource) {
        Printer::Pod => pod_cells(obj, now),
        Printer::Deployment => deployment_cells(obj, now),
        Printer::ReplicaSet => replicaset_cells(obj, now),
        Printer::ReplicationController => replication_controller_cells(obj, now),
        Printer::StatefulSet => statefulset_cells(obj, now),
        Printer::DaemonSet => daemonset_cells(obj, now),
        Printer::Job => job_cells(obj, now),
        Printer::CronJob => cronjob_cells(obj, now),
        Printer::Node => node_cells(obj, now),
        Printer::Event => event_cells(obj, now),
        Printer::Lease => vec![
            s(name_of(obj)),
            s(text(obj, &["spec", "holderIdentity"])),
            s(age(obj, now)),
        ],
        Printer::PriorityClass => vec![
            s(name_of(obj)),
            Value::from(obj["value"].as_i64().unwrap_or(0)),
            Value::from(obj["globalDefault"].as_bool().unwrap_or(false)),
            s(age(obj, now)),
            s(text(obj, &["preemptionPolicy"])),
        ],
        Printer::Namespace => vec![
            s(name_of(obj)),
            s(or_default(text(obj, &["status", "phase"]), "Active")),
            s(age(obj, now)),
        ],
        Printer::Service => service_cells(obj, now),
        Printer::Endpoints => vec![s(name_of(obj)), s(format_endpoints(obj)), s(age(obj, now))],
        Printer::EndpointSlice => endpoint_slice_cells(obj, now),
        Printer::ConfigMap => vec![
            s(name_of(obj)),
            int_cell((object_len(obj, &["data"]) + object_len(obj, &["binaryData"])) as i64),
            s(age(obj, now)),
        ],
        Printer::Secret => secret_cells(obj, now),
        Printer::ServiceAccount => vec![
            s(name_of(obj)),
            int_cell(list(obj, &["secrets"]).len() as i64),
            s(age(obj, now)),
        ],
        Printer::ComponentStatus => component_status_cells(obj),
        Printer::Default => vec![s(name_of(obj)), s(created_at_rfc3339(obj))],
    }
}

/// Upstream's `printComponentStatus`: the first Healthy condition decides (`True` is Healthy,
/// anything else Unhealthy; none at all, Unknown) and gives the message and error.
fn component_status_cells(cs: &Value) -> Vec<Value> {
    let healthy = list(cs, &["conditions"])
        .iter()
        .find(|c| text(c, &["type"]) == "Healthy");
    let status = match healthy.map(|c| text(c, &["status"])) {
        None => "Unknown",
        Some("True") => "Healthy",
        Some(_) => "Unhealthy",
    };
    let (message, error) =
        healthy.map_or(("", ""), |c| (text(c, &["message"]), text(c, &["error"])));
    vec![s(name_of(cs)), s(status), s(message), s(error)]
}

// ---------------------------------------------------------------------------
// Secrets.
// ---------------------------------------------------------------------------

fn secret_cells(secret: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The server folds stringData into data on write, so count the union.
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for path in [&["data"][..], &["stringData"][..]] {
        if let Some(Value::Object(m)) = field(secret, path) {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    vec![
        s(name_of(secret)),
        s(or_default(text(secret, &["type"]), "Opaque")),
        int_cell(keys.len() as i64),
        s(age(secret, now)),
    ]
}

// ---------------------------------------------------------------------------
// The Table.
// ---------------------------------------------------------------------------

/// Whether `value` is an `includeObject` query value the real apiserver
/// accepts (`""` means the default, `Metadata`).  The apiserver answers any
/// other value with 400 BadRequest; callers should check this before calling
/// [`build_table`], which treats unrecognised values like `Metadata`.
pub fn is_valid_include_object(value: &str) -> bool {
    matches!(value, "" | "None" | "Metadata" | "Object")
}

/// Serialize a whole Table: {"kind":"Table","apiVersion":"meta.k8s.io/v1",
/// "metadata":{"resourceVersion": rv},"columnDefinitions":[{name,type,format,
/// description,priority}],"rows":[{"cells":[...],"object":<obj>}]}.
/// `include_object` is "None" | "Metadata" | "Object" (the includeObject
/// query param; default Metadata -> PartialObjectMetadata
/// {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{...}}).
///
/// Pod rows additionally carry the upstream row `conditions`
/// (`Completed=True` for Succeeded/Failed pods).  With `include_object` =
/// "None" each row's `object` is `null`, as upstream serializes it.  An empty
/// `resource_version` is omitted from `metadata`.  For resources without a
/// dedicated printer and no objects, `rows` is `null`, exactly like the
/// apiserver's default table convertor.
pub fn build_table(
    resource: &str,
    objects: &[&Value],
    resource_version: &str,
    include_object: &str,
    now: DateTime<Utc>,
) -> Value {
    let printer = printer_for(resource);
    let column_definitions: Vec<Value> = columns(resource)
        .iter()
        .map(ColumnDefinition::to_json)
        .collect();

    let mut rows = Vec::with_capacity(objects.len());
    for obj in objects {
        let obj: &Value = obj;
        let mut row = Map::new();
        row.insert("cells".to_string(), Value::Array(cells(resource, obj, now)));
        if printer == Printer::Pod {
            if let Some(conditions) = pod_row_conditions(obj) {
                row.insert("conditions".to_string(), conditions);
            }
        }
        let object = match include_object {
            "None" => Value::Null,
            "Object" => obj.clone(),
            _ => partial_object_metadata(obj),
        };
        row.insert("object".to_string(), object);
        rows.push(Value::Object(row));
    }

    let rows = if rows.is_empty() && printer == Printer::Default {
        Value::Null
    } else {
        Value::Array(rows)
    };

    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(resource_version.to_string()),
        );
    }

    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": Value::Object(metadata),
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

fn partial_object_metadata(obj: &Value) -> Value {
    let metadata = match obj.get("metadata") {
        Some(m @ Value::Object(_)) => m.clone(),
        _ => Value::Object(Map::new()),
    };
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    })
}

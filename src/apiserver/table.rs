//! Server-side rendering of `meta.k8s.io/v1` Tables.
//!
//! `kubectl get` asks the apiserver for
//! `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns
//! and cells the server hands back.  This module reproduces the column sets and
//! per-object cell computations of the Kubernetes 1.33 apiserver's built-in
//! printers (pods, workloads, nodes, events, leases, namespaces, services,
//! endpoints, configmaps, secrets, serviceaccounts, ...), the generic
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

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

/// One `columnDefinitions` entry of a Table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl ColumnDefinition {
    /// The JSON form used inside a Table (`type_` is spelled `type`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

// ---------------------------------------------------------------------------
// Column descriptions (our own wording).
// ---------------------------------------------------------------------------

const D_NAME: &str =
    "Name of the object; unique within its namespace (or cluster-wide for cluster-scoped objects).";
const D_AGE: &str = "Time elapsed since the object was created.";
const D_CREATED_AT: &str = "When the object was created, as an RFC 3339 timestamp in UTC.";
const D_CONTAINERS: &str = "Names of the containers in the pod template.";
const D_IMAGES: &str = "Images used by the containers in the pod template.";
const D_SELECTOR: &str = "Label selector used to find the pods this object manages.";

const D_POD_READY: &str = "Ready containers out of the containers that count towards readiness.";
const D_POD_STATUS: &str =
    "Summary of the pod's state derived from its phase and container states.";
const D_POD_RESTARTS: &str =
    "Total container restarts, and how long ago the most recent one happened.";
const D_POD_IP: &str = "Primary IP address allocated to the pod.";
const D_POD_NODE: &str = "Node the pod is bound to.";
const D_POD_NOMINATED: &str = "Node the scheduler nominated for the pod after preemption.";
const D_POD_GATES: &str = "Satisfied readiness gates out of all declared readiness gates.";

const D_DEPLOY_READY: &str = "Ready replicas out of desired replicas.";
const D_UP_TO_DATE: &str = "Replicas that already run the latest pod template.";
const D_AVAILABLE: &str = "Replicas that have been ready for at least minReadySeconds.";
const D_DESIRED: &str = "Number of replicas requested by the spec.";
const D_CURRENT: &str = "Number of replicas currently observed.";
const D_READY_REPLICAS: &str = "Number of replicas whose pods are ready.";

const D_DS_DESIRED: &str = "Number of nodes that should run the daemon pod.";
const D_DS_CURRENT: &str = "Number of nodes running at least one daemon pod that should run it.";
const D_DS_READY: &str = "Number of nodes whose daemon pod is ready.";
const D_DS_UP_TO_DATE: &str = "Number of nodes running the latest daemon pod template.";
const D_DS_AVAILABLE: &str = "Number of nodes whose daemon pod is available.";
const D_DS_NODE_SELECTOR: &str = "Node selector of the daemon pod template.";

const D_JOB_STATUS: &str = "Summary of the job's conditions.";
const D_JOB_COMPLETIONS: &str = "Succeeded pods out of the completions required.";
const D_JOB_DURATION: &str = "Time the job took (or has taken so far) since it started.";

const D_CJ_SCHEDULE: &str = "Cron schedule of the job.";
const D_CJ_TIMEZONE: &str = "Time zone the schedule is interpreted in.";
const D_CJ_SUSPEND: &str = "Whether new runs are suspended.";
const D_CJ_ACTIVE: &str = "Number of jobs currently running.";
const D_CJ_LAST: &str = "Time since the job was last scheduled.";

const D_NODE_STATUS: &str = "Readiness of the node, and whether scheduling onto it is disabled.";
const D_NODE_ROLES: &str = "Roles taken from the node's role labels.";
const D_NODE_VERSION: &str = "Version of the kubelet running on the node.";
const D_NODE_INTERNAL_IP: &str = "First internal address of the node.";
const D_NODE_EXTERNAL_IP: &str = "First external address of the node.";
const D_NODE_OS_IMAGE: &str = "Operating system image reported by the node.";
const D_NODE_KERNEL: &str = "Kernel version reported by the node.";
const D_NODE_RUNTIME: &str = "Container runtime and version reported by the node.";

const D_EV_LAST_SEEN: &str = "Time since the event was last observed.";
const D_EV_TYPE: &str = "Type of the event (Normal or Warning).";
const D_EV_REASON: &str = "Short machine-readable reason for the event.";
const D_EV_OBJECT: &str = "Object the event is about, as kind/name.";
const D_EV_SUBOBJECT: &str = "Field path within the object the event is about.";
const D_EV_SOURCE: &str = "Component (and host) that reported the event.";
const D_EV_MESSAGE: &str = "Human-readable description of the event.";
const D_EV_FIRST_SEEN: &str = "Time since the event was first observed.";
const D_EV_COUNT: &str = "Number of times the event has occurred.";

const D_LEASE_HOLDER: &str = "Identity of the current holder of the lease.";
const D_NS_STATUS: &str = "Lifecycle phase of the namespace.";

const D_SVC_TYPE: &str = "How the service is exposed.";
const D_SVC_CLUSTER_IP: &str = "Primary cluster-internal IP of the service.";
const D_SVC_EXTERNAL_IP: &str = "Externally reachable addresses of the service.";
const D_SVC_PORTS: &str = "Ports exposed by the service.";
const D_SVC_SELECTOR: &str = "Labels of the pods that back the service.";

const D_EP_ENDPOINTS: &str = "Ready addresses and ports of the endpoints.";
const D_DATA: &str = "Number of data entries.";
const D_SECRET_TYPE: &str = "Type of the secret.";
const D_SA_SECRETS: &str = "Number of secrets listed by the service account.";

const UNKNOWN: &str = "<unknown>";
const NONE: &str = "<none>";

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
    ConfigMap,
    Secret,
    ServiceAccount,
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
        "configmaps" => Printer::ConfigMap,
        "secrets" => Printer::Secret,
        "serviceaccounts" => Printer::ServiceAccount,
        _ => Printer::Default,
    }
}

// ---------------------------------------------------------------------------
// Column definitions.
// ---------------------------------------------------------------------------

fn col(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

fn name_col() -> ColumnDefinition {
    ColumnDefinition {
        name: "Name",
        type_: "string",
        format: "name",
        description: D_NAME,
        priority: 0,
    }
}

fn age_col() -> ColumnDefinition {
    col("Age", "string", D_AGE)
}

fn wide(mut c: ColumnDefinition) -> ColumnDefinition {
    c.priority = 1;
    c
}

/// Columns for a resource (plural lowercase name e.g. "pods", "deployments",
/// "replicasets", "nodes", "events", "leases", "namespaces", "services",
/// "endpoints", "configmaps", "secrets", "serviceaccounts"). Unknown resources
/// get upstream's default table (Name, Created At) columns.
pub fn columns(resource: &str) -> Vec<ColumnDefinition> {
    match printer_for(resource) {
        Printer::Pod => vec![
            name_col(),
            col("Ready", "string", D_POD_READY),
            col("Status", "string", D_POD_STATUS),
            col("Restarts", "string", D_POD_RESTARTS),
            age_col(),
            wide(col("IP", "string", D_POD_IP)),
            wide(col("Node", "string", D_POD_NODE)),
            wide(col("Nominated Node", "string", D_POD_NOMINATED)),
            wide(col("Readiness Gates", "string", D_POD_GATES)),
        ],
        Printer::Deployment => vec![
            name_col(),
            col("Ready", "string", D_DEPLOY_READY),
            col("Up-to-date", "string", D_UP_TO_DATE),
            col("Available", "string", D_AVAILABLE),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
            wide(col("Selector", "string", D_SELECTOR)),
        ],
        Printer::ReplicaSet | Printer::ReplicationController => vec![
            name_col(),
            col("Desired", "integer", D_DESIRED),
            col("Current", "integer", D_CURRENT),
            col("Ready", "integer", D_READY_REPLICAS),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
            wide(col("Selector", "string", D_SELECTOR)),
        ],
        Printer::StatefulSet => vec![
            name_col(),
            col("Ready", "string", D_DEPLOY_READY),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
        ],
        Printer::DaemonSet => vec![
            name_col(),
            col("Desired", "integer", D_DS_DESIRED),
            col("Current", "integer", D_DS_CURRENT),
            col("Ready", "integer", D_DS_READY),
            col("Up-to-date", "integer", D_DS_UP_TO_DATE),
            col("Available", "integer", D_DS_AVAILABLE),
            col("Node Selector", "string", D_DS_NODE_SELECTOR),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
            wide(col("Selector", "string", D_SELECTOR)),
        ],
        Printer::Job => vec![
            name_col(),
            col("Status", "string", D_JOB_STATUS),
            col("Completions", "string", D_JOB_COMPLETIONS),
            col("Duration", "string", D_JOB_DURATION),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
            wide(col("Selector", "string", D_SELECTOR)),
        ],
        Printer::CronJob => vec![
            name_col(),
            col("Schedule", "string", D_CJ_SCHEDULE),
            col("Timezone", "string", D_CJ_TIMEZONE),
            col("Suspend", "boolean", D_CJ_SUSPEND),
            col("Active", "integer", D_CJ_ACTIVE),
            col("Last Schedule", "string", D_CJ_LAST),
            age_col(),
            wide(col("Containers", "string", D_CONTAINERS)),
            wide(col("Images", "string", D_IMAGES)),
            wide(col("Selector", "string", D_SELECTOR)),
        ],
        Printer::Node => vec![
            name_col(),
            col("Status", "string", D_NODE_STATUS),
            col("Roles", "string", D_NODE_ROLES),
            age_col(),
            col("Version", "string", D_NODE_VERSION),
            wide(col("Internal-IP", "string", D_NODE_INTERNAL_IP)),
            wide(col("External-IP", "string", D_NODE_EXTERNAL_IP)),
            wide(col("OS-Image", "string", D_NODE_OS_IMAGE)),
            wide(col("Kernel-Version", "string", D_NODE_KERNEL)),
            wide(col("Container-Runtime", "string", D_NODE_RUNTIME)),
        ],
        Printer::Event => vec![
            col("Last Seen", "string", D_EV_LAST_SEEN),
            col("Type", "string", D_EV_TYPE),
            col("Reason", "string", D_EV_REASON),
            col("Object", "string", D_EV_OBJECT),
            wide(col("Subobject", "string", D_EV_SUBOBJECT)),
            wide(col("Source", "string", D_EV_SOURCE)),
            col("Message", "string", D_EV_MESSAGE),
            wide(col("First Seen", "string", D_EV_FIRST_SEEN)),
            wide(col("Count", "string", D_EV_COUNT)),
            wide(name_col()),
        ],
        Printer::Lease => vec![
            name_col(),
            col("Holder", "string", D_LEASE_HOLDER),
            age_col(),
        ],
        Printer::Namespace => vec![name_col(), col("Status", "string", D_NS_STATUS), age_col()],
        Printer::Service => vec![
            name_col(),
            col("Type", "string", D_SVC_TYPE),
            col("Cluster-IP", "string", D_SVC_CLUSTER_IP),
            col("External-IP", "string", D_SVC_EXTERNAL_IP),
            col("Port(s)", "string", D_SVC_PORTS),
            age_col(),
            wide(col("Selector", "string", D_SVC_SELECTOR)),
        ],
        Printer::Endpoints => vec![
            name_col(),
            col("Endpoints", "string", D_EP_ENDPOINTS),
            age_col(),
        ],
        Printer::ConfigMap => vec![name_col(), col("Data", "string", D_DATA), age_col()],
        Printer::Secret => vec![
            name_col(),
            col("Type", "string", D_SECRET_TYPE),
            col("Data", "string", D_DATA),
            age_col(),
        ],
        Printer::ServiceAccount => vec![
            name_col(),
            col("Secrets", "string", D_SA_SECRETS),
            age_col(),
        ],
        Printer::Default => vec![name_col(), col("Created At", "date", D_CREATED_AT)],
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
        Printer::Namespace => vec![
            s(name_of(obj)),
            s(or_default(text(obj, &["status", "phase"]), "Active")),
            s(age(obj, now)),
        ],
        Printer::Service => service_cells(obj, now),
        Printer::Endpoints => vec![s(name_of(obj)), s(format_endpoints(obj)), s(age(obj, now))],
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
        Printer::Default => vec![s(name_of(obj)), s(created_at_rfc3339(obj))],
    }
}

/// Upstream's HumanDuration (used for AGE etc.): e.g. 5s, 2m3s, 10m, 3h4m,
/// 5d, 2y...
///
/// Roughly two to three significant figures: seconds below two minutes,
/// minutes+seconds below ten minutes, minutes below three hours,
/// hours+minutes below eight hours, hours below two days, days+hours below
/// eight days, days below two years, years+days below eight years, then
/// years.  A duration up to one second in the past (clock skew) reads "0s";
/// anything further in the past reads "<invalid>".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds(); // truncates toward zero, like Go's int(d.Seconds())
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let rem = seconds % 60;
        return if rem == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rem}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let rem = minutes % 60;
        return if rem == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rem}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let rem = hours % 24;
        return if rem == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{rem}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let rem = days % 365;
        return if rem == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{rem}d")
        };
    }
    format!("{years}y")
}

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

// ---------------------------------------------------------------------------
// JSON access helpers.  A JSON `null` is treated exactly like an absent field.
// ---------------------------------------------------------------------------

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    field(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, path: &[&str]) -> i64 {
    field(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    field(v, path).and_then(Value::as_i64)
}

fn boolean(v: &Value, path: &[&str]) -> bool {
    field(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    match field(v, path) {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    }
}

fn object_len(v: &Value, path: &[&str]) -> usize {
    match field(v, path) {
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    }
}

fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

fn s(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

fn int_cell(value: i64) -> Value {
    Value::from(value)
}

fn name_of(obj: &Value) -> &str {
    text(obj, &["metadata", "name"])
}

/// Parses a `metav1.Time` / `metav1.MicroTime` field.  Go's zero time
/// (`0001-01-01T00:00:00Z`) counts as unset, like `Time.IsZero()`.
fn timestamp(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let raw = field(v, path)?.as_str()?;
    let parsed = DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc);
    if parsed.timestamp() == GO_ZERO_TIME_UNIX && parsed.timestamp_subsec_nanos() == 0 {
        None
    } else {
        Some(parsed)
    }
}

/// Unix seconds of Go's zero `time.Time` (January 1, year 1, UTC).
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Upstream `translateTimestampSince`: "<unknown>" for an unset time, else
/// the human duration elapsed until `now`.
fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => UNKNOWN.to_string(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> String {
    since(timestamp(obj, &["metadata", "creationTimestamp"]), now)
}

/// The default table's "Created At" cell: RFC 3339 in UTC, second precision.
fn created_at_rfc3339(obj: &Value) -> String {
    match timestamp(obj, &["metadata", "creationTimestamp"]) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

fn is_deleting(obj: &Value) -> bool {
    field(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// Keeps the latest of the recorded time and `candidate`.
fn keep_latest(slot: &mut Option<DateTime<Utc>>, candidate: Option<DateTime<Utc>>) {
    if let Some(t) = candidate {
        if slot.is_none_or(|current| current < t) {
            *slot = Some(t);
        }
    }
}

/// Container names and images, each comma-joined in spec order.
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, comma-joined; "<none>"
/// when empty.
fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = match map {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    if pairs.is_empty() {
        return NONE.to_string();
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// String form of a `metav1.LabelSelector` once converted to a label
/// selector: requirements sorted by key, set values sorted.  A missing
/// selector and an empty selector both render as "".  `Err` where the
/// conversion would fail (unknown operator, bad value counts).
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let selector = match selector {
        Some(sel) => sel,
        None => return Ok(String::new()),
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = field(selector, &["matchLabels"]) {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or("");
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expr in list(selector, &["matchExpressions"]) {
        let key = text(expr, &["key"]);
        let mut values: Vec<&str> = list(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let rendered = match text(expr, &["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(());
                }
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" => {
                if !values.is_empty() {
                    return Err(());
                }
                key.to_string()
            }
            "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(());
                }
                format!("!{key}")
            }
            _ => return Err(()),
        };
        requirements.push((key.to_string(), rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, rendered)| rendered)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: "<error>" on a bad selector, "<none>" when
/// it selects by nothing.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Err(()) => "<error>".to_string(),
        Ok(rendered) if rendered.is_empty() => NONE.to_string(),
        Ok(rendered) => rendered,
    }
}

// ---------------------------------------------------------------------------
// Pods.
// ---------------------------------------------------------------------------

fn pod_phase(pod: &Value) -> &str {
    // PrepareForCreate always records Pending, so a phase-less pod is Pending.
    or_default(text(pod, &["status", "phase"]), "Pending")
}

fn first_condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| text(c, &["type"]) == type_)
        .is_some_and(|c| text(c, &["status"]) == "True")
}

fn any_condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| text(c, &["type"]) == type_ && text(c, &["status"]) == "True")
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = text(terminated, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(terminated, &["exitCode"]))
    }
}

fn last_termination_time(status: &Value) -> Option<DateTime<Utc>> {
    timestamp(status, &["lastState", "terminated", "finishedAt"])
}

/// The pod's Ready, Status and Restarts cells, computed as the 1.33 printer
/// does (including restartable init containers, i.e. native sidecars).
fn pod_summary(pod: &Value, now: DateTime<Utc>) -> (String, String, String) {
    let phase = pod_phase(pod);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = or_default(status_reason, phase).to_string();

    let conditions = list(pod, &["status", "conditions"]);
    if conditions
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let containers = list(pod, &["spec", "containers"]);
    let init_specs = list(pod, &["spec", "initContainers"]);
    let mut total = containers.len() as i64;
    let mut restartable_by_name: HashMap<&str, bool> = HashMap::new();
    for spec in init_specs {
        let restartable = text(spec, &["restartPolicy"]) == "Always";
        restartable_by_name.insert(text(spec, &["name"]), restartable);
        if restartable {
            total += 1;
        }
    }

    let mut ready: i64 = 0;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let mut initializing = false;
    for (index, status) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int(status, &["restartCount"]);
        restarts += count;
        let finished = last_termination_time(status);
        keep_latest(&mut last_restart, finished);
        let restartable = restartable_by_name
            .get(text(status, &["name"]))
            .copied()
            .unwrap_or(false);
        if restartable {
            sidecar_restarts += count;
            keep_latest(&mut last_sidecar_restart, finished);
        }

        let terminated = field(status, &["state", "terminated"]);
        if let Some(t) = terminated {
            if int(t, &["exitCode"]) == 0 {
                continue;
            }
        }
        if restartable && boolean(status, &["started"]) {
            if boolean(status, &["ready"]) {
                ready += 1;
            }
            continue;
        }

        let waiting_reason = field(status, &["state", "waiting"])
            .map(|w| text(w, &["reason"]))
            .unwrap_or("");
        reason = if let Some(t) = terminated {
            terminated_reason(t, "Init:")
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", index, init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(status, &["restartCount"]);
            keep_latest(&mut last_restart, last_termination_time(status));

            let waiting_reason = field(status, &["state", "waiting"])
                .map(|w| text(w, &["reason"]))
                .unwrap_or("");
            let terminated = field(status, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if boolean(status, &["ready"]) && field(status, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but which still has a running
        // container is reported by its readiness instead of "Completed".
        if reason == "Completed" && has_running {
            reason = if any_condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if is_deleting(pod) {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    (format!("{ready}/{total}"), reason, restarts_text)
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (ready, status, restarts) = pod_summary(pod, now);

    // v1 -> internal conversion makes status.podIP authoritative over podIPs.
    let mut ip = text(pod, &["status", "podIP"]);
    if ip.is_empty() {
        ip = list(pod, &["status", "podIPs"])
            .first()
            .map(|p| text(p, &["ip"]))
            .unwrap_or("");
    }

    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        NONE.to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let satisfied = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == wanted)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", satisfied, gates.len())
    };

    vec![
        s(name_of(pod)),
        s(ready),
        s(status),
        s(restarts),
        s(age(pod, now)),
        s(or_default(ip, NONE)),
        s(or_default(text(pod, &["spec", "nodeName"]), NONE)),
        s(or_default(
            text(pod, &["status", "nominatedNodeName"]),
            NONE,
        )),
        s(readiness_gates),
    ]
}

/// Row conditions the pod printer attaches to finished pods.
fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

// ---------------------------------------------------------------------------
// Workloads.
// ---------------------------------------------------------------------------

fn template_containers(obj: &Value) -> &[Value] {
    list(obj, &["spec", "template", "spec", "containers"])
}

fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(template_containers(obj));
    let selector = label_selector_string(field(obj, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        s(name_of(obj)),
        s(format!("{ready}/{desired}")),
        int_cell(int(obj, &["status", "updatedReplicas"])),
        int_cell(int(obj, &["status", "availableReplicas"])),
        s(age(obj, now)),
        s(names),
        s(images),
        s(selector),
    ]
}

fn replicaset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        int_cell(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int_cell(int(obj, &["status", "replicas"])),
        int_cell(int(obj, &["status", "readyReplicas"])),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(obj, &["spec", "selector"]))),
    ]
}

fn replication_controller_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        int_cell(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int_cell(int(obj, &["status", "replicas"])),
        int_cell(int(obj, &["status", "readyReplicas"])),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_labels(field(obj, &["spec", "selector"]))),
    ]
}

fn statefulset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let desired = opt_int(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int(obj, &["status", "readyReplicas"]);
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        s(format!("{ready}/{desired}")),
        s(age(obj, now)),
        s(names),
        s(images),
    ]
}

fn daemonset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        int_cell(int(obj, &["status", "desiredNumberScheduled"])),
        int_cell(int(obj, &["status", "currentNumberScheduled"])),
        int_cell(int(obj, &["status", "numberReady"])),
        int_cell(int(obj, &["status", "updatedNumberScheduled"])),
        int_cell(int(obj, &["status", "numberAvailable"])),
        s(format_labels(field(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(obj, &["spec", "selector"]))),
    ]
}

fn job_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(obj, &["status", "succeeded"]);
    // Defaulting: with neither set both become 1; parallelism defaults to 1.
    let (completions, parallelism) = match (
        opt_int(obj, &["spec", "completions"]),
        opt_int(obj, &["spec", "parallelism"]),
    ) {
        (None, None) => (Some(1), 1),
        (c, p) => (c, p.unwrap_or(1)),
    };
    let completions = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };

    let duration = match (
        timestamp(obj, &["status", "startTime"]),
        timestamp(obj, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(done)) => human_duration(done - start),
    };

    let conditions = list(obj, &["status", "conditions"]);
    let status = if first_condition_true(conditions, "Complete") {
        "Complete"
    } else if first_condition_true(conditions, "Failed") {
        "Failed"
    } else if is_deleting(obj) {
        "Terminating"
    } else if first_condition_true(conditions, "Suspended") {
        "Suspended"
    } else if first_condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };

    let (names, images) = container_cells(template_containers(obj));
    vec![
        s(name_of(obj)),
        s(status),
        s(completions),
        s(duration),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(obj, &["spec", "selector"]))),
    ]
}

fn cronjob_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match timestamp(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None => NONE.to_string(),
    };
    // suspend defaults to false.
    let suspend = if boolean(obj, &["spec", "suspend"]) {
        "True"
    } else {
        "False"
    };
    let (names, images) = container_cells(list(
        obj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    ));
    vec![
        s(name_of(obj)),
        s(text(obj, &["spec", "schedule"])),
        s(or_default(text(obj, &["spec", "timeZone"]), NONE)),
        s(suspend),
        int_cell(list(obj, &["status", "active"]).len() as i64),
        s(last_schedule),
        s(age(obj, now)),
        s(names),
        s(images),
        s(format_label_selector(field(
            obj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}

// ---------------------------------------------------------------------------
// Nodes.
// ---------------------------------------------------------------------------

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

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
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

// ---------------------------------------------------------------------------
// Events (core/v1 and events.k8s.io/v1 shapes).
// ---------------------------------------------------------------------------

/// The fields of an event the printer needs, read from either API shape.
struct EventView<'a> {
    name: &'a str,
    kind: &'a str,
    object_name: &'a str,
    field_path: &'a str,
    type_: &'a str,
    reason: &'a str,
    message: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    first_timestamp: Option<DateTime<Utc>>,
    last_timestamp: Option<DateTime<Utc>>,
    event_time: Option<DateTime<Utc>>,
    count: i64,
    series: Option<(i64, Option<DateTime<Utc>>)>,
}

impl<'a> EventView<'a> {
    fn read(ev: &'a Value) -> Self {
        let series = field(ev, &["series"])
            .map(|sr| (int(sr, &["count"]), timestamp(sr, &["lastObservedTime"])));
        if text(ev, &["apiVersion"]).starts_with("events.k8s.io/") {
            EventView {
                name: name_of(ev),
                kind: text(ev, &["regarding", "kind"]),
                object_name: text(ev, &["regarding", "name"]),
                field_path: text(ev, &["regarding", "fieldPath"]),
                type_: text(ev, &["type"]),
                reason: text(ev, &["reason"]),
                message: text(ev, &["note"]),
                source_component: text(ev, &["deprecatedSource", "component"]),
                source_host: text(ev, &["deprecatedSource", "host"]),
                reporting_controller: text(ev, &["reportingController"]),
                reporting_instance: text(ev, &["reportingInstance"]),
                first_timestamp: timestamp(ev, &["deprecatedFirstTimestamp"]),
                last_timestamp: timestamp(ev, &["deprecatedLastTimestamp"]),
                event_time: timestamp(ev, &["eventTime"]),
                count: int(ev, &["deprecatedCount"]),
                series,
            }
        } else {
            EventView {
                name: name_of(ev),
                kind: text(ev, &["involvedObject", "kind"]),
                object_name: text(ev, &["involvedObject", "name"]),
                field_path: text(ev, &["involvedObject", "fieldPath"]),
                type_: text(ev, &["type"]),
                reason: text(ev, &["reason"]),
                message: text(ev, &["message"]),
                source_component: text(ev, &["source", "component"]),
                source_host: text(ev, &["source", "host"]),
                reporting_controller: text(ev, &["reportingComponent"]),
                reporting_instance: text(ev, &["reportingInstance"]),
                first_timestamp: timestamp(ev, &["firstTimestamp"]),
                last_timestamp: timestamp(ev, &["lastTimestamp"]),
                event_time: timestamp(ev, &["eventTime"]),
                count: int(ev, &["count"]),
                series,
            }
        }
    }
}

fn event_cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let view = EventView::read(ev);

    // First seen falls back to eventTime; last seen falls back to first seen;
    // a series overrides last seen and count; a count of 0 means a singleton.
    let first_seen = match view.first_timestamp {
        Some(t) => since(Some(t), now),
        None => since(view.event_time, now),
    };
    let mut last_seen = match view.last_timestamp {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = view.count;
    if let Some((series_count, last_observed)) = view.series {
        last_seen = since(last_observed, now);
        count = series_count;
    } else if count == 0 {
        count = 1;
    }

    let kind = view.kind.to_lowercase();
    let target = if view.object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{}", view.object_name)
    };

    let component = or_default(view.source_component, view.reporting_controller);
    let instance = or_default(view.source_host, view.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        s(last_seen),
        s(view.type_),
        s(view.reason),
        s(target),
        s(view.field_path),
        s(source),
        s(view.message.trim()),
        s(first_seen),
        int_cell(count),
        s(view.name),
    ]
}

// ---------------------------------------------------------------------------
// Services, endpoints, secrets.
// ---------------------------------------------------------------------------

fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips: Vec<&str> = list(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                NONE.to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            // Server-side tables are always wide, so nothing is truncated.
            let ingress: BTreeSet<&str> = list(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| {
                    let ip = text(i, &["ip"]);
                    let hostname = text(i, &["hostname"]);
                    if !ip.is_empty() {
                        Some(ip)
                    } else if !hostname.is_empty() {
                        Some(hostname)
                    } else {
                        None
                    }
                })
                .collect();
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = ingress.into_iter().collect();
                all.extend(external_ips);
                all.join(",")
            } else if !ingress.is_empty() {
                ingress.into_iter().collect::<Vec<_>>().join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(svc, &["spec", "externalName"]).to_string(),
        _ => UNKNOWN.to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = or_default(text(p, &["protocol"]), "TCP");
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if pieces.is_empty() {
        NONE.to_string()
    } else {
        pieces.join(",")
    }
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = or_default(text(svc, &["spec", "type"]), "ClusterIP");
    // v1 -> internal conversion makes spec.clusterIP authoritative.
    let mut cluster_ip = text(svc, &["spec", "clusterIP"]);
    if cluster_ip.is_empty() {
        cluster_ip = list(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
    }
    vec![
        s(name_of(svc)),
        s(svc_type),
        s(or_default(cluster_ip, NONE)),
        s(service_external_ip(svc, svc_type)),
        s(service_ports(svc)),
        s(age(svc, now)),
        s(format_labels(field(svc, &["spec", "selector"]))),
    ]
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Up to three ready `ip:port` pairs (bare IPs for port-less subsets), then
/// " + N more...".
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(ep, &["subsets"]);
    if subsets.is_empty() {
        return NONE.to_string();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count: usize = 0;
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(text(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(text(addr, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

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
// Tests.
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn cell(resource: &str, obj: &Value, column: &str) -> Value {
        let cols = columns(resource);
        let idx = cols
            .iter()
            .position(|c| c.name == column)
            .unwrap_or_else(|| panic!("no column {column} for {resource}"));
        let row = cells(resource, obj, now());
        assert_eq!(
            row.len(),
            cols.len(),
            "cells/columns length mismatch for {resource}"
        );
        row[idx].clone()
    }

    fn pod(status: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(300)},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"},
            "status": status,
        })
    }

    #[test]
    fn human_duration_boundaries() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 4 * 60, "3h4m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (49 * 3600, "2d1h"),
            (5 * 86400, "5d"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
            (10 * 365 * 86400 + 40 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(Duration::seconds(*secs)),
                *want,
                "for {secs}s"
            );
        }
        // Fractions truncate toward zero, as Go's int(d.Seconds()) does.
        assert_eq!(human_duration(Duration::milliseconds(-1900)), "0s");
        assert_eq!(human_duration(Duration::milliseconds(59_999)), "59s");
    }

    #[test]
    fn pod_columns_match_upstream() {
        let cols = columns("pods");
        let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(cols[0].format, "name");
        assert_eq!(cols[3].type_, "string");
        assert!(cols[..5].iter().all(|c| c.priority == 0));
        assert!(cols[5..].iter().all(|c| c.priority == 1));
    }

    #[test]
    fn crash_looping_pod() {
        let p = pod(json!({
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 3, "started": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(12)}},
            }],
        }));
        let row = cells("pods", &p, now());
        assert_eq!(row[0], json!("web"));
        assert_eq!(row[1], json!("0/1"));
        assert_eq!(row[2], json!("CrashLoopBackOff"));
        assert_eq!(row[3], json!("3 (12s ago)"));
        assert_eq!(row[4], json!("5m"));
        assert_eq!(row[5], json!("10.0.0.7"));
        assert_eq!(row[6], json!("node-1"));
        assert_eq!(row[7], json!("<none>"));
        assert_eq!(row[8], json!("<none>"));
    }

    #[test]
    fn restarts_without_termination_time_have_no_suffix() {
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 2,
                "state": {"running": {"startedAt": ago(30)}},
            }],
        }));
        assert_eq!(cell("pods", &p, "Restarts"), json!("2"));
        assert_eq!(cell("pods", &p, "Status"), json!("Running"));
        assert_eq!(cell("pods", &p, "Ready"), json!("1/1"));
    }

    #[test]
    fn image_pull_backoff_pod() {
        let p = pod(json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff"}},
            }],
        }));
        assert_eq!(cell("pods", &p, "Status"), json!("ImagePullBackOff"));
        assert_eq!(cell("pods", &p, "Restarts"), json!("0"));
        assert_eq!(cell("pods", &p, "Ready"), json!("0/1"));
    }

    #[test]
    fn completed_pod_and_row_conditions() {
        let p = pod(json!({
            "phase": "Succeeded",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(60)}},
            }],
        }));
        assert_eq!(cell("pods", &p, "Status"), json!("Completed"));
        assert_eq!(cell("pods", &p, "Ready"), json!("0/1"));
        let table = build_table("pods", &[&p], "42", "None", now());
        assert_eq!(
            table["rows"][0]["conditions"][0]["type"],
            json!("Completed")
        );
        assert_eq!(
            table["rows"][0]["conditions"][0]["reason"],
            json!("Succeeded")
        );
        assert_eq!(table["rows"][0]["object"], Value::Null);
    }

    #[test]
    fn terminated_without_reason_reports_exit_code_or_signal() {
        let p = pod(json!({
            "phase": "Failed",
            "containerStatuses": [{
                "name": "app", "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "signal": 9}},
            }],
        }));
        assert_eq!(cell("pods", &p, "Status"), json!("Signal:9"));
        let p = pod(json!({
            "phase": "Failed",
            "containerStatuses": [{
                "name": "app", "restartCount": 0,
                "state": {"terminated": {"exitCode": 2}},
            }],
        }));
        assert_eq!(cell("pods", &p, "Status"), json!("ExitCode:2"));
    }

    #[test]
    fn terminating_pod() {
        let mut p = pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": ago(100)}},
            }],
        }));
        p["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cell("pods", &p, "Status"), json!("Terminating"));
        assert_eq!(cell("pods", &p, "Ready"), json!("1/1"));

        // A terminal pod being deleted keeps its terminal reason.
        let mut done = pod(json!({"phase": "Succeeded"}));
        done["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cell("pods", &done, "Status"), json!("Succeeded"));

        // NodeLost pods being deleted read Unknown.
        let mut lost = pod(json!({"phase": "Running", "reason": "NodeLost"}));
        lost["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cell("pods", &lost, "Status"), json!("Unknown"));
    }

    #[test]
    fn init_container_progress_and_failures() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "init-b", "restartCount": 0, "state": {"running": {"startedAt": ago(5)}}},
            ],
            "containerStatuses": [{
                "name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}},
            }],
        }));
        p["spec"]["initContainers"] = json!([{"name": "init-a"}, {"name": "init-b"}]);
        assert_eq!(cell("pods", &p, "Status"), json!("Init:1/2"));

        p["status"]["initContainerStatuses"][1] = json!({
            "name": "init-b", "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}},
        });
        assert_eq!(cell("pods", &p, "Status"), json!("Init:CrashLoopBackOff"));
        assert_eq!(cell("pods", &p, "Restarts"), json!("4 (20s ago)"));

        p["status"]["initContainerStatuses"][1] = json!({
            "name": "init-b", "restartCount": 0,
            "state": {"terminated": {"exitCode": 3, "reason": "Error"}},
        });
        assert_eq!(cell("pods", &p, "Status"), json!("Init:Error"));
    }

    #[test]
    fn native_sidecar_pod_is_running() {
        let mut p = pod(json!({
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "initContainerStatuses": [{
                "name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {"startedAt": ago(50)}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(55)}},
            }],
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": ago(40)}},
            }],
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        assert_eq!(cell("pods", &p, "Ready"), json!("2/2"));
        assert_eq!(cell("pods", &p, "Status"), json!("Running"));
        assert_eq!(cell("pods", &p, "Restarts"), json!("1 (55s ago)"));
    }

    #[test]
    fn completed_container_with_running_sibling_reports_readiness() {
        let p = json!({
            "metadata": {"name": "two", "creationTimestamp": ago(10)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                ],
            },
        });
        assert_eq!(cell("pods", &p, "Status"), json!("NotReady"));
        assert_eq!(cell("pods", &p, "Ready"), json!("1/2"));
    }

    #[test]
    fn scheduling_gated_and_readiness_gates() {
        let mut p = pod(json!({
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                {"type": "example.com/gate", "status": "True"},
            ],
        }));
        p["spec"]["readinessGates"] = json!([
            {"conditionType": "example.com/gate"},
            {"conditionType": "example.com/other"},
        ]);
        assert_eq!(cell("pods", &p, "Status"), json!("SchedulingGated"));
        assert_eq!(cell("pods", &p, "Readiness Gates"), json!("1/2"));
    }

    #[test]
    fn node_status_roles_and_addresses() {
        let node = json!({
            "metadata": {
                "name": "cp-1",
                "creationTimestamp": ago(3 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"},
            },
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "cp-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12"},
            },
        });
        let row = cells("nodes", &node, now());
        assert_eq!(row[1], json!("Ready,SchedulingDisabled"));
        assert_eq!(row[2], json!("control-plane,master"));
        assert_eq!(row[3], json!("3d"));
        assert_eq!(row[4], json!("v1.33.1"));
        assert_eq!(row[5], json!("172.18.0.2"));
        assert_eq!(row[6], json!("<none>"));
        assert_eq!(row[7], json!("Debian GNU/Linux 12"));
        assert_eq!(row[8], json!("<unknown>"));

        let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cell("nodes", &bare, "Status"), json!("NotReady"));
        assert_eq!(cell("nodes", &bare, "Roles"), json!("<none>"));
        assert_eq!(cell("nodes", &bare, "Age"), json!("<unknown>"));
        let no_conditions = json!({"metadata": {"name": "n"}});
        assert_eq!(cell("nodes", &no_conditions, "Status"), json!("Unknown"));
    }

    #[test]
    fn event_columns_and_cells() {
        let names: Vec<&str> = columns("events").iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.17f", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container\n",
            "type": "Warning",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(600),
            "lastTimestamp": ago(30),
            "count": 7,
        });
        let row = cells("events", &ev, now());
        assert_eq!(row[0], json!("30s"));
        assert_eq!(row[1], json!("Warning"));
        assert_eq!(row[2], json!("BackOff"));
        assert_eq!(row[3], json!("pod/web"));
        assert_eq!(row[4], json!("spec.containers{app}"));
        assert_eq!(row[5], json!("kubelet, node-1"));
        assert_eq!(row[6], json!("Back-off restarting failed container"));
        assert_eq!(row[7], json!("10m"));
        assert_eq!(row[8], json!(7));
        assert_eq!(row[9], json!("web.17f"));
    }

    #[test]
    fn event_time_fallbacks() {
        // New-style event: no legacy timestamps, no count, no series.
        let ev = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2025-06-01T11:59:15.123456Z",
            "reportingComponent": "scheduler",
            "reportingInstance": "scheduler-1",
            "type": "Normal",
            "reason": "Scheduled",
        });
        let row = cells("events", &ev, now());
        assert_eq!(row[0], json!("44s"));
        assert_eq!(row[3], json!("node"));
        assert_eq!(row[5], json!("scheduler, scheduler-1"));
        assert_eq!(row[7], json!("44s"));
        assert_eq!(row[8], json!(1));

        // A series overrides last seen and count.
        let mut series = ev.clone();
        series["series"] = json!({"count": 5, "lastObservedTime": "2025-06-01T11:59:55.000000Z"});
        let row = cells("events", &series, now());
        assert_eq!(row[0], json!("5s"));
        assert_eq!(row[8], json!(5));

        // Nothing at all: unknown.
        let empty = json!({"metadata": {"name": "x"}});
        let row = cells("events", &empty, now());
        assert_eq!(row[0], json!("<unknown>"));
        assert_eq!(row[7], json!("<unknown>"));

        // events.k8s.io/v1 shape.
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "y"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "note": "Scaled up",
            "deprecatedCount": 2,
            "deprecatedLastTimestamp": ago(3),
            "deprecatedFirstTimestamp": ago(90),
            "reportingController": "deployment-controller",
        });
        let row = cells("events", &v1, now());
        assert_eq!(row[0], json!("3s"));
        assert_eq!(row[3], json!("deployment/web"));
        assert_eq!(row[5], json!("deployment-controller"));
        assert_eq!(row[6], json!("Scaled up"));
        assert_eq!(row[8], json!(2));
    }

    #[test]
    fn deployment_and_replicaset_cells() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(7200)},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "busybox"}]}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let row = cells("deployments", &d, now());
        assert_eq!(
            row,
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("120m"),
                json!("app,side"),
                json!("nginx:1,busybox"),
                json!("app=web,tier in (a,b)"),
            ]
        );
        let rs = json!({
            "metadata": {"name": "web-abc"},
            "spec": {"selector": {}, "template": {"spec": {"containers": []}}},
            "status": {"replicas": 1},
        });
        let row = cells("replicasets", &rs, now());
        assert_eq!(row[1], json!(1));
        assert_eq!(row[2], json!(1));
        assert_eq!(row[3], json!(0));
        assert_eq!(row[4], json!("<unknown>"));
        assert_eq!(row[7], json!("<none>"));
    }

    #[test]
    fn small_resources() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(cells("configmaps", &cm, now())[1], json!(3));
        let sec = json!({"metadata": {"name": "s"}, "data": {"a": "MQ=="}});
        assert_eq!(cells("secrets", &sec, now())[1], json!("Opaque"));
        assert_eq!(cells("secrets", &sec, now())[2], json!(1));
        let sa = json!({"metadata": {"name": "default"}, "secrets": []});
        assert_eq!(cells("serviceaccounts", &sa, now())[1], json!(0));
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
        assert_eq!(cells("leases", &lease, now())[1], json!("node-1"));
        let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
        assert_eq!(cells("namespaces", &ns, now())[1], json!("Active"));
    }

    #[test]
    fn services_and_endpoints() {
        let svc = json!({
            "metadata": {"name": "web"},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
                "selector": {"app": "web"},
            },
        });
        let row = cells("services", &svc, now());
        assert_eq!(row[1], json!("NodePort"));
        assert_eq!(row[2], json!("10.96.0.10"));
        assert_eq!(row[3], json!("<none>"));
        assert_eq!(row[4], json!("80:30080/TCP,53/UDP"));
        assert_eq!(row[6], json!("app=web"));

        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(cells("services", &lb, now())[3], json!("<pending>"));
        assert_eq!(cells("services", &lb, now())[2], json!("<none>"));

        let ep = json!({
            "metadata": {"name": "web"},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
                "ports": [{"port": 8080}],
            }],
        });
        assert_eq!(
            cells("endpoints", &ep, now())[1],
            json!("10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more...")
        );
        let empty = json!({"metadata": {"name": "none"}});
        assert_eq!(cells("endpoints", &empty, now())[1], json!("<none>"));
    }

    #[test]
    fn default_table_and_include_object() {
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "default", "creationTimestamp": "2024-03-04T05:06:07Z"},
            "rules": [],
        });
        let cols = columns("roles");
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].name, "Created At");
        assert_eq!(cols[1].type_, "date");
        assert_eq!(
            cells("roles", &role, now()),
            vec![json!("r"), json!("2024-03-04T05:06:07Z")]
        );

        let table = build_table("roles", &[&role], "7", "", now());
        assert_eq!(table["kind"], json!("Table"));
        assert_eq!(table["apiVersion"], json!("meta.k8s.io/v1"));
        assert_eq!(table["metadata"]["resourceVersion"], json!("7"));
        assert_eq!(table["columnDefinitions"][0]["name"], json!("Name"));
        assert_eq!(table["columnDefinitions"][0]["format"], json!("name"));
        assert_eq!(table["columnDefinitions"][1]["priority"], json!(0));
        let object = &table["rows"][0]["object"];
        assert_eq!(object["kind"], json!("PartialObjectMetadata"));
        assert_eq!(object["apiVersion"], json!("meta.k8s.io/v1"));
        assert_eq!(object["metadata"]["name"], json!("r"));

        let full = build_table("roles", &[&role], "7", "Object", now());
        assert_eq!(full["rows"][0]["object"], role);

        let empty = build_table("roles", &[], "", "Metadata", now());
        assert_eq!(empty["rows"], Value::Null);
        assert_eq!(empty["metadata"], json!({}));
        let empty_pods = build_table("pods", &[], "9", "Metadata", now());
        assert_eq!(empty_pods["rows"], json!([]));

        assert!(is_valid_include_object(""));
        assert!(is_valid_include_object("None"));
        assert!(!is_valid_include_object("metadata"));
    }

    #[test]
    fn every_printer_has_matching_cell_count() {
        let obj = json!({"metadata": {"name": "x"}});
        for resource in [
            "pods",
            "deployments",
            "replicasets",
            "replicationcontrollers",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "nodes",
            "events",
            "leases",
            "namespaces",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "widgets",
        ] {
            assert_eq!(
                cells(resource, &obj, now()).len(),
                columns(resource).len(),
                "{resource}"
            );
        }
    }

    #[test]
    fn jobs_and_cronjobs() {
        let job = json!({
            "metadata": {"name": "j", "creationTimestamp": ago(400)},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {
                "succeeded": 1,
                "startTime": ago(400),
                "completionTime": ago(280),
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        });
        let row = cells("jobs", &job, now());
        assert_eq!(row[1], json!("Complete"));
        assert_eq!(row[2], json!("1/1"));
        assert_eq!(row[3], json!("2m"));
        assert_eq!(row[7], json!("<none>"));

        let cj = json!({
            "metadata": {"name": "cj"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
        });
        let row = cells("cronjobs", &cj, now());
        assert_eq!(row[1], json!("*/5 * * * *"));
        assert_eq!(row[2], json!("<none>"));
        assert_eq!(row[3], json!("False"));
        assert_eq!(row[4], json!(0));
        assert_eq!(row[5], json!("<none>"));
    }
}

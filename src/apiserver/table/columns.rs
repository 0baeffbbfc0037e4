//! Column definitions of every built-in printer: names, types, formats and priorities as the
//! 1.33 apiserver declares them, with our own short descriptions.

use serde_json::{json, Value};

use super::{printer_for, Printer};

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
const D_PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
const D_PC_GLOBAL_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
const D_PC_PREEMPTION_POLICY: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
const D_NS_STATUS: &str = "Lifecycle phase of the namespace.";

const D_SVC_TYPE: &str = "How the service is exposed.";
const D_SVC_CLUSTER_IP: &str = "Primary cluster-internal IP of the service.";
const D_SVC_EXTERNAL_IP: &str = "Externally reachable addresses of the service.";
const D_SVC_PORTS: &str = "Ports exposed by the service.";
const D_SVC_SELECTOR: &str = "Labels of the pods that back the service.";

const D_EP_ENDPOINTS: &str = "Ready addresses and ports of the endpoints.";
const D_EPS_ADDRESS_TYPE: &str = "Type of the addresses the slice carries (IPv4, IPv6 or FQDN).";
const D_EPS_PORTS: &str = "Ports every endpoint of the slice exposes.";
const D_EPS_ENDPOINTS: &str = "Addresses of the endpoints in the slice.";
const D_DATA: &str = "Number of data entries.";
const D_CS_STATUS: &str = "Status of the component conditions";
const D_CS_MESSAGE: &str = "Message of the component conditions";
const D_CS_ERROR: &str = "Error of the component conditions";
const D_SECRET_TYPE: &str = "Type of the secret.";
const D_SA_SECRETS: &str = "Number of secrets listed by the service account.";

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
/// "endpoints", "endpointslices", "configmaps", "secrets", "serviceaccounts"). Unknown resources
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
        Printer::EndpointSlice => vec![
            name_col(),
            col("AddressType", "string", D_EPS_ADDRESS_TYPE),
            col("Ports", "string", D_EPS_PORTS),
            col("Endpoints", "string", D_EPS_ENDPOINTS),
            age_col(),
        ],
        Printer::ConfigMap => vec![name_col(), col("Data", "string", D_DATA), age_col()],
        Printer::PriorityClass => vec![
            name_col(),
            col("Value", "integer", D_PC_VALUE),
            col("Global-Default", "boolean", D_PC_GLOBAL_DEFAULT),
            age_col(),
            col("PreemptionPolicy", "string", D_PC_PREEMPTION_POLICY),
        ],
        Printer::ComponentStatus => vec![
            name_col(),
            col("Status", "string", D_CS_STATUS),
            col("Message", "string", D_CS_MESSAGE),
            col("Error", "string", D_CS_ERROR),
        ],
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

//! The scheduler's pure filter and score functions, modelled on the default profile of
//! kube-scheduler 1.33.
//!
//! Everything here is a plain function over k8s-openapi objects: no I/O, no async, no store, no
//! clock. The bind loop owns the informers, builds one [`NodeInfo`] per node from the pods bound
//! to it, and calls [`filter`] for every node, [`score`] for the feasible ones and, when none is
//! feasible, [`fit_error_message`] (or [`fit_error_message_for_pod`]) for the `FailedScheduling`
//! event and the `PodScheduled=False` condition.
//!
//! What it reproduces, in upstream's order:
//! - **PreFilter** of NodeAffinity: a required `matchFields` affinity on `metadata.name` narrows
//!   the candidate nodes; the other nodes fail with `node(s) didn't satisfy plugin(s)
//!   [NodeAffinity]`, and terms that name no node at all fail with `pod affinity terms conflict`.
//! - **Filter**, stopping at the first plugin that rejects: NodeUnschedulable, NodeName,
//!   TaintToleration, NodeAffinity (nodeSelector and required node affinity), NodePorts,
//!   NodeResourcesFit (pods, cpu, memory, ephemeral-storage and extended resources against
//!   allocatable minus what the bound pods request).
//! - **Score**: NodeResourcesFit LeastAllocated (weight 1), NodeResourcesBalancedAllocation
//!   (weight 1, skipped for pods that request nothing), TaintToleration over PreferNoSchedule
//!   taints (weight 3, normalized and reversed), NodeAffinity preferred terms (weight 2,
//!   normalized).
//! - **FitError** text, including the suffix DefaultPreemption adds when no node has a
//!   lower-priority pod to evict.
//!
//! Not modelled (the plugins whose results do not change for the pods the specs create):
//! PodTopologySpread (including its system default spreading by hostname/zone), InterPodAffinity,
//! ImageLocality, the volume plugins, DynamicResources, pod-level resources (alpha in 1.33), and
//! preemption that actually finds victims.
//!
//! This module must not touch: the network, the store, the clock, or any other module of the
//! crate (it uses only std, k8s_openapi and serde_json).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::k8s::quantity::{nanos_to, parse_nanos, NANO};
use crate::k8s::tolerations::tolerates;

// ---------------------------------------------------------------------------------------------
// Names and messages (upstream's exact strings)
// ---------------------------------------------------------------------------------------------

/// Plugin names, as upstream registers them.
pub const NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const NODE_NAME: &str = "NodeName";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const NODE_PORTS: &str = "NodePorts";
pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";
pub const NODE_RESOURCES_BALANCED_ALLOCATION: &str = "NodeResourcesBalancedAllocation";

/// NodeUnschedulable's reason.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeName's reason.
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// NodeAffinity's Filter reason.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeAffinity's PreFilter reason when the `metadata.name` terms name no node at all.
pub const REASON_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";
/// The status of the nodes a PreFilter result (NodeAffinity on `metadata.name`) left out.
pub const REASON_PREFILTER_NODE_AFFINITY: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
/// NodePorts' reason.
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// NodeResourcesFit's reason when the node already holds its allocatable number of pods.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// The scheduling error when the cluster has no node at all (condition reason `SchedulerError`,
/// no preemption suffix).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// DefaultPreemption's status for a node whose filter failure was UnschedulableAndUnresolvable.
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// DefaultPreemption's status for a node it dry-ran without finding a lower-priority pod.
pub const NO_PREEMPTION_VICTIMS: &str = "No preemption victims found for incoming pod";
/// DefaultPreemption's message for a pod with `preemptionPolicy: Never`.
pub const NOT_ELIGIBLE_PREEMPT_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

/// The untolerated-taint reason as kube-scheduler 1.33.0 renders it: `node(s) had untolerated
/// taint {key: value}` (an empty value leaves `{key: }`).
pub fn reason_untolerated_taint(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

/// NodeResourcesFit's reason for a resource the node lacks, e.g. `Insufficient cpu`.
pub fn reason_insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// The scheduler's implicit cpu request (milli-cores) for a container that sets none; used only
/// for scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The scheduler's implicit memory request (bytes, 200Mi) for a container that sets none; used
/// only for scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
/// The highest score one plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;
/// Score weights of the default profile.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;

const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const BIND_ALL_HOST_IP: &str = "0.0.0.0";

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

/// A summed amount of the resources the scheduler accounts for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// cpu, in milli-cores.
    pub milli_cpu: i64,
    /// memory, in bytes.
    pub memory: i64,
    /// ephemeral-storage, in bytes.
    pub ephemeral_storage: i64,
    /// Extended, hugepages-, attachable-volumes- and prefixed native resources, in units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// True when nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }
}

/// Whether upstream's `IsScalarResourceName` holds: the scheduler tracks such a resource by name.
pub fn is_scalar_resource_name(name: &str) -> bool {
    let prefixed_native = name.contains("kubernetes.io/");
    let native = !name.contains('/') || prefixed_native;
    let extended = !native && !name.starts_with("requests.");
    extended
        || prefixed_native
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
}

/// A resource list in nano-units, so sums are exact before the final rounding.
type NanoList = BTreeMap<String, i128>;

fn nano_list(map: Option<&BTreeMap<String, Quantity>>) -> NanoList {
    let mut out = NanoList::new();
    if let Some(map) = map {
        for (name, q) in map {
            // Validation rejects malformed quantities; one that slipped through counts as zero.
            out.insert(name.clone(), parse_nanos(&q.0).unwrap_or(0));
        }
    }
    out
}

fn add_into(acc: &mut NanoList, other: &NanoList) {
    for (k, v) in other {
        let e = acc.entry(k.clone()).or_insert(0);
        *e = e.saturating_add(*v);
    }
}

fn max_into(acc: &mut NanoList, other: &NanoList) {
    for (k, v) in other {
        let e = acc.entry(k.clone()).or_insert(*v);
        if *v > *e {
            *e = *v;
        }
    }
}

fn with_defaults(list: &NanoList) -> NanoList {
    let mut out = list.clone();
    out.entry("cpu".to_string())
        .or_insert(i128::from(DEFAULT_MILLI_CPU_REQUEST) * 1_000_000);
    out.entry("memory".to_string())
        .or_insert(i128::from(DEFAULT_MEMORY_REQUEST) * NANO);
    out
}

fn container_requests(c: &Container) -> NanoList {
    nano_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The requests the scheduler accounts to a pod, as upstream's `PodRequests` with
/// `UseStatusResources` (InPlacePodVerticalScaling is on by default in 1.33):
/// `max(sum(app containers) + sum(sidecars), max over init containers i of (init i + sidecars
/// started before i)) + overhead`, where an app container whose status reports resources counts
/// `max(spec, status)` (status alone while a resize is Infeasible). With `defaults`, a container
/// that sets no cpu / memory request counts 100m / 200Mi (scoring only).
fn pod_request_list(pod: &Pod, defaults: bool) -> NanoList {
    let Some(spec) = pod.spec.as_ref() else {
        return NanoList::new();
    };
    let status = pod.status.as_ref();
    let resize_infeasible = status.and_then(|s| s.resize.as_deref()) == Some("Infeasible")
        || status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "PodResizePending" && c.reason.as_deref() == Some("Infeasible"));

    let mut reqs = NanoList::new();
    for c in &spec.containers {
        let mut r = container_requests(c);
        let reported = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|cs| cs.name == c.name))
            .and_then(|cs| cs.resources.as_ref());
        if let Some(res) = reported {
            let actual = nano_list(res.requests.as_ref());
            if resize_infeasible {
                r = actual;
            } else {
                max_into(&mut r, &actual);
            }
        }
        if defaults {
            r = with_defaults(&r);
        }
        add_into(&mut reqs, &r);
    }

    let mut sidecars = NanoList::new();
    let mut init_peak = NanoList::new();
    for c in spec.init_containers.iter().flatten() {
        let mut r = container_requests(c);
        if defaults {
            r = with_defaults(&r);
        }
        let during = if is_restartable_init_container(c) {
            add_into(&mut reqs, &r);
            add_into(&mut sidecars, &r);
            sidecars.clone()
        } else {
            let mut tmp = r;
            add_into(&mut tmp, &sidecars);
            tmp
        };
        max_into(&mut init_peak, &during);
    }
    max_into(&mut reqs, &init_peak);

    add_into(&mut reqs, &nano_list(spec.overhead.as_ref()));
    reqs
}

fn to_resources(list: &NanoList) -> Resources {
    let mut r = Resources::default();
    for (name, nanos) in list {
        match name.as_str() {
            "cpu" => r.milli_cpu = nanos_to(*nanos, 1_000_000),
            "memory" => r.memory = nanos_to(*nanos, NANO),
            "ephemeral-storage" => r.ephemeral_storage = nanos_to(*nanos, NANO),
            "pods" => {}
            other if is_scalar_resource_name(other) => {
                r.scalar.insert(other.to_string(), nanos_to(*nanos, NANO));
            }
            _ => {}
        }
    }
    r
}

/// The pod's resource request as NodeResourcesFit filters with it (no implicit defaults).
pub fn pod_requests(pod: &Pod) -> Resources {
    to_resources(&pod_request_list(pod, false))
}

/// The pod's request for scoring: as [`pod_requests`], but every container that sets no cpu or
/// memory request counts [`DEFAULT_MILLI_CPU_REQUEST`] / [`DEFAULT_MEMORY_REQUEST`].
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    to_resources(&pod_request_list(pod, true))
}

/// What a node offers: `status.allocatable`, or `status.capacity` when allocatable is absent (the
/// apiserver defaults it so), and the number of pods it admits.
pub fn node_allocatable(node: &Node) -> (Resources, i64) {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    let nanos = nano_list(list);
    let pods = nanos.get("pods").map(|n| nanos_to(*n, NANO)).unwrap_or(0);
    (to_resources(&nanos), pods)
}

// ---------------------------------------------------------------------------------------------
// NodeInfo
// ---------------------------------------------------------------------------------------------

/// A host port a container claims, after upstream's defaulting (ip `0.0.0.0`, protocol `TCP`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

/// The host ports a pod claims: those of its app containers and (1.33.x) of its restartable init
/// containers, with `hostPort > 0`.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_restartable_init_container(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.unwrap_or(0);
            (port > 0).then(|| HostPort {
                protocol: p
                    .protocol
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| BIND_ALL_HOST_IP.into()),
                port,
            })
        })
        .collect()
}

fn port_conflicts(used: &BTreeSet<HostPort>, want: &HostPort) -> bool {
    used.iter().any(|u| {
        u.protocol == want.protocol
            && u.port == want.port
            && (want.ip == BIND_ALL_HOST_IP || u.ip == BIND_ALL_HOST_IP || u.ip == want.ip)
    })
}

/// Whether the pod has finished (`Succeeded` or `Failed`); the scheduler's informer never sees
/// such pods, so they hold no resources.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn pod_key(pod: &Pod) -> String {
    match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => format!("uid:{uid}"),
        _ => format!(
            "name:{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        ),
    }
}

/// What the scheduler knows about one node: the node and the pods bound to it (non-terminal),
/// with their summed requests precomputed.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Node,
    /// What is accounted of each non-terminal pod bound to the node; their number is the node's
    /// pod count. Only the figures are kept, not the pods (a cluster's worth of pods would
    /// otherwise be copied here).
    pub pods: Vec<PodEntry>,
    /// Sum of the pods' requests (what NodeResourcesFit filters and BalancedAllocation scores
    /// against).
    pub requested: Resources,
    /// Sum of the pods' requests with the implicit 100m / 200Mi per container that sets none
    /// (what LeastAllocated scores against); only cpu and memory are kept.
    pub non_zero_requested: Resources,
    /// Host ports in use on the node.
    pub used_ports: BTreeSet<HostPort>,
    /// The node's allocatable resources and pod count, parsed once per node update.
    alloc: (Resources, i64),
}

/// What a node's accounting keeps of one pod bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEntry {
    /// uid, or namespace/name when the pod has no uid.
    key: String,
    requests: Resources,
    non_zero: Resources,
    ports: Vec<HostPort>,
}

impl PodEntry {
    fn of(pod: &Pod) -> Self {
        PodEntry {
            key: pod_key(pod),
            requests: pod_requests(pod),
            non_zero: pod_non_zero_requests(pod),
            ports: pod_host_ports(pod),
        }
    }
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Node) -> Self {
        let alloc = node_allocatable(&node);
        NodeInfo {
            alloc,
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            used_ports: BTreeSet::new(),
        }
    }

    /// A node with the given pods bound to it (terminal ones are left out).
    pub fn with_pods<'a>(node: Node, pods: impl IntoIterator<Item = &'a Pod>) -> Self {
        let mut info = NodeInfo::new(node);
        for p in pods {
            info.add_pod(p);
        }
        info
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// How many pods are bound to the node.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Allocatable resources and the number of pods the node admits.
    pub fn allocatable(&self) -> (&Resources, i64) {
        (&self.alloc.0, self.alloc.1)
    }

    /// Replace the node object (a status or spec update), keeping its pods.
    pub fn set_node(&mut self, node: Node) {
        self.alloc = node_allocatable(&node);
        self.node = node;
    }

    /// Account a pod bound to this node. Adding a pod already present (same uid, or same
    /// namespace/name when it has no uid) replaces it; adding a terminal pod removes it, as the
    /// scheduler's informer turns a pod's move to Succeeded/Failed into a delete.
    pub fn add_pod(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        if let Some(i) = self.pods.iter().position(|p| p.key == key) {
            self.pods.remove(i);
            if !is_terminal(pod) {
                self.pods.push(PodEntry::of(pod));
            }
            self.recompute();
            return;
        }
        if is_terminal(pod) {
            return;
        }
        let entry = PodEntry::of(pod);
        self.account(&entry);
        self.pods.push(entry);
    }

    /// Forget a pod (matched by uid, or namespace/name when it has no uid).
    pub fn remove_pod(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        let before = self.pods.len();
        self.pods.retain(|p| p.key != key);
        if self.pods.len() != before {
            self.recompute();
        }
    }

    fn account(&mut self, entry: &PodEntry) {
        self.requested.add(&entry.requests);
        self.non_zero_requested.milli_cpu = self
            .non_zero_requested
            .milli_cpu
            .saturating_add(entry.non_zero.milli_cpu);
        self.non_zero_requested.memory = self
            .non_zero_requested
            .memory
            .saturating_add(entry.non_zero.memory);
        self.used_ports.extend(entry.ports.iter().cloned());
    }

    fn recompute(&mut self) {
        let pods = std::mem::take(&mut self.pods);
        self.requested = Resources::default();
        self.non_zero_requested = Resources::default();
        self.used_ports.clear();
        for p in &pods {
            self.account(p);
        }
        self.pods = pods;
    }
}

// ---------------------------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------------------------

fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// The first NoSchedule/NoExecute taint of the node (in the node's order) the pod does not
/// tolerate.
pub fn first_untolerated_taint<'a>(pod: &Pod, node: &'a Node) -> Option<&'a Taint> {
    let tolerations = pod_tolerations(pod);
    node_taints(node)
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations_tolerate(tolerations, t))
}

// ---------------------------------------------------------------------------------------------
// Node selectors
// ---------------------------------------------------------------------------------------------

fn node_labels(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

/// One `matchExpressions` entry against node labels; `None` when the requirement is malformed
/// (upstream then treats the whole term as not matching).
fn label_requirement_matches(
    req: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    let label = labels.get(&req.key);
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                return None;
            }
            let found = label.is_some_and(|v| values.iter().any(|x| x == v));
            Some(if req.operator == "In" { found } else { !found })
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return None;
            }
            Some((req.operator == "Exists") == label.is_some())
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                return None;
            }
            let bound: i64 = values[0].parse().ok()?;
            let Some(have) = label.and_then(|v| v.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if req.operator == "Gt" {
                have > bound
            } else {
                have < bound
            })
        }
        _ => None,
    }
}

/// One `matchFields` entry against the node's fields (only `metadata.name` exists); only `In` and
/// `NotIn` with exactly one value are valid.
fn field_requirement_matches(req: &NodeSelectorRequirement, node: &Node) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    if values.len() != 1 {
        return None;
    }
    let have = if req.key == "metadata.name" {
        node.metadata.name.as_deref().unwrap_or("")
    } else {
        ""
    };
    match req.operator.as_str() {
        "In" => Some(have == values[0]),
        "NotIn" => Some(have != values[0]),
        _ => None,
    }
}

fn is_empty_term(term: &NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(|v| v.is_empty())
        && term.match_fields.as_ref().is_none_or(|v| v.is_empty())
}

/// Whether a node selector term matches the node: all its expressions and fields hold. An empty
/// term, or one with a malformed requirement, matches nothing.
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    if is_empty_term(term) {
        return false;
    }
    let labels = node_labels(node);
    for req in term.match_expressions.iter().flatten() {
        match label_requirement_matches(req, &labels) {
            Some(true) => {}
            _ => return false,
        }
    }
    for req in term.match_fields.iter().flatten() {
        match field_requirement_matches(req, node) {
            Some(true) => {}
            _ => return false,
        }
    }
    true
}

/// Whether the node satisfies the pod's `nodeSelector` and its required node affinity (terms are
/// ORed).
pub fn matches_required_node_affinity(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(selector) = spec.node_selector.as_ref().filter(|s| !s.is_empty()) {
        let labels = node_labels(node);
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    match required_affinity(pod) {
        Some(required) => required
            .node_selector_terms
            .iter()
            .any(|t| node_selector_term_matches(t, node)),
        None => true,
    }
}

fn required_affinity(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

/// NodeAffinity's PreFilter outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreFilterNodes {
    /// Every node is a candidate.
    All,
    /// Only these nodes are candidates (every required term pins `metadata.name In ...`).
    Only(BTreeSet<String>),
    /// The terms pin no node at all: the pod fits nowhere (`pod affinity terms conflict`).
    Conflict,
}

/// NodeAffinity's PreFilter: when every required term has `matchFields` `metadata.name In`, the
/// candidates are the union over terms of the intersection of each term's name lists.
pub fn prefilter_node_names(pod: &Pod) -> PreFilterNodes {
    let Some(required) = required_affinity(pod) else {
        return PreFilterNodes::All;
    };
    if required.node_selector_terms.is_empty() {
        return PreFilterNodes::All;
    }
    let mut union: BTreeSet<String> = BTreeSet::new();
    for term in &required.node_selector_terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for req in term.match_fields.iter().flatten() {
            if req.key == "metadata.name" && req.operator == "In" {
                let set: BTreeSet<String> = req.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => set,
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                });
            }
        }
        match term_names {
            None => return PreFilterNodes::All,
            Some(names) => union.extend(names),
        }
    }
    if union.is_empty() {
        PreFilterNodes::Conflict
    } else {
        PreFilterNodes::Only(union)
    }
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/// Why a node cannot take the pod: the first plugin that rejected it and its reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filtered {
    /// The rejecting plugin (`NodeUnschedulable`, `NodeName`, `TaintToleration`, `NodeAffinity`,
    /// `NodePorts`, `NodeResourcesFit`).
    pub plugin: &'static str,
    /// Upstream's reason strings, each counted in the FitError histogram.
    pub reasons: Vec<String>,
    /// Status UnschedulableAndUnresolvable: evicting pods from this node would not help.
    pub unresolvable: bool,
}

impl Filtered {
    fn new(plugin: &'static str, reason: impl Into<String>, unresolvable: bool) -> Self {
        Filtered {
            plugin,
            reasons: vec![reason.into()],
            unresolvable,
        }
    }
}

/// NodeUnschedulable: a cordoned node takes only pods tolerating
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn filter_node_unschedulable(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    let cordoned = node
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !cordoned {
        return Ok(());
    }
    let taint = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        ..Default::default()
    };
    if tolerations_tolerate(pod_tolerations(pod), &taint) {
        Ok(())
    } else {
        Err(Filtered::new(
            NODE_UNSCHEDULABLE,
            REASON_UNSCHEDULABLE,
            true,
        ))
    }
}

/// NodeName: a pod naming a node fits only that node.
pub fn filter_node_name(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    match pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        Some(wanted) if wanted != node.name() => {
            Err(Filtered::new(NODE_NAME, REASON_NODE_NAME, true))
        }
        _ => Ok(()),
    }
}

/// TaintToleration: every NoSchedule/NoExecute taint must be tolerated.
pub fn filter_taint_toleration(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    match first_untolerated_taint(pod, &node.node) {
        Some(taint) => Err(Filtered::new(
            TAINT_TOLERATION,
            reason_untolerated_taint(taint),
            true,
        )),
        None => Ok(()),
    }
}

/// NodeAffinity: `nodeSelector` and required node affinity.
pub fn filter_node_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    if matches_required_node_affinity(pod, &node.node) {
        Ok(())
    } else {
        Err(Filtered::new(NODE_AFFINITY, REASON_NODE_AFFINITY, true))
    }
}

/// NodePorts: the pod's host ports must be free on the node (a `0.0.0.0` binding conflicts with
/// every address).
pub fn filter_node_ports(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    ports_free(&pod_host_ports(pod), node)
}

fn ports_free(ports: &[HostPort], node: &NodeInfo) -> Result<(), Filtered> {
    if ports.iter().any(|p| port_conflicts(&node.used_ports, p)) {
        Err(Filtered::new(NODE_PORTS, REASON_NODE_PORTS, false))
    } else {
        Ok(())
    }
}

/// NodeResourcesFit: pod count, then cpu, memory, ephemeral-storage and extended resources
/// against allocatable minus what the bound pods request. All shortfalls are reported, in that
/// order; a pod that requests nothing is only checked for the pod count.
pub fn filter_node_resources_fit(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    resources_fit(&pod_requests(pod), node)
}

fn resources_fit(want: &Resources, node: &NodeInfo) -> Result<(), Filtered> {
    let (alloc, allowed_pods) = node.allocatable();
    let used = &node.requested;
    let mut reasons = Vec::new();
    if node.pod_count() as i64 + 1 > allowed_pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    if !want.is_zero() {
        if want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu.saturating_sub(used.milli_cpu) {
            reasons.push(reason_insufficient("cpu"));
        }
        if want.memory > 0 && want.memory > alloc.memory.saturating_sub(used.memory) {
            reasons.push(reason_insufficient("memory"));
        }
        if want.ephemeral_storage > 0
            && want.ephemeral_storage
                > alloc
                    .ephemeral_storage
                    .saturating_sub(used.ephemeral_storage)
        {
            reasons.push(reason_insufficient("ephemeral-storage"));
        }
        for (name, qty) in &want.scalar {
            if *qty == 0 {
                continue;
            }
            let free = alloc
                .scalar
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(used.scalar.get(name).copied().unwrap_or(0));
            if *qty > free {
                reasons.push(reason_insufficient(name));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Filtered {
            plugin: NODE_RESOURCES_FIT,
            reasons,
            unresolvable: false,
        })
    }
}

/// What the filters need from a pod, computed once per scheduling attempt rather than once per
/// node (upstream's PreFilter state).
pub struct PodInfo<'a> {
    pod: &'a Pod,
    requests: Resources,
    host_ports: Vec<HostPort>,
    prefilter: PreFilterNodes,
}

impl<'a> PodInfo<'a> {
    /// Precompute a pod's requests, host ports and NodeAffinity pre-filter.
    pub fn new(pod: &'a Pod) -> Self {
        Self {
            pod,
            requests: pod_requests(pod),
            host_ports: pod_host_ports(pod),
            prefilter: prefilter_node_names(pod),
        }
    }
}

/// Run NodeAffinity's PreFilter and then every filter in upstream's order; `Ok(())` if the pod
/// fits, else the first rejection.
pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    filter_info(&PodInfo::new(pod), node)
}

/// [`filter`] with the pod's share precomputed.
pub fn filter_info(info: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Filtered> {
    let pod = info.pod;
    match &info.prefilter {
        PreFilterNodes::All => {}
        PreFilterNodes::Conflict => {
            return Err(Filtered::new(NODE_AFFINITY, REASON_AFFINITY_CONFLICT, true));
        }
        PreFilterNodes::Only(names) => {
            if !names.contains(node.name()) {
                return Err(Filtered::new(
                    NODE_AFFINITY,
                    REASON_PREFILTER_NODE_AFFINITY,
                    true,
                ));
            }
        }
    }
    filter_node_unschedulable(pod, node)?;
    filter_node_name(pod, node)?;
    filter_taint_toleration(pod, node)?;
    filter_node_affinity(pod, node)?;
    ports_free(&info.host_ports, node)?;
    resources_fit(&info.requests, node)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scores
// ---------------------------------------------------------------------------------------------

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    ((i128::from(capacity - requested) * i128::from(MAX_NODE_SCORE)) / i128::from(capacity)) as i64
}

/// NodeResourcesFit's LeastAllocated score (0..=100): the weighted mean, over cpu and memory
/// (weight 1 each; a resource the node does not offer is left out), of the share that stays free
/// once the pod is placed, counting implicit default requests.
pub fn least_allocated_score(pod: &Pod, node: &NodeInfo) -> i64 {
    least_allocated_with(&pod_non_zero_requests(pod), node)
}

fn least_allocated_with(pod_req: &Resources, node: &NodeInfo) -> i64 {
    let (alloc, _) = node.allocatable();
    let pairs = [
        (
            alloc.milli_cpu,
            node.non_zero_requested
                .milli_cpu
                .saturating_add(pod_req.milli_cpu),
        ),
        (
            alloc.memory,
            node.non_zero_requested
                .memory
                .saturating_add(pod_req.memory),
        ),
    ];
    let (mut total, mut weights) = (0i64, 0i64);
    for (capacity, requested) in pairs {
        if capacity == 0 {
            continue;
        }
        total += least_requested(requested, capacity);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        total / weights
    }
}

/// NodeResourcesBalancedAllocation's score (0..=100): `(1 - std) × 100` of the cpu and memory
/// fractions the node would have requested (actual requests, no defaults). `None` when the pod
/// requests neither (upstream skips the plugin for such pods).
pub fn balanced_allocation_score(pod: &Pod, node: &NodeInfo) -> Option<i64> {
    balanced_with(&pod_requests(pod), node)
}

fn balanced_with(pod_req: &Resources, node: &NodeInfo) -> Option<i64> {
    if pod_req.milli_cpu == 0 && pod_req.memory == 0 {
        return None;
    }
    let (alloc, _) = node.allocatable();
    let pairs = [
        (
            alloc.milli_cpu,
            node.requested.milli_cpu.saturating_add(pod_req.milli_cpu),
        ),
        (
            alloc.memory,
            node.requested.memory.saturating_add(pod_req.memory),
        ),
    ];
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(capacity, _)| *capacity != 0)
        .map(|(capacity, requested)| (*requested as f64 / *capacity as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
        _ => 0.0,
    };
    Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
}

/// TaintToleration's raw score: how many PreferNoSchedule taints of the node the pod does not
/// tolerate (only tolerations with effect PreferNoSchedule or empty count).
pub fn intolerable_prefer_no_schedule_taints(pod: &Pod, node: &NodeInfo) -> i64 {
    let tolerations: Vec<Toleration> = pod_tolerations(pod)
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .cloned()
        .collect();
    node_taints(&node.node)
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations_tolerate(&tolerations, t))
        .count() as i64
}

/// NodeAffinity's raw score: the summed weights of the pod's preferred terms the node matches.
/// `None` when the pod has no preferred node affinity (upstream skips the plugin).
pub fn preferred_node_affinity_weight(pod: &Pod, node: &NodeInfo) -> Option<i64> {
    let preferred = pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()?;
    Some(
        preferred
            .iter()
            .filter(|t| t.weight != 0 && node_selector_term_matches(&t.preference, &node.node))
            .map(|t| i64::from(t.weight))
            .sum(),
    )
}

/// Upstream's `DefaultNormalizeScore`: scale scores so the highest becomes `max`; with `reverse`,
/// subtract from `max` (and when all are zero, every node gets `max`).
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [i64]) {
    let highest = scores.iter().copied().max().unwrap_or(0).max(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max * *s / highest;
        *s = if reverse { max - scaled } else { scaled };
    }
}

/// Score every (feasible) node and return the weighted totals in input order: LeastAllocated ×1,
/// BalancedAllocation ×1, TaintToleration ×3 (normalized, reversed), NodeAffinity ×2
/// (normalized). The scheduler binds to a highest-scoring node (upstream breaks ties at random).
pub fn score(pod: &Pod, nodes: &[&NodeInfo]) -> Vec<i64> {
    let non_zero = pod_non_zero_requests(pod);
    let actual = pod_requests(pod);

    let mut totals: Vec<i64> = nodes
        .iter()
        .map(|n| {
            least_allocated_with(&non_zero, n) * WEIGHT_NODE_RESOURCES_FIT
                + balanced_with(&actual, n).unwrap_or(0) * WEIGHT_BALANCED_ALLOCATION
        })
        .collect();

    let mut taints: Vec<i64> = nodes
        .iter()
        .map(|n| intolerable_prefer_no_schedule_taints(pod, n))
        .collect();
    default_normalize_score(MAX_NODE_SCORE, true, &mut taints);

    let affinity: Option<Vec<i64>> = nodes
        .iter()
        .map(|n| preferred_node_affinity_weight(pod, n))
        .collect();

    for (i, total) in totals.iter_mut().enumerate() {
        *total += taints[i] * WEIGHT_TAINT_TOLERATION;
    }
    if let Some(mut affinity) = affinity {
        default_normalize_score(MAX_NODE_SCORE, false, &mut affinity);
        for (i, total) in totals.iter_mut().enumerate() {
            *total += affinity[i] * WEIGHT_NODE_AFFINITY;
        }
    }
    totals
}

// ---------------------------------------------------------------------------------------------
// FitError
// ---------------------------------------------------------------------------------------------

/// `"<count> <reason>"` entries sorted as Go's `sort.Strings` sorts them (bytewise), joined by
/// `", "`.
fn histogram<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in items {
        *counts.entry(r).or_insert(0) += 1;
    }
    let mut entries: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    entries.sort();
    entries.join(", ")
}

/// A PreFilter rejection applies to every node alike and is rendered once, not counted.
fn prefilter_message(failures: &[Filtered]) -> Option<&str> {
    let first = failures.first()?;
    let is_prefilter = first.plugin == NODE_AFFINITY && first.reasons == [REASON_AFFINITY_CONFLICT];
    (is_prefilter && failures.iter().all(|f| f == first)).then_some(REASON_AFFINITY_CONFLICT)
}

fn filter_part(num_nodes: usize, failures: &[Filtered]) -> String {
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if let Some(pre) = prefilter_message(failures) {
        msg.push_str(&format!(" {pre}."));
    } else {
        let reasons = histogram(
            failures
                .iter()
                .flat_map(|f| f.reasons.iter().map(String::as_str)),
        );
        if !reasons.is_empty() {
            msg.push_str(&format!(" {reasons}."));
        }
    }
    msg
}

/// The FailedScheduling message (and PodScheduled condition message) upstream's FitError renders
/// after DefaultPreemption ran and found no lower-priority pod to evict:
/// `0/<n> nodes are available: <count> <reason>, ... preemption: 0/<n> nodes are available:
/// <count> No preemption victims found for incoming pod, <count> Preemption is not helpful for
/// scheduling.` Nodes that failed with an unresolvable status (or are absent from `failures`) are
/// "not helpful"; the others were dry-run and yielded no victims. With no nodes at all:
/// `no nodes available to schedule pods`.
pub fn fit_error_message(num_nodes: usize, failures: &[Filtered]) -> String {
    if num_nodes == 0 {
        return NO_NODES_AVAILABLE.to_string();
    }
    let absent = num_nodes.saturating_sub(failures.len());
    let statuses = failures
        .iter()
        .map(|f| {
            if f.unresolvable {
                PREEMPTION_NOT_HELPFUL
            } else {
                NO_PREEMPTION_VICTIMS
            }
        })
        .chain(std::iter::repeat_n(PREEMPTION_NOT_HELPFUL, absent));
    format!(
        "{} preemption: 0/{num_nodes} nodes are available: {}.",
        filter_part(num_nodes, failures),
        histogram(statuses)
    )
}

/// As [`fit_error_message`], but honouring the pod's `preemptionPolicy`: a pod that may not
/// preempt gets `preemption: not eligible due to preemptionPolicy=Never.` instead.
pub fn fit_error_message_for_pod(pod: &Pod, num_nodes: usize, failures: &[Filtered]) -> String {
    let never = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never");
    if num_nodes > 0 && never {
        return format!(
            "{} preemption: {NOT_ELIGIBLE_PREEMPT_NEVER}",
            filter_part(num_nodes, failures)
        );
    }
    fit_error_message(num_nodes, failures)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node json")
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod json")
    }

    /// A node offering `cpu`, `memory` and 110 pods.
    fn plain_node(name: &str, cpu: &str, memory: &str) -> Node {
        node(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}
        }))
    }

    fn requesting(name: &str, cpu: &str, memory: &str) -> Pod {
        pod(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
        }))
    }

    fn best_effort(name: &str) -> Pod {
        pod(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
    }

    // ---- requests

    #[test]
    fn pod_requests_sum_containers_and_take_init_max_and_overhead() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
                ],
                "initContainers": [
                    {"name": "init", "resources": {"requests": {"cpu": "500m", "memory": "32Mi"}}}
                ],
                "overhead": {"cpu": "10m", "memory": "1Mi"}
            }
        }));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 510);
        assert_eq!(r.memory, 65 * 1024 * 1024);
        // Scoring fills the missing memory of container b with 200Mi; the init container sets both.
        let nz = pod_non_zero_requests(&p);
        assert_eq!(nz.milli_cpu, 510);
        assert_eq!(nz.memory, (64 + 200 + 1) * 1024 * 1024);
    }

    #[test]
    fn sidecars_add_to_the_steady_state_and_to_later_init_containers() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                    {"name": "init", "resources": {"requests": {"cpu": "250m"}}}
                ]
            }
        }));
        // steady state 100 + 200 = 300; while "init" runs 250 + 200 = 450.
        assert_eq!(pod_requests(&p).milli_cpu, 450);
    }

    #[test]
    fn best_effort_pod_defaults_only_for_scoring() {
        let p = best_effort("be");
        assert!(pod_requests(&p).is_zero());
        let nz = pod_non_zero_requests(&p);
        assert_eq!(
            (nz.milli_cpu, nz.memory),
            (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)
        );
    }

    #[test]
    fn status_resources_count_when_larger() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": true,
                "restartCount": 0, "resources": {"requests": {"cpu": "300m"}}}]}
        }));
        assert_eq!(pod_requests(&p).milli_cpu, 300);
    }

    // ---- NodeInfo

    #[test]
    fn node_info_accounts_and_forgets_pods() {
        let mut info = NodeInfo::new(plain_node("n1", "2", "4Gi"));
        let a = requesting("a", "500m", "1Gi");
        let b = best_effort("b");
        info.add_pod(&a);
        info.add_pod(&b);
        info.add_pod(&a); // idempotent
        assert_eq!(info.pod_count(), 2);
        assert_eq!(info.requested.milli_cpu, 500);
        assert_eq!(info.non_zero_requested.milli_cpu, 600);
        assert_eq!(info.non_zero_requested.memory, (1024 + 200) * 1024 * 1024);
        info.remove_pod(&a);
        assert_eq!(info.pod_count(), 1);
        assert_eq!(info.requested.milli_cpu, 0);
        assert_eq!(info.non_zero_requested.milli_cpu, 100);

        let mut done = best_effort("b");
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        info.add_pod(&done);
        assert_eq!(info.pod_count(), 0);
        assert_eq!(info.non_zero_requested.milli_cpu, 0);
    }

    #[test]
    fn allocatable_falls_back_to_capacity() {
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}));
        let (alloc, pods) = node_allocatable(&n);
        assert_eq!((alloc.milli_cpu, alloc.memory, pods), (4000, 8 << 30, 10));
    }

    // ---- filters

    #[test]
    fn unschedulable_node_rejects_unless_tolerated() {
        let mut n = plain_node("n1", "2", "4Gi");
        n.spec = Some(serde_json::from_value(json!({"unschedulable": true})).unwrap());
        let info = NodeInfo::new(n);
        let err = filter(&best_effort("p"), &info).unwrap_err();
        assert_eq!(
            err,
            Filtered {
                plugin: NODE_UNSCHEDULABLE,
                reasons: vec!["node(s) were unschedulable".into()],
                unresolvable: true
            }
        );
        let tolerant = pod(
            json!({"metadata": {"name": "t"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(filter(&tolerant, &info), Ok(()));
    }

    #[test]
    fn node_name_must_match() {
        let info = NodeInfo::new(plain_node("n1", "2", "4Gi"));
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2", "containers": [{"name": "c"}]}}),
        );
        let err = filter(&p, &info).unwrap_err();
        assert_eq!(
            (err.plugin, err.reasons[0].as_str(), err.unresolvable),
            (
                NODE_NAME,
                "node(s) didn't match the requested node name",
                true
            )
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}}),
        );
        assert_eq!(filter(&p, &info), Ok(()));
    }

    #[test]
    fn untolerated_taints_reject_with_key_and_value() {
        let mut n = plain_node("n1", "2", "4Gi");
        n.spec = Some(
            serde_json::from_value(json!({"taints": [
                {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}
            ]}))
            .unwrap(),
        );
        let info = NodeInfo::new(n);
        let err = filter(&best_effort("p"), &info).unwrap_err();
        assert_eq!(err.plugin, TAINT_TOLERATION);
        assert_eq!(
            err.reasons,
            vec![
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
                    .to_string()
            ]
        );
        assert!(err.unresolvable);

        let partly = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}),
        );
        assert_eq!(
            filter(&partly, &info).unwrap_err().reasons,
            vec!["node(s) had untolerated taint {dedicated: gpu}".to_string()]
        );

        let wrong_value = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"},
                            {"key": "dedicated", "operator": "Equal", "value": "cpu"}]}}),
        );
        assert_eq!(
            filter(&wrong_value, &info).unwrap_err().reasons,
            vec!["node(s) had untolerated taint {dedicated: gpu}".to_string()]
        );

        let all = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"operator": "Exists"}]}}),
        );
        assert_eq!(filter(&all, &info), Ok(()));
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let mut n = plain_node("n1", "2", "4Gi");
        n.metadata.labels.as_mut().unwrap().extend([
            ("disk".to_string(), "ssd".to_string()),
            ("cores".to_string(), "8".to_string()),
        ]);
        let info = NodeInfo::new(n);
        let with = |spec: serde_json::Value| {
            let mut s = spec;
            s["containers"] = json!([{"name": "c"}]);
            pod(json!({"metadata": {"name": "p"}, "spec": s}))
        };
        assert_eq!(
            filter(&with(json!({"nodeSelector": {"disk": "ssd"}})), &info),
            Ok(())
        );
        let err = filter(&with(json!({"nodeSelector": {"disk": "hdd"}})), &info).unwrap_err();
        assert_eq!(
            (err.plugin, err.reasons[0].as_str(), err.unresolvable),
            (
                NODE_AFFINITY,
                "node(s) didn't match Pod's node affinity/selector",
                true
            )
        );

        let required = |exprs: serde_json::Value| {
            with(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": exprs}}}}))
        };
        let ok = [
            json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]}]),
            json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]),
            json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]),
            json!([{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["hdd"]}]}]),
            // terms are ORed
            json!([{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                   {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]),
        ];
        for terms in ok {
            assert_eq!(filter(&required(terms.clone()), &info), Ok(()), "{terms}");
        }
        let rejected = [
            json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}]),
            json!([{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}]),
            json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": []}]}]),
            json!([{}]),
            // expressions within a term are ANDed
            json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}, {"key": "gpu", "operator": "Exists"}]}]),
        ];
        for terms in rejected {
            assert_eq!(
                filter(&required(terms.clone()), &info).unwrap_err().reasons,
                vec![REASON_NODE_AFFINITY.to_string()],
                "{terms}"
            );
        }
    }

    #[test]
    fn metadata_name_affinity_prefilters_other_nodes() {
        let p = pod(
            json!({"metadata": {"name": "ds-pod"}, "spec": {"containers": [{"name": "c"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}),
        );
        assert_eq!(
            filter(&p, &NodeInfo::new(plain_node("n1", "1", "1Gi"))),
            Ok(())
        );
        let err = filter(&p, &NodeInfo::new(plain_node("n2", "1", "1Gi"))).unwrap_err();
        assert_eq!(
            err.reasons,
            vec!["node(s) didn't satisfy plugin(s) [NodeAffinity]".to_string()]
        );
        assert!(err.unresolvable);
    }

    #[test]
    fn host_ports_conflict_by_protocol_port_and_ip() {
        let with_port = |name: &str, port: serde_json::Value| {
            pod(json!({
                "metadata": {"name": name, "uid": name},
                "spec": {"containers": [{"name": "c", "ports": [port]}]}
            }))
        };
        let mut info = NodeInfo::new(plain_node("n1", "2", "4Gi"));
        info.add_pod(&with_port(
            "a",
            json!({"containerPort": 80, "hostPort": 8080}),
        ));
        info.add_pod(&with_port(
            "b",
            json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}),
        ));
        assert_eq!(info.used_ports.len(), 2);

        let err = filter(
            &with_port("c", json!({"containerPort": 80, "hostPort": 8080})),
            &info,
        )
        .unwrap_err();
        assert_eq!(
            (err.plugin, err.reasons[0].as_str(), err.unresolvable),
            (
                NODE_PORTS,
                "node(s) didn't have free ports for the requested pod ports",
                false
            )
        );
        // 0.0.0.0 on the node conflicts with a specific address too.
        assert!(filter(
            &with_port(
                "d",
                json!({"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"})
            ),
            &info
        )
        .is_err());
        // Different protocol, different port, different specific address: free.
        assert_eq!(
            filter(
                &with_port(
                    "e",
                    json!({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"})
                ),
                &info
            ),
            Ok(())
        );
        assert_eq!(
            filter(
                &with_port("f", json!({"containerPort": 80, "hostPort": 8081})),
                &info
            ),
            Ok(())
        );
        assert_eq!(
            filter(
                &with_port(
                    "g",
                    json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.2"})
                ),
                &info
            ),
            Ok(())
        );
        assert!(filter(
            &with_port(
                "h",
                json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP"})
            ),
            &info
        )
        .is_err());
        // A containerPort without hostPort claims nothing.
        assert_eq!(
            filter(&with_port("i", json!({"containerPort": 8080})), &info),
            Ok(())
        );
        // Freed when the pod goes.
        info.remove_pod(&with_port(
            "a",
            json!({"containerPort": 80, "hostPort": 8080}),
        ));
        assert_eq!(
            filter(
                &with_port("c", json!({"containerPort": 80, "hostPort": 8080})),
                &info
            ),
            Ok(())
        );
    }

    #[test]
    fn resources_fit_reports_every_shortfall() {
        let mut info = NodeInfo::new(plain_node("n1", "1", "1Gi"));
        info.add_pod(&requesting("a", "600m", "512Mi"));
        assert_eq!(filter(&requesting("b", "400m", "512Mi"), &info), Ok(()));
        let err = filter(&requesting("c", "500m", "600Mi"), &info).unwrap_err();
        assert_eq!(
            err,
            Filtered {
                plugin: NODE_RESOURCES_FIT,
                reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                unresolvable: false,
            }
        );
        let err = filter(&requesting("d", "500m", "1Mi"), &info).unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient cpu".to_string()]);
    }

    #[test]
    fn pod_count_limit() {
        let n = node(
            json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "1"}}}),
        );
        let mut info = NodeInfo::new(n);
        assert_eq!(filter(&best_effort("a"), &info), Ok(()));
        info.add_pod(&best_effort("a"));
        let err = filter(&requesting("b", "8", "1Mi"), &info).unwrap_err();
        assert_eq!(
            err.reasons,
            vec!["Too many pods".to_string(), "Insufficient cpu".to_string()]
        );
        // A pod requesting nothing is only held to the pod count.
        let mut full = NodeInfo::new(plain_node("n2", "1", "1Gi"));
        full.add_pod(&requesting("big", "1", "1Gi"));
        assert_eq!(filter(&best_effort("c"), &full), Ok(()));
    }

    #[test]
    fn extended_resources_are_checked_by_name() {
        let n = node(
            json!({"metadata": {"name": "n1"}, "status": {"allocatable": {
            "cpu": "4", "memory": "4Gi", "pods": "10", "example.com/gpu": "1"}}}),
        );
        let info = NodeInfo::new(n);
        let p = pod(
            json!({"metadata": {"name": "g"}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"example.com/gpu": "2"}}}]}}),
        );
        assert_eq!(
            filter(&p, &info).unwrap_err().reasons,
            vec!["Insufficient example.com/gpu".to_string()]
        );
    }

    #[test]
    fn filters_run_in_upstream_order() {
        // Cordoned, tainted, mislabelled and full: NodeUnschedulable speaks first.
        let mut n = plain_node("n1", "100m", "1Mi");
        n.spec = Some(
            serde_json::from_value(json!({"unschedulable": true,
            "taints": [{"key": "k", "effect": "NoSchedule"}]}))
            .unwrap(),
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": {"x": "y"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        assert_eq!(
            filter(&p, &NodeInfo::new(n.clone())).unwrap_err().plugin,
            NODE_UNSCHEDULABLE
        );
        n.spec.as_mut().unwrap().unschedulable = None;
        assert_eq!(
            filter(&p, &NodeInfo::new(n.clone())).unwrap_err().plugin,
            TAINT_TOLERATION
        );
        n.spec.as_mut().unwrap().taints = None;
        assert_eq!(
            filter(&p, &NodeInfo::new(n.clone())).unwrap_err().plugin,
            NODE_AFFINITY
        );
        n.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        assert_eq!(
            filter(&p, &NodeInfo::new(n)).unwrap_err().plugin,
            NODE_RESOURCES_FIT
        );
    }

    // ---- scores

    fn best_index(scores: &[i64]) -> usize {
        let max = *scores.iter().max().unwrap();
        scores.iter().position(|s| *s == max).unwrap()
    }

    #[test]
    fn emptier_node_wins() {
        let mut busy = NodeInfo::new(plain_node("busy", "4", "8Gi"));
        busy.add_pod(&requesting("x", "2", "4Gi"));
        let empty = NodeInfo::new(plain_node("empty", "4", "8Gi"));
        let p = requesting("p", "500m", "1Gi");
        let scores = score(&p, &[&busy, &empty]);
        assert_eq!(best_index(&scores), 1, "{scores:?}");
        // empty: least (87 + 87) / 2 = 87, balanced 100, taints 300, no affinity.
        assert_eq!(scores[1], 87 + 100 + 300);
        // busy: cpu (4000-2500)*100/4000 = 37, mem (8-5)*100/8 = 37; balanced 100.
        assert_eq!(scores[0], 37 + 100 + 300);
        // Best-effort pods are scored with the implicit defaults and skip BalancedAllocation.
        let be = score(&best_effort("q"), &[&busy, &empty]);
        assert_eq!(best_index(&be), 1, "{be:?}");
    }

    #[test]
    fn prefer_no_schedule_taint_loses() {
        let mut tainted = plain_node("tainted", "4", "8Gi");
        tainted.spec = Some(
            serde_json::from_value(json!({"taints": [
            {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]}))
            .unwrap(),
        );
        let tainted = NodeInfo::new(tainted);
        let clean = NodeInfo::new(plain_node("clean", "4", "8Gi"));
        let p = requesting("p", "100m", "128Mi");
        let scores = score(&p, &[&tainted, &clean]);
        assert_eq!(scores[1] - scores[0], 300, "{scores:?}");
        assert_eq!(best_index(&scores), 1);
        // Tolerating the taint levels the field.
        let tolerant = pod(json!({"metadata": {"name": "t"}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}]}}));
        let scores = score(&tolerant, &[&tainted, &clean]);
        assert_eq!(scores[0], scores[1]);
    }

    #[test]
    fn preferred_affinity_wins() {
        let mut ssd = plain_node("ssd", "4", "8Gi");
        ssd.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("disk".into(), "ssd".into());
        let ssd = NodeInfo::new(ssd);
        let mut other = NodeInfo::new(plain_node("other", "4", "8Gi"));
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}}}));
        let scores = score(&p, &[&other, &ssd]);
        assert_eq!(scores[1] - scores[0], 200, "{scores:?}");
        // Preference outweighs a moderately busier node.
        other.pods.clear();
        let mut busy_ssd = ssd.clone();
        busy_ssd.add_pod(&requesting("x", "1", "2Gi"));
        let scores = score(&p, &[&other, &busy_ssd]);
        assert_eq!(best_index(&scores), 1, "{scores:?}");
    }

    #[test]
    fn normalize_score() {
        let mut s = vec![0, 2, 4];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 1, 3];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, vec![100, 67, 0]);
        let mut s = vec![0, 0];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, vec![100, 100]);
    }

    #[test]
    fn balanced_allocation_prefers_even_use() {
        let mut cpu_heavy = NodeInfo::new(plain_node("a", "4", "8Gi"));
        cpu_heavy.add_pod(&requesting("x", "3", "1Gi"));
        let p = requesting("p", "500m", "1Gi");
        // cpu 3.5/4 = .875, mem 2/8 = .25 → std .3125 → 68
        assert_eq!(balanced_allocation_score(&p, &cpu_heavy), Some(68));
        assert_eq!(
            balanced_allocation_score(&best_effort("b"), &cpu_heavy),
            None
        );
    }

    // ---- FitError

    fn unschedulable() -> Filtered {
        Filtered {
            plugin: NODE_UNSCHEDULABLE,
            reasons: vec![REASON_UNSCHEDULABLE.into()],
            unresolvable: true,
        }
    }

    fn insufficient(what: &[&str]) -> Filtered {
        Filtered {
            plugin: NODE_RESOURCES_FIT,
            reasons: what.iter().map(|w| format!("Insufficient {w}")).collect(),
            unresolvable: false,
        }
    }

    #[test]
    fn fit_error_mixed_reasons() {
        let failures = [unschedulable(), insufficient(&["cpu"]), unschedulable()];
        assert_eq!(
            fit_error_message(3, &failures),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn fit_error_counts_each_reason_and_sorts_as_strings() {
        let taint = Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let mut failures = vec![Filtered {
            plugin: TAINT_TOLERATION,
            reasons: vec![reason_untolerated_taint(&taint)],
            unresolvable: true,
        }];
        failures.extend(std::iter::repeat_n(insufficient(&["cpu", "memory"]), 2));
        failures.extend(std::iter::repeat_n(
            Filtered {
                plugin: NODE_AFFINITY,
                reasons: vec![REASON_NODE_AFFINITY.into()],
                unresolvable: true,
            },
            10,
        ));
        assert_eq!(
            fit_error_message(13, &failures),
            "0/13 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             10 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu, 2 Insufficient memory. \
             preemption: 0/13 nodes are available: 11 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn fit_error_all_unresolvable_and_no_nodes() {
        let failures = [unschedulable(), unschedulable()];
        assert_eq!(
            fit_error_message(2, &failures),
            "0/2 nodes are available: 2 node(s) were unschedulable. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fit_error_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn fit_error_preemption_policy_never() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"preemptionPolicy": "Never", "containers": [{"name": "c"}]}}),
        );
        assert_eq!(
            fit_error_message_for_pod(&p, 1, &[insufficient(&["cpu"])]),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        );
        assert_eq!(
            fit_error_message_for_pod(&best_effort("q"), 1, &[insufficient(&["cpu"])]),
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn fit_error_prefilter_conflict_is_not_counted() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]},
                                 {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}}),
        );
        let nodes = [
            NodeInfo::new(plain_node("a", "1", "1Gi")),
            NodeInfo::new(plain_node("b", "1", "1Gi")),
        ];
        let failures: Vec<Filtered> = nodes.iter().map(|n| filter(&p, n).unwrap_err()).collect();
        assert_eq!(
            fit_error_message(2, &failures),
            "0/2 nodes are available: pod affinity terms conflict. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn fit_error_daemonset_style_pin() {
        let p = pod(json!({"metadata": {"name": "ds"}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}}}));
        let nodes = [
            NodeInfo::new(plain_node("a", "1", "1Gi")),
            NodeInfo::new(plain_node("b", "4", "1Gi")),
            NodeInfo::new(plain_node("c", "4", "1Gi")),
        ];
        let failures: Vec<Filtered> = nodes.iter().map(|n| filter(&p, n).unwrap_err()).collect();
        assert_eq!(
            fit_error_message(3, &failures),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }
}

//! The EndpointSlice controller: for every Service with a selector (ExternalName Services
//! aside), EndpointSlices listing the selected pods, as kube-controller-manager 1.33 keeps them.
//!
//! As upstream: slices are named by generateName `<service>-`, labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (plus the Service's own labels, and
//! `service.kubernetes.io/headless` for a headless Service), and owned by the Service. One
//! endpoint per pod with an IP of the slice's address type: conditions `ready` (Ready and not
//! terminating, or always with `publishNotReadyAddresses`), `serving` (Ready) and
//! `terminating` (being deleted), `nodeName`, the node's zone, the hostname when the pod's
//! subdomain names the Service, and a `targetRef` to the pod. Pods whose ports resolve alike
//! share slices of at most 100 endpoints; a Service with no endpoints keeps one empty
//! placeholder slice. Existing slices are changed in place rather than replaced, and a slice
//! only written when what it holds changed. Slices of a deleted Service go with it through the
//! garbage collector; a Service that loses its selector keeps its slices (upstream leaves them).
//!
//! Laid out as upstream's reconciler and controller: [`plan`] decides, without I/O, what to
//! create, update and delete from the Service, its pods, the nodes and the slices there are;
//! the loop around it routes changes to Services, keeps the `last-change-trigger-time`
//! annotation, and remembers the generation of every slice it wrote so that a cache that has
//! not caught up with its own writes is never taken for the truth (it waits instead).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::endpointutil::{
    find_port, pod_ips, selector_of, selects, should_pod_be_in_endpoints, should_set_hostname,
};
use crate::clock::Clock;
use crate::events::{reference, EventType, Recorder};
use crate::runtime::{key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "endpointslice-controller";
/// The `managed-by` value of the slices this controller keeps.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The label naming a slice's Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming who keeps a slice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The label of the slices of a Service without a cluster IP.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The annotation with the time of the pod or Service change a slice write follows from.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// kube-controller-manager's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The event source of the controller's events.
const EVENT_COMPONENT: &str = "endpoint-slice-controller";
/// The zone label of a Node an endpoint reports.
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// How long after a slice change it did not make itself the controller looks at its Service.
const SLICE_CHANGE_DELAY: Duration = Duration::from_secs(1);

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The slice cache has not yet seen every write of an earlier sync; the sync waits for it.
    #[error("EndpointSlice informer cache is out of date")]
    StaleCache,
    /// Some writes failed, or some pods were left out; as upstream reports them.
    #[error("{0}")]
    Sync(String),
}

// ---------------------------------------------------------------------------------------------
// The plan: what to write, as a pure function of what there is.
// ---------------------------------------------------------------------------------------------

/// What one sync of a Service writes.
#[derive(Debug, Default)]
pub struct Plan {
    /// New slices (generateName set, no name).
    pub create: Vec<EndpointSlice>,
    /// Changed slices, by name.
    pub update: Vec<EndpointSlice>,
    /// Slices no longer needed.
    pub delete: Vec<EndpointSlice>,
    /// Slices of an address type the Service no longer has.
    pub retire: Vec<EndpointSlice>,
    /// Pods left out for now, as upstream words it (their node is unknown); the sync is retried.
    pub skipped: Vec<String>,
}

/// Decide what to write for `service`, given the pods it selects, a node lookup, and the
/// slices this controller keeps for it (none being deleted), with at most `max` endpoints per
/// slice (upstream's `Reconcile`, with the order of Go's maps made deterministic: pods by
/// name, slices by name).
pub fn plan(
    service: &Service,
    pods: &[Arc<Pod>],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: &[Arc<EndpointSlice>],
    max: usize,
) -> Plan {
    let types = address_types(service);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut existing: Vec<&EndpointSlice> = existing.iter().map(AsRef::as_ref).collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for slice in existing {
        match types.iter().find(|t| **t == slice.address_type) {
            Some(t) => by_type.entry(t).or_default().push(slice),
            None => plan.retire.push(slice.clone()),
        }
    }
    let mut pods: Vec<&Pod> = pods.iter().map(AsRef::as_ref).collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for address_type in types {
        let existing = by_type.remove(address_type).unwrap_or_default();
        plan_address_type(
            &mut plan,
            service,
            &pods,
            node,
            &existing,
            address_type,
            max,
        );
    }
    if service.metadata.deletion_timestamp.is_some() {
        // No new slices for a Service on its way out: the garbage collector is deleting them.
        plan.create.clear();
    }
    plan
}

/// The address types of a Service's slices: its IP families; else the family of its cluster
/// IP; else (headless, families not yet defaulted) both.
fn address_types(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.as_ref();
    let mut types = Vec::new();
    for family in spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        let t = match family.as_str() {
            "IPv4" => "IPv4",
            "IPv6" => "IPv6",
            _ => continue,
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if !types.is_empty() {
        types.sort_unstable();
        return types;
    }
    match spec.and_then(|s| s.cluster_ip.as_deref()) {
        Some(ip) if !ip.is_empty() && ip != "None" => {
            vec![if ip.contains(':') { "IPv6" } else { "IPv4" }]
        }
        _ => vec!["IPv4", "IPv6"],
    }
}

fn plan_address_type(
    plan: &mut Plan,
    service: &Service,
    pods: &[&Pod],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: &[&EndpointSlice],
    address_type: &str,
    max: usize,
) {
    let mut delete: Vec<EndpointSlice> = Vec::new();
    let mut existing_by_ports: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, service) {
            existing_by_ports
                .entry(port_key(slice.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(slice);
        } else {
            delete.push((*slice).clone());
        }
    }

    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut desired: BTreeMap<String, (Vec<EndpointPort>, EndpointSet)> = BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        let (_, set) = desired
            .entry(port_key(&ports))
            .or_insert_with(|| (ports, EndpointSet::default()));
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        let found = node(node_name);
        if found.is_none() && !publish_not_ready {
            plan.skipped.push(format!(
                "skipping Pod {} for Service {}/{}: Node {node_name} Not Found",
                pod.metadata.name.as_deref().unwrap_or_default(),
                service.metadata.namespace.as_deref().unwrap_or_default(),
                service.metadata.name.as_deref().unwrap_or_default(),
            ));
            continue;
        }
        let endpoint = pod_to_endpoint(pod, found.as_deref(), service, address_type);
        if !endpoint.addresses.is_empty() {
            set.insert(endpoint);
        }
    }

    let mut create = Vec::new();
    let mut update = Vec::new();
    for (key, (ports, set)) in &mut desired {
        let slices = existing_by_ports.get(key).map(Vec::as_slice);
        let (c, u, d) = plan_ports(
            service,
            slices.unwrap_or_default(),
            std::mem::take(set),
            ports,
            address_type,
            max,
        );
        create.extend(c);
        update.extend(u);
        delete.extend(d);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    // A Service with no endpoints keeps one empty placeholder slice.
    if existing.len() == delete.len() && create.is_empty() {
        let placeholder = new_slice(service, &[], address_type);
        if delete.len() == 1 && same_placeholder(&delete[0], &placeholder) {
            delete.clear();
        } else {
            create.push(placeholder);
        }
    }

    // A slice to create and one to delete make one update of the latter instead.
    let mut i = 0;
    while i < delete.len() && !create.is_empty() {
        if delete[i].address_type == address_type && owned_by(&delete[i], service) {
            if let Some(mut slice) = create.pop() {
                slice.metadata.name = delete[i].metadata.name.clone();
                update.push(slice);
                delete.remove(i);
            }
        } else {
            i += 1;
        }
    }
    plan.create.extend(create);
    plan.update.extend(update);
    plan.delete.extend(delete);
}

/// Upstream's `reconcileByPortMapping` for the slices of one set of ports: keep the desired
/// endpoints where they are (updated if they changed), drop the others, fill the slices being
/// updated (fullest first), then an unchanged slice the rest fits in, then new slices.
fn plan_ports(
    service: &Service,
    existing: &[&EndpointSlice],
    mut desired: EndpointSet,
    ports: &[EndpointPort],
    address_type: &str,
    max: usize,
) -> (Vec<EndpointSlice>, Vec<EndpointSlice>, Vec<EndpointSlice>) {
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();

    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::new();
        let mut changed = false;
        for endpoint in &slice.endpoints {
            if let Some(want) = desired.remove(&EndpointKey::of(endpoint)) {
                changed |= !equal_beyond_identity(&want, endpoint);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(slice.metadata.labels.as_ref(), service);
        let mut copy = (*slice).clone();
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
            } else {
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels);
                to_update.insert(name.clone());
            }
        } else if labels_changed {
            copy.metadata.labels = Some(labels);
            to_update.insert(name.clone());
        } else {
            unchanged.insert(name.clone());
        }
        by_name.insert(name, copy);
    }

    if desired.len() > 0 && !to_update.is_empty() {
        let mut fullest_first: Vec<&String> = to_update.iter().collect();
        fullest_first.sort_by_key(|n| std::cmp::Reverse(by_name[*n].endpoints.len()));
        for name in fullest_first {
            let Some(slice) = by_name.get_mut(name) else {
                continue;
            };
            while desired.len() > 0 && slice.endpoints.len() < max {
                slice.endpoints.extend(desired.pop_first());
            }
        }
    }

    let mut create = Vec::new();
    while desired.len() > 0 {
        let fill = (desired.len() < max)
            .then(|| slice_to_fill(&unchanged, &by_name, desired.len(), max))
            .flatten();
        let mut slice = match &fill {
            Some(name) => by_name[name].clone(),
            None => new_slice(service, ports, address_type),
        };
        while desired.len() > 0 && slice.endpoints.len() < max {
            slice.endpoints.extend(desired.pop_first());
        }
        match fill {
            Some(name) => {
                unchanged.remove(&name);
                to_update.insert(name.clone());
                by_name.insert(name, slice);
            }
            None => create.push(slice),
        }
    }

    let pick = |names: &BTreeSet<String>| -> Vec<EndpointSlice> {
        names.iter().map(|n| by_name[n].clone()).collect()
    };
    (create, pick(&to_update), pick(&to_delete))
}

/// The unchanged slice that will be closest to full with `count` more endpoints, if one fits
/// them (`getSliceToFill`).
fn slice_to_fill(
    unchanged: &BTreeSet<String>,
    by_name: &BTreeMap<String, EndpointSlice>,
    count: usize,
    max: usize,
) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for name in unchanged {
        let room = max.checked_sub(count + by_name[name].endpoints.len());
        if let Some(room) = room {
            if best.is_none_or(|(r, _)| room < r) {
                best = Some((room, name));
            }
        }
    }
    best.map(|(_, n)| n.clone())
}

/// What identifies an endpoint across syncs (upstream's endpoint hash): its addresses, its
/// hostname and the pod it stands for. Everything else may change in place.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointKey {
    fn of(endpoint: &Endpoint) -> Self {
        let mut addresses = endpoint.addresses.clone();
        addresses.sort();
        let target = endpoint.target_ref.as_ref();
        Self {
            addresses,
            hostname: endpoint.hostname.clone().unwrap_or_default(),
            namespace: target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
            name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
        }
    }
}

/// Desired endpoints by identity, handed out in the order they were added.
#[derive(Default)]
struct EndpointSet {
    order: BTreeMap<usize, Endpoint>,
    index: HashMap<EndpointKey, usize>,
    next: usize,
}

impl EndpointSet {
    fn insert(&mut self, endpoint: Endpoint) {
        let key = EndpointKey::of(&endpoint);
        match self.index.get(&key) {
            Some(at) => {
                self.order.insert(*at, endpoint);
            }
            None => {
                self.index.insert(key, self.next);
                self.order.insert(self.next, endpoint);
                self.next += 1;
            }
        }
    }

    fn remove(&mut self, key: &EndpointKey) -> Option<Endpoint> {
        let at = self.index.remove(key)?;
        self.order.remove(&at)
    }

    fn pop_first(&mut self) -> Option<Endpoint> {
        let (_, endpoint) = self.order.pop_first()?;
        self.index.remove(&EndpointKey::of(&endpoint));
        Some(endpoint)
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}

/// Whether two endpoints of the same identity hold the same node, zone, conditions and pod
/// (the pod's resourceVersion aside) (`EndpointsEqualBeyondHash`).
fn equal_beyond_identity(a: &Endpoint, b: &Endpoint) -> bool {
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut t| {
            t.resource_version = None;
            t
        })
    };
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && conditions(a) == conditions(b)
        && target(a) == target(b)
}

/// The endpoint of `pod` in a slice of `address_type` (`podToEndpoint`).
fn pod_to_endpoint(
    pod: &Pod,
    node: Option<&Node>,
    service: &Service,
    address_type: &str,
) -> Endpoint {
    let serving = crate::k8s::pod_is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    // A terminating pod is never ready, unless the Service publishes not-ready addresses.
    let ready = publish_not_ready || (serving && !terminating);
    let spec = pod.spec.as_ref();
    Endpoint {
        addresses: endpoint_addresses(pod, address_type),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: should_set_hostname(pod, service)
            .then(|| spec.and_then(|s| s.hostname.clone()))
            .flatten(),
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(super::endpointutil::pod_reference(pod)),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref()?.get(LABEL_ZONE).cloned())
            .filter(|z| !z.is_empty()),
        ..Default::default()
    }
}

/// The pod's IPs of one family, in their canonical form.
fn endpoint_addresses(pod: &Pod, address_type: &str) -> Vec<String> {
    pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == (address_type == "IPv6"))
        .map(|ip| ip.to_string())
        .collect()
}

/// The Service's ports as they resolve on `pod` (those that do not resolve are left out).
fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_deref());
    ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let number = find_port(pod, p)?;
            Some(EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
        })
        .collect()
}

/// The key of a set of ports, whatever their order.
fn port_key(ports: &[EndpointPort]) -> String {
    let mut ports: Vec<(String, i32, String, String)> = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    ports.sort();
    format!("{ports:?}")
}

fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|r| {
        Some(&r.uid) == service.metadata.uid.as_ref()
            && r.kind == "Service"
            && r.api_version == "v1"
    })
}

/// The Service's controller reference.
fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A new, empty slice for `service` (`newEndpointSlice`).
fn new_slice(service: &Service, ports: &[EndpointPort], address_type: &str) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            owner_references: Some(vec![owner_reference(service)]),
            labels: Some(slice_labels(None, service).0),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

/// Whether an existing slice is the placeholder `placeholder` would be: same namespace, labels
/// and owners, and nothing in it.
fn same_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    existing.metadata.namespace == placeholder.metadata.namespace
        && existing.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && existing
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            == placeholder
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default()
        && existing.address_type == placeholder.address_type
        && existing.endpoints.is_empty()
        && existing.ports.as_deref().unwrap_or_default().is_empty()
}

fn is_reserved_label(key: &str) -> bool {
    matches!(key, LABEL_SERVICE_NAME | LABEL_MANAGED_BY | LABEL_HEADLESS)
}

/// A slice's labels: the Service's (but the reserved ones), the headless label when the
/// Service has no cluster IP, the service name and the manager; and whether the Service's
/// labels differ from what the slice has (`setEndpointSliceLabels`).
fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    service: &Service,
) -> (BTreeMap<String, String>, bool) {
    let own = |labels: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        labels
            .into_iter()
            .flatten()
            .filter(|(k, _)| !is_reserved_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = own(service.metadata.labels.as_ref());
    let changed = own(current) != labels;
    let cluster_ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or_default();
    if cluster_ip.is_empty() || cluster_ip == "None" {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    (labels, changed)
}

// ---------------------------------------------------------------------------------------------
// What the controller remembers between syncs.
// ---------------------------------------------------------------------------------------------

/// Upstream's `TriggerTimeTracker`: per Service, the trigger times seen at the last sync (the
/// Service's creation, each pod's last Ready transition), so a sync can say which change it
/// follows from.
#[derive(Default)]
struct TriggerTimes {
    services: HashMap<String, SeenTriggers>,
}

struct SeenTriggers {
    service: Option<Timestamp>,
    pods: HashMap<String, Timestamp>,
}

impl TriggerTimes {
    /// The time for the annotation of this sync's writes: the Service's creation on its first
    /// sync, then the earliest trigger time that moved since the last sync (none if nothing
    /// did).
    fn compute(&mut self, key: &str, service: &Service, pods: &[Arc<Pod>]) -> Option<Timestamp> {
        let seen = self.services.get(key);
        let mut earliest: Option<Timestamp> = None;
        let mut pod_times = HashMap::new();
        for pod in pods {
            let Some(t) = ready_transition(pod) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if seen
                .and_then(|s| s.pods.get(&name))
                .is_none_or(|last| t > *last)
            {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            pod_times.insert(name, t);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = created {
            if seen.and_then(|s| s.service).is_none_or(|last| t > last) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        let known = seen.is_some();
        self.services.insert(
            key.to_string(),
            SeenTriggers {
                service: created,
                pods: pod_times,
            },
        );
        if known {
            earliest
        } else {
            created
        }
    }

    fn forget(&mut self, key: &str) {
        self.services.remove(key);
    }
}

fn ready_transition(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// What the controller expects of a slice it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// At least this generation.
    Generation(i64),
    /// Gone.
    Deletion,
}

/// Upstream's `EndpointSliceTracker`: per Service, the slices this controller wrote (by uid),
/// so that a sync on a cache that has not seen them yet waits, and a change it did not make
/// brings the Service back.
#[derive(Default)]
struct SliceTracker {
    by_service: HashMap<String, HashMap<String, Expected>>,
}

/// `namespace/service` of a slice, from its service-name label.
fn service_key_of(slice: &EndpointSlice) -> Option<String> {
    let name = slice.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
    (!name.is_empty()).then(|| {
        format!(
            "{}/{name}",
            slice.metadata.namespace.as_deref().unwrap_or_default()
        )
    })
}

fn uid_of(slice: &EndpointSlice) -> String {
    slice.metadata.uid.clone().unwrap_or_default()
}

impl SliceTracker {
    fn wrote(&mut self, slice: &EndpointSlice) {
        if let Some(key) = service_key_of(slice) {
            let generation = slice.metadata.generation.unwrap_or_default();
            self.by_service
                .entry(key)
                .or_default()
                .insert(uid_of(slice), Expected::Generation(generation));
        }
    }

    fn deleted(&mut self, slice: &EndpointSlice) {
        if let Some(key) = service_key_of(slice) {
            self.by_service
                .entry(key)
                .or_default()
                .insert(uid_of(slice), Expected::Deletion);
        }
    }

    /// Whether `cached`, the slices the cache holds for the Service, misses what was written.
    fn stale(&self, key: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let Some(expected) = self.by_service.get(key) else {
            return false;
        };
        let present: HashSet<String> = cached.iter().map(|s| uid_of(s)).collect();
        let behind = cached.iter().any(|s| match expected.get(&uid_of(s)) {
            Some(Expected::Deletion) => true,
            Some(Expected::Generation(g)) => *g > s.metadata.generation.unwrap_or_default(),
            None => false,
        });
        behind
            || expected
                .iter()
                .any(|(uid, e)| *e != Expected::Deletion && !present.contains(uid))
    }

    /// Whether a slice change the cache saw is not one this controller made.
    fn should_sync(&self, slice: &EndpointSlice) -> bool {
        let expected = service_key_of(slice)
            .and_then(|key| self.by_service.get(&key)?.get(&uid_of(slice)).copied());
        expected
            != Some(Expected::Generation(
                slice.metadata.generation.unwrap_or_default(),
            ))
    }

    /// Note a deletion the cache saw; whether the Service needs a look (one it did not make).
    fn handle_deletion(&mut self, slice: &EndpointSlice) -> bool {
        let Some(tracked) = service_key_of(slice).and_then(|k| self.by_service.get_mut(&k)) else {
            return false;
        };
        match tracked.remove(&uid_of(slice)) {
            Some(Expected::Deletion) | None => false,
            Some(Expected::Generation(_)) => true,
        }
    }

    fn forget(&mut self, key: &str) {
        self.by_service.remove(key);
    }
}

// ---------------------------------------------------------------------------------------------
// The loop.
// ---------------------------------------------------------------------------------------------

struct Ctx {
    client: Client,
    recorder: Recorder,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    tracker: Mutex<SliceTracker>,
    trigger_times: Mutex<TriggerTimes>,
}

/// Run the controller until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    host: String,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let (services, mut service_changes) = informers.subscribe_all::<Service>();
    let (pods, mut pod_changes) = informers.subscribe_all::<Pod>();
    let (slices, mut slice_changes) = informers.subscribe_all::<EndpointSlice>();
    let nodes = informers.all::<Node>();
    services.ready().await;
    pods.ready().await;
    slices.ready().await;
    nodes.ready().await;
    let ctx = Arc::new(Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), EVENT_COMPONENT, &host),
        client,
        services: services.store(),
        pods: pods.store(),
        nodes: nodes.store(),
        slices: slices.store(),
        tracker: Mutex::default(),
        trigger_times: Mutex::default(),
    });
    let queue = WorkQueue::new(clock);
    all(&ctx, &queue);
    let feeder = {
        let (ctx, queue, shutdown) = (ctx.clone(), queue.clone(), shutdown.clone());
        tokio::spawn(async move {
            // The Services each pod was last seen in, so a pod that leaves one brings it back.
            let mut memberships: HashMap<String, Vec<String>> = HashMap::new();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = service_changes.recv() => match change {
                        Ok(Change::Applied(s) | Change::Deleted(s)) => queue.add(key_of(s.as_ref())),
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                    change = pod_changes.recv() => match change {
                        Ok(Change::Applied(p)) => {
                            let now = services_of(&ctx, &p);
                            let before = memberships.insert(key_of(p.as_ref()), now.clone());
                            for key in now.into_iter().chain(before.into_iter().flatten()) {
                                queue.add(key);
                            }
                        }
                        Ok(Change::Deleted(p)) => {
                            let before = memberships.remove(&key_of(p.as_ref()));
                            for key in services_of(&ctx, &p).into_iter().chain(before.into_iter().flatten()) {
                                queue.add(key);
                            }
                        }
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                    change = slice_changes.recv() => match change {
                        Ok(Change::Applied(s)) => {
                            if managed(&s) && ctx.tracker.lock().should_sync(&s) {
                                if let Some(key) = service_key_of(&s) {
                                    queue.add_after(key, SLICE_CHANGE_DELAY);
                                }
                            }
                        }
                        Ok(Change::Deleted(s)) => {
                            if managed(&s) && ctx.tracker.lock().handle_deletion(&s) {
                                if let Some(key) = service_key_of(&s) {
                                    queue.add_after(key, SLICE_CHANGE_DELAY);
                                }
                            }
                        }
                        Ok(Change::Resync) | Err(_) => {
                            // A relisted cache holds every earlier write; deletions it missed
                            // would otherwise leave a Service waiting for them forever.
                            *ctx.tracker.lock() = SliceTracker::default();
                            all(&ctx, &queue)
                        }
                    },
                }
            }
        })
    };
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => break,
            key = queue.next() => match key { Some(k) => k, None => break },
        };
        let synced = async { sync(&ctx, &key).await.map(|()| None) };
        reconcile(&queue, key.clone(), CONTROLLER, synced).await;
    }
    queue.shut_down();
    feeder.abort();
}

fn all(ctx: &Ctx, queue: &WorkQueue<String>) {
    for s in ctx.services.state() {
        queue.add(key_of(s.as_ref()));
    }
}

fn services_of(ctx: &Ctx, pod: &Pod) -> Vec<String> {
    ctx.services
        .state()
        .iter()
        .filter(|s| selects(s, pod))
        .map(|s| key_of(s.as_ref()))
        .collect()
}

fn managed(slice: &EndpointSlice) -> bool {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|m| m == MANAGED_BY)
}

/// The message of a failed request, as upstream's errors print it.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// One sync of one Service.
async fn sync(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let Some(service) = ctx.services.get(&ObjectRef::new(name).within(ns)) else {
        // Gone: its slices go with it (the garbage collector deletes what it owns).
        ctx.trigger_times.lock().forget(key);
        ctx.tracker.lock().forget(key);
        return Ok(());
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Ok(());
    }
    if selector_of(&service).is_none() {
        // Slices of a Service without a selector are its users' to write.
        return Ok(());
    }
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| selects(&service, p))
        .collect();
    let slices: Vec<Arc<EndpointSlice>> = ctx
        .slices
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| managed(s) && service_key_of(s).as_deref() == Some(key))
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    if ctx.tracker.lock().stale(key, &slices) {
        return Err(Error::StaleCache);
    }
    // Computed on every sync, so that one that writes nothing still moves the trigger times.
    let trigger = ctx.trigger_times.lock().compute(key, &service, &pods);
    let node = |n: &str| ctx.nodes.get(&ObjectRef::new(n));
    let plan = plan(&service, &pods, &node, &slices, MAX_ENDPOINTS_PER_SLICE);
    let mut errors = plan.skipped.clone();
    if let Err(e) = write(ctx, ns, name, plan, trigger).await {
        errors.push(e);
    }
    if errors.is_empty() {
        return Ok(());
    }
    let message = if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("[{}]", errors.join(", "))
    };
    ctx.recorder
        .record(
            &reference(service.as_ref()),
            EventType::Warning,
            "FailedToUpdateEndpointSlices",
            "",
            &format!("Error updating Endpoint Slices for Service {ns}/{name}: {message}"),
        )
        .await;
    Err(Error::Sync(message))
}

/// Carry out a plan: creates, updates, deletes, stopping at the first failure (upstream's
/// `finalize`), then the slices of retired address types.
async fn write(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    plan: Plan,
    trigger: Option<Timestamp>,
) -> Result<(), String> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let annotate = |slice: &mut EndpointSlice| {
        let mut annotations = slice.metadata.annotations.take().unwrap_or_default();
        match trigger {
            Some(t) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t.to_string()),
            None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
        };
        slice.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    };
    for mut slice in plan.create {
        annotate(&mut slice);
        let created = api
            .create(&PostParams::default(), &slice)
            .await
            .map_err(|e| {
                format!(
                    "failed to create EndpointSlice for Service {ns}/{name}: {}",
                    api_message(&e)
                )
            })?;
        tracing::debug!(service = %format!("{ns}/{name}"), slice = ?created.metadata.name, "created EndpointSlice");
        ctx.tracker.lock().wrote(&created);
    }
    for mut slice in plan.update {
        annotate(&mut slice);
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        let updated = api
            .replace(&slice_name, &PostParams::default(), &slice)
            .await
            .map_err(|e| {
                format!(
                    "failed to update {slice_name} EndpointSlice for Service {ns}/{name}: {}",
                    api_message(&e)
                )
            })?;
        ctx.tracker.lock().wrote(&updated);
    }
    for (slice, verb) in plan
        .delete
        .iter()
        .map(|s| (s, "failed to delete"))
        .chain(plan.retire.iter().map(|s| (s, "error deleting")))
    {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => ctx.tracker.lock().deleted(slice),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(format!(
                    "{verb} {slice_name} EndpointSlice for Service {ns}/{name}: {}",
                    api_message(&e)
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(extra: serde_json::Value) -> Service {
        let mut v = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid",
            "labels": {"app": "web"}, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}});
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
        match (base, extra) {
            (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2025-01-01T00:01:00Z"}]}}))
            .unwrap(),
        )
    }

    fn node(name: &str) -> Option<Arc<Node>> {
        (name == "node-1").then(|| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}}))
                    .unwrap(),
            )
        })
    }

    /// The plan's slices as the apiserver would store them (named, with uids and owners).
    fn stored(slices: Vec<EndpointSlice>) -> Vec<Arc<EndpointSlice>> {
        slices
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                if s.metadata.name.is_none() {
                    s.metadata.name = Some(format!("web-{i}"));
                }
                s.metadata.uid = Some(format!("slice-{i}"));
                Arc::new(s)
            })
            .collect()
    }

    fn conditions(slice: &EndpointSlice) -> Vec<(String, bool, bool, bool)> {
        slice
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (
                    e.addresses[0].clone(),
                    c.ready.unwrap(),
                    c.serving.unwrap(),
                    c.terminating.unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_slice_holds_every_pod_as_upstream_shapes_it() {
        let svc = service(json!({}));
        let plan = plan(
            &svc,
            &[pod("b", "10.0.0.2", false), pod("a", "10.0.0.1", true)],
            &node,
            &[],
            100,
        );
        assert!(plan.update.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.create.len(), 1);
        let slice = serde_json::to_value(&plan.create[0]).unwrap();
        assert_eq!(
            slice,
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": "web-", "namespace": "ns",
                    "labels": {"app": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid", "controller": true, "blockOwnerDeletion": true}]},
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                     "nodeName": "node-1", "zone": "zone-a", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": false, "terminating": false},
                     "nodeName": "node-1", "zone": "zone-a", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "b", "uid": "uid-b"}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        );
    }

    #[test]
    fn conditions_follow_readiness_termination_and_publish_not_ready() {
        let terminating = |ready: bool| {
            let mut p = (*pod("t", "10.0.0.3", ready)).clone();
            p.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
            );
            Arc::new(p)
        };
        let svc = service(json!({}));
        let plan1 = plan(&svc, &[terminating(true)], &node, &[], 100);
        assert_eq!(
            conditions(&plan1.create[0]),
            [("10.0.0.3".to_string(), false, true, true)]
        );
        let publish = service(json!({"spec": {"publishNotReadyAddresses": true}}));
        let plan2 = plan(
            &publish,
            &[terminating(false), pod("u", "10.0.0.4", false)],
            &node,
            &[],
            100,
        );
        assert_eq!(
            conditions(&plan2.create[0]),
            [
                ("10.0.0.3".to_string(), true, false, true),
                ("10.0.0.4".to_string(), true, false, false)
            ]
        );
    }

    #[test]
    fn a_change_updates_the_slice_in_place_and_nothing_changed_writes_nothing() {
        let svc = service(json!({}));
        let first = plan(
            &svc,
            &[pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)],
            &node,
            &[],
            100,
        );
        let existing = stored(first.create);
        let same = plan(
            &svc,
            &[pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)],
            &node,
            &existing,
            100,
        );
        assert!(same.create.is_empty() && same.update.is_empty() && same.delete.is_empty());

        let changed = plan(&svc, &[pod("a", "10.0.0.1", false)], &node, &existing, 100);
        assert!(changed.create.is_empty() && changed.delete.is_empty());
        assert_eq!(changed.update.len(), 1);
        assert_eq!(changed.update[0].metadata.name.as_deref(), Some("web-0"));
        assert_eq!(
            conditions(&changed.update[0]),
            [("10.0.0.1".to_string(), false, false, false)]
        );
    }

    #[test]
    fn slices_hold_at_most_the_maximum_and_an_empty_service_keeps_a_placeholder() {
        let svc = service(json!({}));
        let pods: Vec<Arc<Pod>> = (1..=5)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.0.{i}"), true))
            .collect();
        let p = plan(&svc, &pods, &node, &[], 2);
        let sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);

        let existing = stored(p.create);
        let emptied = plan(&svc, &[], &node, &existing, 2);
        // Three slices go; one of them is kept as the placeholder instead of a create.
        assert!(emptied.create.is_empty());
        assert_eq!(emptied.delete.len(), 2);
        assert_eq!(emptied.update.len(), 1);
        let placeholder = &emptied.update[0];
        assert!(placeholder.endpoints.is_empty() && placeholder.ports.is_none());

        let stored_placeholder = stored(vec![new_slice(&svc, &[], "IPv4")]);
        let again = plan(&svc, &[], &node, &stored_placeholder, 2);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
    }

    #[test]
    fn pods_on_unknown_nodes_are_skipped_and_headless_services_are_labelled() {
        let svc = service(json!({"spec": {"clusterIP": "None"}}));
        let mut lost = (*pod("l", "10.0.0.9", true)).clone();
        lost.spec.as_mut().unwrap().node_name = Some("gone".into());
        let p = plan(&svc, &[Arc::new(lost)], &node, &[], 100);
        assert_eq!(
            p.skipped,
            ["skipping Pod l for Service ns/web: Node gone Not Found"]
        );
        let labels = p.create[0].metadata.labels.clone().unwrap();
        assert_eq!(labels.get(LABEL_HEADLESS).map(String::as_str), Some(""));
        assert!(p.create[0].endpoints.is_empty(), "the placeholder");
    }

    #[test]
    fn trigger_times_follow_the_service_then_the_pods_that_changed() {
        let svc = service(json!({}));
        let mut times = TriggerTimes::default();
        let first = times.compute("ns/web", &svc, &[pod("a", "10.0.0.1", true)]);
        assert_eq!(first.unwrap().to_string(), "2025-01-01T00:00:00Z");
        assert_eq!(
            times.compute("ns/web", &svc, &[pod("a", "10.0.0.1", true)]),
            None
        );
        let mut moved = (*pod("a", "10.0.0.1", false)).clone();
        moved.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2025-01-01T00:05:00Z".parse().unwrap(),
            ));
        let later = times.compute("ns/web", &svc, &[Arc::new(moved)]);
        assert_eq!(later.unwrap().to_string(), "2025-01-01T00:05:00Z");
    }

    #[test]
    fn the_tracker_waits_for_the_cache_to_see_its_writes() {
        let mut tracker = SliceTracker::default();
        let svc = service(json!({}));
        let mut slice = new_slice(&svc, &[], "IPv4");
        slice.metadata.name = Some("web-x".into());
        slice.metadata.uid = Some("u1".into());
        slice.metadata.generation = Some(2);
        tracker.wrote(&slice);
        assert!(
            tracker.stale("ns/web", &[]),
            "the cache has not seen the slice"
        );
        let mut older = slice.clone();
        older.metadata.generation = Some(1);
        assert!(tracker.stale("ns/web", &[Arc::new(older.clone())]));
        assert!(!tracker.stale("ns/web", &[Arc::new(slice.clone())]));
        assert!(!tracker.should_sync(&slice), "its own write");
        assert!(tracker.should_sync(&older), "a change it did not make");
        tracker.deleted(&slice);
        assert!(tracker.stale("ns/web", &[Arc::new(slice.clone())]));
        assert!(!tracker.handle_deletion(&slice), "an expected deletion");
        assert!(!tracker.stale("ns/web", &[]));
    }
}

//! The framework's resource accounting: what a pod requests (upstream's `PodRequests`, with
//! sidecars, init containers, overhead and resized status) and what a node offers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::k8s::quantity::{nanos_to, parse_nanos, NANO};

/// The scheduler's implicit cpu request (milli-cores) for a container that sets none; used only
/// for scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The scheduler's implicit memory request (bytes, 200Mi) for a container that sets none; used
/// only for scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

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

    pub(super) fn add(&mut self, other: &Resources) {
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

pub(super) fn is_restartable_init_container(c: &Container) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{best_effort, node, pod};
    use serde_json::json;

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
    #[test]
    fn allocatable_falls_back_to_capacity() {
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}));
        let (alloc, pods) = node_allocatable(&n);
        assert_eq!((alloc.milli_cpu, alloc.memory, pods), (4000, 8 << 30, 10));
    }
}

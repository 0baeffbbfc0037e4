//! The framework's `NodeInfo`: a node with the requests and host ports of the pods bound to it
//! summed, kept up to date as pods are added and removed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::nodeports::{pod_host_ports, HostPort};
use super::resources::{node_allocatable, pod_non_zero_requests, pod_requests, Resources};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{best_effort, plain_node, requesting};
    use serde_json::json;

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
}

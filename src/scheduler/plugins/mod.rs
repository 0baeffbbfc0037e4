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
//!
//! Laid out as upstream's `framework/plugins` directory: one file per plugin (`nodeunschedulable`,
//! `nodename`, `tainttoleration`, `nodeaffinity`, `nodeports`, `noderesources`), with the
//! framework's request accounting (`resources`), per-node state (`node_info`) and FitError text
//! (`fit_error`) beside them; this file runs the filters and sums the scores.

mod fit_error;
mod node_info;
mod nodeaffinity;
mod nodename;
mod nodeports;
mod noderesources;
mod nodeunschedulable;
mod resources;
mod tainttoleration;
#[cfg(test)]
mod testutil;

use k8s_openapi::api::core::v1::Pod;

use nodeports::ports_free;
use noderesources::{balanced_with, least_allocated_with, resources_fit};

pub use fit_error::{
    fit_error_message, fit_error_message_for_pod, NOT_ELIGIBLE_PREEMPT_NEVER, NO_NODES_AVAILABLE,
    NO_PREEMPTION_VICTIMS, PREEMPTION_NOT_HELPFUL,
};
pub use node_info::{is_terminal, NodeInfo, PodEntry};
pub use nodeaffinity::{
    filter_node_affinity, matches_required_node_affinity, node_selector_term_matches,
    preferred_node_affinity_weight, prefilter_node_names, PreFilterNodes, REASON_AFFINITY_CONFLICT,
    REASON_NODE_AFFINITY, REASON_PREFILTER_NODE_AFFINITY,
};
pub use nodename::{filter_node_name, REASON_NODE_NAME};
pub use nodeports::{filter_node_ports, pod_host_ports, HostPort, REASON_NODE_PORTS};
pub use noderesources::{
    balanced_allocation_score, filter_node_resources_fit, least_allocated_score,
    reason_insufficient, REASON_TOO_MANY_PODS,
};
pub use nodeunschedulable::{filter_node_unschedulable, REASON_UNSCHEDULABLE};
pub use resources::{
    is_scalar_resource_name, node_allocatable, pod_non_zero_requests, pod_requests, Resources,
    DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST,
};
pub use tainttoleration::{
    filter_taint_toleration, first_untolerated_taint, intolerable_prefer_no_schedule_taints,
    reason_untolerated_taint,
};

// ---------------------------------------------------------------------------------------------
// Plugin names and score weights
// ---------------------------------------------------------------------------------------------

/// Plugin names, as upstream registers them.
pub const NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const NODE_NAME: &str = "NodeName";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const NODE_PORTS: &str = "NodePorts";
pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";
pub const NODE_RESOURCES_BALANCED_ALLOCATION: &str = "NodeResourcesBalancedAllocation";

/// The highest score one plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;
/// Score weights of the default profile.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{plain_node, pod};
    use serde_json::json;

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
}

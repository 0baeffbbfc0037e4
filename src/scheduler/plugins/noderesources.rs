//! The NodeResourcesFit plugin (filter and LeastAllocated score) and
//! NodeResourcesBalancedAllocation: requests against what the node has left.

use k8s_openapi::api::core::v1::Pod;

use super::node_info::NodeInfo;
use super::resources::{pod_non_zero_requests, pod_requests, Resources};
use super::{Filtered, MAX_NODE_SCORE, NODE_RESOURCES_FIT};

/// NodeResourcesFit's reason when the node already holds its allocatable number of pods.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// NodeResourcesFit's reason for a resource the node lacks, e.g. `Insufficient cpu`.
pub fn reason_insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// NodeResourcesFit: pod count, then cpu, memory, ephemeral-storage and extended resources
/// against allocatable minus what the bound pods request. All shortfalls are reported, in that
/// order; a pod that requests nothing is only checked for the pod count.
pub fn filter_node_resources_fit(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    resources_fit(&pod_requests(pod), node)
}

pub(super) fn resources_fit(want: &Resources, node: &NodeInfo) -> Result<(), Filtered> {
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

pub(super) fn least_allocated_with(pod_req: &Resources, node: &NodeInfo) -> i64 {
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

pub(super) fn balanced_with(pod_req: &Resources, node: &NodeInfo) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{
        best_effort, best_index, node, plain_node, pod, requesting,
    };
    use crate::scheduler::plugins::{filter, score};
    use serde_json::json;

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
}

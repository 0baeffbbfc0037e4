//! The FitError message of a pod no node can take, with the suffix DefaultPreemption adds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::nodeaffinity::REASON_AFFINITY_CONFLICT;
use super::{Filtered, NODE_AFFINITY};

/// The scheduling error when the cluster has no node at all (condition reason `SchedulerError`,
/// no preemption suffix).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// DefaultPreemption's status for a node whose filter failure was UnschedulableAndUnresolvable.
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// DefaultPreemption's status for a node it dry-ran without finding a lower-priority pod.
pub const NO_PREEMPTION_VICTIMS: &str = "No preemption victims found for incoming pod";
/// DefaultPreemption's message for a pod with `preemptionPolicy: Never`.
pub const NOT_ELIGIBLE_PREEMPT_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{best_effort, plain_node, pod};
    use crate::scheduler::plugins::{
        filter, reason_untolerated_taint, NodeInfo, NODE_RESOURCES_FIT, NODE_UNSCHEDULABLE,
        REASON_NODE_AFFINITY, REASON_UNSCHEDULABLE, TAINT_TOLERATION,
    };
    use k8s_openapi::api::core::v1::Taint;
    use serde_json::json;

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

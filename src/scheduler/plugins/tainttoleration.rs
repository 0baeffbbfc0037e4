//! The TaintToleration plugin: NoSchedule/NoExecute taints must be tolerated (filter), and
//! untolerated PreferNoSchedule taints lower a node's score.

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use super::node_info::NodeInfo;
use super::{Filtered, TAINT_TOLERATION};
use crate::k8s::tolerations::tolerates;

/// The untolerated-taint reason as kube-scheduler 1.33.0 renders it: `node(s) had untolerated
/// taint {key: value}` (an empty value leaves `{key: }`).
pub fn reason_untolerated_taint(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

pub(super) fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

pub(super) fn pod_tolerations(pod: &Pod) -> &[Toleration] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{
        best_effort, best_index, plain_node, pod, requesting,
    };
    use crate::scheduler::plugins::{filter, score};
    use serde_json::json;

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
}

//! The NodeUnschedulable plugin: a cordoned node takes only pods that tolerate its
//! unschedulable taint.

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::node_info::NodeInfo;
use super::tainttoleration::{pod_tolerations, tolerations_tolerate};
use super::{Filtered, NODE_UNSCHEDULABLE};

/// NodeUnschedulable's reason.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::filter;
    use crate::scheduler::plugins::testutil::{best_effort, plain_node, pod};
    use serde_json::json;

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
}

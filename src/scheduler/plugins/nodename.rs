//! The NodeName plugin: a pod that names a node fits only that node.

use k8s_openapi::api::core::v1::Pod;

use super::node_info::NodeInfo;
use super::{Filtered, NODE_NAME};

/// NodeName's reason.
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::filter;
    use crate::scheduler::plugins::testutil::{plain_node, pod};
    use serde_json::json;

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
}

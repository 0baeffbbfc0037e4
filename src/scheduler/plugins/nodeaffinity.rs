//! The NodeAffinity plugin: the `metadata.name` PreFilter, the `nodeSelector` and required
//! node affinity filter, and the preferred-terms score, with node selector term matching.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use crate::k8s::nodeaffinity::required_affinity;
pub use crate::k8s::nodeaffinity::{matches_required_node_affinity, node_selector_term_matches};

use super::node_info::NodeInfo;
use super::{Filtered, NODE_AFFINITY};

/// NodeAffinity's Filter reason.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeAffinity's PreFilter reason when the `metadata.name` terms name no node at all.
pub const REASON_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";
/// The status of the nodes a PreFilter result (NodeAffinity on `metadata.name`) left out.
pub const REASON_PREFILTER_NODE_AFFINITY: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";

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

/// NodeAffinity: `nodeSelector` and required node affinity.
pub fn filter_node_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    if matches_required_node_affinity(pod, &node.node) {
        Ok(())
    } else {
        Err(Filtered::new(NODE_AFFINITY, REASON_NODE_AFFINITY, true))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::testutil::{best_index, plain_node, pod, requesting};
    use crate::scheduler::plugins::{filter, score};
    use serde_json::json;

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
}

//! Node selectors and required node affinity as upstream matches them
//! (component-helpers' `nodeaffinity`): used by the scheduler's NodeAffinity plugin and by the
//! DaemonSet controller, which runs a daemon pod only on the nodes it would fit.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod};

fn node_labels(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

/// One `matchExpressions` entry against node labels; `None` when the requirement is malformed
/// (upstream then treats the whole term as not matching).
fn label_requirement_matches(
    req: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    let label = labels.get(&req.key);
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                return None;
            }
            let found = label.is_some_and(|v| values.iter().any(|x| x == v));
            Some(if req.operator == "In" { found } else { !found })
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return None;
            }
            Some((req.operator == "Exists") == label.is_some())
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                return None;
            }
            let bound: i64 = values[0].parse().ok()?;
            let Some(have) = label.and_then(|v| v.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if req.operator == "Gt" {
                have > bound
            } else {
                have < bound
            })
        }
        _ => None,
    }
}

/// One `matchFields` entry against the node's fields (only `metadata.name` exists); only `In` and
/// `NotIn` with exactly one value are valid.
fn field_requirement_matches(req: &NodeSelectorRequirement, node: &Node) -> Option<bool> {
    let values = req.values.as_deref().unwrap_or(&[]);
    if values.len() != 1 {
        return None;
    }
    let have = if req.key == "metadata.name" {
        node.metadata.name.as_deref().unwrap_or("")
    } else {
        ""
    };
    match req.operator.as_str() {
        "In" => Some(have == values[0]),
        "NotIn" => Some(have != values[0]),
        _ => None,
    }
}

fn is_empty_term(term: &NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(|v| v.is_empty())
        && term.match_fields.as_ref().is_none_or(|v| v.is_empty())
}

/// Whether a node selector term matches the node: all its expressions and fields hold. An empty
/// term, or one with a malformed requirement, matches nothing.
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    if is_empty_term(term) {
        return false;
    }
    let labels = node_labels(node);
    for req in term.match_expressions.iter().flatten() {
        match label_requirement_matches(req, &labels) {
            Some(true) => {}
            _ => return false,
        }
    }
    for req in term.match_fields.iter().flatten() {
        match field_requirement_matches(req, node) {
            Some(true) => {}
            _ => return false,
        }
    }
    true
}

/// Whether the node satisfies the pod's `nodeSelector` and its required node affinity (terms are
/// ORed).
pub fn matches_required_node_affinity(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(selector) = spec.node_selector.as_ref().filter(|s| !s.is_empty()) {
        let labels = node_labels(node);
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    match required_affinity(pod) {
        Some(required) => required
            .node_selector_terms
            .iter()
            .any(|t| node_selector_term_matches(t, node)),
        None => true,
    }
}

/// The pod's required node affinity, if it has one.
pub fn required_affinity(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

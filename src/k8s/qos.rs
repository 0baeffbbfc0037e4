//! A pod's QoS class (upstream's `GetPodQOS`): one implementation for the apiserver (which sets
//! `status.qosClass` at create) and the kubelet (which reports it), comparing quantities by
//! value, so `cpu: "1"` and `cpu: 1000m` are the same amount.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The QoS class of a pod from its containers' cpu/memory requests and limits, as upstream
/// computes it (zero quantities do not count; Guaranteed needs cpu and memory limits on every
/// container and summed requests equal to summed limits).
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in all {
        let res = c.resources.as_ref();
        let add = |list: Option<&BTreeMap<String, Quantity>>,
                   into: &mut BTreeMap<&str, i128>,
                   found: &mut Vec<&'static str>| {
            for name in ["cpu", "memory"] {
                let Some(q) = list.and_then(|l| l.get(name)) else {
                    continue;
                };
                let v = crate::k8s::quantity::parse_nanos(&q.0).unwrap_or(0);
                if v > 0 {
                    let sum = into.entry(name).or_insert(0);
                    *sum = sum.saturating_add(v);
                    found.push(name);
                }
            }
        };
        let mut ignored = Vec::new();
        add(
            res.and_then(|r| r.requests.as_ref()),
            &mut requests,
            &mut ignored,
        );
        let mut limits_found = Vec::new();
        add(
            res.and_then(|r| r.limits.as_ref()),
            &mut limits,
            &mut limits_found,
        );
        if !(limits_found.contains(&"cpu") && limits_found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, v)| limits.get(k) != Some(v)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn classes_compare_quantities_by_value() {
        assert_eq!(
            qos_class(&spec(json!({"containers": [{"name": "a"}]}))),
            "BestEffort"
        );
        // The same amounts written differently are equal.
        assert_eq!(
            qos_class(&spec(json!({"containers": [{"name": "a", "resources": {
                "requests": {"cpu": "1", "memory": "64Mi"},
                "limits": {"cpu": "1000m", "memory": "67108864"}}}]}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(json!({"containers": [{"name": "a", "resources": {
                "requests": {"cpu": "100m"}}}]}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(json!({"containers": [
                {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b"}
            ]}))),
            "Burstable"
        );
        // Zero amounts do not count.
        assert_eq!(
            qos_class(&spec(json!({"containers": [{"name": "a", "resources": {
                "requests": {"cpu": "0"}, "limits": {"memory": "0"}}}]}))),
            "BestEffort"
        );
    }
}

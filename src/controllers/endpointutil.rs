//! The rules the endpoints and EndpointSlice controllers share, as upstream keeps them for both
//! in `k8s.io/endpointslice/util` (with `FindPort`): which Services select a pod, which pods
//! become endpoints at all, the port a Service port reaches on a pod, a pod's addresses, and
//! when an endpoint carries the pod's hostname. Pure functions over k8s-openapi types.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A Service's selector, if it has one. An empty selector is no selector: upstream stores an
/// empty map as none, and a Service without a selector selects nothing (its endpoints are its
/// users' to write).
pub fn selector_of(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether `service` selects `pod`: same namespace, and every selector label on the pod.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    if service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(selector) = selector_of(service) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether a pod belongs in a Service's Endpoints or EndpointSlices at all
/// (`ShouldPodBeInEndpoints`): not terminal (Succeeded or Failed), with an IP, and, unless
/// `include_terminating`, not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The reference to a pod that Endpoints addresses and EndpointSlice endpoints carry.
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's IPs: `status.podIPs`, or `status.podIP` when only that is set (the apiserver's
/// conversion fills one from the other).
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// The port a Service port reaches on a pod (`FindPort`): a numeric targetPort as it is (the
/// Service port when none is set); a named one looked up among the ports of the containers,
/// then of the sidecars (init containers that restart always), with the same protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// Whether the endpoint of `pod` carries its hostname (`ShouldSetHostname`): the pod has one,
/// and its subdomain names the Service (in the pod's namespace).
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && service.metadata.namespace == pod.metadata.namespace
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn terminal_ip_less_and_terminating_pods_are_left_out() {
        let running = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}}),
        );
        assert!(should_pod_be_in_endpoints(&running, false));
        let done = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}}),
        );
        assert!(!should_pod_be_in_endpoints(&done, true));
        let pending = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}}));
        assert!(!should_pod_be_in_endpoints(&pending, true));
        let terminating = pod(
            json!({"metadata": {"name": "a", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}}),
        );
        assert!(!should_pod_be_in_endpoints(&terminating, false));
        assert!(should_pod_be_in_endpoints(&terminating, true));
    }

    #[test]
    fn named_target_ports_resolve_in_containers_then_sidecars_with_the_protocol() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {
            "initContainers": [{"name": "proxy", "image": "x", "restartPolicy": "Always", "ports": [{"name": "admin", "containerPort": 9901}]},
                {"name": "init", "image": "x", "ports": [{"name": "setup", "containerPort": 7000}]}],
            "containers": [{"name": "c", "image": "x", "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}, {"name": "http", "containerPort": 8080}]}]}}));
        let port = |v: serde_json::Value| -> ServicePort { serde_json::from_value(v).unwrap() };
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "http"}))),
            Some(8080)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "admin"}))),
            Some(9901)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "setup"}))),
            None
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 53, "targetPort": "dns"}))),
            None
        );
        assert_eq!(
            find_port(
                &p,
                &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))
            ),
            Some(5353)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": 9000}))),
            Some(9000)
        );
        assert_eq!(find_port(&p, &port(json!({"port": 80}))), Some(80));
    }

    #[test]
    fn a_service_without_a_selector_selects_nothing() {
        let p =
            pod(json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web"}}}));
        let svc = |v: serde_json::Value| -> Service { serde_json::from_value(v).unwrap() };
        assert!(selects(
            &svc(
                json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {"selector": {"app": "web"}}})
            ),
            &p
        ));
        assert!(!selects(
            &svc(
                json!({"metadata": {"name": "web", "namespace": "other"}, "spec": {"selector": {"app": "web"}}})
            ),
            &p
        ));
        assert!(!selects(
            &svc(json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {"selector": {}}})),
            &p
        ));
        assert!(!selects(
            &svc(json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {}})),
            &p
        ));
    }
}

//! One implementation of each Kubernetes rule that more than one layer needs, as upstream's
//! helpers define them: quantities (`quantity`), QoS classes (`qos`), taints and tolerations
//! (`tolerations`), the names service accounts, their tokens and the cluster's CA share
//! (`serviceaccount`), a Node's or a Pod's readiness, the default pull policy, the version the
//! cluster reports, how the apiserver vouches for a kubelet (`kubelet_auth`), `PodLogOptions`
//! (`pod_logs`), and Go's own conversions whose error texts reach users (`go`). Pure functions
//! over k8s-openapi types (no I/O), and nothing from any component.

pub mod go;
pub mod kubelet_auth;
pub mod nodeaffinity;
pub mod pod_logs;
pub mod qos;
pub mod quantity;
pub mod serviceaccount;
pub mod tolerations;

/// The version this reference cluster reports (`/version`, a Node's kubelet version).
pub const GIT_VERSION: &str = "v1.33.0-kubespec";

/// Go's name for this machine's architecture (`GOARCH`), as `/version` and a Node report it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The User-Agent a component sends, as upstream's client-go builds it
/// (`kube-scheduler/v1.33.0 (linux/amd64) kubernetes/kubespec`): the apiserver records its first
/// part as the component's field manager.
pub fn user_agent(component: &str) -> String {
    format!(
        "{component}/{GIT_VERSION} ({}/{}) kubernetes/kubespec",
        std::env::consts::OS,
        go_arch()
    )
}

/// A string as Go's `%q` prints it in an error message (one implementation, in [`go`]).
pub use go::quote as go_quote;

/// The imagePullPolicy a container gets when it names none (upstream's defaulting): `Always`
/// for `:latest` or no tag, `IfNotPresent` otherwise (and for digests).
pub fn default_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

use k8s_openapi::api::core::v1::{Node, Pod};

/// Whether the Node's `Ready` condition is `True` (upstream's `IsNodeReady`).
pub fn node_is_ready(node: &Node) -> bool {
    condition_status(
        node.status.as_ref().and_then(|s| s.conditions.as_deref()),
        "Ready",
    )
    .is_some_and(|s| s == "True")
}

/// Whether the Pod's `Ready` condition is `True` (upstream's `IsPodReady`).
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn condition_status<'a>(
    conditions: Option<&'a [k8s_openapi::api::core::v1::NodeCondition]>,
    type_: &str,
) -> Option<&'a str> {
    conditions?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// The cluster's DNS domain (the kubelet's `clusterDomain`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// A pod's host name and domain as the kubelet makes them (upstream's
/// `GeneratePodHostNameAndDomain`): `spec.hostname`, else the pod's name cut to 63 characters
/// without a trailing `-` or `.`; with a `spec.subdomain`, the domain
/// `<subdomain>.<namespace>.svc.cluster.local`.
pub fn pod_hostname_and_domain(pod: &Pod) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let hostname = match spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        Some(h) => h.to_string(),
        None => truncate_hostname(pod.metadata.name.as_deref().unwrap_or_default()),
    };
    let domain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{sub}.{}.svc.{CLUSTER_DOMAIN}",
                pod.metadata.namespace.as_deref().unwrap_or("default")
            )
        });
    (hostname, domain)
}

/// A pod name as a host name: at most 63 characters, without a trailing `-` or `.` after the
/// cut (upstream's `truncatePodHostnameIfNeeded`).
pub fn truncate_hostname(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    let mut cut = 63;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name[..cut].trim_end_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reads_the_ready_condition() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "True"}, {"type": "Ready", "status": "Unknown"}]}
        }))
        .unwrap();
        assert!(!node_is_ready(&node));
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert!(node_is_ready(&node));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}
        }))
        .unwrap();
        assert!(!pod_is_ready(&pod));
    }
}

//! The hosts file the kubelet writes for a pod and mounts at `/etc/hosts` in each of its
//! containers (upstream's `ensureHostsFile`), unless the container mounts something there
//! itself: the localhost lines, the pod's IP with its host name (and fully qualified name, with
//! a `spec.subdomain`), then the pod's `hostAliases`. A pod on the host network gets the node's
//! hosts file under its own header.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Where the file goes in a container.
pub(super) const PATH: &str = "/etc/hosts";

/// The node's own hosts file (a Debian host's), which host-network pods see.
const NODE_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Whether the kubelet mounts its hosts file into container `c` (not when the container mounts
/// a volume at `/etc/hosts` itself).
pub(super) fn mounted_in(c: &Container) -> bool {
    !c.volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path.trim_end_matches('/') == PATH)
}

/// The file's content for `pod` with IP `ip`.
pub(super) fn content(pod: &Pod, ip: IpAddr) -> Vec<u8> {
    let spec = pod.spec.as_ref();
    let mut out = String::new();
    if spec.and_then(|s| s.host_network) == Some(true) {
        out.push_str("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(NODE_HOSTS);
    } else {
        let (hostname, domain) = crate::k8s::pod_hostname_and_domain(pod);
        out.push_str("# Kubernetes-managed hosts file.\n");
        out.push_str("127.0.0.1\tlocalhost\n");
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\n");
        out.push_str("fe00::0\tip6-mcastprefix\n");
        out.push_str("fe00::1\tip6-allnodes\n");
        out.push_str("fe00::2\tip6-allrouters\n");
        match domain {
            Some(domain) => out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    let aliases = spec
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", alias.ip));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_hosts_file_names_the_pod_and_its_aliases() {
        let ip: IpAddr = "10.200.0.5".parse().unwrap();
        let p = pod(
            serde_json::json!({"metadata": {"name": "hostaliases-pod", "namespace": "default"},
            "spec": {"containers": [], "hostAliases": [
                {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                {"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}]}}),
        );
        assert_eq!(
            String::from_utf8(content(&p, ip)).unwrap(),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             10.200.0.5\thostaliases-pod\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n\
             10.1.2.3\tfoo.remote\tbar.remote\n"
        );
        let p = pod(
            serde_json::json!({"metadata": {"name": "web-0", "namespace": "shop"},
            "spec": {"containers": [], "hostname": "web", "subdomain": "nginx"}}),
        );
        let text = String::from_utf8(content(&p, ip)).unwrap();
        assert!(
            text.ends_with(
                "fe00::2\tip6-allrouters\n10.200.0.5\tweb.nginx.shop.svc.cluster.local\tweb\n"
            ),
            "{text}"
        );
        let p = pod(
            serde_json::json!({"metadata": {"name": "h"}, "spec": {"containers": [], "hostNetwork": true}}),
        );
        assert!(String::from_utf8(content(&p, ip)).unwrap().starts_with(
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n"
        ));
    }

    #[test]
    fn a_container_mounting_its_own_hosts_file_keeps_it() {
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c",
            "volumeMounts": [{"name": "v", "mountPath": "/etc/hosts"}]}))
        .unwrap();
        assert!(!mounted_in(&c));
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c"})).unwrap();
        assert!(mounted_in(&c));
    }
}

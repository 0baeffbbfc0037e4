//! The environment variables the kubelet gives a container for Services (upstream's
//! `getServiceEnvVarMap` and `envvars.FromServices`): for the master Service
//! (`default/kubernetes`) always, and for every Service of the pod's namespace unless the pod
//! sets `enableServiceLinks: false`; only Services with a cluster IP. For a Service `redis-primary`
//! with port 6379: `REDIS_PRIMARY_SERVICE_HOST`, `REDIS_PRIMARY_SERVICE_PORT` (the first port),
//! `REDIS_PRIMARY_SERVICE_PORT_<NAME>` per named port, and the Docker link variables
//! `REDIS_PRIMARY_PORT=tcp://10.0.0.11:6379` and `REDIS_PRIMARY_PORT_6379_TCP{,_PROTO,_PORT,_ADDR}`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Pod, Service};

/// `FOO-BAR` -> `FOO_BAR`.
fn variable_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// `host:port`, with brackets around an IPv6 host (Go's `net.JoinHostPort`).
fn host_port(host: &str, port: i32) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, u16::try_from(port).unwrap_or(0)).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

/// One Service's variables, or none when it has no cluster IP (headless, ExternalName).
fn variables(service: &Service, out: &mut BTreeMap<String, String>) {
    let Some(spec) = service.spec.as_ref() else {
        return;
    };
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ip.is_empty() || ip == "None" || ports.is_empty() {
        return;
    }
    let prefix = variable_name(service.metadata.name.as_deref().unwrap_or_default());
    out.insert(format!("{prefix}_SERVICE_HOST"), ip.to_string());
    out.insert(format!("{prefix}_SERVICE_PORT"), ports[0].port.to_string());
    for p in ports {
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.insert(
                format!("{prefix}_SERVICE_PORT_{}", variable_name(name)),
                p.port.to_string(),
            );
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let protocol = p.protocol.as_deref().unwrap_or("TCP");
        let lower = protocol.to_ascii_lowercase();
        let url = format!("{lower}://{}", host_port(ip, p.port));
        if i == 0 {
            out.insert(format!("{prefix}_PORT"), url.clone());
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_ascii_uppercase());
        out.insert(format!("{port_prefix}_PROTO"), lower);
        out.insert(format!("{port_prefix}_PORT"), p.port.to_string());
        out.insert(format!("{port_prefix}_ADDR"), ip.to_string());
        out.insert(port_prefix, url);
    }
}

/// The Service variables for `pod`, from the Services the kubelet knows, sorted by name.
pub(super) fn for_pod<'a>(
    pod: &Pod,
    services: impl IntoIterator<Item = &'a Service>,
) -> Vec<(String, String)> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    // By name: a namespace's own Service wins over the master Service of the same name.
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for s in services {
        let name = s.metadata.name.clone().unwrap_or_default();
        let ns = s.metadata.namespace.as_deref().unwrap_or_default();
        if ns == namespace && links {
            chosen.insert(name, s);
        } else if ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(s);
        }
    }
    let mut out = BTreeMap::new();
    for s in chosen.values() {
        variables(s, &mut out);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}}),
        )
        .unwrap()
    }

    #[test]
    fn services_become_variables_as_upstream_names_them() {
        let services = [
            service(
                "default",
                "kubernetes",
                "10.96.0.1",
                serde_json::json!([{"name": "https", "port": 443}]),
            ),
            service(
                "shop",
                "redis-primary",
                "10.0.0.11",
                serde_json::json!([{"port": 6379}, {"name": "metrics", "port": 9121, "protocol": "UDP"}]),
            ),
            service(
                "shop",
                "headless",
                "None",
                serde_json::json!([{"port": 80}]),
            ),
            service(
                "other",
                "elsewhere",
                "10.0.0.12",
                serde_json::json!([{"port": 80}]),
            ),
        ];
        let pod: Pod = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p", "namespace": "shop"}}),
        )
        .unwrap();
        let env: BTreeMap<String, String> = for_pod(&pod, &services).into_iter().collect();
        let want = [
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("REDIS_PRIMARY_PORT", "tcp://10.0.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.0.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.0.0.11"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"),
            ("REDIS_PRIMARY_PORT_9121_UDP", "udp://10.0.0.11:9121"),
            ("REDIS_PRIMARY_PORT_9121_UDP_ADDR", "10.0.0.11"),
            ("REDIS_PRIMARY_PORT_9121_UDP_PORT", "9121"),
            ("REDIS_PRIMARY_PORT_9121_UDP_PROTO", "udp"),
            ("REDIS_PRIMARY_SERVICE_HOST", "10.0.0.11"),
            ("REDIS_PRIMARY_SERVICE_PORT", "6379"),
            ("REDIS_PRIMARY_SERVICE_PORT_METRICS", "9121"),
        ];
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, want);
        // Without service links only the master Service's remain.
        let pod: Pod = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [], "enableServiceLinks": false}}),
        )
        .unwrap();
        let env = for_pod(&pod, &services);
        assert!(
            env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")),
            "{env:?}"
        );
        assert_eq!(env.len(), 8);
    }
}

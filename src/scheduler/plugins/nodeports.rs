//! The NodePorts plugin: the host ports a pod claims must be free on the node.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::node_info::NodeInfo;
use super::resources::is_restartable_init_container;
use super::{Filtered, NODE_PORTS};

/// NodePorts' reason.
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

const BIND_ALL_HOST_IP: &str = "0.0.0.0";

/// A host port a container claims, after upstream's defaulting (ip `0.0.0.0`, protocol `TCP`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

/// The host ports a pod claims: those of its app containers and (1.33.x) of its restartable init
/// containers, with `hostPort > 0`.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_restartable_init_container(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.unwrap_or(0);
            (port > 0).then(|| HostPort {
                protocol: p
                    .protocol
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| BIND_ALL_HOST_IP.into()),
                port,
            })
        })
        .collect()
}

fn port_conflicts(used: &BTreeSet<HostPort>, want: &HostPort) -> bool {
    used.iter().any(|u| {
        u.protocol == want.protocol
            && u.port == want.port
            && (want.ip == BIND_ALL_HOST_IP || u.ip == BIND_ALL_HOST_IP || u.ip == want.ip)
    })
}

/// NodePorts: the pod's host ports must be free on the node (a `0.0.0.0` binding conflicts with
/// every address).
pub fn filter_node_ports(pod: &Pod, node: &NodeInfo) -> Result<(), Filtered> {
    ports_free(&pod_host_ports(pod), node)
}

pub(super) fn ports_free(ports: &[HostPort], node: &NodeInfo) -> Result<(), Filtered> {
    if ports.iter().any(|p| port_conflicts(&node.used_ports, p)) {
        Err(Filtered::new(NODE_PORTS, REASON_NODE_PORTS, false))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::filter;
    use crate::scheduler::plugins::testutil::{plain_node, pod};
    use serde_json::json;

    #[test]
    fn host_ports_conflict_by_protocol_port_and_ip() {
        let with_port = |name: &str, port: serde_json::Value| {
            pod(json!({
                "metadata": {"name": name, "uid": name},
                "spec": {"containers": [{"name": "c", "ports": [port]}]}
            }))
        };
        let mut info = NodeInfo::new(plain_node("n1", "2", "4Gi"));
        info.add_pod(&with_port(
            "a",
            json!({"containerPort": 80, "hostPort": 8080}),
        ));
        info.add_pod(&with_port(
            "b",
            json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}),
        ));
        assert_eq!(info.used_ports.len(), 2);

        let err = filter(
            &with_port("c", json!({"containerPort": 80, "hostPort": 8080})),
            &info,
        )
        .unwrap_err();
        assert_eq!(
            (err.plugin, err.reasons[0].as_str(), err.unresolvable),
            (
                NODE_PORTS,
                "node(s) didn't have free ports for the requested pod ports",
                false
            )
        );
        // 0.0.0.0 on the node conflicts with a specific address too.
        assert!(filter(
            &with_port(
                "d",
                json!({"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"})
            ),
            &info
        )
        .is_err());
        // Different protocol, different port, different specific address: free.
        assert_eq!(
            filter(
                &with_port(
                    "e",
                    json!({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"})
                ),
                &info
            ),
            Ok(())
        );
        assert_eq!(
            filter(
                &with_port("f", json!({"containerPort": 80, "hostPort": 8081})),
                &info
            ),
            Ok(())
        );
        assert_eq!(
            filter(
                &with_port(
                    "g",
                    json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.2"})
                ),
                &info
            ),
            Ok(())
        );
        assert!(filter(
            &with_port(
                "h",
                json!({"containerPort": 53, "hostPort": 53, "protocol": "UDP"})
            ),
            &info
        )
        .is_err());
        // A containerPort without hostPort claims nothing.
        assert_eq!(
            filter(&with_port("i", json!({"containerPort": 8080})), &info),
            Ok(())
        );
        // Freed when the pod goes.
        info.remove_pod(&with_port(
            "a",
            json!({"containerPort": 80, "hostPort": 8080}),
        ));
        assert_eq!(
            filter(
                &with_port("c", json!({"containerPort": 80, "hostPort": 8080})),
                &info
            ),
            Ok(())
        );
    }
}

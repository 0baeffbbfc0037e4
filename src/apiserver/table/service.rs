//! The service and endpoints printers: external IPs, ports and ready endpoint addresses.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{
    age, field, format_labels, int, list, name_of, or_default, s, text, NONE, UNKNOWN,
};

fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips: Vec<&str> = list(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                NONE.to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            // Server-side tables are always wide, so nothing is truncated.
            let ingress: BTreeSet<&str> = list(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| {
                    let ip = text(i, &["ip"]);
                    let hostname = text(i, &["hostname"]);
                    if !ip.is_empty() {
                        Some(ip)
                    } else if !hostname.is_empty() {
                        Some(hostname)
                    } else {
                        None
                    }
                })
                .collect();
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = ingress.into_iter().collect();
                all.extend(external_ips);
                all.join(",")
            } else if !ingress.is_empty() {
                ingress.into_iter().collect::<Vec<_>>().join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(svc, &["spec", "externalName"]).to_string(),
        _ => UNKNOWN.to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = or_default(text(p, &["protocol"]), "TCP");
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if pieces.is_empty() {
        NONE.to_string()
    } else {
        pieces.join(",")
    }
}

pub(super) fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = or_default(text(svc, &["spec", "type"]), "ClusterIP");
    // v1 -> internal conversion makes spec.clusterIP authoritative.
    let mut cluster_ip = text(svc, &["spec", "clusterIP"]);
    if cluster_ip.is_empty() {
        cluster_ip = list(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
    }
    vec![
        s(name_of(svc)),
        s(svc_type),
        s(or_default(cluster_ip, NONE)),
        s(service_external_ip(svc, svc_type)),
        s(service_ports(svc)),
        s(age(svc, now)),
        s(format_labels(field(svc, &["spec", "selector"]))),
    ]
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Up to three ready `ip:port` pairs (bare IPs for port-less subsets), then
/// " + N more...".
pub(super) fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(ep, &["subsets"]);
    if subsets.is_empty() {
        return NONE.to_string();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count: usize = 0;
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(text(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(text(addr, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

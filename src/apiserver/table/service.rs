//! The service, endpoints and endpoint slice printers: external IPs, ports and endpoint
//! addresses.

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

/// Up to three items joined by commas, then " + N more..."; `<unset>` when there are none
/// (upstream's `listWithMoreString`).
fn list_with_more(items: impl IntoIterator<Item = String>) -> String {
    const MAX: usize = 3;
    let mut shown = Vec::new();
    let mut count = 0;
    for item in items {
        if shown.len() < MAX {
            shown.push(item);
        }
        count += 1;
    }
    if count > MAX {
        format!("{} + {} more...", shown.join(","), count - MAX)
    } else if shown.is_empty() {
        "<unset>".to_string()
    } else {
        shown.join(",")
    }
}

/// NAME, ADDRESSTYPE, PORTS (numbers, else names, else `*`), ENDPOINTS (every address of every
/// endpoint, ready or not) and AGE of an EndpointSlice.
pub(super) fn endpoint_slice_cells(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = list(slice, &["ports"]).iter().map(|p| match p.get("port") {
        Some(Value::Number(n)) => n.to_string(),
        _ => match p.get("name").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => "*".to_string(),
        },
    });
    let ports = list_with_more(ports);
    let addresses = list(slice, &["endpoints"])
        .iter()
        .flat_map(|e| list(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or_default().to_string());
    vec![
        s(name_of(slice)),
        s(text(slice, &["addressType"])),
        s(ports),
        s(list_with_more(addresses)),
        s(age(slice, now)),
    ]
}

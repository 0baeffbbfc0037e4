use super::*;
use serde_json::json;

fn service(v: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn web(extra: serde_json::Value) -> Arc<Service> {
    let mut spec = json!({
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    service(json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec}))
}

/// A slice of `web` with endpoints (ip, node, ready, serving, terminating).
fn web_slice(endpoints: &[(&str, &str, bool, bool, bool)]) -> Arc<EndpointSlice> {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|(ip, node, ready, serving, terminating)| {
            json!({"addresses": [ip], "nodeName": node,
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
        })
        .collect();
    slice(json!({
        "metadata": {"name": "web-abcde", "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
}

fn addrs(v: &[&str]) -> Vec<SocketAddr> {
    v.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn a_cluster_ip_leads_to_the_ready_endpoints_on_their_target_port() {
    let r = rules(
        "node-1",
        &[],
        &[web(json!({}))],
        &[web_slice(&[
            ("127.1.0.2", "node-1", true, true, false),
            ("127.1.0.3", "node-2", true, true, false),
            ("127.1.0.4", "node-2", false, false, false),
        ])],
    );
    assert_eq!(
        r.rules,
        vec![ServiceRule {
            name: "shop/web:http".into(),
            protocol: Protocol::Tcp,
            frontends: addrs(&["10.96.0.10:80"]),
            endpoints: addrs(&["127.1.0.2:8080", "127.1.0.3:8080"]),
            no_endpoints: NoEndpoints::Reject,
            affinity_seconds: None,
        }]
    );
}

#[test]
fn terminating_endpoints_serve_only_when_none_is_ready() {
    let endpoints = |r: &Ruleset| r.rules[0].endpoints.clone();
    let some_ready = rules(
        "node-1",
        &[],
        &[web(json!({}))],
        &[web_slice(&[
            ("127.1.0.2", "node-1", true, true, false),
            ("127.1.0.3", "node-1", false, true, true),
        ])],
    );
    assert_eq!(endpoints(&some_ready), addrs(&["127.1.0.2:8080"]));
    let none_ready = rules(
        "node-1",
        &[],
        &[web(json!({}))],
        &[web_slice(&[
            ("127.1.0.3", "node-1", false, true, true),
            ("127.1.0.4", "node-1", false, false, true),
        ])],
    );
    assert_eq!(endpoints(&none_ready), addrs(&["127.1.0.3:8080"]));
}

#[test]
fn without_endpoints_the_port_rejects_and_local_policy_without_local_ones_drops() {
    let none = rules("node-1", &[], &[web(json!({}))], &[]);
    assert_eq!(none.rules[0].endpoints, vec![]);
    assert_eq!(none.rules[0].no_endpoints, NoEndpoints::Reject);
    let local = rules(
        "node-1",
        &[],
        &[web(json!({"internalTrafficPolicy": "Local"}))],
        &[web_slice(&[("127.1.0.3", "node-2", true, true, false)])],
    );
    assert_eq!(local.rules[0].endpoints, vec![]);
    assert_eq!(local.rules[0].no_endpoints, NoEndpoints::Drop);
    let here = rules(
        "node-2",
        &[],
        &[web(json!({"internalTrafficPolicy": "Local"}))],
        &[web_slice(&[
            ("127.1.0.3", "node-2", true, true, false),
            ("127.1.0.4", "node-1", true, true, false),
        ])],
    );
    assert_eq!(here.rules[0].endpoints, addrs(&["127.1.0.3:8080"]));
}

#[test]
fn node_ports_external_ips_and_affinity() {
    let svc = web(json!({
        "type": "NodePort",
        "externalIPs": ["192.0.2.7"],
        "externalTrafficPolicy": "Local",
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
    }));
    let r = rules(
        "node-1",
        &["127.0.0.9".parse().unwrap()],
        &[svc],
        &[web_slice(&[("127.1.0.3", "node-2", true, true, false)])],
    );
    assert_eq!(r.rules.len(), 2);
    assert_eq!(r.rules[0].frontends, addrs(&["10.96.0.10:80"]));
    assert_eq!(
        r.rules[1].frontends,
        addrs(&["192.0.2.7:80", "127.0.0.9:30080"])
    );
    // A pod's traffic to external addresses reaches every endpoint, Local policy or not.
    assert_eq!(r.rules[1].endpoints, addrs(&["127.1.0.3:8080"]));
    assert!(r
        .rules
        .iter()
        .all(|r| r.affinity_seconds == Some(60) && r.name == "shop/web:http"));
}

#[test]
fn headless_external_name_and_unnamed_ports() {
    let headless = service(json!({"metadata": {"name": "db", "namespace": "shop"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432}]}}));
    let external = service(json!({"metadata": {"name": "ext", "namespace": "shop"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}}));
    let plain = service(json!({"metadata": {"name": "api", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
            "ports": [{"port": 53, "protocol": "UDP"}]}}));
    let plain_slice = slice(json!({
        "metadata": {"name": "api-x", "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "api"}},
        "addressType": "IPv4",
        "ports": [{"port": 5353, "protocol": "UDP"}],
        "endpoints": [{"addresses": ["127.1.0.5"]}],
    }));
    let r = rules("node-1", &[], &[headless, external, plain], &[plain_slice]);
    assert_eq!(
        r.rules,
        vec![ServiceRule {
            name: "shop/api".into(),
            protocol: Protocol::Udp,
            frontends: addrs(&["10.96.0.20:53"]),
            endpoints: addrs(&["127.1.0.5:5353"]),
            no_endpoints: NoEndpoints::Reject,
            affinity_seconds: None,
        }]
    );
}

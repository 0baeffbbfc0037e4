//! Services as a Kubernetes 1.33 apiserver keeps them: node ports allocated from 30000-32767
//! for NodePort and LoadBalancer Services (unique, kept on update, released on delete and on a
//! change to ClusterIP, untouched by a dry-run), and the `default/kubernetes` Service with its
//! Endpoints and EndpointSlice pointing at the apiserver, recreated when deleted. Read through
//! kube-rs and through real kubectl 1.33.

mod support;

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use kubespec::clock::Clock;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use support::cli::{Kubectl, Up};
use support::{cluster, minutes};

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn node_ports(s: &Service) -> Vec<i32> {
    s.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| p.node_port.unwrap_or(0))
        .collect()
}

/// The message of a failed request, with its code.
fn api_error<T: Debug>(result: kube::Result<T>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Watch `name` in `default` until it exists with another uid than `gone`, at most `within` of
/// cluster time.
async fn recreated<K>(api: &Api<K>, clock: &Clock, name: &str, gone: &str, within: Duration) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api.clone(), config).default_backoff().boxed();
    let wait = async {
        while let Some(event) = stream.next().await {
            if let Ok(Event::Apply(o) | Event::InitApply(o)) = event {
                if o.meta().uid.as_deref() != Some(gone) {
                    return o;
                }
            }
        }
        panic!("the watch of {name} ended");
    };
    clock
        .timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("{name} was not recreated within {within:?} (cluster time)"))
}

#[tokio::test]
async fn the_kubernetes_service_points_at_the_apiserver_and_comes_back() {
    let cluster = cluster().apiserver_only().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let port = i32::from(cluster.addr().port());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    let slices: Api<EndpointSlice> = Api::default_namespaced(client.clone());

    // The Service as upstream's reconciler creates it, as the API returns it.
    let svc = services.get("kubernetes").await.unwrap();
    let shown = serde_json::to_value(&svc).unwrap();
    assert_eq!(
        shown["metadata"]["labels"],
        json!({"component": "apiserver", "provider": "kubernetes"})
    );
    let spec = &shown["spec"];
    assert_eq!(spec["clusterIP"], "10.96.0.1");
    assert_eq!(spec["clusterIPs"], json!(["10.96.0.1"]));
    assert_eq!(
        spec["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}])
    );
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("selector").is_none(), "{spec}");
    assert!(spec.get("externalTrafficPolicy").is_none(), "{spec}");

    // Its Endpoints and EndpointSlice name the apiserver's address and port.
    let ep = serde_json::to_value(endpoints.get("kubernetes").await.unwrap()).unwrap();
    assert_eq!(
        ep["metadata"]["labels"],
        json!({"endpointslice.kubernetes.io/skip-mirror": "true"})
    );
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}])
    );
    let slice = serde_json::to_value(slices.get("kubernetes").await.unwrap()).unwrap();
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"kubernetes.io/service-name": "kubernetes"})
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["endpoints"],
        json!([{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}])
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "https", "port": port, "protocol": "TCP"}])
    );

    // Deleted, each comes back (upstream repairs every 10 s).
    let uid = |v: &Value| v["metadata"]["uid"].as_str().unwrap().to_string();
    let (svc_uid, ep_uid, slice_uid) = (uid(&shown), uid(&ep), uid(&slice));
    services
        .delete("kubernetes", &DeleteParams::default())
        .await
        .unwrap();
    endpoints
        .delete("kubernetes", &DeleteParams::default())
        .await
        .unwrap();
    slices
        .delete("kubernetes", &DeleteParams::default())
        .await
        .unwrap();
    let clock = cluster.clock().clone();
    let within = minutes(1);
    let svc = recreated(&services, &clock, "kubernetes", &svc_uid, within).await;
    assert_eq!(
        svc.spec.unwrap().cluster_ip.as_deref(),
        Some("10.96.0.1"),
        "the address is the range's first again"
    );
    let ep = recreated(&endpoints, &clock, "kubernetes", &ep_uid, within).await;
    assert_eq!(ep.subsets.unwrap()[0].ports.as_ref().unwrap()[0].port, port);
    let slice = recreated(&slices, &clock, "kubernetes", &slice_uid, within).await;
    assert_eq!(slice.endpoints[0].addresses, ["127.0.0.1"]);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn node_ports_are_allocated_unique_kept_and_released() {
    let cluster = cluster().apiserver_only().start().await;
    let services: Api<Service> = Api::default_namespaced(cluster.client().unwrap());
    let create = |s: Service| {
        let services = services.clone();
        async move { services.create(&PostParams::default(), &s).await }
    };

    // A NodePort Service gets a node port from the range, and upstream's defaults.
    let a = create(service(
        "a",
        json!({"type": "NodePort", "selector": {"app": "a"}, "ports": [{"port": 80}]}),
    ))
    .await
    .unwrap();
    let [a_port] = node_ports(&a)[..] else {
        panic!("{a:?}")
    };
    assert!((30000..=32767).contains(&a_port), "{a_port}");
    let spec = a.spec.clone().unwrap();
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.allocate_load_balancer_node_ports, None);
    assert_eq!(spec.health_check_node_port, None);

    // A requested node port must be free and in the range.
    let (code, message) = api_error(
        create(service(
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": a_port}]}),
        ))
        .await,
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        format!("Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: {a_port}: provided port is already allocated")
    );
    let (code, message) = api_error(
        create(service(
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
        ))
        .await,
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );

    // A dry-run shows the port it would get and consumes nothing.
    let dry = services
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &service(
                "c",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(node_ports(&dry), [30100]);
    let d = create(service(
        "d",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
    ))
    .await
    .unwrap();
    assert_eq!(node_ports(&d), [30100]);

    // The same port number twice, with two protocols, shares one node port.
    let dns = create(service(
        "dns",
        json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
    ))
    .await
    .unwrap();
    let dns_ports = node_ports(&dns);
    assert_eq!(dns_ports[0], dns_ports[1], "{dns_ports:?}");
    assert!(![a_port, 30100].contains(&dns_ports[0]));

    // An update keeps the node port, even from a client that leaves it out.
    let relabelled = services
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(node_ports(&relabelled), [a_port]);
    let mut resubmitted = relabelled.clone();
    resubmitted.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
    let replaced = services
        .replace("a", &PostParams::default(), &resubmitted)
        .await
        .unwrap();
    assert_eq!(node_ports(&replaced), [a_port]);
    // An update may not take another Service's node port.
    let (code, message) = api_error(
        services
            .patch(
                "d",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"ports": [{"port": 80, "nodePort": a_port}]}})),
            )
            .await,
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        format!("Service \"d\" is invalid: spec.ports[0].nodePort: Invalid value: {a_port}: provided port is already allocated")
    );

    // Turning ClusterIP drops the node port (and the external traffic policy) and releases it.
    let cluster_ip = services
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .unwrap();
    assert_eq!(node_ports(&cluster_ip), [0]);
    assert_eq!(
        cluster_ip.spec.as_ref().unwrap().external_traffic_policy,
        None
    );
    let b = create(service(
        "b",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": a_port}]}),
    ))
    .await
    .unwrap();
    assert_eq!(node_ports(&b), [a_port], "released on the type change");
    // Turning NodePort again, it gets a new one.
    let again = services
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "NodePort"}})),
        )
        .await
        .unwrap();
    let [again_port] = node_ports(&again)[..] else {
        panic!("{again:?}")
    };
    assert!((30000..=32767).contains(&again_port) && again_port != a_port);

    // Deleting a Service releases its node ports.
    services
        .delete("d", &DeleteParams::default())
        .await
        .unwrap();
    let e = create(service(
        "e",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
    ))
    .await
    .unwrap();
    assert_eq!(node_ports(&e), [30100]);

    // LoadBalancers get node ports too, with upstream's defaults; a Local one also gets a
    // health check node port.
    let lb = create(service(
        "lb",
        json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
    ))
    .await
    .unwrap();
    let spec = lb.spec.clone().unwrap();
    assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
    assert!((30000..=32767).contains(&node_ports(&lb)[0]));
    assert_eq!(spec.health_check_node_port, None);
    let local = create(service(
        "local",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    ))
    .await
    .unwrap();
    let health = local.spec.as_ref().unwrap().health_check_node_port.unwrap();
    assert!((30000..=32767).contains(&health));
    assert_ne!(health, node_ports(&local)[0]);
    let opted_out = create(service(
        "no-ports",
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    ))
    .await
    .unwrap();
    assert_eq!(node_ports(&opted_out), [0]);

    // A node port or an external traffic policy has no place on a ClusterIP Service.
    let (code, message) = api_error(
        create(service(
            "f",
            json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80, "nodePort": 30200}]}),
        ))
        .await,
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "Service \"f\" is invalid: [spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP', spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services]"
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[test]
fn kubectl_shows_the_kubernetes_service_and_node_ports() {
    let up = Up::start();
    let k33 = Kubectl::new("1.33", &up);
    let port = up.url().rsplit(':').next().unwrap().to_string();

    let out = k33.ok(&["get", "svc", "kubernetes", "--no-headers"]);
    let columns: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        columns[..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"],
        "{out}"
    );
    let describe = k33.ok(&["describe", "svc", "kubernetes"]);
    let endpoints = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_else(|| panic!("no Endpoints line:\n{describe}"));
    assert_eq!(
        endpoints["Endpoints:".len()..].trim(),
        format!("127.0.0.1:{port}"),
        "{describe}"
    );

    assert_eq!(
        k33.ok(&["create", "service", "nodeport", "web", "--tcp=80:8080"])
            .trim(),
        "service/web created"
    );
    let out = k33.ok(&["get", "svc", "--no-headers"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][..5], columns[..5], "{out}");
    let web = &rows[1];
    assert_eq!(web[..2], ["web", "NodePort"], "{out}");
    let node_port: i32 = web[4]
        .strip_prefix("80:")
        .and_then(|p| p.strip_suffix("/TCP"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("PORT(S) is not 80:<node port>/TCP: {out}"));
    assert!((30000..=32767).contains(&node_port), "{out}");
    let described = k33.ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.externalTrafficPolicy}",
    ]);
    assert_eq!(described, "Cluster");
}

//! The kubelet as a node agent: a silent kubelet loses its node, static pods from a directory
//! and a URL, its own HTTP endpoints and their token, and a node registered by someone else.

use super::*;

#[tokio::test]
async fn a_silent_kubelet_loses_its_node_and_its_pods_move() {
    // 100x: fifty minutes of cluster time are half a minute of wall time.
    let cluster = cluster().time_scale(100.0).nodes(2).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    let d = support::deployment("web", 2, "nginx:1.27");
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let running_on = |s: &State, node: &str| {
        s.pods()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count()
    };
    // The scheduler spreads them: one on each node, so node-1's is the one that must move.
    waits
        .until(minutes(50), "1 running pod on each node", |s| {
            let (one, two) = (running_on(s, "node-1"), running_on(s, "node-2"));
            if (one, two) == (1, 1) {
                Ok(())
            } else {
                Err(format!("node-1 {one}, node-2 {two}"))
            }
        })
        .await;
    cluster.kubelets()[0].set_silent(true);
    waits
        .until(minutes(100), "both pods running on node-2", |s| {
            let n = running_on(s, "node-2");
            if n == 2 {
                Ok(())
            } else {
                Err(format!("{n} on node-2"))
            }
        })
        .await;
    let node = serde_json::to_value(
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .get("node-1")
            .await
            .unwrap(),
    )
    .unwrap();
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "Unknown");
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_static_pod_file_appears_as_a_mirror_pod_and_goes_with_the_file() {
    let cluster = cluster().time_scale(20.0).apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = kubespec::kubelet::KubeletConfig::new("edge-1");
    config.pod_manifest_path = Some(dir.path().to_path_buf());
    let stop = tokio_util::sync::CancellationToken::new();
    let (_handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.27\n").unwrap();
    let mirror = waits
        .until(
            minutes(10),
            "the mirror pod web-edge-1 running",
            |s| match seen::pod(s, "web-edge-1") {
                Some(p)
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") =>
                {
                    Ok(p.clone())
                }
                other => Err(format!("{:?}", other.map(|p| &p.status))),
            },
        )
        .await;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations.contains_key("kubernetes.io/config.mirror"),
        "{annotations:?}"
    );
    assert_eq!(
        annotations
            .get("kubernetes.io/config.source")
            .map(String::as_str),
        Some("file")
    );
    let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "edge-1")
    );
    std::fs::remove_file(&manifest).unwrap();
    waits
        .until(minutes(10), "the mirror pod gone", |s| {
            gone(s, "web-edge-1")
        })
        .await;
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_manifest_url_is_polled_for_static_pods() {
    let cluster = cluster().time_scale(20.0).apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    // A tiny manifest server on loopback.
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-url\nspec:\n  containers:\n  - name: pause\n    image: registry.k8s.io/pause:3.10\n";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/pods.yaml",
            axum::routing::get(move || async move { manifest }),
        );
        let _ = axum::serve(listener, app).await;
    });
    let mut config = kubespec::kubelet::KubeletConfig::new("edge-2");
    config.manifest_url = Some(format!("http://{addr}/pods.yaml"));
    let stop = tokio_util::sync::CancellationToken::new();
    let (_handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let mirror = waits
        .until(minutes(10), "the mirror pod from-url-edge-2", |s| {
            seen::pod(s, "from-url-edge-2")
                .cloned()
                .ok_or_else(|| "not yet".to_string())
        })
        .await;
    let source = mirror
        .metadata
        .annotations
        .unwrap_or_default()
        .get("kubernetes.io/config.source")
        .cloned();
    assert_eq!(source.as_deref(), Some("http"));
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

async fn kubelet_get(client: &Client, node: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = serde_json::to_value(
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .get(node)
            .await
            .unwrap(),
    )
    .unwrap();
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap() as u16;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_kubelet_serves_health_pods_metrics_and_stats() {
    let (cluster, client, waits) = one_node().await;
    create_pod(&client, json!({"metadata": {"name": "probed"}, "spec": {"containers": [{
        "name": "nginx", "image": "nginx:1.27", "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}]}}))
    .await;
    waits
        .until(minutes(10), "the pod ready", |s| {
            let p = seen::pod_json(s, "probed");
            if p["status"]["containerStatuses"][0]["ready"] == true {
                Ok(())
            } else {
                Err(p["status"].to_string())
            }
        })
        .await;
    assert_eq!(kubelet_get(&client, "node-1", "/healthz").await, "ok");
    let listed: serde_json::Value =
        serde_json::from_str(&kubelet_get(&client, "node-1", "/pods").await).unwrap();
    assert_eq!(listed["items"][0]["metadata"]["name"], "probed");
    let metrics = kubelet_get(&client, "node-1", "/metrics").await;
    assert!(metrics.contains("kubelet_running_pods 1\n"), "{metrics}");
    assert!(
        metrics.contains("kubelet_running_containers{container_state=\"running\"} 1\n"),
        "{metrics}"
    );
    let probes = kubelet_get(&client, "node-1", "/metrics/probes").await;
    assert!(
        probes.contains(
            "prober_probe_total{container=\"nginx\",namespace=\"default\",pod=\"probed\""
        ),
        "{probes}"
    );
    assert!(
        probes.contains("probe_type=\"Readiness\",result=\"successful\"}"),
        "{probes}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&kubelet_get(&client, "node-1", "/stats/summary").await).unwrap();
    assert_eq!(summary["node"]["nodeName"], "node-1");
    assert_eq!(summary["pods"][0]["containers"][0]["name"], "nginx");
    assert!(
        summary["pods"][0]["containers"][0]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn with_a_token_the_kubelet_serves_only_health_to_strangers() {
    let cluster = cluster()
        .time_scale(20.0)
        .nodes(1)
        .kubelet_token("s3cret")
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods = create_pod(&client, json!({"metadata": {"name": "talker"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"]}]}})).await;
    waits
        .until(minutes(10), "the pod done", |s| {
            in_phase(s, "talker", "Succeeded")
        })
        .await;
    assert_eq!(kubelet_get(&client, "node-1", "/healthz").await, "ok");
    assert_eq!(
        kubelet_get(&client, "node-1", "/metrics").await,
        "Unauthorized"
    );
    assert_eq!(
        kubelet_get(&client, "node-1", "/containerLogs/default/talker/app").await,
        "Unauthorized"
    );
    // The apiserver presents the token: kubectl logs still works.
    assert_eq!(
        pods.logs("talker", &Default::default()).await.unwrap(),
        "hi\n"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn without_registration_the_kubelet_waits_for_its_node() {
    let cluster = cluster().time_scale(20.0).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let mut config = kubespec::kubelet::KubeletConfig::new("pre-made");
    config.register_node = false;
    let stop = tokio_util::sync::CancellationToken::new();
    let (handle, _task) = kubespec::kubelet::start(
        client.clone(),
        cluster.clock().clone(),
        config,
        stop.clone(),
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    // Barrier: the kubelet has looked for its Node twice (and found none).
    let mut lookups = handle.node_lookups();
    cluster
        .clock()
        .timeout(minutes(10), lookups.wait_for(|n| *n >= 2))
        .await
        .expect("the kubelet looks for its Node twice within 10 minutes (cluster time)")
        .expect("the kubelet runs");
    assert!(
        nodes.get_opt("pre-made").await.unwrap().is_none(),
        "the kubelet must not register the node itself"
    );
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "pre-made"}})).unwrap(),
        )
        .await
        .unwrap();
    waits
        .until(minutes(10), "the kubelet to take the node over", |s| {
            let n = serde_json::to_value(seen::node(s, "pre-made")).unwrap();
            if n["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.0-kubespec"
                && n["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            {
                Ok(())
            } else {
                Err(n["status"].to_string())
            }
        })
        .await;
    // Events are recorded after the status they report is written: wait for them.
    waits
        .until(minutes(10), "the start-up events", |s| {
            let events = seen::events(s, "default", "pre-made");
            let expected = [
                "Starting: Starting kubelet.",
                "NodeHasSufficientMemory: Node pre-made status is now: NodeHasSufficientMemory",
                "NodeReady: Node pre-made status is now: NodeReady",
            ];
            if expected.iter().all(|r| events.iter().any(|e| e == r)) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        })
        .await;
    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

//! The overlay pod network (`KubeletConfig::overlay`): kubelets that announce pod ranges of
//! their own and carry their pods' TCP to other nodes' pods through tunnels between them. Here
//! the nodes share the machine's loopback, so the direct path would work too: what shows the
//! tunnel is a node whose kubelet will not carry it (another token), whose pods the direct path
//! would reach.

use std::sync::Arc;

use kubespec::kubelet::{overlay, KubeletConfig};
use kubespec::netfilter::Netfilter;
use tokio_util::sync::CancellationToken;

use super::*;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";
const TOKEN: &str = "overlay-test-token";

/// Start a kubelet for `name` with the overlay on, pod IPs from `127.<a>.1.x` (`a` above the
/// 10 to 250 that embedded nodes pick from, so that no other node hands out these IPs), and
/// `token`; returns its node's kernel (routes and Service rules).
fn overlay_kubelet(
    cluster: &kubespec::cluster::RunningCluster,
    name: &str,
    a: u8,
    token: &str,
    stop: &CancellationToken,
) -> Arc<Netfilter> {
    let mut config = KubeletConfig::new(name);
    config.pod_cidr = [127, a, 1];
    config.overlay = true;
    config.auth_token = Some(token.into());
    config.registry = cluster.registry().clone();
    let netfilter = config.netfilter.clone();
    let client = kubespec::cluster::client_as(&cluster.url(), "kubelet").unwrap();
    drop(kubespec::kubelet::start(
        client,
        cluster.clock().clone(),
        config,
        stop.child_token(),
    ));
    netfilter
}

/// Poll `check` (every 50 ms of wall time) until it holds, for at most `within` of wall time;
/// then fail with `what` and what it last saw.
async fn poll<T, Fut>(within: Duration, what: &str, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let saw = match check().await {
            Ok(v) => return v,
            Err(saw) => saw,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?}: expected {what}\nlast seen: {saw}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status line a kubelet's server answers a tunnel request to `to` with.
async fn tunnel_status(
    kubelet: std::net::SocketAddr,
    to: &str,
    token: Option<&str>,
    upgrade: bool,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(kubelet).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let upgrade = if upgrade {
        "Connection: Upgrade\r\nUpgrade: kubespec-tunnel\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET {}?to={to} HTTP/1.1\r\nHost: {kubelet}\r\n{upgrade}{auth}\r\n",
        overlay::TUNNEL_PATH
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the kubelet answers within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.lines().next().unwrap_or_default().to_string()
}

/// Pod `name` (agnhost netexec, HTTP on 8080 and UDP on 8081) on `node`.
async fn netexec_on(client: &Client, name: &str, node: &str) {
    create_pod(
        client,
        json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {
            "nodeName": node, "containers": [{"name": "netexec", "image": AGNHOST,
                "args": ["netexec", "--http-port=8080", "--udp-port=8081"]}]}}),
    )
    .await;
}

/// Pod `name`'s IP once its first container runs; else its status.
fn running_ip(s: &State, name: &str) -> Result<String, String> {
    running(s, name)?;
    let p = seen::pod_json(s, name);
    p["status"]["podIP"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| p["status"].to_string())
}

#[tokio::test]
async fn pods_reach_other_nodes_pods_through_the_tunnel_of_the_node_they_are_on() {
    // node-1 is an embedded node as every other test's: no overlay.
    let cluster = cluster()
        .time_scale(20.0)
        .nodes(1)
        .kubelet_token(TOKEN)
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let stop = CancellationToken::new();
    let node_a = overlay_kubelet(&cluster, "node-a", 251, TOKEN, &stop);
    overlay_kubelet(&cluster, "node-b", 252, TOKEN, &stop);
    // node-c's kubelet wants another token: node-a's tunnels to it are refused.
    overlay_kubelet(&cluster, "node-c", 253, "another-token", &stop);
    tokio::spawn(kubespec::proxy::run(
        kubespec::cluster::client_as(&cluster.url(), kubespec::proxy::COMPONENT).unwrap(),
        cluster.clock().clone(),
        kubespec::proxy::ProxyConfig::new("node-a"),
        Arc::new(node_a.clone()),
        stop.child_token(),
    ));

    // Each overlay node announces its range; the embedded one announces none.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for (node, range) in [
        ("node-a", Some("127.251.0.0/16")),
        ("node-b", Some("127.252.0.0/16")),
        ("node-c", Some("127.253.0.0/16")),
        ("node-1", None),
    ] {
        let announced = poll(
            Duration::from_secs(30),
            &format!("{node} registered"),
            || async {
                let n = nodes.get(node).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(
                    n.metadata
                        .annotations
                        .unwrap_or_default()
                        .get(overlay::ANNOTATION)
                        .cloned(),
                )
            },
        )
        .await;
        assert_eq!(
            announced.as_deref(),
            range,
            "{node}'s {}",
            overlay::ANNOTATION
        );
    }

    netexec_on(&client, "netexec-b", "node-b").await;
    netexec_on(&client, "netexec-c", "node-c").await;
    netexec_on(&client, "netexec-1", "node-1").await;
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web-b"},
        "spec": {"selector": {"app": "netexec-b"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    .unwrap();
    let service_ip = services
        .create(&Default::default(), &service)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap();
    let mut ips = Vec::new();
    for name in ["netexec-b", "netexec-c", "netexec-1"] {
        ips.push(
            waits
                .until(minutes(10), &format!("{name} running"), |s| {
                    running_ip(s, name)
                })
                .await,
        );
    }
    let [b, c, one] = [&ips[0], &ips[1], &ips[2]];
    assert!(
        b.starts_with("127.252.") && c.starts_with("127.253."),
        "{ips:?}"
    );
    // node-a routes node-b's and node-c's ranges through their kubelets, and kube-proxy sent
    // the Service to netexec-b: a positive barrier before the client runs.
    poll(
        Duration::from_secs(30),
        "node-a's routes and Service rule",
        || async {
            let routes: Vec<String> = node_a
                .routes()
                .routes
                .iter()
                .map(|r| format!("{} {}", r.node, r.pods))
                .collect();
            let endpoint = format!("{b}:8080");
            let rule = node_a
                .ruleset()
                .rules
                .iter()
                .any(|r| r.endpoints.iter().any(|e| e.to_string() == endpoint));
            if routes == ["node-b 127.252.0.0/16", "node-c 127.253.0.0/16"] && rule {
                Ok(())
            } else {
                Err(format!("routes {routes:?}, service rule {rule}"))
            }
        },
    )
    .await;

    let script = format!(
        "wget -T 5 -q -O - http://{b}:8080/clientip | cut -d: -f1
         wget -T 5 -q -O - http://{b}:8080/hostname; echo
         wget -T 5 -q -O - http://{b}:8079/; echo refused=$?
         wget -T 5 -q -O - http://{service_ip}/clientip | cut -d: -f1
         echo hostname | nc -u -w 1 {b} 8081; echo udp=$?
         wget -T 5 -q -O - http://{one}:8080/hostname; echo
         wget -T 5 -q -O - http://{c}:8080/hostname; echo lost=$?"
    );
    create_pod(
        &client,
        json!({"metadata": {"name": "client"}, "spec": {"restartPolicy": "Never",
            "nodeName": "node-a",
            "containers": [{"name": "client", "image": "busybox:1.36",
                "command": ["sh", "-c", script]}]}}),
    )
    .await;
    waits
        .until(minutes(10), "client Succeeded", |s| {
            in_phase(s, "client", "Succeeded").map(|_| ())
        })
        .await;
    let client_ip = waits
        .read(|s| seen::pod_json(s, "client")["status"]["podIP"].clone())
        .as_str()
        .map(String::from)
        .unwrap();
    assert!(client_ip.starts_with("127.251."), "{client_ip}");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let log = pods.logs("client", &Default::default()).await.unwrap();
    assert_eq!(
        log,
        format!(
            // netexec-b sees the client's own IP, as pods see each other without NAT.
            "{client_ip}\nnetexec-b\n\
             wget: can't connect to remote host ({b}): Connection refused\nrefused=1\n\
             {client_ip}\n\
             udp=0\n\
             netexec-1\n\
             wget: download timed out\nlost=1\n"
        )
    );

    // The tunnel's far end reaches only its own node's pods, for clients with the token, and
    // there is none where the overlay is off.
    let kubelet_of = |node: &'static str| {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get(node).await.unwrap();
            let status = n.status.unwrap();
            let ip = status
                .addresses
                .unwrap()
                .into_iter()
                .find(|a| a.type_ == "InternalIP")
                .unwrap()
                .address;
            let port = status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port;
            std::net::SocketAddr::new(ip.parse().unwrap(), u16::try_from(port).unwrap())
        }
    };
    let kubelet_b = kubelet_of("node-b").await;
    let kubelet_1 = kubelet_of("node-1").await;
    for (kubelet, to, token, upgrade, expected) in [
        (
            kubelet_b,
            format!("{b}:8080"),
            Some(TOKEN),
            true,
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            kubelet_b,
            format!("{b}:8079"),
            Some(TOKEN),
            true,
            "HTTP/1.1 502 Bad Gateway",
        ),
        (
            kubelet_b,
            format!("{one}:8080"),
            Some(TOKEN),
            true,
            "HTTP/1.1 403 Forbidden",
        ),
        (
            kubelet_b,
            format!("{client_ip}:8080"),
            Some(TOKEN),
            true,
            "HTTP/1.1 403 Forbidden",
        ),
        (
            kubelet_b,
            format!("{b}:8080"),
            None,
            true,
            "HTTP/1.1 401 Unauthorized",
        ),
        (
            kubelet_b,
            format!("{b}:8080"),
            Some(TOKEN),
            false,
            "HTTP/1.1 400 Bad Request",
        ),
        (
            kubelet_1,
            format!("{one}:8080"),
            Some(TOKEN),
            true,
            "HTTP/1.1 404 Not Found",
        ),
    ] {
        assert_eq!(
            tunnel_status(kubelet, &to, token, upgrade).await,
            expected,
            "a tunnel to {to} through {kubelet} (token {token:?}, upgrade {upgrade})"
        );
    }

    stop.cancel();
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

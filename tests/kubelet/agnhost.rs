//! The e2e images as upstream's e2e tests use them: agnhost's `netexec` (`/dial` between pods,
//! request lines in its log that lifecycle-hook tests look for, `/healthz` tied to its UDP
//! server), `pause` and `entrypoint-tester` (`/agnhost-2`), and the httpd "webserver" image.

use super::*;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/// Pod `name`'s IP once its first container runs; else its status.
fn running_ip(s: &State, name: &str) -> Result<String, String> {
    running(s, name)?;
    let p = seen::pod_json(s, name);
    p["status"]["podIP"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| p["status"].to_string())
}

/// Whether pod `name` has condition Ready True; else its conditions.
fn ready(s: &State, name: &str) -> Result<(), String> {
    let p = seen::pod_json(s, name);
    let conditions = p["status"]["conditions"].clone();
    let is_ready = conditions
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if is_ready {
        Ok(())
    } else {
        Err(conditions.to_string())
    }
}

/// One HTTP/1.0 GET from the test to `ip:port`: (status, body), or why it failed. Bounded by
/// 10 s of wall time.
async fn http_get(ip: &str, port: u16, target: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect((ip, port))
            .await
            .map_err(|e| format!("connect {ip}:{port}: {e}"))?;
        s.write_all(format!("GET {target} HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text)
            .await
            .map_err(|e| e.to_string())?;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not HTTP: {text:?}"))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((status, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("GET {target} from {ip}:{port} timed out"))?
}

#[tokio::test]
async fn netexec_dials_another_netexec_and_answers_with_its_hostname() {
    let (cluster, client, waits) = one_node().await;
    for name in ["netexec-server", "netexec-client"] {
        create_pod(
            &client,
            json!({"metadata": {"name": name}, "spec": {"containers": [{
                "name": "netexec", "image": AGNHOST, "args": ["netexec", "--http-port=8080", "--udp-port=8081"]}]}}),
        )
        .await;
    }
    let server = waits
        .until(minutes(10), "the server running", |s| {
            running_ip(s, "netexec-server")
        })
        .await;
    let client_ip = waits
        .until(minutes(10), "the client running", |s| {
            running_ip(s, "netexec-client")
        })
        .await;
    // As NetworkingTestConfig's DialFromContainer asks a test pod to dial an endpoint.
    for protocol in ["http", "udp"] {
        let (port, request) = if protocol == "http" {
            (8080, "hostName")
        } else {
            (8081, "hostname")
        };
        let target = format!(
            "/dial?request={request}&protocol={protocol}&host={server}&port={port}&tries=1"
        );
        let body = waits
            .until_async(minutes(2), "the dial to answer", || async {
                match http_get(&client_ip, 8080, &target).await? {
                    (200, body) if body.contains("responses") => Ok(body),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        assert_eq!(
            body, "{\"responses\":[\"netexec-server\"]}",
            "dial over {protocol}"
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn a_post_start_http_hook_shows_in_the_netexec_log_it_reached() {
    let (cluster, client, waits) = one_node().await;
    let pods = create_pod(
        &client,
        json!({"metadata": {"name": "pod-handle-http-request"}, "spec": {"containers": [{
            "name": "agnhost-container", "image": AGNHOST, "args": ["netexec", "--http-port=8080"]}]}}),
    )
    .await;
    let target = waits
        .until(minutes(10), "the hook target running", |s| {
            running_ip(s, "pod-handle-http-request")
        })
        .await;
    // lifecycle_hook.go's "should execute poststart http hook properly".
    create_pod(
        &client,
        json!({"metadata": {"name": "pod-with-poststart-http-hook"}, "spec": {"containers": [{
            "name": "pod-with-poststart-http-hook", "image": AGNHOST,
            "lifecycle": {"postStart": {"httpGet": {"path": "/echo?msg=poststart", "host": target, "port": 8080}}}}]}}),
    )
    .await;
    waits
        .until(minutes(10), "the hooked pod running", |s| {
            running(s, "pod-with-poststart-http-hook")
        })
        .await;
    let log = waits
        .until_async(
            minutes(2),
            "the hook's request in the target's log",
            || async {
                let log = pods
                    .logs("pod-handle-http-request", &Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                if regex::Regex::new(r"GET /echo\?msg=poststart")
                    .map_err(|e| e.to_string())?
                    .is_match(&log)
                {
                    Ok(log)
                } else {
                    Err(log)
                }
            },
        )
        .await;
    // Go's log lines go through klog, one line per request.
    let line = log
        .lines()
        .find(|l| l.contains("GET /echo?msg=poststart"))
        .unwrap_or_default();
    assert!(
        regex::Regex::new(
            r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +1 log\.go:\d+\] GET /echo\?msg=poststart&code=$"
        )
        .unwrap()
        .is_match(line),
        "{log}"
    );
    assert!(
        log.contains("] Started HTTP server on port 8080\n")
            && log.contains("] Started UDP server on port  8081\n"),
        "{log}"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn agnhost_pause_and_entrypoint_tester_print_what_containers_go_checks() {
    let (cluster, client, waits) = one_node().await;
    // containers.go: "should use the image defaults" and "override all".
    let pods = create_pod(
        &client,
        json!({"metadata": {"name": "defaults"}, "spec": {"containers": [{"name": "agnhost", "image": AGNHOST}]}}),
    )
    .await;
    create_pod(
        &client,
        json!({"metadata": {"name": "override-all"}, "spec": {"restartPolicy": "Never", "containers": [{
            "name": "agnhost", "image": AGNHOST, "command": ["/agnhost-2"],
            "args": ["entrypoint-tester", "override", "arguments"]}]}}),
    )
    .await;
    waits
        .until(minutes(10), "override-all to succeed", |s| {
            in_phase(s, "override-all", "Succeeded")
        })
        .await;
    assert_eq!(
        pods.logs("override-all", &Default::default())
            .await
            .unwrap(),
        "[/agnhost-2 entrypoint-tester override arguments]\n"
    );
    waits
        .until(minutes(10), "defaults running", |s| running(s, "defaults"))
        .await;
    let log = waits
        .until_async(minutes(2), "Paused in the log", || async {
            let log = pods
                .logs("defaults", &Default::default())
                .await
                .map_err(|e| e.to_string())?;
            if log.is_empty() {
                Err(log)
            } else {
                Ok(log)
            }
        })
        .await;
    assert_eq!(log, "Paused\n");
    // pause/pause.go exits 2 on SIGTERM.
    pods.delete("defaults", &DeleteParams::default())
        .await
        .unwrap();
    // The terminated status may be followed by the pod's removal at once: look through every
    // version of the pod the watch delivered, not only the latest.
    let code = waits
        .until(minutes(10), "defaults terminated", |s| {
            s.entries
                .iter()
                .filter(|e| e.key.kind == Kind::Pod && e.key.name == "defaults")
                .filter_map(|e| match e.object.as_deref() {
                    Some(Object::Pod(p)) => {
                        container_status(p)["state"]["terminated"]["exitCode"].as_i64()
                    }
                    _ => None,
                })
                .next()
                .ok_or_else(|| seen::container_status(s, "defaults").to_string())
        })
        .await;
    assert_eq!(code, 2);
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn netexec_healthz_waits_for_its_udp_server() {
    let (cluster, client, waits) = one_node().await;
    for (name, udp) in [("with-udp", "8081"), ("without-udp", "-1")] {
        create_pod(
            &client,
            json!({"metadata": {"name": name}, "spec": {"containers": [{
                "name": "netexec", "image": AGNHOST,
                "args": ["netexec", "--http-port=8083", format!("--udp-port={udp}")],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8083}, "periodSeconds": 1}}]}}),
        )
        .await;
    }
    waits
        .until(minutes(10), "with-udp ready", |s| ready(s, "with-udp"))
        .await;
    waits
        .until(
            minutes(10),
            "without-udp failing its readiness probe with 412",
            |s| {
                let events = seen::events(s, "default", "without-udp");
                if events.iter().any(|e| {
                    e.contains("Readiness probe failed: HTTP probe failed with statuscode: 412")
                }) {
                    Ok(())
                } else {
                    Err(format!("{events:?}"))
                }
            },
        )
        .await;
    assert!(
        waits.read(|s| ready(s, "without-udp")).is_err(),
        "a netexec without its UDP server is never ready"
    );
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

#[tokio::test]
async fn an_httpd_deployment_becomes_ready_and_serves_it_works() {
    let (cluster, client, waits) = one_node().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    deployments
        .create(
            &PostParams::default(),
            &support::deployment(
                "webserver",
                2,
                "registry.k8s.io/e2e-test-images/httpd:2.4.38-4",
            ),
        )
        .await
        .unwrap();
    waits
        .until(minutes(10), "2 available replicas", |s| {
            let d = seen::deployment(s, "webserver").ok_or("no deployment yet")?;
            let status = d.status.clone().unwrap_or_default();
            if status.available_replicas == Some(2) {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        })
        .await;
    let ips: Vec<String> = waits.read(|s| {
        seen::pods_of(s, "webserver")
            .iter()
            .filter_map(|p| p.status.as_ref().and_then(|st| st.pod_ip.clone()))
            .collect()
    });
    assert_eq!(ips.len(), 2, "{ips:?}");
    for ip in ips {
        let (status, body) = http_get(&ip, 80, "/").await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (200, "<html><body><h1>It works!</h1></body></html>\n")
        );
    }
    cluster
        .stop(std::time::Duration::from_secs(10))
        .await
        .expect("the cluster stops");
}

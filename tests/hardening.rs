//! Hostile input cannot crash, hang or exhaust the reference cluster, and gets upstream's
//! answers: JSON patches that multiply an object, durations at the edge of int64, over-deep YAML,
//! oversized ConfigMaps, malformed and negative quantities, server-side apply edge cases, a Node
//! that names someone else's address as its kubelet, and a pod whose toleration outlives time.

mod support;

use std::time::Duration;

use http::{Method, Request};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubespec::cluster::Elected;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use support::{cluster, minutes, seen, Waits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    code: u16,
    body: Value,
}

async fn send(client: &kube::Client, method: Method, path: &str, ct: &str, body: Vec<u8>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct)
        .body(body)
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("the apiserver answers (it must not drop the connection)");
    let code = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        code,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get(client: &kube::Client, path: &str) -> Reply {
    send(client, Method::GET, path, "application/json", Vec::new()).await
}

async fn delete(client: &kube::Client, path: &str) -> Reply {
    send(client, Method::DELETE, path, "application/json", Vec::new()).await
}

async fn post(client: &kube::Client, path: &str, body: Value) -> Reply {
    json(client, Method::POST, path, "application/json", body).await
}

async fn patch(client: &kube::Client, path: &str, content_type: &str, body: Value) -> Reply {
    json(client, Method::PATCH, path, content_type, body).await
}

async fn json(client: &kube::Client, method: Method, path: &str, ct: &str, body: Value) -> Reply {
    send(client, method, path, ct, serde_json::to_vec(&body).unwrap()).await
}

fn assert_status(reply: &Reply, code: u16, reason: &str, message: &str) {
    assert_eq!(reply.code, code, "HTTP code; body: {}", reply.body);
    assert_eq!(reply.body["kind"], "Status", "{}", reply.body);
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
    let got = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        got.contains(message),
        "message {got:?} should contain {message:?}"
    );
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn json_patches_cannot_multiply_an_object_or_run_forever() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"},
        "data": {"a": "x".repeat(2048)}});
    assert_eq!(post(&client, CONFIGMAPS, cm).await.code, 201);
    // Each copy doubles `data`: 25 of them would ask for 64 GiB. Upstream stops the copies at
    // 3 MiB and answers a bare 422.
    let ops: Vec<Value> = (0..25)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/k{i}")}))
        .collect();
    let r = patch(
        &client,
        &format!("{CONFIGMAPS}/seed"),
        "application/json-patch+json",
        json!(ops),
    )
    .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    // Nothing was written, and the server goes on.
    let r = get(&client, &format!("{CONFIGMAPS}/seed")).await;
    assert_eq!(
        r.body["data"].as_object().map(|d| d.len()),
        Some(1),
        "{}",
        r.body
    );
    // Too many operations: 413 with upstream's words.
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "ConfigMap"}))
        .collect();
    let r = patch(
        &client,
        &format!("{CONFIGMAPS}/seed"),
        "application/json-patch+json",
        json!(ops),
    )
    .await;
    assert_status(&r, 413, "RequestEntityTooLarge", "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001");
    // A patch within the limits still applies.
    let ops = json!([{"op": "copy", "from": "/data/a", "path": "/data/b"}]);
    let r = patch(
        &client,
        &format!("{CONFIGMAPS}/seed"),
        "application/json-patch+json",
        ops,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["data"]["b"], r.body["data"]["a"]);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn durations_at_the_edge_of_int64_are_answered_not_crashed_on() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    // activeDeadlineSeconds: upstream's bounds, upstream's words.
    let bad = pod(
        "ads",
        json!({"activeDeadlineSeconds": i64::MAX, "containers": [{"name": "app", "image": "nginx"}]}),
    );
    let r = post(&client, PODS, bad).await;
    assert_status(&r, 422, "Invalid", "Pod \"ads\" is invalid: spec.activeDeadlineSeconds: Invalid value: 9223372036854775807: must be between 1 and 2147483647, inclusive");
    let template = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
        "spec": {"activeDeadlineSeconds": 30, "containers": [{"name": "app", "image": "nginx"}]}}}});
    let r = post(
        &client,
        "/apis/apps/v1/namespaces/default/deployments",
        template,
    )
    .await;
    assert_status(&r, 422, "Invalid", "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported");

    // A grace period past the end of time: marked with the latest timestamp, still deletable.
    let bound = pod(
        "long-grace",
        json!({"nodeName": "node-x", "containers": [{"name": "app", "image": "nginx"}]}),
    );
    assert_eq!(post(&client, PODS, bound).await.code, 201);
    let r = json(&client, Method::DELETE, &format!("{PODS}/long-grace"), "application/json",
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 9_000_000_000_000i64})).await;
    assert!(r.code == 200 || r.code == 202, "{}: {}", r.code, r.body);
    assert_eq!(
        r.body["metadata"]["deletionTimestamp"], "9999-12-31T23:59:59Z",
        "{}",
        r.body
    );
    let r = delete(&client, &format!("{PODS}/long-grace?gracePeriodSeconds=0")).await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = get(&client, &format!("{PODS}/long-grace")).await;
    assert_eq!(r.code, 404, "{}", r.body);

    // A watch timeout no int64 holds is a 400; the largest one is a watch that stays open.
    let r = get(
        &client,
        &format!("{PODS}?watch=true&timeoutSeconds=18446744073709551615"),
    )
    .await;
    assert_status(&r, 400, "BadRequest", "timeoutSeconds");
    let request = Request::get(format!(
        "/api/v1/namespaces?watch=true&timeoutSeconds={}",
        i64::MAX
    ))
    .body(kube::client::Body::empty())
    .unwrap();
    let response = client.send(request).await.expect("the watch is served");
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the watch sends the initial events")
        .expect("a frame")
        .expect("not an error");
    let text = String::from_utf8_lossy(first.data_ref().expect("data"));
    assert!(text.contains("\"ADDED\""), "{text}");
    drop(body);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn quantities_are_checked_at_the_api() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let with_cpu = |name: &str, cpu: &str| {
        pod(
            name,
            json!({"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}),
        )
    };
    let r = post(&client, PODS, with_cpu("abc", "abc")).await;
    assert_status(&r, 400, "BadRequest", "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
    let r = post(&client, PODS, with_cpu("negative", "-1000")).await;
    assert_status(&r, 422, "Invalid", "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1k\": must be greater than or equal to 0");
    let r = post(&client, PODS, with_cpu("fine", "250m")).await;
    assert_eq!(r.code, 201, "{}", r.body);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn configmaps_hold_at_most_a_mebibyte_and_deep_yaml_is_refused_early() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"a": "x".repeat(1024 * 1024), "b": "y"}});
    let r = post(&client, CONFIGMAPS, big).await;
    assert_status(
        &r,
        422,
        "Invalid",
        "ConfigMap \"big\" is invalid: []: Too long: may not be more than 1048576 bytes",
    );
    let fits = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fits"},
        "data": {"a": "x".repeat(1024 * 1024 - 16)}});
    assert_eq!(post(&client, CONFIGMAPS, fits).await.code, 201);

    // 100,000 levels of flow nesting: refused before the parser spends quadratic time on it.
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let started = std::time::Instant::now();
    let r = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        "application/yaml",
        deep.clone().into_bytes(),
    )
    .await;
    assert_status(&r, 400, "BadRequest", "exceeded max depth of 1000");
    let r = send(
        &client,
        Method::PATCH,
        &format!("{CONFIGMAPS}/deep?fieldManager=t"),
        "application/apply-patch+yaml",
        deep.into_bytes(),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "error decoding YAML: yaml: exceeded max depth of 1000",
    );
    tracing::info!(elapsed = ?started.elapsed(), "deep YAML refused");
    // Ordinary YAML still decodes.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain # a comment with [ and {\ndata:\n  list: '[not a list'\n";
    let r = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        "application/yaml",
        yaml.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn server_side_apply_checks_name_version_and_kind_and_forcing_moves_ownership() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let apply_as = |manager: &str, name: &str, force: bool| {
        format!(
            "{CONFIGMAPS}/{name}?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        )
    };
    let apply = |name: &str, force: bool| apply_as("alice", name, force);
    let ct = "application/apply-patch+yaml";
    let cm = |name: &str, value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}});
    let r = json(
        &client,
        Method::PATCH,
        &apply("web", false),
        ct,
        cm("web", "1"),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let rv = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let r = json(
        &client,
        Method::PATCH,
        &apply("web", false),
        ct,
        cm("other", "2"),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "the name of the object (other) does not match the name on the URL (web)",
    );
    let wrong = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web"}});
    let r = json(&client, Method::PATCH, &apply("web", false), ct, wrong).await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "invalid object type: /v1, Kind=Secret",
    );

    // bob takes data.k by force; an apply that still names the old resourceVersion is a
    // conflict.
    let r = json(
        &client,
        Method::PATCH,
        &apply_as("bob", "web", true),
        ct,
        cm("web", "bob"),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let mut stale = cm("web", "3");
    stale["metadata"]["resourceVersion"] = json!(rv);
    let r = json(&client, Method::PATCH, &apply("web", true), ct, stale).await;
    assert_status(&r, 409, "Conflict", "Operation cannot be fulfilled on configmaps \"web\": the object has been modified; please apply your changes to the latest version and try again");

    // bob owns data.k now; alice forces it back and bob no longer owns it.
    let r = json(
        &client,
        Method::PATCH,
        &apply("web", false),
        ct,
        cm("web", "4"),
    )
    .await;
    assert_eq!(r.code, 409, "{}", r.body);
    let r = json(
        &client,
        Method::PATCH,
        &apply("web", true),
        ct,
        cm("web", "4"),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let managers = r.body["metadata"]["managedFields"].as_array().unwrap();
    let bob_owns_k = managers
        .iter()
        .any(|m| m["manager"] == "bob" && m["fieldsV1"]["f:data"]["f:k"].is_object());
    assert!(!bob_owns_k, "{managers:?}");
    let alice_owns_k = managers
        .iter()
        .any(|m| m["manager"] == "alice" && m["fieldsV1"]["f:data"]["f:k"].is_object());
    assert!(alice_owns_k, "{managers:?}");
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_body_that_never_arrives_is_given_up_on() {
    let cluster = cluster()
        .apiserver_only()
        .request_timeout(Duration::from_millis(500))
        .start()
        .await;
    let mut tcp = tokio::net::TcpStream::connect(cluster.addr())
        .await
        .unwrap();
    // Headers promise 100 bytes; 10 come, then nothing.
    tcp.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"kind\": \"")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") || !answer.ends_with(b"}") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the apiserver answers instead of waiting for ever"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(
        text.contains("Timeout: request did not complete within the allotted timeout"),
        "{text}"
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

/// A server on loopback that records every request head it receives and answers with the whole
/// HTTP response `answer` makes of it.
async fn fake_kubelet<F, Fut>(answer: F) -> (u16, Arc<Mutex<Vec<String>>>)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (s, answer) = (s.clone(), answer.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                s.lock().push(head.clone());
                let _ = tcp.write_all(&answer(head).await).await;
            });
        }
    });
    (port, seen)
}

/// A server that records every request head it receives and answers `body` with 200.
async fn impostor(body: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    fake_kubelet(move |_| async move {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
    .await
}

/// A Node (pointing at `port` on loopback) and a running pod on it, written through the API.
async fn node_and_running_pod(client: &kube::Client, port: u16) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "impostor"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(pod(
        "victim",
        json!({"nodeName": "impostor", "containers": [{"name": "app", "image": "nginx"}]}),
    ))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let status = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": true,
        "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    pods.patch_status("victim", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_kubelet_token_only_goes_to_the_clusters_own_kubelets() {
    let cluster = cluster()
        .apiserver_only()
        .kubelet_token("s3cret-kubelet-token")
        .start()
        .await;
    let client = cluster.client().unwrap();
    let (port, seen) = impostor("not a proof").await;
    node_and_running_pod(&client, port).await;
    let r = get(&client, &format!("{PODS}/victim/log")).await;
    assert_status(
        &r,
        500,
        "InternalError",
        "is not the cluster's kubelet for that node; refusing to send it credentials",
    );
    let heads = seen.lock().clone();
    assert!(
        !heads.is_empty(),
        "the apiserver challenged the address first"
    );
    assert!(heads.iter().all(|h| !h.contains("s3cret")), "{heads:?}");
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn forwarded_log_parameters_are_encoded_not_spliced() {
    let cluster = cluster().apiserver_only().start().await;
    let client = cluster.client().unwrap();
    let (port, seen) = impostor("a log line\n").await;
    node_and_running_pod(&client, port).await;
    // A parameter that smuggles another one is not a number: upstream's decoding refuses it
    // before any kubelet is asked.
    let r = get(
        &client,
        &format!("{PODS}/victim/log?tailLines=1%26follow%3Dtrue"),
    )
    .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "strconv.ParseInt: parsing \"1&follow=true\": invalid syntax",
    );
    assert!(seen.lock().is_empty(), "no kubelet was asked");
    // What is forwarded is re-encoded from the decoded values (Go's url.Values order).
    let r = get(
        &client,
        &format!("{PODS}/victim/log?tailLines=%2B1&timestamps=TRUE&limitBytes=07&junk=x%26y"),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let heads = seen.lock().clone();
    let request_line = heads[0].lines().next().unwrap_or_default().to_string();
    assert_eq!(
        request_line,
        "GET /containerLogs/default/victim/app?limitBytes=7&tailLines=1&timestamps=true HTTP/1.1"
    );
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_toleration_that_outlives_time_does_not_stop_the_controller_manager() {
    // 20x: ten minutes of cluster time are half a minute of wall time.
    let cluster = cluster().time_scale(20.0).nodes(1).start().await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let taint = json!({"spec": {"taints": [{"key": "example.com/drain", "effect": "NoExecute"}]}});
    nodes
        .patch("node-1", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let forever = pod(
        "forever",
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}],
        "tolerations": [{"key": "example.com/drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": i64::MAX}]}),
    );
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(forever).unwrap(),
    )
    .await
    .unwrap();
    let plain = pod(
        "plain",
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]}),
    );
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(plain).unwrap(),
    )
    .await
    .unwrap();

    // The taint manager evicts the pod that does not tolerate the taint.
    let evicted = |name: &'static str| {
        move |s: &kubespec::harness::timeline::State| {
            let events = seen::events(s, "default", name);
            if events.iter().any(|e| e.starts_with("TaintManagerEviction")) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        }
    };
    waits
        .until(
            minutes(10),
            "the untolerating pod to be evicted",
            evicted("plain"),
        )
        .await;
    // Barrier: a pass of the taint manager after the one that evicted it (which saw both
    // pods) has run to its end: it evicts a pod created only now.
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod(
            "later",
            json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]}),
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    waits
        .until(
            minutes(10),
            "a later untolerating pod to be evicted",
            evicted("later"),
        )
        .await;
    // The controller-manager still works: a new Deployment gets its ReplicaSet ...
    let deployment = support::deployment("after", 1, "nginx");
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    waits
        .until(minutes(10), "a ReplicaSet for the new Deployment", |s| {
            if seen::replicasets_of(s, "after").is_empty() {
                Err("none".to_string())
            } else {
                Ok(())
            }
        })
        .await;
    // ... the pod that tolerates the taint for ever is still there, and health is good.
    let kept = pods.get("forever").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none(), "{kept:?}");
    let health = cluster.replicas(Elected::ControllerManager)[0]
        .health()
        .clone();
    assert!(health.healthy(), "{:?}", health.failures());
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

/// An impostor that passes every request (the vouch challenge) on to `real` (the node's own
/// kubelet) and returns its answer; it records what it receives.
async fn relaying_impostor(real: std::net::SocketAddr) -> (u16, Arc<Mutex<Vec<String>>>) {
    fake_kubelet(move |head| async move {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut upstream = tokio::net::TcpStream::connect(real).await.unwrap();
        upstream
            .write_all(format!("GET {path} HTTP/1.0\r\nhost: {real}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut relayed = Vec::new();
        let _ = upstream.read_to_end(&mut relayed).await;
        relayed
    })
    .await
}

#[tokio::test]
async fn a_challenge_relayed_to_the_real_kubelet_does_not_pass() {
    // Real time: the kubelet rewrites its Node's status only every 10 s.
    let cluster = cluster()
        .time_scale(1.0)
        .nodes(1)
        .kubelet_token("s3cret-kubelet-token")
        .start()
        .await;
    let client = cluster.client().unwrap();
    let waits = Waits::on(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let talker = pod(
        "talker",
        json!({"nodeName": "node-1", "restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", "echo hi; sleep 3600"]}]}),
    );
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(talker).unwrap(),
    )
    .await
    .unwrap();
    waits
        .until(Duration::from_secs(30), "the pod to run", |s| {
            let phase = seen::pod(s, "talker")
                .and_then(|p| p.status.as_ref()?.phase.clone())
                .unwrap_or_default();
            if phase == "Running" {
                Ok(())
            } else {
                Err(phase)
            }
        })
        .await;
    // Through the real kubelet, logs work.
    let r = get(&client, &format!("{PODS}/talker/log")).await;
    assert_eq!(r.code, 200, "{}", r.body);
    // Someone points node-1 at a relay in front of the real kubelet.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get_status("node-1").await.unwrap();
    let real_port = node
        .status
        .unwrap()
        .daemon_endpoints
        .unwrap()
        .kubelet_endpoint
        .unwrap()
        .port;
    let real = std::net::SocketAddr::from(([127, 0, 0, 1], u16::try_from(real_port).unwrap()));
    let (port, seen) = relaying_impostor(real).await;
    let moved = json!({"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    nodes
        .patch_status("node-1", &PatchParams::default(), &Patch::Merge(moved))
        .await
        .unwrap();
    let r = get(&client, &format!("{PODS}/talker/log")).await;
    assert_status(
        &r,
        500,
        "InternalError",
        "is not the cluster's kubelet for that node; refusing to send it credentials",
    );
    let heads = seen.lock().clone();
    assert!(
        heads.iter().any(|h| h.contains("/kubespec/vouch")),
        "the relay was challenged: {heads:?}"
    );
    assert!(heads.iter().all(|h| !h.contains("s3cret")), "{heads:?}");
    cluster.stop(Duration::from_secs(10)).await.unwrap();
}

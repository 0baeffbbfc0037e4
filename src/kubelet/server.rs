//! The kubelet's HTTP server, on the node's loopback address: `/healthz`, `/pods`, and
//! `/containerLogs/<namespace>/<pod>/<container>` (with `previous`, `tailLines`, `follow`), which
//! the apiserver proxies for `kubectl logs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// Bind and serve until `shutdown`; returns the port.
pub(super) async fn start(
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<u16> {
    let listener =
        tokio::net::TcpListener::bind((shared.config.node_ip, shared.config.port)).await?;
    let port = listener.local_addr()?.port();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            crate::k8s::kubelet_auth::PATH,
            get(move |state, query| vouch(state, query, port)),
        )
        .route("/pods", get(pods))
        .route("/metrics", get(metrics))
        .route("/metrics/probes", get(probe_metrics))
        .route("/stats/summary", get(summary))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authenticate,
        ))
        .with_state(shared);
    tokio::spawn(crate::server::serve(
        listener,
        router,
        crate::server::Limits::new(crate::server::Limits::SMALL),
        async move { shutdown.cancelled().await },
    ));
    Ok(port)
}

/// With a token configured, everything but `/healthz` needs it as a bearer token.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &shared.config.auth_token {
        let presented = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let open = ["/healthz", crate::k8s::kubelet_auth::PATH].contains(&request.uri().path());
        if !open && presented != Some(token.as_str()) {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
    }
    next.run(request).await
}

/// Prove to the apiserver that this is the node's kubelet (it holds the token), before the
/// apiserver sends the token here.
async fn vouch(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    port: u16,
) -> Response {
    let (Some(token), Some(challenge)) = (&shared.config.auth_token, query.get("challenge")) else {
        return (StatusCode::NOT_FOUND, "no kubelet token is configured").into_response();
    };
    // Signed with this kubelet's own address, the one its Node advertises.
    let address = std::net::SocketAddr::new(shared.config.node_ip, port);
    crate::k8s::kubelet_auth::answer(token, &shared.config.node_name, address, challenge)
        .into_response()
}

async fn pods(State(shared): State<Arc<Shared>>) -> Response {
    let items: Vec<serde_json::Value> = shared
        .pod_objects
        .lock()
        .values()
        .map(|p| serde_json::to_value(p.as_ref()).unwrap_or_default())
        .collect();
    let list =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    ([("content-type", "application/json")], list.to_string()).into_response()
}

const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Memory the simulator accounts to a running container, by image (bytes).
fn simulated_memory(image: &str) -> u64 {
    match image
        .rsplit('/')
        .next()
        .unwrap_or(image)
        .split(':')
        .next()
        .unwrap_or_default()
    {
        "pause" => 360_448,
        "busybox" => 430_080,
        "nginx" => 3_072_000,
        "agnhost" => 7_340_032,
        _ => 1_048_576,
    }
}

/// Running pods and containers as the kubelet's own metrics report them.
fn running(
    shared: &Shared,
) -> (
    usize,
    Vec<(Arc<k8s_openapi::api::core::v1::Pod>, Vec<(String, String)>)>,
) {
    let pods: Vec<Arc<k8s_openapi::api::core::v1::Pod>> =
        shared.pod_objects.lock().values().cloned().collect();
    let mut out = Vec::new();
    let mut running_pods = 0;
    for pod in pods {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let logs = shared.logs.lock();
        let containers: Vec<(String, String)> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter_map(|c| {
                let (id, _) = logs.get(&(uid.clone(), c.name.clone()))?;
                let id = id.as_ref()?;
                matches!(
                    shared.runtime.state(id),
                    Some(super::runtime::ProcessState::Running { .. })
                )
                .then(|| (c.name.clone(), c.image.clone().unwrap_or_default()))
            })
            .collect();
        drop(logs);
        if !containers.is_empty() {
            running_pods += 1;
        }
        out.push((pod, containers));
    }
    (running_pods, out)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let (pods, detail) = running(&shared);
    let containers: usize = detail.iter().map(|(_, c)| c.len()).sum();
    let body = format!(
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n# TYPE kubelet_running_pods gauge\nkubelet_running_pods {pods}\n\
         # HELP kubelet_running_containers [ALPHA] Number of containers currently running\n# TYPE kubelet_running_containers gauge\nkubelet_running_containers{{container_state=\"running\"}} {containers}\n\
         # HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.\n# TYPE kubelet_node_name gauge\nkubelet_node_name{{node=\"{}\"}} 1\n",
        shared.config.node_name
    );
    ([("content-type", PROMETHEUS)], body).into_response()
}

async fn probe_metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut body = String::from("# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.\n# TYPE prober_probe_total counter\n");
    for ((ns, pod, uid, container, probe_type, result), n) in shared.probe_counts.lock().iter() {
        body.push_str(&format!(
            "prober_probe_total{{container=\"{container}\",namespace=\"{ns}\",pod=\"{pod}\",pod_uid=\"{uid}\",probe_type=\"{probe_type}\",result=\"{result}\"}} {n}\n"
        ));
    }
    ([("content-type", PROMETHEUS)], body).into_response()
}

async fn summary(State(shared): State<Arc<Shared>>) -> Response {
    let (_, detail) = running(&shared);
    let now = crate::clock::format_time(shared.clock.now());
    let mut node_memory = 0u64;
    let pods: Vec<serde_json::Value> = detail
        .iter()
        .map(|(pod, containers)| {
            let cs: Vec<serde_json::Value> = containers
                .iter()
                .map(|(name, image)| {
                    let mem = simulated_memory(image);
                    node_memory += mem;
                    serde_json::json!({"name": name, "startTime": now, "cpu": {"time": now, "usageNanoCores": 0, "usageCoreNanoSeconds": 0},
                        "memory": {"time": now, "workingSetBytes": mem, "usageBytes": mem, "rssBytes": mem}})
                })
                .collect();
            serde_json::json!({"podRef": {"name": pod.metadata.name, "namespace": pod.metadata.namespace, "uid": pod.metadata.uid}, "startTime": now, "containers": cs})
        })
        .collect();
    let summary = serde_json::json!({
        "node": {"nodeName": shared.config.node_name, "startTime": now,
            "cpu": {"time": now, "usageNanoCores": 0, "usageCoreNanoSeconds": 0},
            "memory": {"time": now, "workingSetBytes": node_memory, "usageBytes": node_memory}},
        "pods": pods,
    });
    ([("content-type", "application/json")], summary.to_string()).into_response()
}

fn tail(data: &[u8], lines: Option<usize>) -> Vec<u8> {
    let Some(n) = lines else { return data.to_vec() };
    let text = String::from_utf8_lossy(data);
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    all[all.len().saturating_sub(n)..].concat().into_bytes()
}

async fn container_logs(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let previous = q.get("previous").is_some_and(|v| v == "true");
    let follow = q.get("follow").is_some_and(|v| v == "true");
    let tail_lines = q.get("tailLines").and_then(|t| t.parse::<usize>().ok());
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" in pod \"{pod}\" not found"),
        )
            .into_response()
    };
    let Some((id, prev)) = shared.container_log_source(&namespace, &pod, &container) else {
        return not_found();
    };
    if previous {
        let Some(prev) = prev else {
            return not_found();
        };
        return ([("content-type", "text/plain")], tail(&prev, tail_lines)).into_response();
    }
    let Some(id) = id else {
        return not_found();
    };
    let Some((first, mut offset)) = shared.runtime.log_tail(&id, tail_lines) else {
        return not_found();
    };
    if !follow {
        return ([("content-type", "text/plain")], first).into_response();
    }
    // Follow: send the tail, then what is appended, until this container instance goes away.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let current = shared.container_log_source(&namespace, &pod, &container);
            if current.and_then(|(now, _)| now).as_deref() != Some(id.as_str()) {
                // The container was replaced or removed: its log ends here.
                return;
            }
            let Some((more, end)) = shared.runtime.log_from(&id, offset) else {
                return;
            };
            offset = end;
            if !more.is_empty() && tx.send(Ok(more)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([("content-type", "text/plain")], body).into_response()
}

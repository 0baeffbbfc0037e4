//! The kubelet's HTTP server, on the node's loopback address: `/healthz`, `/pods`,
//! `/containerLogs/<namespace>/<pod>/<container>` (with every `PodLogOptions` parameter), which
//! the apiserver proxies for `kubectl logs`, and the streaming endpoints `/exec/...`,
//! `/attach/...` (and `/portForward/...`), which it proxies for `kubectl exec`, `attach`, `cp`
//! and `port-forward` once the connection is upgraded (see `streaming`); and, with the overlay
//! network on, other nodes' tunnels to this node's pods (`overlay`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use tokio_util::sync::CancellationToken;

use super::runtime::log::Writer;
use super::streaming::{self, remotecommand, Upgrade};
use super::Shared;
use crate::k8s::go::quote;
use crate::k8s::pod_logs::PodLogOptions;

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
        .route(
            crate::netfilter::KUBELET_PATH,
            get(netfilter_rules).put(program_netfilter),
        )
        .route(super::overlay::TUNNEL_PATH, get(super::overlay::tunnel))
        .route("/metrics", get(metrics))
        .route("/metrics/probes", get(probe_metrics))
        .route("/stats/summary", get(summary))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/exec/{namespace}/{pod}/{container}", get(exec).post(exec))
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(attach).post(attach),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(port_forward).post(port_forward),
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

/// The node's Service rules, as kube-proxy last wrote them.
async fn netfilter_rules(State(shared): State<Arc<Shared>>) -> Response {
    match serde_json::to_vec(&shared.config.netfilter.ruleset()) {
        Ok(body) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Replace the node's Service rules (kube-proxy in a process of its own).
async fn program_netfilter(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<crate::netfilter::Ruleset>(&body) {
        Ok(ruleset) => {
            shared.config.netfilter.program(ruleset);
            StatusCode::OK.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("the body is not a ruleset: {e}\n"),
        )
            .into_response(),
    }
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

/// How often a follower looks for more output, or for the container's end (wall time: it is
/// the reader's latency, not a simulated behaviour).
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// A plain-text answer, as the kubelet's restful handlers write errors.
fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (code, [("content-type", "text/plain")], body.into()).into_response()
}

/// Whether the pod has a container (app, init or ephemeral) of that name.
fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.containers.iter().any(|c| c.name == name)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
}

/// The container instance whose log a request reads, from the pod's status, as upstream's
/// `validateContainerLogStatus` picks it: `previous` wants the last termination; otherwise a
/// running instance, then a terminated one, then the last termination (so a container waiting
/// in CrashLoopBackOff shows its last run), and a container that never ran says why.
fn log_container_id(
    pod: &str,
    status: &PodStatus,
    container: &str,
    previous: bool,
) -> Result<String, String> {
    let (c, p) = (quote(container), quote(pod));
    let find = |list: &Option<Vec<ContainerStatus>>| {
        list.iter().flatten().find(|s| s.name == container).cloned()
    };
    let Some(cs) = find(&status.container_statuses)
        .or_else(|| find(&status.init_container_statuses))
        .or_else(|| find(&status.ephemeral_container_statuses))
    else {
        return Err(format!("container {c} in pod {p} is not available"));
    };
    let state = cs.state.clone().unwrap_or_default();
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_id = last
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let terminated = || format!("container {c} in pod {p} is terminated");
    let id = if previous {
        last_id.ok_or_else(|| format!("previous terminated container {c} in pod {p} not found"))?
    } else if state.running.is_some() {
        cs.container_id.clone().unwrap_or_default()
    } else if let Some(t) = &state.terminated {
        match t.container_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last_id.ok_or_else(terminated)?,
        }
    } else if last.is_some() {
        last_id.ok_or_else(terminated)?
    } else if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        let why = match reason.as_str() {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            _ => reason,
        };
        return Err(format!(
            "container {c} in pod {p} is waiting to start: {why}"
        ));
    } else {
        return Err(format!(
            "container {c} in pod {p} is waiting to start - no logs yet"
        ));
    };
    // `containerd://<id>`: the runtime knows the id.
    Ok(id
        .split_once("://")
        .map_or(String::new(), |(_, id)| id.to_string()))
}

/// `/containerLogs/<namespace>/<pod>/<container>`, as upstream's kubelet answers it: the
/// options decoded and validated, the pod and container looked up, the container instance
/// chosen from the pod's status, then its log read (and followed until the instance stops).
async fn container_logs(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let first = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    // The legacy `tail` parameter stands for `tailLines` ("all" for none).
    let tail = first("tail").filter(|t| !t.is_empty());
    let get = |key: &str| match (key, tail) {
        ("tailLines", Some(t)) => (t != "all").then_some(t),
        _ => first(key),
    };
    let Ok(options) = PodLogOptions::decode(get) else {
        return text(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Unable to decode query."}"#,
        );
    };
    if !options.problems().is_empty() {
        return text(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"message": "Invalid request."}"#,
        );
    }
    let Some(pod) = shared.pod_by_name(&namespace, &pod_name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {} does not exist", quote(&pod_name)),
        );
    };
    if !has_container(&pod, &container) {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "container {} not found in pod {}",
                quote(&container),
                quote(&pod_name)
            ),
        );
    }
    if let Some(stream) = options.stream.as_deref().filter(|s| *s != "All") {
        return text(
            StatusCode::BAD_REQUEST,
            format!("unable to return the given log stream: {}. Please enable PodLogsQuerySplitStreams feature gate in kubelet", quote(stream)),
        );
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let status = shared
        .computed_status(&uid)
        .or_else(|| pod.status.clone())
        .unwrap_or_default();
    let id = match log_container_id(&pod_name, &status, &container, options.previous) {
        Ok(id) => id,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let Some(log) = shared.container_log(&uid, &container, &id) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("unable to retrieve container logs for containerd://{id}"),
        );
    };
    let mut writer = Writer::new(
        options.since(shared.clock.now()),
        options.timestamps,
        options.limit_bytes,
    );
    let tail_lines = options.tail_lines.and_then(|n| usize::try_from(n).ok());
    let (chunk, mut offset) = {
        let log = log.lock();
        log.read_from(log.tail_offset(tail_lines))
    };
    let mut first_out = Vec::new();
    let more = writer.write(&chunk, &mut first_out);
    if !options.follow || !more {
        return ([("content-type", "text/plain")], first_out).into_response();
    }
    // Follow: what is written next, until the byte limit or until the instance is no longer
    // running and everything it wrote was sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        if !first_out.is_empty() && tx.send(Ok(first_out)).await.is_err() {
            return;
        }
        let mut stopped = false;
        loop {
            let (chunk, end) = log.lock().read_from(offset);
            offset = end;
            if !chunk.is_empty() {
                let mut out = Vec::new();
                let more = writer.write(&chunk, &mut out);
                if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
                    return;
                }
                if !more {
                    return;
                }
                continue;
            }
            if stopped {
                return;
            }
            let running = matches!(
                shared.runtime.state(&id),
                Some(super::runtime::ProcessState::Running { .. })
            );
            if !running {
                // Read once more: what it wrote before it stopped.
                stopped = true;
                continue;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([("content-type", "text/plain")], body).into_response()
}

async fn exec(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    request: axum::extract::Request,
) -> Response {
    remote_command(shared, &namespace, &pod, &container, raw, request, false)
}

async fn attach(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    request: axum::extract::Request,
) -> Response {
    remote_command(shared, &namespace, &pod, &container, raw, request, true)
}

/// An exec or attach request, as upstream's kubelet answers it: the options read (400 when
/// no stream is asked for), the pod (404) and its running container (500 `container not found`)
/// looked up, the protocol negotiated (403 when none is in common), then `101 Switching
/// Protocols` and the session on the upgraded connection.
fn remote_command(
    shared: Arc<Shared>,
    namespace: &str,
    pod_name: &str,
    container: &str,
    raw: Option<String>,
    mut request: axum::extract::Request,
    attach: bool,
) -> Response {
    let pairs: Vec<(String, String)> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let (command, wants) = match remotecommand::options(&pairs) {
        Ok(options) => options,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = shared.pod_by_name(namespace, pod_name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let Some(id) = shared.running_container(&pod, container) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({})", quote(container)),
        );
    };
    let (upgrade, on_upgrade) = match take_upgrade(&mut request) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused,
    };
    let runtime = shared.runtime.clone();
    let tty = wants.tty;
    let session = move |conn: streaming::Conn| async move {
        if attach {
            remotecommand::attach(conn, runtime, id, tty).await;
        } else {
            remotecommand::exec(conn, runtime, id, command, tty).await;
        }
    };
    let unsupported = |client: &[String], server: &[&str]| {
        text(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports [{}], server supports [{}]",
                client.join(" "),
                server.join(" ")
            ),
        )
    };
    match upgrade {
        Upgrade::WebSocket { key, protocols } => {
            let Some(protocol) =
                streaming::negotiate(&protocols, remotecommand::WEBSOCKET_PROTOCOLS)
            else {
                return unsupported(&protocols, remotecommand::WEBSOCKET_PROTOCOLS);
            };
            streaming::ws::spawn(on_upgrade, protocol.to_string(), wants, session);
            streaming::ws::switching(&key, protocol)
        }
        Upgrade::Spdy { protocols } => {
            let Some(protocol) = streaming::negotiate(&protocols, remotecommand::SPDY_PROTOCOLS)
            else {
                return unsupported(&protocols, remotecommand::SPDY_PROTOCOLS);
            };
            let protocol = protocol.to_string();
            let response = spdy_switching(&protocol);
            tokio::spawn(async move {
                if let Ok(Ok(io)) =
                    tokio::time::timeout(streaming::STREAM_CREATION_TIMEOUT, on_upgrade).await
                {
                    streaming::over_spdy::remote_command(
                        hyper_util::rt::TokioIo::new(io),
                        protocol,
                        wants,
                        session,
                    )
                    .await;
                }
            });
            response
        }
    }
}

/// The upgrade a streaming request asks for, and the connection's upgrade to await once it is
/// answered; a request that asks for none is a 400, as upstream's kubelet answers it.
#[allow(clippy::result_large_err)]
fn take_upgrade(
    request: &mut axum::extract::Request,
) -> Result<(Upgrade, hyper::upgrade::OnUpgrade), Response> {
    let Some(upgrade) = streaming::upgrade_of(request.headers()) else {
        return Err(text(StatusCode::BAD_REQUEST, "Upgrade request required"));
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded",
        ));
    };
    Ok((upgrade, on_upgrade))
}

/// The `101 Switching Protocols` answer to a SPDY upgrade for `protocol`.
fn spdy_switching(protocol: &str) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        axum::http::header::UPGRADE,
        axum::http::HeaderValue::from_static("SPDY/3.1"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(protocol) {
        h.insert("x-stream-protocol-version", v);
    }
    response
}

/// The port-forward protocol over SPDY.
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";

/// `/portForward/<namespace>/<pod>`: SPDY (`portforward.k8s.io`, kubectl 1.27) or SPDY tunnelled
/// in WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+), each
/// connection of the client dialing the pod's port on its IP.
async fn port_forward(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod_name)): Path<(String, String)>,
    mut request: axum::extract::Request,
) -> Response {
    let Some(pod) = shared.pod_by_name(&namespace, &pod_name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ip = shared
        .computed_status(&uid)
        .and_then(|s| s.pod_ip)
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    let Some(ip) = ip else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pod {} has no sandbox yet", quote(&pod_name)),
        );
    };
    let target = streaming::over_spdy::PortForwardTarget {
        ip,
        sandbox: format!("{:032x}", super::fnv128(uid.as_bytes())),
    };
    let (upgrade, on_upgrade) = match take_upgrade(&mut request) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused,
    };
    match upgrade {
        Upgrade::WebSocket { key, protocols }
            if protocols.iter().any(|p| p == streaming::ws::SPDY_TUNNEL) =>
        {
            streaming::ws::spawn_tunnel(on_upgrade, move |io| {
                streaming::over_spdy::port_forward(io, target)
            });
            streaming::ws::switching(&key, streaming::ws::SPDY_TUNNEL)
        }
        Upgrade::Spdy { protocols } if protocols.iter().any(|p| p == PORT_FORWARD_PROTOCOL) => {
            tokio::spawn(async move {
                if let Ok(Ok(io)) =
                    tokio::time::timeout(streaming::STREAM_CREATION_TIMEOUT, on_upgrade).await
                {
                    streaming::over_spdy::port_forward(hyper_util::rt::TokioIo::new(io), target)
                        .await;
                }
            });
            spdy_switching(PORT_FORWARD_PROTOCOL)
        }
        Upgrade::WebSocket { protocols, .. } | Upgrade::Spdy { protocols } => text(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports [{}], server supports [{PORT_FORWARD_PROTOCOL} {}]",
                protocols.join(" "),
                streaming::ws::SPDY_TUNNEL
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(container: serde_json::Value) -> PodStatus {
        serde_json::from_value(serde_json::json!({"containerStatuses": [container]})).unwrap()
    }

    #[test]
    fn the_instance_is_picked_as_validate_container_log_status_does() {
        let pick =
            |cs: serde_json::Value, previous| log_container_id("p", &status(cs), "c", previous);
        let crashed = serde_json::json!({"name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 1,
            "containerID": "containerd://b",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://b"}}});
        assert_eq!(pick(crashed.clone(), false), Ok("b".into()));
        assert_eq!(pick(crashed, true), Ok("b".into()));
        let waiting = |reason: &str| {
            serde_json::json!({"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason}}})
        };
        assert_eq!(
            pick(waiting("ContainerCreating"), false),
            Err("container \"c\" in pod \"p\" is waiting to start: ContainerCreating".into())
        );
        assert_eq!(
            pick(waiting("ImagePullBackOff"), false),
            Err("container \"c\" in pod \"p\" is waiting to start: trying and failing to pull image".into())
        );
        assert_eq!(
            pick(waiting("ErrImagePull"), false),
            Err("container \"c\" in pod \"p\" is waiting to start: image can't be pulled".into())
        );
        assert_eq!(
            pick(waiting("ContainerCreating"), true),
            Err("previous terminated container \"c\" in pod \"p\" not found".into())
        );
        let unknown = serde_json::json!({"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}});
        assert_eq!(
            pick(unknown, false),
            Err("container \"c\" in pod \"p\" is terminated".into())
        );
        assert_eq!(
            log_container_id("p", &PodStatus::default(), "c", false),
            Err("container \"c\" in pod \"p\" is not available".into())
        );
    }
}

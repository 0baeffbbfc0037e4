//! The overlay pod network ([`super::KubeletConfig::overlay`]), for nodes that do not share one
//! loopback (each kubelet in a container of its own): a pod reaches another node's pods
//! through a tunnel between the nodes, as a CNI overlay (flannel) carries them.
//!
//! - Each kubelet announces its pod range on its Node ([`ANNOTATION`], `127.A.0.0/16`), as
//!   flannel's daemon writes its subnet into Node annotations.
//! - Each kubelet watches the Nodes and keeps its node's routes ([`Netfilter::set_routes`]):
//!   every other node's range via that node's InternalIP and kubelet port.
//! - A pod's TCP connection to an address in another node's range (after the Service rules'
//!   DNAT) goes to that node's kubelet as an HTTP/1.1 upgrade ([`TUNNEL_PATH`], `Upgrade:
//!   kubespec-tunnel`, the cluster's kubelet bearer token). That kubelet connects to the pod
//!   from the client pod's own IP, so the server sees the client's address as on a real
//!   cluster (pod to pod without NAT), answers `101 Switching Protocols` once the pod accepted,
//!   and copies bytes both ways. A refused connect is answered `502`, which the client sees as
//!   `ECONNREFUSED`; anything else (no such node, a kubelet that refuses the tunnel, a target
//!   outside that node's range) loses the connection, which fails as an unroutable one does
//!   (`ETIMEDOUT` after the SYN retries).
//! - UDP is not carried: datagrams to another node's pods vanish.
//!
//! With the overlay off (embedded clusters) nothing here runs and pods reach each other on the
//! machine's loopback directly.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::netfilter::{Cidr, Netfilter, PodRoute, PodRoutes};
use crate::runtime::Informer;

/// The Node annotation that announces the node's pod range (`127.42.0.0/16`).
pub const ANNOTATION: &str = "kubespec.io/pod-cidr";

/// The path on a kubelet's server where another node opens a tunnel to one of this node's
/// pods (`?to=<pod ip>:<port>&from=<client pod ip>:<port>`).
pub const TUNNEL_PATH: &str = "/kubespec/tunnel";

/// The `Upgrade` protocol of a tunnel.
pub const UPGRADE: &str = "kubespec-tunnel";

/// How long the far end waits for its pod to accept (wall time: a local connect on the node).
const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a tunnel's response head may take.
const MAX_HEAD: usize = 8 * 1024;

/// The pod range of a node whose pod IPs start `127.A.B` (see [`super::Shared::allocate_ip`]:
/// they continue into the following third octets, never past `127.A.255.x`): `127.A.0.0/16`.
pub(crate) fn pod_range(pod_cidr: [u8; 3]) -> Cidr {
    let [a, b, _] = pod_cidr;
    Cidr {
        addr: Ipv4Addr::new(a, b, 0, 0),
        prefix: 16,
    }
}

/// The routes to other nodes' pods that `nodes` announce, for the node `own` (whose range is
/// `own_range`): by node name, one per node with a range, an InternalIP and a kubelet port. A
/// range that overlaps this node's own, or one an earlier node (by name) has, gets no route.
pub(crate) fn routes_from(nodes: &[Arc<Node>], own: &str, own_range: Cidr) -> Vec<PodRoute> {
    let mut nodes: Vec<&Arc<Node>> = nodes.iter().collect();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut routes: Vec<PodRoute> = Vec::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        if name == own {
            continue;
        }
        let Some(range) = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
        else {
            continue;
        };
        let pods: Cidr = match range.parse() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(node = %name, cause = %e, "the node's pod range is not a CIDR");
                continue;
            }
        };
        let status = node.status.as_ref();
        let ip = status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .and_then(|a| a.address.parse::<IpAddr>().ok());
        let port = status
            .and_then(|s| s.daemon_endpoints.as_ref())
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .and_then(|e| u16::try_from(e.port).ok())
            .filter(|p| *p != 0);
        let (Some(ip), Some(port)) = (ip, port) else {
            continue;
        };
        if pods.overlaps(&own_range) {
            tracing::warn!(node = %name, range = %pods, own = %own_range, "the node's pod range overlaps this node's; its pods are taken for this node's");
            continue;
        }
        if let Some(other) = routes.iter().find(|r| r.pods.overlaps(&pods)) {
            tracing::warn!(node = %name, range = %pods, other = %other.node, "the node's pod range overlaps another node's; no route to it");
            continue;
        }
        routes.push(PodRoute {
            node: name,
            pods,
            via: SocketAddr::new(ip, port),
        });
    }
    routes
}

/// Keep `netfilter`'s routes to other nodes' pods as the Nodes say, until `shutdown`.
pub(super) async fn run(
    client: Client,
    netfilter: Arc<Netfilter>,
    node: String,
    own_range: Cidr,
    token: Option<String>,
    shutdown: CancellationToken,
) {
    let informer = Informer::<Node>::start(
        Api::all(client),
        watcher::Config::default(),
        shutdown.clone(),
    );
    let mut changes = informer.subscribe();
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = informer.ready() => {}
    }
    let mut last: Option<Vec<PodRoute>> = None;
    loop {
        let routes = routes_from(&informer.store().state(), &node, own_range);
        if last.as_ref() != Some(&routes) {
            tracing::info!(node = %node, routes = ?routes, "overlay routes changed");
            netfilter.set_routes(PodRoutes {
                routes: routes.clone(),
                token: token.clone(),
            });
            last = Some(routes);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = changes.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = change {
                    return;
                }
            }
        }
    }
}

/// Why a tunnel did not open.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The far end's pod refused the connection.
    Refused,
    /// No answer will come (the far end is unreachable or would not carry it): why.
    Lost(String),
}

/// Open a tunnel through the kubelet at `via` to its pod address `to`, for a pod at `from`
/// (port 0: any); once the far end's pod accepted, the stream carries the connection's bytes.
pub(crate) async fn dial(
    via: SocketAddr,
    token: Option<&str>,
    from: SocketAddr,
    to: SocketAddr,
) -> Result<TcpStream, DialError> {
    let lost = |what: &str, e: &dyn std::fmt::Display| DialError::Lost(format!("{what}: {e}"));
    let mut stream = TcpStream::connect(via)
        .await
        .map_err(|e| lost(&format!("connect to {via}"), &e))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let query = serde_urlencoded::to_string([("to", to.to_string()), ("from", from.to_string())])
        .map_err(|e| lost("encode the request", &e))?;
    let request = format!(
        "GET {TUNNEL_PATH}?{query} HTTP/1.1\r\nHost: {via}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE}\r\n{auth}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| lost("write the request", &e))?;
    // The head, a byte at a time: what follows it is the pod's.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(DialError::Lost("the answer's head is too long".into()));
        }
        let mut byte = [0u8];
        match stream.read(&mut byte).await {
            Ok(0) => return Err(DialError::Lost("the far end closed the tunnel".into())),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(lost("read the answer", &e)),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("101") => Ok(stream),
        Some("502") => Err(DialError::Refused),
        _ => Err(DialError::Lost(format!(
            "the far end answered {status_line:?}"
        ))),
    }
}

/// A plain-text answer.
fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (code, [("content-type", "text/plain")], body.into()).into_response()
}

/// `GET` [`TUNNEL_PATH`]: connect to one of this node's pods for a pod of another node, then
/// carry the connection over the upgraded request. Only this node's own pod range is reached
/// (`403` otherwise: the kubelet is no open proxy); with the overlay off there is no tunnel
/// (`404`).
pub(super) async fn tunnel(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    mut request: axum::extract::Request,
) -> Response {
    if !shared.config.overlay {
        return text(StatusCode::NOT_FOUND, "the overlay network is off");
    }
    let query: HashMap<String, String> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let Some(to) = query
        .get("to")
        .and_then(|t| t.parse::<SocketAddr>().ok())
        .map(crate::netfilter::canonical)
    else {
        return text(StatusCode::BAD_REQUEST, "to must be an address and port");
    };
    let own = pod_range(shared.config.pod_cidr);
    if !own.contains(to.ip()) {
        return text(
            StatusCode::FORBIDDEN,
            format!("{to} is not in this node's pod range {own}"),
        );
    }
    let headers = request.headers();
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has(http::header::CONNECTION, "upgrade") || !has(http::header::UPGRADE, UPGRADE) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required");
    }
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded",
        );
    };
    // From the client pod's own address when it is another node's pod's, so that the pod sees
    // its peer as on a real cluster.
    let from = query
        .get("from")
        .and_then(|f| f.parse::<SocketAddr>().ok())
        .map(crate::netfilter::canonical)
        .filter(|f| f.ip().is_loopback() && f.is_ipv4() && !own.contains(f.ip()));
    let local = match tokio::time::timeout(LOCAL_CONNECT_TIMEOUT, connect_local(from, to)).await {
        Ok(Ok(local)) => local,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("dial tcp {to}: connect: connection refused"),
            )
        }
        Ok(Err(e)) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                format!("dial tcp {to}: connect: {e}"),
            )
        }
        Err(_) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                format!("dial tcp {to}: i/o timeout"),
            )
        }
    };
    let node = shared.config.node_name.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(node = %node, %to, cause = %e, "the tunnel was not upgraded");
                return;
            }
        };
        let mut upgraded = hyper_util::rt::TokioIo::new(upgraded);
        let mut local = local;
        if let Err(e) = tokio::io::copy_bidirectional(&mut upgraded, &mut local).await {
            tracing::debug!(node = %node, %to, cause = %e, "tunnel closed");
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static(UPGRADE),
    );
    response
}

/// Connect to `to` on this node, from `from` when given (its port reused when not 0, as the
/// client's was bound).
async fn connect_local(from: Option<SocketAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(from) = from.filter(|f| f.is_ipv4() == to.is_ipv4()) {
        if from.port() != 0 {
            socket.set_reuseaddr(true)?;
        }
        socket.bind(from)?;
    }
    socket.connect(to).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, range: Option<&str>, ip: &str, port: i32) -> Arc<Node> {
        let mut annotations = serde_json::Map::new();
        if let Some(r) = range {
            annotations.insert(ANNOTATION.into(), r.into());
        }
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "annotations": annotations},
                "status": {"addresses": [{"type": "Hostname", "address": name},
                    {"type": "InternalIP", "address": ip}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}},
            }))
            .unwrap(),
        )
    }

    fn shown(routes: &[PodRoute]) -> Vec<String> {
        routes
            .iter()
            .map(|r| format!("{} {} via {}", r.node, r.pods, r.via))
            .collect()
    }

    #[test]
    fn the_range_is_the_slash_16_every_pod_ip_of_the_node_is_in() {
        assert_eq!(pod_range([127, 42, 7]).to_string(), "127.42.0.0/16");
        let range = pod_range([127, 42, 250]);
        // Pod IPs continue into the following third octets, wrapping within 127.42.
        for ip in ["127.42.250.1", "127.42.255.254", "127.42.0.3"] {
            assert!(range.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!range.contains("127.43.0.1".parse().unwrap()));
    }

    #[test]
    fn each_other_node_with_a_range_an_ip_and_a_port_gets_a_route() {
        let own = pod_range([127, 10, 0]);
        let nodes = vec![
            node("c", Some("127.30.0.0/16"), "172.18.0.4", 10250),
            node("a", Some("127.10.0.0/16"), "172.18.0.2", 10250),
            node("b", Some("127.20.0.0/16"), "172.18.0.3", 10251),
            // No range announced (the overlay is off there), a bad one, no port.
            node("d", None, "172.18.0.5", 10250),
            node("e", Some("127.50.0.0/33"), "172.18.0.6", 10250),
            node("f", Some("127.60.0.0/16"), "172.18.0.7", 0),
            // Overlapping this node's range, or an earlier node's.
            node("g", Some("127.10.5.0/24"), "172.18.0.8", 10250),
            node("h", Some("127.0.0.0/8"), "172.18.0.9", 10250),
            node("i", Some("127.20.128.0/17"), "172.18.0.10", 10250),
        ];
        assert_eq!(
            shown(&routes_from(&nodes, "a", own)),
            [
                "b 127.20.0.0/16 via 172.18.0.3:10251",
                "c 127.30.0.0/16 via 172.18.0.4:10250"
            ]
        );
    }
}

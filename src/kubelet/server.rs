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
        .route("/pods", get(pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(port)
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
    let Some(current) = shared.container_logs(&namespace, &pod, &container, previous) else {
        return (
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" in pod \"{pod}\" not found"),
        )
            .into_response();
    };
    let first = tail(&current, tail_lines);
    if !follow || previous {
        return ([("content-type", "text/plain")], first).into_response();
    }
    // Follow: send what is there, then what is appended, until the container's logs go away.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut sent = current.len();
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Some(now) = shared.container_logs(&namespace, &pod, &container, false) else {
                return;
            };
            if now.len() > sent {
                if tx.send(Ok(now[sent..].to_vec())).await.is_err() {
                    return;
                }
                sent = now.len();
            } else if now.len() < sent {
                // A new container instance: its logs start over.
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([("content-type", "text/plain")], body).into_response()
}

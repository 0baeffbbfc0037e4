//! The connect subresources of pods: `exec`, `attach` and `portforward`. The options are read
//! and the container chosen as upstream's `streamLocation` does, then the request goes to the
//! pod's kubelet with its upgrade headers; once the kubelet switches protocols the client's
//! connection and the kubelet's are joined byte for byte (upstream's upgrade-aware proxy). A
//! kubelet that refuses answers the client itself: its status and body pass through, so
//! `kubectl` says `unable to upgrade connection: container not found ("c")` as on a real cluster.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::proxy::{vouch_for, KUBELET_TIMEOUT};
use crate::apiserver::registry;
use crate::apiserver::ApiServer;

use super::subresource::log_container;
use super::Target;

/// The pod connect subresources.
pub(super) const SUBRESOURCES: &[&str] = &["exec", "attach", "portforward"];

/// Headers of an upgrade that travel to the kubelet and back.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "x-stream-protocol-version",
];

/// `/api/v1/namespaces/<ns>/pods/<name>/<exec|attach|portforward>`: (namespace, name, sub).
pub(super) fn target_of(path: &str) -> Option<(String, String, &'static str)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, sub]
            if !ns.is_empty() && !name.is_empty() =>
        {
            let sub = SUBRESOURCES.iter().find(|s| *s == sub)?;
            Some((ns.to_string(), name.to_string(), sub))
        }
        _ => None,
    }
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it; other text is a 400.
fn parse_bool(key: &str, value: &str) -> ApiResult<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key}: strconv.ParseBool: parsing {}: invalid syntax",
            crate::k8s::go_quote(value)
        ))),
    }
}

impl ApiServer {
    /// Serve a connect subresource of pod `namespace/name` (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn pod_connect(
        &self,
        namespace: String,
        name: String,
        sub: &'static str,
        method: &Method,
        raw_query: Option<&str>,
        headers: &HeaderMap,
        on_upgrade: Option<OnUpgrade>,
    ) -> ApiResult<Response> {
        if method != Method::GET && method != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        let pairs: Vec<(String, String)> = raw_query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let first = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let flag = |key: &str| first(key).map_or(Ok(false), |v| parse_bool(key, v));
        let target = Target {
            kind: registry::core("pods"),
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            subresource: Some(sub.to_string()),
        };
        let pod = self.load(&target, &name).await?.value();
        let node_name = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut params: Vec<(&str, String)> = Vec::new();
        let path = if sub == "portforward" {
            for (k, v) in &pairs {
                if k == "ports" {
                    let port: i64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "ports: strconv.ParseInt: parsing {}: invalid syntax",
                            crate::k8s::go_quote(v)
                        ))
                    })?;
                    params.push(("port", port.to_string()));
                }
            }
            format!("/portForward/{namespace}/{name}")
        } else {
            let container = log_container(&pod, &name, first("container"))?;
            if flag("stdin")? {
                params.push(("input", "1".into()));
            }
            if flag("stdout")? {
                params.push(("output", "1".into()));
            }
            if flag("stderr")? {
                params.push(("error", "1".into()));
            }
            if flag("tty")? {
                params.push(("tty", "1".into()));
            }
            if sub == "exec" {
                for (k, v) in &pairs {
                    if k == "command" {
                        params.push(("command", v.clone()));
                    }
                }
            }
            format!("/{sub}/{namespace}/{name}/{container}")
        };
        if node_name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let kubelet = self.kubelet_address(&node_name).await?;
        let authorization = match &self.kubelet_token {
            Some(token) => {
                vouch_for(kubelet, &node_name, token).await?;
                Some(format!("Bearer {token}"))
            }
            None => None,
        };
        // Parameters are re-encoded from their decoded values, never spliced into the URL.
        let query = serde_urlencoded::to_string(&params).map_err(ApiError::internal)?;
        let path = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        self.proxy_upgrade(
            kubelet,
            &node_name,
            method,
            &path,
            headers,
            authorization,
            on_upgrade,
        )
        .await
    }

    /// Send the request to the kubelet; join the connections if it switches protocols, or
    /// pass its answer on.
    #[allow(clippy::too_many_arguments)]
    async fn proxy_upgrade(
        &self,
        kubelet: std::net::SocketAddr,
        node_name: &str,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        authorization: Option<String>,
        on_upgrade: Option<OnUpgrade>,
    ) -> ApiResult<Response> {
        let unreachable = |e: &dyn std::fmt::Display| {
            ApiError::internal(format!(
                "cannot reach the kubelet of node {node_name} at {kubelet}: {e}"
            ))
        };
        let stream =
            match tokio::time::timeout(KUBELET_TIMEOUT, tokio::net::TcpStream::connect(kubelet))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(unreachable(&e)),
                Err(_) => return Err(unreachable(&"timed out")),
            };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, kubelet.to_string());
        for name in UPGRADE_HEADERS {
            for value in headers.get_all(*name) {
                request = request.header(*name, value.clone());
            }
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(ApiError::internal)?;
        let mut response =
            match tokio::time::timeout(KUBELET_TIMEOUT, sender.send_request(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return Err(unreachable(&e)),
                Err(_) => return Err(unreachable(&"no answer")),
            };
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            let limited = http_body_util::Limited::new(response.into_body(), 64 * 1024);
            let body =
                tokio::time::timeout(KUBELET_TIMEOUT, http_body_util::BodyExt::collect(limited))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
            let mut out = (status, body).into_response();
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                content_type.unwrap_or(HeaderValue::from_static("text/plain")),
            );
            return Ok(out);
        }
        let Some(client) = on_upgrade else {
            return Err(ApiError::internal("this connection cannot be upgraded"));
        };
        let backend = hyper::upgrade::on(&mut response);
        let mut out = StatusCode::SWITCHING_PROTOCOLS.into_response();
        for name in UPGRADE_HEADERS {
            for value in response.headers().get_all(*name) {
                out.headers_mut().append(*name, value.clone());
            }
        }
        tokio::spawn(async move {
            let (client, backend) = match tokio::join!(client, backend) {
                (Ok(c), Ok(b)) => (c, b),
                (c, b) => {
                    tracing::debug!(client = ?c.err(), kubelet = ?b.err(), "a streaming upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                tracing::trace!(cause = %e, "a streaming connection ended");
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_paths_are_recognised() {
        assert_eq!(
            target_of("/api/v1/namespaces/ns/pods/p/exec"),
            Some(("ns".into(), "p".into(), "exec"))
        );
        assert_eq!(
            target_of("/api/v1/namespaces/ns/pods/p/portforward"),
            Some(("ns".into(), "p".into(), "portforward"))
        );
        assert_eq!(target_of("/api/v1/namespaces/ns/pods/p/log"), None);
        assert_eq!(target_of("/api/v1/namespaces/ns/pods/p"), None);
    }

    #[test]
    fn booleans_parse_as_go_does() {
        assert!(parse_bool("stdin", "true").unwrap());
        assert!(parse_bool("stdin", "1").unwrap());
        assert!(!parse_bool("stdin", "False").unwrap());
        assert!(parse_bool("stdin", "yes").is_err());
    }
}

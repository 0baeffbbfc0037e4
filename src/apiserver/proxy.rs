//! The apiserver as a client of kubelets (`pods/log`): it connects only to the address a Node
//! names, and sends the kubelet token only once that address has answered the vouch challenge.

use std::time::Duration;

use axum::body::Bytes;

use super::error::{ApiError, ApiResult};

/// How long the apiserver waits for a kubelet to answer (upstream's kubelet client: 5 s).
pub(super) const KUBELET_TIMEOUT: Duration = Duration::from_secs(5);

/// GET `path` from the kubelet at `kubelet`; the response streams (follow).
pub(super) async fn kubelet_get(
    kubelet: std::net::SocketAddr,
    node_name: &str,
    path: &str,
    authorization: Option<&str>,
) -> ApiResult<hyper::Response<hyper::body::Incoming>> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "cannot reach the kubelet of node {node_name} at {kubelet}: {e}"
        ))
    };
    let connect = tokio::net::TcpStream::connect(kubelet);
    let stream = match tokio::time::timeout(KUBELET_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(unreachable(&e)),
        Err(_) => return Err(unreachable(&"timed out")),
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = axum::http::Request::get(path).header("host", kubelet.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let request = request
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(ApiError::internal)?;
    match tokio::time::timeout(KUBELET_TIMEOUT, sender.send_request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(unreachable(&e)),
        Err(_) => Err(unreachable(&"no answer")),
    }
}

/// Make sure `kubelet` is node `node_name`'s kubelet (it can answer a challenge only the holder
/// of `token` can) before the token is sent there.
pub(super) async fn vouch_for(
    kubelet: std::net::SocketAddr,
    node_name: &str,
    token: &str,
) -> ApiResult<()> {
    use crate::k8s::kubelet_auth;
    let challenge = kubelet_auth::challenge();
    let query =
        serde_urlencoded::to_string([("challenge", &challenge)]).map_err(ApiError::internal)?;
    let path = format!("{}?{query}", kubelet_auth::PATH);
    let response = kubelet_get(kubelet, node_name, &path, None).await?;
    let ok = response.status().is_success();
    let limited = http_body_util::Limited::new(response.into_body(), 1024);
    let answer = tokio::time::timeout(KUBELET_TIMEOUT, http_body_util::BodyExt::collect(limited))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    if ok && kubelet_auth::verify(token, node_name, kubelet, &challenge, &answer) {
        return Ok(());
    }
    tracing::warn!(node = node_name, %kubelet, "a Node names a kubelet address that is not its kubelet; not sending it the kubelet token");
    Err(ApiError::internal(format!(
        "the address node {node_name} names for its kubelet ({kubelet}) is not the cluster's kubelet for that node; refusing to send it credentials"
    )))
}

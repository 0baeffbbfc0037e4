//! Static pods: pods the kubelet reads from a manifest directory (`--pod-manifest-path`,
//! rescanned every 20 s) or a manifest URL (`--manifest-url`, polled every 20 s), shown in the
//! API as mirror pods named `<name>-<node>` with the `kubernetes.io/config.mirror` annotation and
//! the Node as owner.
//!
//! Caveat: upstream runs a static pod from its local definition and only mirrors its status; here
//! the mirror pod is what the pod worker runs, so deleting the mirror pod through the API stops
//! the pod until the next rescan recreates it (upstream restarts it from the file at once).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::clock::format_micro_time;

/// Where static pods come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A directory of YAML or JSON manifests.
    Dir(PathBuf),
    /// An HTTP URL serving one manifest, several YAML documents, or a PodList.
    Url(String),
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Dir(_) => "file",
            Source::Url(_) => "http",
        }
    }
}

/// How often sources are looked at (upstream's fileCheckFrequency/httpCheckFrequency).
const CHECK_FREQUENCY: Duration = Duration::from_secs(20);

/// How soon the sources are looked at again while the Node is not registered yet.
const NODE_RETRY: Duration = Duration::from_secs(1);

fn hash(data: &[u8]) -> String {
    format!("{:032x}", super::fnv128(data))
}

/// Parse manifests: YAML documents (or JSON), each a Pod or a PodList.
fn parse(content: &str) -> Result<Vec<Value>, String> {
    let mut pods = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(content) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        match value.get("kind").and_then(Value::as_str) {
            Some("Pod") => pods.push(value),
            Some("PodList") => pods.extend(value["items"].as_array().cloned().unwrap_or_default()),
            None if value.is_null() => {}
            other => return Err(format!("kind {other:?} is not a Pod")),
        }
    }
    Ok(pods)
}

async fn read_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return out;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        // Hidden files are ignored, as upstream does.
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        if let Ok(data) = tokio::fs::read(&path).await {
            out.push((path.display().to_string(), data));
        }
    }
    out.sort();
    out
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// manifest URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(path)
        .header("host", authority)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.to_bytes().to_vec())
}

/// The mirror pod of a static pod.
fn mirror(mut pod: Value, node: &Node, source: &str, hash: &str, seen: &str) -> Value {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or("static")
        .to_string();
    let meta = pod["metadata"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut meta: serde_json::Map<String, Value> = meta;
    meta.insert("name".into(), json!(format!("{name}-{node_name}")));
    if meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), json!("default"));
    }
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert("kubernetes.io/config.hash".into(), json!(hash));
        a.insert("kubernetes.io/config.mirror".into(), json!(hash));
        a.insert("kubernetes.io/config.seen".into(), json!(seen));
        a.insert("kubernetes.io/config.source".into(), json!(source));
    }
    meta.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node.metadata.uid, "controller": true}]),
    );
    pod["metadata"] = Value::Object(meta);
    pod["spec"]["nodeName"] = json!(node_name);
    // Static pods tolerate every NoExecute taint, as upstream's kubelet makes them.
    let mut tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tolerations.push(json!({"operator": "Exists", "effect": "NoExecute"}));
    pod["spec"]["tolerations"] = json!(tolerations);
    pod
}

/// Keep mirror pods in line with a source until `shutdown`.
pub(super) async fn run(shared: Arc<Shared>, source: Source, shutdown: CancellationToken) {
    let node_name = shared.config.node_name.clone();
    let nodes: Api<Node> = Api::all(shared.client.clone());
    // Mirror pods this kubelet made: (namespace, name) -> config hash.
    let mut mirrors: HashMap<(String, String), String> = HashMap::new();
    loop {
        // Until the Node is registered there is nothing to own the mirror pods: look again
        // soon (upstream retries a mirror pod on every pod sync).
        let mut next = CHECK_FREQUENCY;
        let documents: Result<Vec<(String, Vec<u8>)>, String> = match &source {
            Source::Dir(dir) => Ok(read_dir(dir).await),
            Source::Url(url) => fetch(url).await.map(|body| vec![(url.clone(), body)]),
        };
        match (documents, nodes.get_opt(&node_name).await) {
            (Ok(documents), Ok(Some(node))) => {
                let seen = format_micro_time(shared.clock.now());
                let mut desired: BTreeMap<(String, String), (String, Value)> = BTreeMap::new();
                for (origin, data) in documents {
                    let text = String::from_utf8_lossy(&data);
                    match parse(&text) {
                        Ok(pods) => {
                            for pod in pods {
                                let h = hash(
                                    serde_json::to_string(&pod).unwrap_or_default().as_bytes(),
                                );
                                let m = mirror(pod, &node, source.name(), &h, &seen);
                                let key = (
                                    m["metadata"]["namespace"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string(),
                                    m["metadata"]["name"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string(),
                                );
                                desired.insert(key, (h, m));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(node = %node_name, source = %origin, cause = %e, "cannot read a static pod manifest; skipping it")
                        }
                    }
                }
                reconcile(&shared, &mut mirrors, desired).await;
            }
            (Err(e), _) => {
                tracing::warn!(node = %node_name, cause = %e, "cannot read the static pod source")
            }
            _ => next = NODE_RETRY,
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.clock.sleep(next) => {}
        }
    }
}

async fn reconcile(
    shared: &Shared,
    mirrors: &mut HashMap<(String, String), String>,
    desired: BTreeMap<(String, String), (String, Value)>,
) {
    // Gone from the source: delete the mirror pod (the worker stops the pod gracefully).
    let stale: Vec<(String, String)> = mirrors
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    for (ns, name) in stale {
        let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                mirrors.remove(&(ns, name));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                mirrors.remove(&(ns, name));
            }
            Err(e) => tracing::debug!(pod = %name, cause = %e, "cannot delete a mirror pod"),
        }
    }
    for ((ns, name), (hash, pod)) in desired {
        let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
        let existing = api.get_opt(&name).await.ok().flatten();
        let current = existing
            .as_ref()
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get("kubernetes.io/config.mirror"))
            .cloned();
        if current.as_deref() == Some(hash.as_str()) {
            mirrors.insert((ns, name), hash);
            continue;
        }
        if existing.is_some() {
            // The manifest changed: replace the mirror pod.
            let _ = api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
        }
        let Ok(pod) = serde_json::from_value::<Pod>(pod) else {
            tracing::warn!(pod = %name, "a static pod manifest is not a valid Pod; skipping it");
            continue;
        };
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                mirrors.insert((ns, name), hash);
            }
            Err(e) => tracing::warn!(pod = %name, cause = %e, "cannot create a mirror pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_as_pods_and_pod_lists() {
        let pods = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: PodList\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n").unwrap();
        assert_eq!(pods.len(), 2);
        assert!(parse("kind: Service\n").is_err());
    }

    #[test]
    fn mirror_pods_are_named_after_the_node_and_annotated() {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": "node-1", "uid": "n-uid"}}))
                .unwrap();
        let m = mirror(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": []}}),
            &node,
            "file",
            "abc",
            "now",
        );
        assert_eq!(m["metadata"]["name"], "web-node-1");
        assert_eq!(m["metadata"]["namespace"], "default");
        assert_eq!(
            m["metadata"]["annotations"]["kubernetes.io/config.mirror"],
            "abc"
        );
        assert_eq!(m["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(m["spec"]["nodeName"], "node-1");
    }
}

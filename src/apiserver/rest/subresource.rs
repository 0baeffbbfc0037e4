//! Subresources beyond status: `pods/binding`, `pods/eviction`, `scale` and `pods/log` (proxied
//! to the kubelet).

use std::ops::ControlFlow;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::proxy::{kubelet_get, vouch_for};
use crate::apiserver::registry::{self, Kind};
use crate::apiserver::{ApiServer, Cause};
use crate::clock::format_time;
use crate::k8s::pod_logs::{PodLogOptions, Problem};

use super::write::Record;
use super::{again_on_conflict, retry_on_conflict};
use super::{dry_run_with, json_response, meta_str, store_error, Query, Target};

impl ApiServer {
    pub(super) async fn bind(
        &self,
        target: &Target,
        name: &str,
        binding: Value,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let node = binding["target"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::invalid(kind, name, &[Cause::required("target.name", "")]))?;
        let node = &node.to_string();
        retry_on_conflict(kind, name, move || async move {
            let current = self.load(target, name).await?;
            let mut pod = current.value();
            if pod["metadata"]["deletionTimestamp"].is_string() {
                return Err(ApiError::conflict_with(
                    kind,
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict_with(
                    kind,
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            let now = format_time(self.clock.now());
            let conditions = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conditions: Vec<Value> = conditions
                .into_iter()
                .filter(|c| c["type"] != "PodScheduled")
                .collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            pod["status"]["conditions"] = json!(conditions);
            let key = kind.key(target.namespace.as_deref(), name);
            let written = self
                .store
                .update(&key, kind.draft(pod)?, Some(current.mod_revision))
                .await
                .map_err(|e| store_error(kind, name, e));
            Ok(again_on_conflict(written)?.map_break(|_| {
                json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                )
            }))
        })
        .await
    }

    /// `pods/eviction`, as upstream answers it when no PodDisruptionBudget covers the pod (none
    /// are served): the pod gets the `DisruptionTarget` condition, then is deleted with the
    /// eviction's delete options; the answer is a 201 Success Status.
    pub(super) async fn evict(
        &self,
        target: &Target,
        name: &str,
        eviction: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        if meta_str(&eviction, "name").is_some_and(|n| !n.is_empty() && n != name) {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let options = eviction
            .get("deleteOptions")
            .cloned()
            .unwrap_or(Value::Null);
        if !dry_run_with(query, &options) {
            self.mark_disrupted(target, name).await?;
        }
        self.delete(target, name, &options, query).await?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    /// Give a pod that is not finished the `DisruptionTarget` condition of an eviction.
    async fn mark_disrupted(&self, target: &Target, name: &str) -> ApiResult<()> {
        let kind = target.kind;
        retry_on_conflict(kind, name, move || async move {
            let current = self.load(target, name).await?;
            let mut pod = current.value();
            let finished = matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            let conditions = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if finished || conditions.iter().any(|c| c["type"] == "DisruptionTarget") {
                return Ok(ControlFlow::Break(()));
            }
            let mut conditions = conditions;
            conditions.push(json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
                "lastTransitionTime": format_time(self.clock.now()),
            }));
            pod["status"]["conditions"] = json!(conditions);
            let written = self
                .write_update(
                    target,
                    name,
                    Some("status"),
                    &current,
                    pod,
                    &Query::new(),
                    Some(current.mod_revision),
                    Record::No,
                )
                .await;
            Ok(again_on_conflict(written)?.map_break(|_| ()))
        })
        .await
    }

    pub(super) async fn get_scale(&self, target: &Target, name: &str) -> ApiResult<Response> {
        let current = self.load(target, name).await?;
        Ok(json_response(
            StatusCode::OK,
            &scale_of(target.kind, &current.value()),
        ))
    }

    pub(super) async fn update_scale(
        &self,
        target: &Target,
        name: &str,
        scale: Value,
        query: &Query,
    ) -> ApiResult<Response> {
        let kind = target.kind;
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            let cause = Cause::invalid(
                "spec.replicas",
                &replicas.to_string(),
                "must be greater than or equal to 0",
            );
            return Err(ApiError::invalid(
                registry::lookup("autoscaling", "v1", "scale").unwrap_or(kind),
                name,
                &[cause],
            ));
        }
        let scale = &scale;
        retry_on_conflict(kind, name, move || async move {
            let current = self.load(target, name).await?;
            if let Some(rv) = meta_str(scale, "resourceVersion").filter(|r| !r.is_empty()) {
                if rv != current.mod_revision.to_string() {
                    return Err(ApiError::conflict(kind, name));
                }
            }
            let mut next = current.value();
            next["spec"]["replicas"] = json!(replicas);
            let written = self
                .write_update(
                    target,
                    name,
                    None,
                    &current,
                    next,
                    query,
                    Some(current.mod_revision),
                    Record::Update("scale"),
                )
                .await;
            Ok(again_on_conflict(written)?.map_break(|(written, _)| {
                json_response(StatusCode::OK, &scale_of(kind, &written.value()))
            }))
        })
        .await
    }

    /// `pods/log`, as upstream serves it: the `PodLogOptions` decoded (400 for a value Go's
    /// conversion rejects) and validated (422), the container chosen, then the pod's kubelet asked
    /// for that container's log with the options re-encoded, and its answer streamed back (its
    /// errors as upstream's response checker turns them into a Status). A pod not bound to a node
    /// has no log yet: the answer is empty.
    pub(super) async fn pod_log(
        &self,
        target: &Target,
        name: &str,
        query: &Query,
    ) -> ApiResult<Response> {
        let options = PodLogOptions::decode(|key| query.get(key).map(String::as_str))
            .map_err(ApiError::bad_request)?;
        let causes: Vec<Cause> = options
            .problems()
            .into_iter()
            .map(|problem| match problem {
                Problem::Invalid {
                    field,
                    value,
                    detail,
                } => Cause::invalid(field, &value.to_string(), detail),
                Problem::Forbidden { field, detail } => Cause::forbidden(field, detail),
            })
            .collect();
        if !causes.is_empty() {
            return Err(ApiError::invalid_kind("", "PodLogOptions", name, &causes));
        }
        let pod = self.load(target, name).await?.value();
        let ns = target.namespace.clone().unwrap_or_default();
        let container = log_container(&pod, name, options.container.as_deref())?;
        let node_name = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if node_name.is_empty() {
            return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response());
        }
        let kubelet = self.kubelet_address(&node_name).await?;
        // Forwarded parameters are re-encoded from their decoded values, never spliced into the
        // kubelet's URL.
        let encoded = options.kubelet_query();
        let path = if encoded.is_empty() {
            format!("/containerLogs/{ns}/{name}/{container}")
        } else {
            format!("/containerLogs/{ns}/{name}/{container}?{encoded}")
        };
        let authorization = match &self.kubelet_token {
            Some(token) => {
                vouch_for(kubelet, &node_name, token).await?;
                Some(format!("Bearer {token}"))
            }
            None => None,
        };
        let response = kubelet_get(kubelet, &node_name, &path, authorization.as_deref()).await?;
        let code = response.status().as_u16();
        if !(200..=206).contains(&code) {
            // Upstream reads at most 50000 bytes of the kubelet's answer.
            let limited = http_body_util::Limited::new(response.into_body(), 50_000);
            let body = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                http_body_util::BodyExt::collect(limited),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
            return Err(match code {
                500 => ApiError::internal(body),
                400 => ApiError::bad_request(body),
                code => ApiError::server_response(code, "pods/log", name, &body),
            });
        }
        let body = axum::body::Body::new(response.into_body());
        Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
    }

    /// The address of a node's kubelet, from its Node's status.
    pub(super) async fn kubelet_address(&self, node_name: &str) -> ApiResult<std::net::SocketAddr> {
        let node_kind = registry::core("nodes");
        let node = self
            .store
            .get(&node_kind.key(None, node_name))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(node_kind, node_name))?
            .value();
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| ApiError::internal(format!("node {node_name} names no kubelet port")))?;
        // Only an IP address: the apiserver resolves no names a Node's author chose.
        let ip: std::net::IpAddr = node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .unwrap_or("127.0.0.1")
            .parse()
            .map_err(|_| {
                ApiError::internal(format!(
                    "node {node_name} names no usable InternalIP address for its kubelet"
                ))
            })?;
        Ok(std::net::SocketAddr::new(ip, port))
    }
}

/// The container a log request names (any of the pod's containers), or the pod's only app
/// container, as upstream's `validateContainer` picks it.
pub(super) fn log_container(pod: &Value, name: &str, container: Option<&str>) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let app = names("containers");
    // Init containers, app containers, then ephemeral ones, as upstream visits them.
    let all: Vec<String> = names("initContainers")
        .into_iter()
        .chain(app.iter().cloned())
        .chain(names("ephemeralContainers"))
        .collect();
    match container.filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if app.len() == 1 => Ok(app[0].clone()),
        None if app.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// An autoscaling/v1 Scale for a Deployment or ReplicaSet.
pub(super) fn scale_of(_kind: &Kind, obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

//! Container lifecycle hooks as the kubelet runs them (postStart and preStop handlers: exec,
//! httpGet, sleep) with upstream's failure messages, and killing a container as upstream's
//! `killContainer` does: the `Killing` event, the preStop hook within the grace period, then
//! SIGTERM with what is left of it, but never less than two seconds, before SIGKILL.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, ObjectReference, Pod};

use super::prober::http::ProbeRequest;
use super::prober::{self, resolve_port};
use super::Shared;
use crate::events::{reference, EventType};
use crate::k8s::go_quote;

/// However little of the grace period a kill has left (a preStop hook may have used all of it),
/// the container gets this long between SIGTERM and SIGKILL (upstream's
/// `minimumGracePeriodInSeconds`).
pub(super) const MINIMUM_GRACE_SECONDS: i64 = 2;

/// The event of a failed postStart hook; its detail goes only into the container's waiting
/// message (upstream records no detail, "so that secrets won't leak").
pub(super) const POST_START_HOOK_FAILED: &str = "PostStartHook failed";

/// The event of a failed preStop hook (no detail either).
const PRE_STOP_HOOK_FAILED: &str = "PreStopHook failed";

/// Why the kubelet kills a container (upstream's `containerKillReason`): it decides which grace
/// period applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillReason {
    /// The startup probe failed.
    StartupProbe,
    /// The liveness probe failed.
    LivenessProbe,
    /// The postStart hook failed.
    FailedPostStartHook,
    /// The pod is deleted, evicted or past its deadline.
    Other,
}

/// The grace period (whole seconds) of a kill, as upstream's `setTerminationGracePeriod`: the
/// pod's deletion grace period once it is deleted, else the failed probe's
/// `terminationGracePeriodSeconds` for a probe kill, else the pod's
/// `terminationGracePeriodSeconds` (30 by default).
pub(super) fn grace_period(pod: &Pod, c: Option<&Container>, reason: KillReason) -> i64 {
    if let Some(seconds) = pod.metadata.deletion_grace_period_seconds {
        return seconds;
    }
    let probe = match reason {
        KillReason::StartupProbe => c.and_then(|c| c.startup_probe.as_ref()),
        KillReason::LivenessProbe => c.and_then(|c| c.liveness_probe.as_ref()),
        KillReason::FailedPostStartHook | KillReason::Other => None,
    };
    probe
        .and_then(|p| p.termination_grace_period_seconds)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
}

/// The reference of a container's events: `spec.containers{name}` or
/// `spec.initContainers{name}`, looked up in the spec as upstream's `GenerateContainerRef` does.
pub(super) fn container_reference(pod: &Pod, name: &str) -> ObjectReference {
    let spec = pod.spec.as_ref();
    let app = spec.is_some_and(|s| s.containers.iter().any(|c| c.name == name));
    let init = !app
        && spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|l| l.iter().any(|c| c.name == name));
    let list = if init { "initContainers" } else { "containers" };
    let mut r = reference(pod);
    r.field_path = Some(format!("spec.{list}{{{name}}}"));
    r
}

/// Run a lifecycle hook (exec, httpGet or sleep); on failure, upstream's message of it (which
/// the kubelet puts in a postStart failure's waiting message).
pub(super) async fn run_hook(
    shared: &Shared,
    ip: Option<IpAddr>,
    pod: &Pod,
    c: &Container,
    id: &str,
    hook: &LifecycleHandler,
) -> Result<(), String> {
    let pod_id = format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    );
    if let Some(exec) = &hook.exec {
        let argv = exec.command.clone().unwrap_or_default();
        // Go's `%v` of a string slice.
        let command = format!("[{}]", argv.join(" "));
        let failed = |error: String, output: &str| {
            format!(
                "Exec lifecycle hook ({command}) for Container {} in Pod {} failed - error: {error}, message: {}",
                go_quote(&c.name),
                go_quote(&pod_id),
                go_quote(output)
            )
        };
        return match shared.runtime.exec(id, &argv).await {
            Ok((0, _)) => Ok(()),
            Ok((code, out)) => {
                let out = String::from_utf8_lossy(&out).into_owned();
                let error = format!("command '{}' exited with {code}: {out}", argv.join(" "));
                Err(failed(error, &out))
            }
            Err(e) => Err(failed(e.to_string(), "")),
        };
    }
    if let Some(http) = &hook.http_get {
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                ip.map(|i| i.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into())
            });
        let path = http.path.clone().unwrap_or_default();
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        // Upstream's handler only needs an answer: any status code counts as success, and
        // redirects are followed as the prober follows them.
        let result = match resolve_port(c, &http.port) {
            Ok(port) => match ProbeRequest::new(
                "lifecycle",
                http.scheme.as_deref().unwrap_or("HTTP"),
                &host,
                port,
                &path,
                &headers,
            ) {
                Ok(request) => prober::http::get(&request).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        return result.map_err(|e| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {} in Pod {} failed - error: {e}",
                go_quote(&c.name),
                go_quote(&pod_id)
            )
        });
    }
    if let Some(sleep) = &hook.sleep {
        shared
            .clock
            .sleep(Duration::from_secs(sleep.seconds.max(0) as u64))
            .await;
    }
    Ok(())
}

/// Kill a container as upstream's `killContainer` does, within `grace_seconds`: the `Killing`
/// event (`message`, or `Stopping container <name>`), the preStop hook when there is time for
/// it (a failure is a `FailedPreStopHook` event without detail), then SIGTERM and, once what is
/// left of the grace period runs out (whole seconds, at least [`MINIMUM_GRACE_SECONDS`]),
/// SIGKILL. Without the pod (gone from the API) only the stop is left.
pub(super) async fn kill_container(
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
    pod: Option<Pod>,
    name: String,
    id: String,
    message: Option<String>,
    grace_seconds: i64,
) {
    let mut left = grace_seconds;
    if let Some(pod) = &pod {
        let cref = container_reference(pod, &name);
        let message = message.unwrap_or_else(|| format!("Stopping container {name}"));
        shared
            .recorder
            .record(&cref, EventType::Normal, "Killing", "", &message)
            .await;
        let spec = pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .find(|c| c.name == name)
        });
        let hook = spec.and_then(|c| Some((c, c.lifecycle.as_ref()?.pre_stop.as_ref()?)));
        if let (Some((c, hook)), true) = (hook, left > 0) {
            let started = shared.clock.now();
            let timeout = Duration::from_secs(u64::try_from(left).unwrap_or(0));
            let outcome = shared
                .clock
                .timeout(timeout, run_hook(&shared, ip, pod, c, &id, hook))
                .await;
            if let Ok(Err(detail)) = outcome {
                tracing::debug!(container = %name, %detail, "preStop hook failed");
                shared
                    .recorder
                    .record(
                        &cref,
                        EventType::Warning,
                        "FailedPreStopHook",
                        "",
                        PRE_STOP_HOOK_FAILED,
                    )
                    .await;
            }
            // Whole seconds spent, truncated as upstream counts them.
            left -= (shared.clock.now() - started).num_seconds();
        }
    }
    let left = left.max(MINIMUM_GRACE_SECONDS);
    shared
        .runtime
        .stop_container(&id, Duration::from_secs(u64::try_from(left).unwrap_or(0)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_grace_period_of_a_kill_follows_upstream() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 20,
            "containers": [{"name": "app", "livenessProbe": {"exec": {"command": ["true"]},
                "terminationGracePeriodSeconds": 3}}]}}),
        );
        let c = p.spec.as_ref().map(|s| s.containers[0].clone());
        assert_eq!(grace_period(&p, c.as_ref(), KillReason::LivenessProbe), 3);
        assert_eq!(grace_period(&p, c.as_ref(), KillReason::StartupProbe), 20);
        assert_eq!(
            grace_period(&p, c.as_ref(), KillReason::FailedPostStartHook),
            20
        );
        let mut deleted = p.clone();
        deleted.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(
            grace_period(&deleted, c.as_ref(), KillReason::LivenessProbe),
            5
        );
        let bare = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
        assert_eq!(grace_period(&bare, None, KillReason::Other), 30);
    }

    #[test]
    fn container_references_name_the_list_the_container_is_in() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]}}),
        );
        assert_eq!(
            container_reference(&p, "setup").field_path.as_deref(),
            Some("spec.initContainers{setup}")
        );
        assert_eq!(
            container_reference(&p, "app").field_path.as_deref(),
            Some("spec.containers{app}")
        );
    }
}

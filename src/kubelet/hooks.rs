//! Container lifecycle hooks as the kubelet runs them: postStart and preStop handlers (exec,
//! httpGet, sleep) with upstream's failure messages, and stopping a container after its preStop
//! hook within one grace period.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use super::prober::{http_status, port_of};
use super::Shared;
use crate::events::{reference, EventType};

/// Run a lifecycle hook (exec, httpGet or sleep); on failure, upstream's event message.
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
        return match shared.runtime.exec(id, &argv).await {
            Ok((0, _)) => Ok(()),
            Ok((code, out)) => {
                let out = String::from_utf8_lossy(&out).into_owned();
                Err(format!(
                    "Exec lifecycle hook ({argv:?}) for Container \"{}\" in Pod \"{pod_id}\" failed - error: command '{}' exited with {code}: {out}, message: {out:?}",
                    c.name,
                    argv.join(" ")
                ))
            }
            Err(e) => Err(format!("Exec lifecycle hook ({argv:?}) for Container \"{}\" in Pod \"{pod_id}\" failed - error: {e}, message: \"\"", c.name)),
        };
    }
    if let Some(http) = &hook.http_get {
        let port = port_of(c, &http.port).unwrap_or(80);
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                ip.map(|i| i.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into())
            });
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        let result = async {
            let s = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| e.to_string())?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
            let code = http_status(s, &request).await?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP lifecycle hook returned status {code}"))
            }
        }
        .await;
        return result.map_err(|e| format!("HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{pod_id}\" failed - error: {e}, message: \"\"", c.name));
    }
    if let Some(sleep) = &hook.sleep {
        shared
            .clock
            .sleep(Duration::from_secs(sleep.seconds.max(0) as u64))
            .await;
    }
    Ok(())
}

/// Stop a container as the kubelet does: the preStop hook first (within the grace period), then
/// SIGTERM and, when the rest of the grace period runs out, SIGKILL.
pub(super) async fn stop_with_pre_stop(
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
    pod: Pod,
    spec: Option<Container>,
    id: String,
    grace: Duration,
) {
    let started = shared.clock.now();
    if let Some(c) = &spec {
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
            let outcome = shared
                .clock
                .timeout(grace, run_hook(&shared, ip, &pod, c, &id, hook))
                .await;
            if let Ok(Err(message)) = outcome {
                let mut r = reference(&pod);
                r.field_path = Some(format!("spec.containers{{{}}}", c.name));
                shared
                    .recorder
                    .record(&r, EventType::Warning, "FailedPreStopHook", "", &message)
                    .await;
            }
        }
    }
    let spent = (shared.clock.now() - started).to_std().unwrap_or_default();
    shared
        .runtime
        .stop_container(&id, grace.saturating_sub(spent))
        .await;
}

//! Probers: liveness, readiness and startup probes of one container (exec in the container,
//! HTTP, TCP and gRPC to the pod's IP), run on their own task beside the pod worker, which reads
//! their results and acts on their notices (restart on a failed liveness or startup probe).
//!
//! As upstream's prober, an attempt succeeds, fails (an `Unhealthy` event, counted towards the
//! failure threshold), warns (an HTTP redirect it did not follow: a `ProbeWarning` event,
//! counted as a success) or errs (the kubelet could not run it, e.g. a port name the container
//! does not declare: an `Unhealthy` event `... probe errored and resulted in unknown state: ...`,
//! and the result is thrown away, so it never restarts the container nor makes it ready).

mod grpc;

pub(super) use crate::probe::{http, short_io, Outcome};

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Container, ObjectReference, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;

use super::Shared;
use crate::events::EventType;

/// What a prober tells its worker.
#[derive(Debug)]
pub(super) enum ProbeNotice {
    /// A result changed (readiness, startup).
    Changed,
    /// Liveness or startup failed past its threshold: restart the container.
    Kill {
        container: String,
        id: String,
        probe: &'static str,
    },
}

/// Probe results the status reads; the prober never writes status itself.
#[derive(Default)]
pub(super) struct ProbeResults {
    pub(super) ready: AtomicBool,
    pub(super) started: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    fn name(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Liveness => "Liveness",
            Self::Readiness => "Readiness",
        }
    }
}

pub(super) struct ProbeCtx {
    /// When the pod's probe workers started ticking (the kubelet took the pod on).
    pub(super) ticks_from: DateTime<Utc>,
    /// When this container instance started (initialDelaySeconds counts from then).
    pub(super) started_at: DateTime<Utc>,
    pub(super) shared: Arc<Shared>,
    pub(super) pod_ref: ObjectReference,
    pub(super) container: Container,
    pub(super) id: String,
    pub(super) ip: IpAddr,
    pub(super) results: Arc<ProbeResults>,
    pub(super) notify: mpsc::UnboundedSender<ProbeNotice>,
    pub(super) stop: tokio_util::sync::CancellationToken,
}

/// The port a probe names, as upstream's `probe.ResolveContainerPort`: a number, or the name of
/// one of the container's ports, or else a number written as a string.
pub(super) fn resolve_port(c: &Container, port: &IntOrString) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => match c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
        {
            Some(p) => i64::from(p.container_port),
            None => name.parse::<i64>().map_err(|_| {
                format!(
                    "strconv.Atoi: parsing {}: invalid syntax",
                    crate::k8s::go_quote(name)
                )
            })?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

/// Go's `time.Duration` text of whole seconds (`1s`, `1m0s`).
fn go_seconds(timeout: Duration) -> String {
    super::runtime::catalog::go_duration(timeout)
}

/// One probe attempt.
pub(super) async fn probe_once(ctx: &ProbeCtx, probe: &Probe) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let clock = &ctx.shared.clock;
    let host_or_ip = |host: &Option<String>| {
        host.clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| ctx.ip.to_string())
    };
    if let Some(get) = &probe.http_get {
        let port = match resolve_port(&ctx.container, &get.port) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let headers: Vec<(String, String)> = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let request = match http::ProbeRequest::new(
            "probe",
            get.scheme.as_deref().unwrap_or("HTTP"),
            &host_or_ip(&get.host),
            port,
            get.path.as_deref().unwrap_or(""),
            &headers,
        ) {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
        return match clock.timeout(timeout, http::probe(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failure(format!(
                "Get \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                http::go_string(&request.url)
            )),
        };
    }
    if let Some(g) = &probe.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return Outcome::Error(format!("invalid port number: {}", g.port));
        };
        let service = g.service.clone().unwrap_or_default();
        return grpc::probe(clock, ctx.ip, port, &service, timeout).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match resolve_port(&ctx.container, &tcp.port) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let host = host_or_ip(&tcp.host);
        let attempt = tokio::net::TcpStream::connect((host.as_str(), port));
        return match clock.timeout(timeout, attempt).await {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => {
                Outcome::Failure(format!("dial tcp {host}:{port}: connect: {}", short_io(&e)))
            }
            Err(_) => Outcome::Failure(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(exec) = &probe.exec {
        let argv = exec.command.clone().unwrap_or_default();
        return match clock
            .timeout(timeout, ctx.shared.runtime.exec(&ctx.id, &argv))
            .await
        {
            Ok(Ok((0, _))) => Outcome::Success,
            Ok(Ok((_, out))) => {
                Outcome::Failure(String::from_utf8_lossy(&out).trim_end().to_string())
            }
            Ok(Err(e)) => Outcome::Error(e.to_string()),
            Err(_) => Outcome::Failure(format!("command \"{}\" timed out", argv.join(" "))),
        };
    }
    Outcome::Success
}

/// When a probe worker ticks: every period from `from`, as a Go ticker does. `after` the tick
/// `last` was used, the next attempt is the next tick, or at once when a tick came while the
/// attempt ran (the ticker keeps one).
fn next_tick(
    from: DateTime<Utc>,
    period: Duration,
    last: DateTime<Utc>,
    after: DateTime<Utc>,
) -> DateTime<Utc> {
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
    let index = |t: DateTime<Utc>| (t - from).num_milliseconds().max(0) / period_ms;
    let tick = |i: i64| from + chrono::Duration::milliseconds(i.saturating_mul(period_ms));
    if index(after) > index(last) {
        after
    } else {
        tick(index(last) + 1)
    }
}

/// A prober worker: one per (container instance, probe kind). It probes on the pod's probe
/// ticks, a fixed period apart however long an attempt takes (upstream's worker runs on a
/// ticker), skipping ticks within initialDelaySeconds of the container's start; a readiness
/// probe also runs at once when the container starts (the kubelet triggers it while the
/// container's readiness is unknown).
pub(super) async fn probe_loop(ctx: Arc<ProbeCtx>, kind: ProbeKind, probe: Probe) {
    let clock = ctx.shared.clock.clone();
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1) as u32;
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1) as u32;
    let initial = i64::from(probe.initial_delay_seconds.unwrap_or(0).max(0));
    let now = clock.now();
    let mut at = if kind == ProbeKind::Readiness {
        now
    } else {
        next_tick(ctx.ticks_from, period, now, now)
    };
    let (mut successes, mut failures) = (0u32, 0u32);
    loop {
        let wait = (at - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = clock.sleep(wait) => {}
        }
        // Disabled for initialDelaySeconds (in whole seconds) after the container started;
        // liveness and readiness wait for the container to have started.
        let delayed = (clock.now() - ctx.started_at).num_seconds() < initial;
        let started = ctx.results.started.load(Ordering::Relaxed);
        if !delayed && (kind == ProbeKind::Startup || started) {
            if kind == ProbeKind::Startup && started {
                return;
            }
            let outcome = match probe_once(&ctx, &probe).await {
                Outcome::Error(e) => {
                    // Upstream throws the result away: no count, no threshold.
                    if !ctx.stop.is_cancelled() {
                        ctx.shared
                            .recorder
                            .record(
                                &ctx.pod_ref,
                                EventType::Warning,
                                "Unhealthy",
                                "",
                                &format!(
                                    "{} probe errored and resulted in unknown state: {e}",
                                    kind.title()
                                ),
                            )
                            .await;
                    }
                    at = next_tick(ctx.ticks_from, period, at, clock.now());
                    continue;
                }
                Outcome::Warning(w) => {
                    ctx.shared
                        .recorder
                        .record(
                            &ctx.pod_ref,
                            EventType::Warning,
                            "ProbeWarning",
                            "",
                            &format!("{} probe warning: {w}", kind.title()),
                        )
                        .await;
                    Ok(())
                }
                Outcome::Success => Ok(()),
                Outcome::Failure(f) => Err(f),
            };
            ctx.shared.count_probe(
                &ctx.pod_ref,
                &ctx.container.name,
                kind.title(),
                outcome.is_ok(),
            );
            match outcome {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                    if successes >= success_threshold {
                        match kind {
                            ProbeKind::Readiness
                                if !ctx.results.ready.swap(true, Ordering::Relaxed) =>
                            {
                                let _ = ctx.notify.send(ProbeNotice::Changed);
                            }
                            ProbeKind::Startup => {
                                ctx.results.started.store(true, Ordering::Relaxed);
                                let _ = ctx.notify.send(ProbeNotice::Changed);
                            }
                            _ => {}
                        }
                    }
                }
                Err(detail) => {
                    failures += 1;
                    successes = 0;
                    if ctx.stop.is_cancelled() {
                        return;
                    }
                    ctx.shared
                        .recorder
                        .record(
                            &ctx.pod_ref,
                            EventType::Warning,
                            "Unhealthy",
                            "",
                            &format!("{} probe failed: {detail}", kind.title()),
                        )
                        .await;
                    if failures >= failure_threshold {
                        match kind {
                            ProbeKind::Readiness => {
                                if ctx.results.ready.swap(false, Ordering::Relaxed) {
                                    let _ = ctx.notify.send(ProbeNotice::Changed);
                                }
                            }
                            ProbeKind::Liveness | ProbeKind::Startup => {
                                let _ = ctx.notify.send(ProbeNotice::Kill {
                                    container: ctx.container.name.clone(),
                                    id: ctx.id.clone(),
                                    probe: kind.name(),
                                });
                                // Probing pauses until the new container exists.
                                return;
                            }
                        }
                    }
                }
            }
        }
        at = next_tick(ctx.ticks_from, period, at, clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).expect("a valid time")
    }

    #[test]
    fn probes_tick_a_period_apart_however_long_an_attempt_takes() {
        let period = Duration::from_secs(5);
        // The worker started at 0; an attempt on the tick at 5 s took its 1 s timeout.
        assert_eq!(next_tick(t(0), period, t(5_000), t(6_000)), t(10_000));
        // The first attempt comes on the next tick after the container started.
        assert_eq!(next_tick(t(0), period, t(2_300), t(2_300)), t(5_000));
        // An attempt that outlasted a tick runs again at once, then on the ticks.
        assert_eq!(next_tick(t(0), period, t(5_000), t(11_000)), t(11_000));
        assert_eq!(next_tick(t(0), period, t(11_000), t(11_500)), t(15_000));
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn ports_resolve_as_upstream_resolves_them() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        let s = |v: &str| IntOrString::String(v.into());
        assert_eq!(resolve_port(&c, &s("http")), Ok(8080));
        assert_eq!(resolve_port(&c, &s("9090")), Ok(9090));
        assert_eq!(resolve_port(&c, &IntOrString::Int(80)), Ok(80));
        assert_eq!(
            resolve_port(&c, &s("grpc")),
            Err("strconv.Atoi: parsing \"grpc\": invalid syntax".into())
        );
        assert_eq!(
            resolve_port(&c, &IntOrString::Int(70000)),
            Err("invalid port number: 70000".into())
        );
    }
}

//! Pods: phases, readiness, container states and restarts, conditions, and what kubectl's
//! columns show.

use cucumber::then;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::harness::params::{Durations, Phase, Pods, Selector, Within};
use crate::harness::timeline::Object;
use crate::harness::vocabulary::{then, Phrase};
use crate::harness::{describe, Failure, StepResult, World};

pub const PHRASES: &[Phrase] = &[
    then(
        "within {duration} {pods} is/are {phase}",
        "within 30s pod web-* is Running",
        "Every pod the selector means (at least one) is in this phase.",
    ),
    then(
        "within {duration} node {word} runs {pods}",
        "within 60s node node-3 runs pod kube-system/kube-proxy-*",
        "A Running pod the selector means is bound to the node (say, a DaemonSet's pod on a node that joined).",
    ),
    then(
        "within {duration} {pods} is/are ready",
        "within 30s the pods of deployment web are ready",
        "Every pod the selector means (at least one) has Ready=True.",
    ),
    then(
        "within {duration} {pods} is/are not ready",
        "within 30s pod web-* is not ready",
        "Every pod the selector means (at least one) has Ready other than True.",
    ),
    then(
        "within {duration} container {word} of {pods} is running",
        "within 30s container app of pod web-* is running",
        "The container's state is running.",
    ),
    then(
        "within {duration} container {word} of {pods} is waiting with reason {word}",
        "within 2m container app of pod crash is waiting with reason CrashLoopBackOff",
        "The container waits for this reason (ContainerCreating, CrashLoopBackOff, ImagePullBackOff, ...).",
    ),
    then(
        "within {duration} container {word} of {pods} has terminated with reason {word} and exit code {int}",
        "within 30s container job of pod once has terminated with reason Completed and exit code 0",
        "The container's current (or, while it waits to restart, last) termination.",
    ),
    then(
        "within {duration} container {word} of {pods} has restarted {int} time(s)",
        "within 2m container app of pod crash has restarted 3 times",
        "restartCount is exactly this.",
    ),
    then(
        "within {duration} container {word} of {pods} has restarted at least {int} time(s)",
        "within 2m container app of pod crash has restarted at least 2 times",
        "restartCount is at least this.",
    ),
    then(
        "within {duration} container {word} of {pods} has restarted after back-offs of {durations}",
        "within 2m container app of pod crash has restarted after back-offs of 0s, 10s, 20s and 40s",
        "The time from each exit to the next start, in order (a second either way, and up to 3s plus a fifth later).",
    ),
    then(
        "the logs of container {word} of {pods} contain {string}",
        "the logs of container app of pod reader contain \"hello\"",
        "kubectl logs of the container (read once, now: wait for the state you need first) contain the text.",
    ),
    then(
        "within {duration} {pods} has/have condition {word} {word}",
        "within 30s pod web-* has condition Ready False",
        "A pod condition's type and status.",
    ),
    then(
        "within {duration} {pods} has/have condition {word} {word} with reason {word}",
        "within 30s pod big has condition PodScheduled False with reason Unschedulable",
        "A pod condition's type, status and reason.",
    ),
    then(
        "within {duration} {pods} shows/show {word} {word}",
        "within 2m pod crash shows STATUS CrashLoopBackOff",
        "A column of kubectl get pods (READY, STATUS, RESTARTS, NODE, ...); RESTARTS 2 also matches \"2 (5s ago)\".",
    ),
];

fn pod(o: &Object) -> Result<&Pod, String> {
    match o {
        Object::Pod(p) => Ok(p),
        other => Err(format!("is a {}, not a pod", other.kind())),
    }
}

fn container<'a>(p: &'a Pod, name: &str) -> Result<&'a ContainerStatus, String> {
    let status = p.status.as_ref();
    status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            status
                .and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
        .find(|c| c.name == name)
        .ok_or_else(|| {
            let declared = p
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .any(|c| c.name == name)
                })
                .unwrap_or(false);
            if declared {
                format!("container {name} has no status yet")
            } else {
                format!("has no container {name}")
            }
        })
}

#[then(expr = "within {duration} {pods} is/are {phase}")]
async fn in_phase(w: &mut World, within: Within, pods: Pods, phase: Phase) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("in phase {}", phase.as_str()),
        |_, o| {
            let p = pod(o)?;
            let have = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if have == phase.as_str() {
                Ok(())
            } else {
                Err(format!("is {have}"))
            }
        },
    )
    .await
}

#[then(expr = "within {duration} node {word} runs {pods}")]
async fn node_runs(w: &mut World, within: Within, node: String, pods: Pods) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    let ns = env.namespace.clone();
    env.timeline
        .wait(within.0, &format!("node {node} to run {selector}"), |s| {
            let objects = describe::current(s, &ns, &selector);
            let mut saw = Vec::new();
            for o in &objects {
                let Object::Pod(p) = o else { continue };
                let on = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                if on == Some(node.as_str()) && phase == Some("Running") {
                    return crate::harness::timeline::Check::Done(());
                }
                saw.push(format!(
                    "  pod {} is {} on {}",
                    o.name(),
                    phase.unwrap_or("without a phase"),
                    on.unwrap_or("no node")
                ));
            }
            if saw.is_empty() {
                saw.push(format!("  no {selector} exists"));
            }
            crate::harness::timeline::Check::NotYet(saw.join("\n"))
        })
        .await?;
    Ok(())
}

#[then(expr = "within {duration} {pods} is/are ready")]
async fn ready(w: &mut World, within: Within, pods: Pods) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(env, within.0, &selector, "to be ready", |_, o| {
        if crate::k8s::pod_is_ready(pod(o)?) {
            Ok(())
        } else {
            Err("is not ready".into())
        }
    })
    .await
}

#[then(expr = "within {duration} {pods} is/are not ready")]
async fn not_ready(w: &mut World, within: Within, pods: Pods) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(env, within.0, &selector, "not to be ready", |_, o| {
        if crate::k8s::pod_is_ready(pod(o)?) {
            Err("is ready".into())
        } else {
            Ok(())
        }
    })
    .await
}

#[then(expr = "within {duration} container {word} of {pods} is running")]
async fn running(w: &mut World, within: Within, name: String, pods: Pods) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("with container {name} running"),
        |_, o| {
            let c = container(pod(o)?, &name)?;
            if c.state.as_ref().and_then(|s| s.running.as_ref()).is_some() {
                Ok(())
            } else {
                Err(format!(
                    "container {name} is {}",
                    describe::container_state(c)
                ))
            }
        },
    )
    .await
}

#[then(expr = "within {duration} container {word} of {pods} is waiting with reason {word}")]
async fn waiting(
    w: &mut World,
    within: Within,
    name: String,
    pods: Pods,
    reason: String,
) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("with container {name} waiting ({reason})"),
        |_, o| {
            let c = container(pod(o)?, &name)?;
            let have = c
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref());
            if have == Some(reason.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "container {name} is {}",
                    describe::container_state(c)
                ))
            }
        },
    )
    .await
}

#[then(
    expr = "within {duration} container {word} of {pods} has terminated with reason {word} and exit code {int}"
)]
async fn terminated(
    w: &mut World,
    within: Within,
    name: String,
    pods: Pods,
    reason: String,
    code: i32,
) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("with container {name} terminated ({reason}, exit code {code})"),
        |_, o| {
            let c = container(pod(o)?, &name)?;
            let t = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
            match t {
                Some(t) if t.reason.as_deref() == Some(reason.as_str()) && t.exit_code == code => {
                    Ok(())
                }
                Some(t) => Err(format!(
                    "container {name} terminated with reason {} and exit code {}",
                    t.reason.as_deref().unwrap_or("<none>"),
                    t.exit_code
                )),
                None => Err(format!(
                    "container {name} is {}",
                    describe::container_state(c)
                )),
            }
        },
    )
    .await
}

async fn restarts(
    w: &mut World,
    within: Within,
    name: String,
    selector: Selector,
    n: i32,
    at_least: bool,
) -> StepResult {
    let env = w.env().await?;
    let what = if at_least { "at least " } else { "" };
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("with container {name} restarted {what}{n} times"),
        |_, o| {
            let c = container(pod(o)?, &name)?;
            let ok = if at_least {
                c.restart_count >= n
            } else {
                c.restart_count == n
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "container {name} has restarted {} times",
                    c.restart_count
                ))
            }
        },
    )
    .await
}

#[then(expr = "within {duration} container {word} of {pods} has restarted {int} time(s)")]
async fn restarted(w: &mut World, within: Within, name: String, pods: Pods, n: i32) -> StepResult {
    let selector = pods.0;
    restarts(w, within, name, selector, n, false).await
}

#[then(expr = "within {duration} container {word} of {pods} has restarted at least {int} time(s)")]
async fn restarted_at_least(
    w: &mut World,
    within: Within,
    name: String,
    pods: Pods,
    n: i32,
) -> StepResult {
    let selector = pods.0;
    restarts(w, within, name, selector, n, true).await
}

async fn condition(
    w: &mut World,
    within: Within,
    selector: Selector,
    type_: String,
    status: String,
    reason: Option<String>,
) -> StepResult {
    let env = w.env().await?;
    let expected = match &reason {
        Some(r) => format!("with condition {type_}={status} ({r})"),
        None => format!("with condition {type_}={status}"),
    };
    super::wait_each(env, within.0, &selector, &expected, |_, o| {
        let conditions = pod(o)?.status.as_ref().and_then(|s| s.conditions.as_ref());
        let c = super::find_condition(conditions, &type_);
        super::check_condition(&type_, c, &status, reason.as_deref())
    })
    .await
}

#[then(expr = "within {duration} {pods} has/have condition {word} {word}")]
async fn has_condition(
    w: &mut World,
    within: Within,
    pods: Pods,
    type_: String,
    status: String,
) -> StepResult {
    let selector = pods.0;
    condition(w, within, selector, type_, status, None).await
}

#[then(expr = "within {duration} {pods} has/have condition {word} {word} with reason {word}")]
async fn has_condition_reason(
    w: &mut World,
    within: Within,
    pods: Pods,
    type_: String,
    status: String,
    reason: String,
) -> StepResult {
    let selector = pods.0;
    condition(w, within, selector, type_, status, Some(reason)).await
}

#[then(expr = "within {duration} {pods} shows/show {word} {word}")]
async fn shows(
    w: &mut World,
    within: Within,
    pods: Pods,
    column: String,
    value: String,
) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    let clock = env.timeline.clock().clone();
    let column = column.to_ascii_uppercase();
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("to show {column} {value}"),
        |_, o| {
            let p = pod(o)?;
            let cols = describe::pod_columns(p, clock.now());
            let Some((_, have)) = cols.iter().find(|(c, _)| *c == column) else {
                return Err(format!(
                    "kubectl get pods has no column {column} (it has {})",
                    cols.iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if *have == value || have.starts_with(&format!("{value} (")) {
                Ok(())
            } else {
                Err(format!("shows {column} {have}"))
            }
        },
    )
    .await
    .map_err(|e: Failure| e)
}

/// The runs of a container the timeline saw, as (started, finished) in cluster time, oldest
/// first (from its terminated state and last state in every version of the pod).
fn runs(s: &crate::harness::timeline::State, uid: &str, container: &str) -> Vec<(f64, f64)> {
    // Keyed by container id: an immediate restart starts within the same second.
    let mut runs: Vec<(String, f64, f64)> = Vec::new();
    let secs = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
        t.0.as_millisecond() as f64 / 1000.0
    };
    for e in &s.entries {
        let Some(Object::Pod(p)) = e.object.as_deref() else {
            continue;
        };
        if p.metadata.uid.as_deref() != Some(uid) {
            continue;
        }
        let Ok(c) = container_status(p, container) else {
            continue;
        };
        for t in [
            c.state.as_ref().and_then(|s| s.terminated.as_ref()),
            c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
        ]
        .into_iter()
        .flatten()
        {
            if let (Some(start), Some(end)) = (&t.started_at, &t.finished_at) {
                let id = t
                    .container_id
                    .clone()
                    .unwrap_or_else(|| format!("{start:?}"));
                if !runs.iter().any(|r| r.0 == id) {
                    runs.push((id, secs(start), secs(end)));
                }
            }
        }
    }
    runs.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.2.total_cmp(&b.2)));
    runs.into_iter().map(|(_, s, e)| (s, e)).collect()
}

fn container_status<'a>(p: &'a Pod, name: &str) -> Result<&'a ContainerStatus, String> {
    container(p, name)
}

#[then(
    expr = "within {duration} container {word} of {pods} has restarted after back-offs of {durations}"
)]
async fn backoffs(
    w: &mut World,
    within: Within,
    name: String,
    pods: Pods,
    expected: Durations,
) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    let want: Vec<f64> = expected.0.iter().map(|d| d.as_secs_f64()).collect();
    super::wait_each(
        env,
        within.0,
        &selector,
        &format!("with container {name} restarted after back-offs of {want:?} seconds"),
        |s, o| {
            let runs = runs(s, o.uid(), &name);
            // The gap before each run after the first: its start minus the previous run's end.
            let gaps: Vec<f64> = runs.windows(2).map(|w| w[1].0 - w[0].1).collect();
            if gaps.len() < want.len() {
                return Err(format!(
                    "{} runs seen so far, back-offs {gaps:?} seconds",
                    runs.len()
                ));
            }
            for (i, (have, want)) in gaps.iter().zip(&want).enumerate() {
                // Timestamps have whole seconds; the kubelet restarts a little after the
                // back-off ends.
                if *have < want - 1.0 || *have > want + 3.0 + want / 5.0 {
                    return Err(format!(
                        "back-off {} was {have}s, expected {want}s (all: {gaps:?} seconds)",
                        i + 1
                    ));
                }
            }
            Ok(())
        },
    )
    .await
}

#[then(expr = "the logs of container {word} of {pods} contain {string}")]
async fn logs_contain(w: &mut World, name: String, pods: Pods, text: String) -> StepResult {
    let selector = pods.0;
    let env = w.env().await?;
    let names: Vec<String> = env.timeline.read(|s| {
        describe::current(s, &env.namespace, &selector)
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    });
    if names.is_empty() {
        return Err(Failure::new(format!("there is no {selector}")));
    }
    let api: kube::Api<Pod> = kube::Api::namespaced(env.client.clone(), &env.namespace);
    for pod in names {
        let params = kube::api::LogParams {
            container: Some(name.clone()),
            ..Default::default()
        };
        let logs = api.logs(&pod, &params).await.map_err(|e| {
            Failure::new(format!(
                "cannot read the logs of container {name} of pod {pod}: {e}"
            ))
        })?;
        if !logs.contains(&text) {
            return Err(Failure::new(format!(
                "the logs of container {name} of pod {pod} do not contain {text:?}; they are:\n{}",
                if logs.is_empty() {
                    "(empty)".to_string()
                } else {
                    logs
                }
            )));
        }
    }
    Ok(())
}

//! The node lifecycle controller and the taint eviction controller.
//!
//! Every monitor period (5 s) each node's health is judged from what this controller last saw
//! change — the node Lease's renewTime or the Ready condition's heartbeat — against its own clock,
//! as upstream does. A node silent for longer than the grace period (50 s; 60 s after start-up)
//! gets Ready=Unknown (`NodeStatusUnknown`) and the `node.kubernetes.io/unreachable` taints; a node
//! reporting Ready=False gets the `not-ready` taints. Pods on a node with NoExecute taints are
//! evicted once their tolerations run out (`TaintManagerEviction`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::clock::{format_time, Clock};
use crate::events::{reference, EventType, Recorder};
use crate::k8s::tolerations::tolerates;
use crate::runtime::Informers;

/// The unreachable taint key.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The not-ready taint key.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Timing of the node lifecycle controller (cluster time).
#[derive(Clone, Debug)]
pub struct NodeLifecycleConfig {
    /// How often nodes are judged (5 s).
    pub monitor_period: Duration,
    /// How long a node may be silent before it is Unknown (50 s since 1.32).
    pub grace_period: Duration,
    /// How long a new node may take to post its first status (60 s).
    pub startup_grace_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(50),
            startup_grace_period: Duration::from_secs(60),
        }
    }
}

/// What this controller last saw of a node, by its own clock.
#[derive(Default)]
struct Health {
    probe: Option<DateTime<Utc>>,
    lease_renew: Option<String>,
    heartbeat: Option<String>,
}

fn time(t: DateTime<Utc>) -> Time {
    crate::clock::meta_time(t)
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The taints a node's Ready condition calls for (key, effect).
pub fn condition_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match ready {
        Some("True") | None => vec![],
        Some("False") => vec![
            (TAINT_NOT_READY, "NoSchedule"),
            (TAINT_NOT_READY, "NoExecute"),
        ],
        Some(_) => vec![
            (TAINT_UNREACHABLE, "NoSchedule"),
            (TAINT_UNREACHABLE, "NoExecute"),
        ],
    }
}

/// When a pod on a node with these NoExecute taints must go: `Some(now-or-past)` when a taint is
/// not tolerated, the earliest toleration expiry otherwise, `None` if it tolerates them forever.
pub fn eviction_deadline(pod: &Pod, taints: &[Taint], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut deadline: Option<DateTime<Utc>> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // A matching toleration without tolerationSeconds tolerates forever.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint
            .time_added
            .as_ref()
            .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
            .unwrap_or(now);
        // A tolerationSeconds beyond any representable time tolerates for ever.
        let Some(at) = crate::clock::add_seconds(added, seconds) else {
            continue;
        };
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    deadline
}

struct Ctx {
    client: Client,
    clock: Clock,
    config: NodeLifecycleConfig,
    recorder: Recorder,
    eviction_recorder: Recorder,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
}

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "node-lifecycle-controller";

/// Run both controllers until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    host: String,
    config: NodeLifecycleConfig,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let nodes = informers.all::<Node>();
    let leases = informers.namespaced::<Lease>("kube-node-lease");
    let pods = informers.all::<Pod>();
    nodes.ready().await;
    leases.ready().await;
    pods.ready().await;
    let ctx = Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), "node-controller", &host),
        eviction_recorder: Recorder::core(
            client.clone(),
            clock.clone(),
            "taint-eviction-controller",
            &host,
        ),
        client,
        clock: clock.clone(),
        config,
        nodes: nodes.store(),
        leases: leases.store(),
        pods: pods.store(),
    };
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut evicted: HashSet<String> = HashSet::new();
    loop {
        monitor(&ctx, &mut health).await;
        evict(&ctx, &mut evicted).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = clock.sleep(ctx.config.monitor_period) => {}
        }
    }
}

async fn monitor(ctx: &Ctx, health: &mut HashMap<String, Health>) {
    let now = ctx.clock.now();
    let api: Api<Node> = Api::all(ctx.client.clone());
    let live: HashSet<String> = ctx
        .nodes
        .state()
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    health.retain(|name, _| live.contains(name));
    for node in ctx.nodes.state() {
        let name = node.metadata.name.clone().unwrap_or_default();
        let first_sight = !health.contains_key(&name);
        let h = health.entry(name.clone()).or_default();
        if first_sight {
            h.probe = Some(now);
            ctx.recorder
                .record(
                    &reference(node.as_ref()),
                    EventType::Normal,
                    "RegisteredNode",
                    "",
                    &format!("Node {name} event: Registered Node {name} in Controller"),
                )
                .await;
        }
        let lease_renew = ctx
            .leases
            .get(&ObjectRef::new(&name).within("kube-node-lease"))
            .and_then(|l| {
                l.spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string())
            });
        if lease_renew.is_some() && lease_renew != h.lease_renew {
            h.lease_renew = lease_renew;
            h.probe = Some(now);
        }
        let ready = ready_condition(&node);
        let heartbeat = ready
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        if heartbeat.is_some() && heartbeat != h.heartbeat {
            h.heartbeat = heartbeat;
            h.probe = Some(now);
        }
        let grace = if ready.is_none() {
            ctx.config.startup_grace_period
        } else {
            ctx.config.grace_period
        };
        let silent = h
            .probe
            .is_some_and(|p| now > p + chrono::Duration::from_std(grace).unwrap_or_default());
        let mut current = (*node).clone();
        if silent {
            let was_ready = ready.map(|c| c.status.clone());
            let changed = mark_unknown(&mut current, now);
            if changed {
                match api
                    .replace_status(&name, &PostParams::default(), &current)
                    .await
                {
                    Ok(written) => current = written,
                    Err(e) => {
                        tracing::debug!(node = %name, cause = %e, "cannot mark the node Unknown");
                        continue;
                    }
                }
                if was_ready.as_deref() == Some("True") {
                    ctx.recorder
                        .record(
                            &reference(node.as_ref()),
                            EventType::Normal,
                            "NodeNotReady",
                            "",
                            &format!("Node {name} status is now: NodeNotReady"),
                        )
                        .await;
                    mark_pods_not_ready(ctx, &name).await;
                }
            }
        }
        reconcile_taints(&api, &current, now).await;
    }
}

/// Set the kubelet-owned conditions to Unknown; true if anything changed.
fn mark_unknown(node: &mut Node, now: DateTime<Utc>) -> bool {
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: None,
                    last_transition_time: Some(time(now)),
                });
                changed = true;
            }
        }
    }
    changed
}

async fn mark_pods_not_ready(ctx: &Ctx, node: &str) {
    for pod in ctx.pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": format_time(ctx.clock.now())}]}});
        if api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .is_ok()
        {
            ctx.recorder
                .record(
                    &reference(pod.as_ref()),
                    EventType::Warning,
                    "NodeNotReady",
                    "",
                    "Node is not ready",
                )
                .await;
        }
    }
}

async fn reconcile_taints(api: &Api<Node>, node: &Node, now: DateTime<Utc>) {
    let ready = ready_condition(node).map(|c| c.status.as_str());
    let wanted = condition_taints(ready);
    let existing = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ours = |t: &Taint| t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY;
    let mut next: Vec<Taint> = existing
        .iter()
        .filter(|t| !ours(t) || wanted.contains(&(t.key.as_str(), t.effect.as_str())))
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: (*key).into(),
                effect: (*effect).into(),
                value: None,
                time_added: (*effect == "NoExecute").then(|| time(now)),
            });
        }
    }
    if next == existing {
        return;
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let taints = if next.is_empty() {
        serde_json::Value::Null
    } else {
        json!(next)
    };
    let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
    if let Err(e) = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::debug!(node = %name, cause = %e, "cannot update node taints");
    }
}

async fn evict(ctx: &Ctx, evicted: &mut HashSet<String>) {
    let now = ctx.clock.now();
    let tainted: HashMap<String, Vec<Taint>> = ctx
        .nodes
        .state()
        .iter()
        .filter_map(|n| {
            let taints: Vec<Taint> = n
                .spec
                .as_ref()?
                .taints
                .clone()?
                .into_iter()
                .filter(|t| t.effect == "NoExecute")
                .collect();
            (!taints.is_empty()).then(|| (n.metadata.name.clone().unwrap_or_default(), taints))
        })
        .collect();
    let live: HashSet<String> = ctx
        .pods
        .state()
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    evicted.retain(|uid| live.contains(uid));
    for pod in ctx.pods.state() {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let Some(taints) = tainted.get(&node) else {
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() || evicted.contains(&uid) {
            continue;
        }
        let Some(deadline) = eviction_deadline(&pod, taints, now) else {
            continue;
        };
        if deadline > now {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        ctx.eviction_recorder
            .record(
                &reference(pod.as_ref()),
                EventType::Normal,
                "TaintManagerEviction",
                "",
                &format!("Marking for deletion Pod {ns}/{name}"),
            )
            .await;
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let condition = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint", "lastProbeTime": null, "lastTransitionTime": format_time(now)}]}});
        let _ = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
            .await;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                evicted.insert(uid);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::debug!(pod = %name, cause = %e, "cannot evict pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, added: &str) -> Taint {
        serde_json::from_value(json!({"key": key, "effect": "NoExecute", "timeAdded": added}))
            .unwrap()
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": tolerations}})).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_300s_toleration_sets_the_eviction_time() {
        let p = pod(
            json!([{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
        );
        let deadline = eviction_deadline(
            &p,
            &[taint(TAINT_UNREACHABLE, "2026-01-01T00:00:00Z")],
            t("2026-01-01T00:01:00Z"),
        );
        assert_eq!(deadline, Some(t("2026-01-01T00:05:00Z")));
    }

    #[test]
    fn an_untolerated_taint_evicts_at_once_and_a_forever_toleration_never() {
        let now = t("2026-01-01T00:01:00Z");
        assert_eq!(
            eviction_deadline(
                &pod(json!([])),
                &[taint(TAINT_UNREACHABLE, "2026-01-01T00:00:00Z")],
                now
            ),
            Some(now)
        );
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(
            eviction_deadline(
                &forever,
                &[taint(TAINT_UNREACHABLE, "2026-01-01T00:00:00Z")],
                now
            ),
            None
        );
    }

    #[test]
    fn a_toleration_beyond_any_time_tolerates_for_ever() {
        let p = pod(
            json!([{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": i64::MAX}]),
        );
        let now = t("2026-01-01T00:01:00Z");
        let taints = [taint(TAINT_UNREACHABLE, "2026-01-01T00:00:00Z")];
        assert_eq!(eviction_deadline(&p, &taints, now), None);
    }

    #[test]
    fn ready_conditions_map_to_taints() {
        assert!(condition_taints(Some("True")).is_empty());
        assert_eq!(
            condition_taints(Some("Unknown")),
            vec![
                (TAINT_UNREACHABLE, "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute")
            ]
        );
        assert_eq!(
            condition_taints(Some("False"))[1],
            (TAINT_NOT_READY, "NoExecute")
        );
    }
}

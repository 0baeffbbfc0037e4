//! The pod garbage collector (upstream's `pod-garbage-collector-controller`): every 20 s of
//! cluster time it force-deletes the pods nobody else will finish:
//!
//! - terminated pods (any phase but Pending, Running and Unknown) above the
//!   `--terminated-pod-gc-threshold` (12500), evicted ones first, then oldest first;
//! - terminating pods on a node that is not Ready and carries the
//!   `node.kubernetes.io/out-of-service` taint;
//! - orphaned pods, bound to a node that does not exist: a node first missed is quarantined for
//!   40 s, and only a GET after that which still finds nothing makes its pods orphans (they get
//!   the `DisruptionTarget` condition, reason `DeletionByPodGC`);
//! - terminating pods that were never scheduled.
//!
//! A pod that is not yet Succeeded or Failed is first marked `Failed` through the status
//! subresource (with the condition, for orphans), then deleted with a grace period of 0. Like
//! upstream's, it records no events.
//!
//! It reads pods and nodes from the shared informers and writes only through the kube client.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::clock::{add_std, format_time, Clock};
use crate::k8s::node_is_ready;
use crate::runtime::Informers;

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "pod-garbage-collector-controller";

/// How often the collector looks at every pod (upstream's `gcCheckPeriod`).
pub const GC_CHECK_PERIOD: Duration = Duration::from_secs(20);

/// How long a node missing from the informer is given to show up before a GET decides that it
/// is gone (upstream's `quarantineTime`).
pub const QUARANTINE_TIME: Duration = Duration::from_secs(40);

/// The taint an administrator puts on a node that is out of service for good.
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// The default of `--terminated-pod-gc-threshold`.
pub const DEFAULT_TERMINATED_POD_GC_THRESHOLD: i32 = 12_500;

/// The reason of the `DisruptionTarget` condition an orphaned pod gets.
pub const REASON_DELETION_BY_POD_GC: &str = "DeletionByPodGC";

/// The message of that condition.
pub const MESSAGE_NODE_GONE: &str = "PodGC: node no longer exists";

/// Settings of the pod garbage collector.
#[derive(Clone, Debug)]
pub struct PodGcConfig {
    /// How many terminated pods may exist before the oldest are deleted
    /// (`--terminated-pod-gc-threshold`, 12500); 0 or less keeps them all.
    pub terminated_pod_gc_threshold: i32,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        Self {
            terminated_pod_gc_threshold: DEFAULT_TERMINATED_POD_GC_THRESHOLD,
        }
    }
}

/// Whether a pod has terminated: its phase is none of Pending, Running and Unknown (as
/// upstream's `isPodTerminated`, a pod with no phase counts).
pub fn is_terminated(pod: &Pod) -> bool {
    !matches!(
        phase(pod),
        Some("Pending") | Some("Running") | Some("Unknown")
    )
}

/// Whether the kubelet evicted the pod: phase Failed, reason Evicted.
pub fn is_evicted(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    phase(pod) == Some("Failed") && status.and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

/// The order pods are collected in: evicted pods first, then by creationTimestamp, then by
/// name (upstream's `byEvictionAndCreationTimestamp`).
pub fn collection_order(a: &Pod, b: &Pod) -> Ordering {
    is_evicted(b)
        .cmp(&is_evicted(a))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a).cmp(&created(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The terminated pods to delete so that at most `threshold` remain, in collection order;
/// none when `threshold` is 0 or less.
pub fn terminated_over_threshold(pods: &[Arc<Pod>], threshold: i32) -> Vec<Arc<Pod>> {
    let Ok(threshold) = usize::try_from(threshold) else {
        return Vec::new();
    };
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let excess = terminated.len().saturating_sub(threshold);
    if excess == 0 {
        return Vec::new();
    }
    terminated.sort_by(|a, b| collection_order(a, b));
    terminated.truncate(excess);
    terminated
}

/// Terminating pods on a node that is not Ready and is tainted out of service, in collection
/// order; `node` looks a node up by name.
pub fn terminating_out_of_service(
    pods: &[Arc<Pod>],
    node: impl Fn(&str) -> Option<Arc<Node>>,
) -> Vec<Arc<Pod>> {
    let mut found: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter(|p| {
            node(node_name(p)).is_some_and(|n| {
                let tainted = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE));
                !node_is_ready(&n) && tainted
            })
        })
        .cloned()
        .collect();
    found.sort_by(|a, b| collection_order(a, b));
    found
}

/// Terminating pods that were never bound to a node.
pub fn unscheduled_terminating(pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
        .cloned()
        .collect()
}

/// The nodes pods are bound to that the informer does not know: suspects, each due for a check
/// once its quarantine is over (upstream's delaying `orphaned_pods_nodes` queue).
#[derive(Debug, Default)]
pub struct Quarantine {
    /// Suspects and when their quarantine ends.
    waiting: HashMap<String, DateTime<Utc>>,
    /// Suspects whose quarantine is over, to be checked.
    due: BTreeSet<String>,
}

impl Quarantine {
    /// Move the suspects whose quarantine ended by `now` to the due set.
    fn release(&mut self, now: DateTime<Utc>) {
        let ended: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in ended {
            self.waiting.remove(&name);
            self.due.insert(name);
        }
    }

    /// Quarantine `node` until `quarantine` after `now`, unless it is already waiting to be
    /// released sooner.
    pub fn suspect(&mut self, node: &str, now: DateTime<Utc>, quarantine: Duration) {
        self.release(now);
        let until = add_std(now, quarantine);
        self.waiting
            .entry(node.to_string())
            .and_modify(|at| *at = (*at).min(until))
            .or_insert(until);
    }

    /// The suspects whose quarantine is over at `now`, taken out of the quarantine.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<String> {
        self.release(now);
        std::mem::take(&mut self.due).into_iter().collect()
    }
}

/// The status patch that marks `pod` Failed before it is deleted, with `condition` (type,
/// reason, message) set True at `now` as upstream's `UpdatePodCondition` sets it; `None` when
/// the pod has already Succeeded or Failed, which leaves its status as it is.
///
/// The strategic merge patch is the one upstream's `PatchPodStatus` computes: the pod's uid as
/// a precondition, the new phase, and the condition with the order of the whole list.
pub fn failed_status_patch(
    pod: &Pod,
    condition: Option<(&str, &str, &str)>,
    now: DateTime<Utc>,
) -> Option<Value> {
    if matches!(phase(pod), Some("Succeeded" | "Failed")) {
        return None;
    }
    let mut status = json!({"phase": "Failed"});
    if let Some((type_, reason, message)) = condition {
        let existing = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let old = existing.iter().find(|c| c.type_ == type_);
        // A condition whose status does not change keeps its transition time.
        let transition = match old {
            Some(c) if c.status == "True" => c
                .last_transition_time
                .as_ref()
                .map(|t| Value::String(t.0.to_string()))
                .unwrap_or(Value::Null),
            _ => Value::String(format_time(now)),
        };
        let unchanged = old.is_some_and(|c| {
            c.status == "True"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        });
        if !unchanged {
            let mut order: Vec<Value> = existing.iter().map(|c| json!({"type": c.type_})).collect();
            if old.is_none() {
                order.push(json!({"type": type_}));
            }
            status["$setElementOrder/conditions"] = Value::Array(order);
            status["conditions"] = json!([{
                "type": type_,
                "status": "True",
                "lastProbeTime": null,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            }]);
        }
    }
    Some(json!({"metadata": {"uid": pod.metadata.uid}, "status": status}))
}

/// Why a pod could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Marking the pod Failed was refused or failed.
    #[error("cannot mark pod {pod} Failed: {source}")]
    MarkFailed {
        /// `namespace/name`.
        pod: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The delete was refused or failed.
    #[error("cannot delete pod {pod}: {source}")]
    Delete {
        /// `namespace/name`.
        pod: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct PodGc {
    client: Client,
    clock: Clock,
    config: PodGcConfig,
    pods: Store<Pod>,
    nodes: Store<Node>,
    quarantine: Quarantine,
}

/// Run the collector until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    config: PodGcConfig,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let pods = informers.all::<Pod>();
    let nodes = informers.all::<Node>();
    pods.ready().await;
    nodes.ready().await;
    tracing::debug!(controller = CONTROLLER, "Starting controller");
    let mut gc = PodGc {
        client,
        clock: clock.clone(),
        config,
        pods: pods.store(),
        nodes: nodes.store(),
        quarantine: Quarantine::default(),
    };
    // As upstream's wait.Until: at once, then a period after each pass ends.
    loop {
        gc.gc().await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = clock.sleep(GC_CHECK_PERIOD) => {}
        }
    }
}

impl PodGc {
    /// One pass, over one listing of pods and nodes.
    async fn gc(&mut self) {
        let pods = self.pods.state();
        let nodes = self.nodes.state();
        let terminated = terminated_over_threshold(&pods, self.config.terminated_pod_gc_threshold);
        if !terminated.is_empty() {
            tracing::info!(num_pods = terminated.len(), "Garbage collecting pods");
        }
        self.collect_all(&terminated).await;
        let store = self.nodes.clone();
        let out_of_service =
            terminating_out_of_service(&pods, move |name| store.get(&ObjectRef::new(name)));
        self.collect_all(&out_of_service).await;
        self.gc_orphaned(&pods, &nodes).await;
        for pod in unscheduled_terminating(&pods) {
            match self.collect(&pod, None).await {
                Ok(()) => {
                    tracing::info!(pod = %key(&pod), "Forced deletion of unscheduled terminating Pod succeeded")
                }
                Err(e) => tracing::warn!(cause = %e, "pod garbage collection"),
            }
        }
    }

    /// Delete `pods` at once, as upstream's goroutine per pod.
    async fn collect_all(&self, pods: &[Arc<Pod>]) {
        let results = futures::future::join_all(pods.iter().map(|p| self.collect(p, None))).await;
        for e in results.into_iter().filter_map(Result::err) {
            tracing::warn!(cause = %e, "pod garbage collection");
        }
    }

    async fn gc_orphaned(&mut self, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) {
        let existing: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        let now = self.clock.now();
        for pod in pods {
            let node = node_name(pod);
            if !node.is_empty() && !existing.contains(node) {
                self.quarantine.suspect(node, now, QUARANTINE_TIME);
            }
        }
        let mut deleted: HashSet<String> = HashSet::new();
        let api: Api<Node> = Api::all(self.client.clone());
        for node in self.quarantine.take_due(self.clock.now()) {
            if existing.contains(node.as_str()) {
                continue;
            }
            // The informer may lag: only the apiserver says a node is gone.
            match api.get_opt(&node).await {
                Ok(None) => {
                    deleted.insert(node);
                }
                Ok(Some(_)) => {}
                // Suspected again on the next pass if its pods are still there.
                Err(e) => tracing::warn!(node = %node, cause = %e, "Error while getting node"),
            }
        }
        let condition = Some((
            "DisruptionTarget",
            REASON_DELETION_BY_POD_GC,
            MESSAGE_NODE_GONE,
        ));
        for pod in pods.iter().filter(|p| deleted.contains(node_name(p))) {
            tracing::debug!(pod = %key(pod), node = node_name(pod), "Found orphaned Pod assigned to the Node, deleting");
            match self.collect(pod, condition).await {
                Ok(()) => {
                    tracing::info!(pod = %key(pod), "Forced deletion of orphaned Pod succeeded")
                }
                Err(e) => tracing::warn!(cause = %e, "pod garbage collection"),
            }
        }
    }

    /// Mark `pod` Failed (with `condition`) unless it has finished, then delete it with a grace
    /// period of 0. A pod already gone counts as collected.
    async fn collect(&self, pod: &Pod, condition: Option<(&str, &str, &str)>) -> Result<()> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        tracing::info!(pod = %key(pod), "PodGC is force deleting Pod");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if let Some(patch) = failed_status_patch(pod, condition, self.clock.now()) {
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(source) => {
                    return Err(Error::MarkFailed {
                        pod: key(pod),
                        source,
                    })
                }
            }
        }
        match api
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete {
                pod: key(pod),
                source,
            }),
        }
    }
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pod(v: Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn terminated(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        pod(
            json!({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"nodeName": "n", "containers": []}, "status": {"phase": phase}}),
        )
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn terminated_pods_over_the_threshold_go_evicted_first_then_oldest_first() {
        let evicted = pod(
            json!({"metadata": {"name": "evicted", "creationTimestamp": "2026-01-01T00:09:00Z"},
            "status": {"phase": "Failed", "reason": "Evicted"}}),
        );
        let pods = vec![
            terminated("a", "Succeeded", "2026-01-01T00:03:00Z"),
            terminated("z", "Failed", "2026-01-01T00:01:00Z"),
            terminated("running", "Running", "2026-01-01T00:00:00Z"),
            terminated("b", "Succeeded", "2026-01-01T00:03:00Z"),
            evicted,
        ];
        assert_eq!(
            names(&terminated_over_threshold(&pods, 1)),
            ["evicted", "z", "a"]
        );
        assert_eq!(
            names(&terminated_over_threshold(&pods, 2)),
            ["evicted", "z"]
        );
        assert!(terminated_over_threshold(&pods, 4).is_empty());
        assert!(terminated_over_threshold(&pods, 0).is_empty(), "0 disables");
        assert!(terminated_over_threshold(&pods, -1).is_empty());
    }

    #[test]
    fn only_pending_running_and_unknown_pods_are_not_terminated() {
        for (phase, done) in [
            (json!("Pending"), false),
            (json!("Running"), false),
            (json!("Unknown"), false),
            (json!("Succeeded"), true),
            (json!("Failed"), true),
            (Value::Null, true),
        ] {
            let p = pod(json!({"metadata": {"name": "p"}, "status": {"phase": phase}}));
            assert_eq!(is_terminated(&p), done, "{phase}");
        }
    }

    #[test]
    fn terminating_pods_go_only_from_not_ready_out_of_service_nodes() {
        let node = |name: &str, ready: &str, taint: Option<&str>| {
            let taints: Vec<Value> = taint
                .map(|k| json!({"key": k, "effect": "NoExecute"}))
                .into_iter()
                .collect();
            Arc::new(
                serde_json::from_value::<Node>(json!({"metadata": {"name": name},
                "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
                .unwrap(),
            )
        };
        let nodes = [
            node("gone", "False", Some(TAINT_OUT_OF_SERVICE)),
            node("ready", "True", Some(TAINT_OUT_OF_SERVICE)),
            node(
                "untainted",
                "Unknown",
                Some("node.kubernetes.io/unreachable"),
            ),
        ];
        let on = |name: &str, node: &str, deleting: bool| {
            let ts = deleting.then_some("2026-01-01T00:00:00Z");
            pod(json!({"metadata": {"name": name, "deletionTimestamp": ts},
                "spec": {"nodeName": node, "containers": []}, "status": {"phase": "Running"}}))
        };
        let pods = vec![
            on("a", "gone", true),
            on("b", "gone", false),
            on("c", "ready", true),
            on("d", "untainted", true),
            on("e", "missing", true),
        ];
        let found = terminating_out_of_service(&pods, |name| {
            nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(name))
                .cloned()
        });
        assert_eq!(names(&found), ["a"]);
    }

    #[test]
    fn only_terminating_pods_without_a_node_are_unscheduled_terminating() {
        let p = |name: &str, node: Option<&str>, deleting: bool| {
            let ts = deleting.then_some("2026-01-01T00:00:00Z");
            pod(json!({"metadata": {"name": name, "deletionTimestamp": ts},
                "spec": {"nodeName": node, "containers": []}}))
        };
        let pods = vec![
            p("a", None, true),
            p("b", Some(""), true),
            p("c", None, false),
            p("d", Some("n"), true),
        ];
        assert_eq!(names(&unscheduled_terminating(&pods)), ["a", "b"]);
    }

    #[test]
    fn a_missing_node_is_due_once_its_first_quarantine_is_over() {
        let mut q = Quarantine::default();
        q.suspect("n", t("2026-01-01T00:00:00Z"), QUARANTINE_TIME);
        assert!(q.take_due(t("2026-01-01T00:00:20Z")).is_empty());
        // Suspected again: the earlier end stands.
        q.suspect("n", t("2026-01-01T00:00:20Z"), QUARANTINE_TIME);
        assert!(q.take_due(t("2026-01-01T00:00:39Z")).is_empty());
        assert_eq!(q.take_due(t("2026-01-01T00:00:40Z")), ["n"]);
        assert!(q.take_due(t("2026-01-01T00:00:41Z")).is_empty(), "taken");
    }

    #[test]
    fn a_suspect_due_and_suspected_again_waits_a_new_quarantine_too() {
        let mut q = Quarantine::default();
        q.suspect("n", t("2026-01-01T00:00:00Z"), QUARANTINE_TIME);
        // Due at 40 s; suspected once more in the pass that checks it, as upstream's
        // delaying queue holds the item both ready and waiting.
        q.suspect("n", t("2026-01-01T00:00:41Z"), QUARANTINE_TIME);
        assert_eq!(q.take_due(t("2026-01-01T00:00:41Z")), ["n"]);
        assert!(q.take_due(t("2026-01-01T00:01:20Z")).is_empty());
        assert_eq!(q.take_due(t("2026-01-01T00:01:21Z")), ["n"]);
    }

    #[test]
    fn an_orphan_is_marked_failed_with_the_disruption_target_condition() {
        let p = pod(json!({"metadata": {"name": "p", "uid": "u-1"},
            "spec": {"nodeName": "gone", "containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        let condition = Some((
            "DisruptionTarget",
            REASON_DELETION_BY_POD_GC,
            MESSAGE_NODE_GONE,
        ));
        let patch = failed_status_patch(&p, condition, t("2026-01-01T00:00:05Z")).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"uid": "u-1"}, "status": {
                "phase": "Failed",
                "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "DisruptionTarget"}],
                "conditions": [{"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
                    "lastTransitionTime": "2026-01-01T00:00:05Z", "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists"}]}})
        );
        let done = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded"}}));
        assert_eq!(
            failed_status_patch(&done, condition, t("2026-01-01T00:00:05Z")),
            None,
            "a finished pod keeps its status"
        );
        let pending =
            pod(json!({"metadata": {"name": "p", "uid": "u-2"}, "status": {"phase": "Pending"}}));
        assert_eq!(
            failed_status_patch(&pending, None, t("2026-01-01T00:00:05Z")),
            Some(json!({"metadata": {"uid": "u-2"}, "status": {"phase": "Failed"}}))
        );
    }
}

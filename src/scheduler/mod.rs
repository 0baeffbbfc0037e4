//! The scheduler: pure filter and score plugins (`plugins`), a node cache with assumed pods, and
//! a thin loop that binds pending pods through `pods/binding`.
//!
//! Behaviour as upstream's default profile: pods with `schedulerName: default-scheduler` and no
//! node are queued; each is filtered against a sample of nodes (`percentageOfNodesToScore`,
//! adaptive), the feasible ones are scored, the best wins (ties broken at random); success is a
//! binding and a `Scheduled` event, failure a `FailedScheduling` event and a `PodScheduled=False`
//! condition, and the pod is retried when nodes or pods change.

pub mod plugins;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use rand::Rng;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use self::plugins::{Filtered, NodeInfo};
use crate::clock::{format_time, Clock};
use crate::events::{reference, EventType, Recorder};
use crate::runtime::{key_of, panic_message, supervise, Change, Health, Informer};

/// The scheduler name this scheduler serves.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// Upstream's `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's floor for the adaptive percentage.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
/// How many bindings may be in flight at once.
const MAX_BINDINGS_IN_FLIGHT: usize = 64;
/// How long an unschedulable pod waits at most before it is retried anyway (upstream 5 min).
const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

/// How many nodes to find feasible before scoring, as upstream's adaptive
/// `percentageOfNodesToScore` computes it.
pub fn feasible_nodes_to_find(all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let percentage = (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why a pod could not be placed.
#[derive(Debug, Clone)]
pub struct FitError {
    /// Upstream's FailedScheduling message.
    pub message: String,
}

/// The scheduler's view of the cluster: nodes with the pods bound or assumed on them.
#[derive(Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Which node each known pod (by uid) is on.
    placed: HashMap<String, String>,
    /// Where the next search starts (upstream rotates it so nodes share the load).
    next_start: usize,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nodes the cache knows.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Add or update a node.
    pub fn upsert_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.index.get(&name) {
            Some(&i) => self.nodes[i].set_node(node),
            None => {
                self.index.insert(name, self.nodes.len());
                self.nodes.push(NodeInfo::new(node));
            }
        }
    }

    /// Forget a node.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            self.nodes.swap_remove(i);
            if let Some(moved) = self.nodes.get(i) {
                self.index.insert(moved.name().to_string(), i);
            }
        }
    }

    /// Account a pod that is bound (or assumed) to `node`.
    pub fn place_pod(&mut self, pod: &Pod, node: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(old) = self.placed.get(&uid).cloned() {
            if old != node {
                self.forget_pod(pod);
            }
        }
        if let Some(&i) = self.index.get(node) {
            self.nodes[i].add_pod(pod);
            self.placed.insert(uid, node.to_string());
        }
    }

    /// Forget a pod wherever it is.
    pub fn forget_pod(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(node) = self.placed.remove(&uid) {
            if let Some(&i) = self.index.get(&node) {
                self.nodes[i].remove_pod(pod);
            }
        }
    }

    /// Pick a node for `pod`: filter a rotating sample of nodes, score the feasible ones, take
    /// the best (ties at random).
    ///
    /// # Errors
    /// [`FitError`] with upstream's message when no node fits.
    pub fn schedule(&mut self, pod: &Pod) -> Result<String, FitError> {
        let all = self.nodes.len();
        if all == 0 {
            return Err(FitError {
                message: plugins::fit_error_message_for_pod(pod, 0, &[]),
            });
        }
        let want = feasible_nodes_to_find(all);
        let info = plugins::PodInfo::new(pod);
        let mut feasible: Vec<usize> = Vec::with_capacity(want);
        let mut failures: Vec<Filtered> = Vec::new();
        let start = self.next_start % all;
        let mut examined = 0;
        for offset in 0..all {
            let i = (start + offset) % all;
            examined += 1;
            match plugins::filter_info(&info, &self.nodes[i]) {
                Ok(()) => {
                    feasible.push(i);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(f) => failures.push(f),
            }
        }
        self.next_start = (start + examined) % all;
        if feasible.is_empty() {
            return Err(FitError {
                message: plugins::fit_error_message_for_pod(pod, all, &failures),
            });
        }
        if feasible.len() == 1 {
            return Ok(self.nodes[feasible[0]].name().to_string());
        }
        let infos: Vec<&NodeInfo> = feasible.iter().map(|&i| &self.nodes[i]).collect();
        let scores = plugins::score(pod, &infos);
        let best = scores.iter().copied().max().unwrap_or(0);
        let winners: Vec<usize> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == best)
            .map(|(i, _)| i)
            .collect();
        let pick = winners[rand::rng().random_range(0..winners.len())];
        Ok(infos[pick].name().to_string())
    }
}

/// The Lease scheduler replicas campaign for (kube-system/kube-scheduler).
pub const LEASE_NAME: &str = "kube-scheduler";

/// The component's name (its User-Agent and so its field manager).
pub const COMPONENT: &str = "kube-scheduler";

/// Run one scheduler replica until `shutdown`: campaign for the lease and schedule while leading.
///
/// The scheduling loop is supervised: when it dies it is restarted, and `health` says so
/// meanwhile.
pub async fn run_replica(
    client: Client,
    clock: Clock,
    lease: crate::leader::LeaseConfig,
    health: Health,
    shutdown: CancellationToken,
) {
    let elector =
        crate::leader::LeaderElector::new(client.clone(), clock.clone(), lease, DEFAULT_SCHEDULER);
    let host = crate::leader::hostname();
    elector
        .run(shutdown, move |leading| {
            let (client, clock, host, health) =
                (client.clone(), clock.clone(), host.clone(), health.clone());
            async move {
                supervise(DEFAULT_SCHEDULER, &health, &clock, &leading, |run_token| {
                    run(client.clone(), clock.clone(), host.clone(), run_token)
                })
                .await;
            }
        })
        .await;
}

/// Whether this scheduler should place the pod.
pub fn wants(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.is_some_and(|s| s.node_name.as_deref().is_none_or(str::is_empty))
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(DEFAULT_SCHEDULER)
            == DEFAULT_SCHEDULER
        && pod.metadata.deletion_timestamp.is_none()
        && !plugins::is_terminal(pod)
}

/// Run the scheduler loop until `shutdown` (while this replica leads).
pub async fn run(client: Client, clock: Clock, host: String, shutdown: CancellationToken) {
    let nodes = Informer::start(
        Api::<Node>::all(client.clone()),
        Default::default(),
        shutdown.clone(),
    );
    let pods = Informer::start(
        Api::<Pod>::all(client.clone()),
        Default::default(),
        shutdown.clone(),
    );
    let recorder = Recorder::events_v1(client.clone(), clock.clone(), DEFAULT_SCHEDULER, &host);
    let mut node_changes = nodes.subscribe();
    let mut pod_changes = pods.subscribe();
    nodes.ready().await;
    pods.ready().await;

    let mut cache = Cache::new();
    for n in nodes.store().state() {
        cache.upsert_node((*n).clone());
    }
    let mut q = Queue::default();
    let pod_store = pods.store();
    for p in pod_store.state() {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            cache.place_pod(&p, &node);
        } else if wants(&p) {
            q.push(key_of(p.as_ref()));
        }
    }
    let ctx = Arc::new(BindCtx {
        client: client.clone(),
        recorder,
        clock: clock.clone(),
    });
    // Binding runs beside scheduling (upstream's binding cycle): the loop assumes the pod on its
    // node at once and goes on; a failed binding comes back here to be forgotten and retried.
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Arc<Pod>)>();
    let inflight = Arc::new(tokio::sync::Semaphore::new(MAX_BINDINGS_IN_FLIGHT));
    loop {
        while let Ok((key, pod)) = failed_rx.try_recv() {
            cache.forget_pod(&pod);
            q.push(key);
        }
        // Take in every change already waiting; when there is nothing to schedule, wait for one.
        let mut flush = false;
        loop {
            let node_change = node_changes.try_recv();
            let pod_change = pod_changes.try_recv();
            let idle = node_change.is_err() && pod_change.is_err();
            if let Ok(c) = node_change {
                on_node_change(&mut cache, &nodes, Ok(c), &mut flush);
            }
            if let Ok(c) = pod_change {
                q.on_pod_change(&mut cache, Ok(c), &mut flush);
            }
            if idle {
                if !q.active.is_empty() || flush {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    c = node_changes.recv() => on_node_change(&mut cache, &nodes, c, &mut flush),
                    c = pod_changes.recv() => q.on_pod_change(&mut cache, c, &mut flush),
                    Some((key, pod)) = failed_rx.recv() => {
                        cache.forget_pod(&pod);
                        q.push(key);
                    }
                    _ = clock.sleep(Duration::from_secs(1)) => q.tick(clock.now()),
                }
            }
        }
        if flush {
            q.cluster_changed();
        }
        q.tick(clock.now());
        let Some(key) = q.active.pop_front() else {
            continue;
        };
        q.queued.remove(&key);
        let (ns, name) = crate::runtime::split_key(&key);
        let Some(pod) = pod_store
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(ns.unwrap_or_default()))
        else {
            continue;
        };
        if !wants(&pod)
            || cache
                .placed
                .contains_key(pod.metadata.uid.as_deref().unwrap_or_default())
        {
            continue;
        }
        // One pod must not stop the scheduler: a decision that panics is logged with the pod
        // and retried with back-off like a pod that did not fit.
        let decision =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.schedule(&pod)));
        let decision = match decision {
            Ok(decision) => decision,
            Err(panic) => {
                tracing::error!(pod = %key, panic = %panic_message(panic.as_ref()), "scheduling panicked; retrying with back-off");
                q.failed(key.clone(), clock.now());
                continue;
            }
        };
        match decision {
            Ok(node) => {
                cache.place_pod(&pod, &node);
                q.succeeded(&key);
                let Ok(permit) = inflight.clone().acquire_owned().await else {
                    return;
                };
                let ctx = ctx.clone();
                let failed = failed_tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = bind(&ctx, &pod, &node).await {
                        tracing::debug!(pod = %key, cause = %e, "binding failed; retrying");
                        let _ = failed.send((key, pod));
                    }
                });
            }
            Err(fit) => {
                q.failed(key.clone(), clock.now());
                record_failure(&ctx, &pod, &fit.message).await;
            }
        }
    }
}

/// A pod that did not fit, waiting for a change in the cluster (and its backoff) to try again.
struct Waiting {
    since: chrono::DateTime<chrono::Utc>,
    attempts: u32,
    /// Something changed since it failed.
    moved: bool,
}

/// Pods waiting to be scheduled: `active` in order, `unschedulable` until something changes.
#[derive(Default)]
struct Queue {
    active: VecDeque<String>,
    queued: HashSet<String>,
    unschedulable: HashMap<String, Waiting>,
    attempts: HashMap<String, u32>,
}

/// Upstream's per-pod backoff: 1 s doubling to 10 s.
fn backoff(attempts: u32) -> chrono::Duration {
    let secs = 1i64 << attempts.saturating_sub(1).min(4);
    chrono::Duration::seconds(secs.min(10))
}

impl Queue {
    fn push(&mut self, key: String) {
        if self.queued.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    fn failed(&mut self, key: String, now: chrono::DateTime<chrono::Utc>) {
        let attempts = self.attempts.entry(key.clone()).or_default();
        *attempts += 1;
        self.unschedulable.insert(
            key,
            Waiting {
                since: now,
                attempts: *attempts,
                moved: false,
            },
        );
    }

    fn succeeded(&mut self, key: &str) {
        self.attempts.remove(key);
    }

    /// Something changed that may make room: every waiting pod may try again after its backoff.
    fn cluster_changed(&mut self) {
        for w in self.unschedulable.values_mut() {
            w.moved = true;
        }
    }

    /// Move the pods whose backoff is over (after a change) or that waited too long anyway.
    fn tick(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let max = chrono::Duration::from_std(MAX_UNSCHEDULABLE_DURATION).unwrap_or_default();
        let due: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(_, w)| {
                (w.moved && now >= w.since + backoff(w.attempts)) || now - w.since >= max
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.unschedulable.remove(&k);
            self.push(k);
        }
    }

    fn on_pod_change(
        &mut self,
        cache: &mut Cache,
        change: Result<Change<Pod>, RecvError>,
        flush: &mut bool,
    ) {
        match change {
            Ok(Change::Applied(p)) => {
                let key = key_of(p.as_ref());
                if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    self.unschedulable.remove(&key);
                    if plugins::is_terminal(&p) {
                        cache.forget_pod(&p);
                        *flush = true;
                    } else {
                        cache.place_pod(&p, &node);
                    }
                } else if wants(&p) && !self.unschedulable.contains_key(&key) {
                    self.push(key);
                }
            }
            Ok(Change::Deleted(p)) => {
                cache.forget_pod(&p);
                self.unschedulable.remove(&key_of(p.as_ref()));
                *flush = true;
            }
            Ok(Change::Resync) | Err(_) => *flush = true,
        }
    }
}

fn on_node_change(
    cache: &mut Cache,
    nodes: &Informer<Node>,
    change: Result<Change<Node>, RecvError>,
    flush: &mut bool,
) {
    match change {
        Ok(Change::Applied(n)) => cache.upsert_node((*n).clone()),
        Ok(Change::Deleted(n)) => cache.remove_node(n.metadata.name.as_deref().unwrap_or_default()),
        Ok(Change::Resync) | Err(_) => {
            for n in nodes.store().state() {
                cache.upsert_node((*n).clone());
            }
        }
    }
    *flush = true;
}

struct BindCtx {
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

async fn bind(ctx: &BindCtx, pod: &Arc<Pod>, node: &str) -> kube::Result<()> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let binding = Binding {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    api.create_subresource::<Binding, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    ctx.recorder
        .record(
            &reference(pod.as_ref()),
            EventType::Normal,
            "Scheduled",
            "Binding",
            &format!("Successfully assigned {ns}/{name} to {node}"),
        )
        .await;
    Ok(())
}

async fn record_failure(ctx: &BindCtx, pod: &Arc<Pod>, message: &str) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    ctx.recorder
        .record(
            &reference(pod.as_ref()),
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message,
        )
        .await;
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(message));
    if already {
        return;
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
        "lastProbeTime": null, "lastTransitionTime": format_time(ctx.clock.now()),
    }]}});
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        tracing::debug!(pod = %name, cause = %e, "cannot record the PodScheduled condition");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_of_nodes_shrinks_as_upstream_computes_it() {
        assert_eq!(feasible_nodes_to_find(50), 50);
        assert_eq!(feasible_nodes_to_find(100), 100);
        assert_eq!(feasible_nodes_to_find(1000), 420);
        assert_eq!(feasible_nodes_to_find(5000), 500);
        assert_eq!(feasible_nodes_to_find(10_000), 500);
    }

    fn node(name: &str, cpu: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}})).unwrap()
    }

    fn pod(name: &str, cpu: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]}}))
        .unwrap()
    }

    #[test]
    fn assumed_pods_count_against_their_node() {
        let mut cache = Cache::new();
        cache.upsert_node(node("a", "1"));
        let first = cache.schedule(&pod("p1", "600m")).unwrap();
        assert_eq!(first, "a");
        cache.place_pod(&pod("p1", "600m"), &first);
        let err = cache.schedule(&pod("p2", "600m")).unwrap_err();
        assert_eq!(
            err.message,
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        cache.forget_pod(&pod("p1", "600m"));
        assert!(cache.schedule(&pod("p2", "600m")).is_ok());
    }

    #[test]
    fn the_emptier_node_wins() {
        let mut cache = Cache::new();
        cache.upsert_node(node("busy", "4"));
        cache.upsert_node(node("idle", "4"));
        cache.place_pod(&pod("p0", "3"), "busy");
        assert_eq!(cache.schedule(&pod("p1", "500m")).unwrap(), "idle");
    }
}

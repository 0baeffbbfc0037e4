//! The DaemonSet controller: one pod of a DaemonSet on every node that should run it, none on
//! the others, and the DaemonSet's status.
//!
//! As upstream (pkg/controller/daemon): a node should run a daemon pod when the template's
//! `nodeName` (if any), `nodeSelector` and required node affinity match it and its NoSchedule and
//! NoExecute taints are tolerated (the template's tolerations plus the ones the controller adds
//! to every daemon pod); a pod already on a node that only NoSchedule-taints it may stay. Pods are
//! created in slow-start batches with generateName `<ds>-`, a controller ownerReference, the
//! labels `controller-revision-hash` and `pod-template-generation`, and a required node
//! affinity naming their node (the default scheduler binds them); failed daemon pods are deleted
//! to be replaced, and doubled-up ones deleted (the oldest stays). Each template is recorded in a
//! ControllerRevision `<ds>-<hash>`. A RollingUpdate replaces pods of older revisions, at most
//! `maxUnavailable` unavailable at once (maxSurge is not modelled: old pods go first).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::deployment::util::pod_template_hash;
use super::replicaset::{is_available, ready_since};
use crate::clock::Clock;
use crate::events::{reference, Recorder};
use crate::runtime::{controller_of, key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (events, logs, health checks).
pub const CONTROLLER: &str = "daemonset-controller";

/// The label naming the ControllerRevision a daemon pod was made from.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The label naming the DaemonSet generation a daemon pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Most pods one sync creates (upstream `BurstReplicas`).
const BURST_REPLICAS: usize = 250;
/// How long expectations may stay unmet before a sync acts anyway (upstream 5 min).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// The tolerations every daemon pod gets (upstream `AddOrUpdateDaemonPodTolerations`), so a
/// daemon runs on nodes that are not ready, unreachable, under pressure or cordoned.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let toleration = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    out
}

/// The template with the daemon tolerations added (an equal one is not added twice).
fn with_daemon_tolerations(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(spec) = &mut template.spec {
        let host_network = spec.host_network.unwrap_or(false);
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        for t in daemon_tolerations(host_network) {
            let same = |o: &Toleration| {
                o.key == t.key
                    && o.operator.as_deref().unwrap_or("Equal") == "Exists"
                    && o.effect == t.effect
                    && o.value.as_deref().unwrap_or("").is_empty()
            };
            if !tolerations.iter().any(same) {
                tolerations.push(t);
            }
        }
    }
    template
}

/// Whether `node` should run a pod of `ds`, and whether a pod already there may continue
/// (upstream `NodeShouldRunDaemonPod`).
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let template = ds.spec.as_ref().map(|s| &s.template);
    let Some(template) = template else {
        return (false, false);
    };
    let template = with_daemon_tolerations(template);
    let spec = template.spec.clone().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return (false, false);
    }
    let pod = Pod {
        spec: Some(spec.clone()),
        ..Default::default()
    };
    if !crate::k8s::nodeaffinity::matches_required_node_affinity(&pod, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        node.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t: &&Taint| effects.contains(&t.effect.as_str()))
            .any(|t| {
                !tolerations
                    .iter()
                    .any(|tol| crate::k8s::tolerations::tolerates(tol, t))
            })
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// The node a daemon pod is for: its `nodeName`, or before binding the node its required
/// affinity names (upstream `GetTargetNodeName`).
fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// The pod of `ds` for `node`, made from `template` (daemon tolerations and labels in place):
/// its required node affinity names only that node (upstream
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`).
fn pod_for_node(ds: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    let term =
        json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]});
    let mut affinity = serde_json::to_value(spec.affinity.take().unwrap_or_default())
        .unwrap_or_else(|_| json!({}));
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": [term]});
    spec.affinity = serde_json::from_value(affinity).ok();
    Pod {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                ds.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: ds.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn owner_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: ds.metadata.name.clone().unwrap_or_default(),
        uid: ds.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

#[derive(Default)]
struct Expectation {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<DateTime<Utc>>,
}

struct Ctx {
    client: Client,
    clock: Clock,
    recorder: Recorder,
    daemonsets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    expectations: Mutex<HashMap<String, Expectation>>,
}

/// Run the controller until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    host: String,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let (ds_informer, mut ds_changes) = informers.subscribe_all::<DaemonSet>();
    let (pod_informer, mut pod_changes) = informers.subscribe_all::<Pod>();
    let (node_informer, mut node_changes) = informers.subscribe_all::<Node>();
    let (rev_informer, _) = informers.subscribe_all::<ControllerRevision>();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), CONTROLLER, &host),
        client,
        clock: clock.clone(),
        daemonsets: ds_informer.store(),
        pods: pod_informer.store(),
        nodes: node_informer.store(),
        revisions: rev_informer.store(),
        expectations: Mutex::new(HashMap::new()),
    });
    let queue = WorkQueue::new(clock);
    ds_informer.ready().await;
    pod_informer.ready().await;
    node_informer.ready().await;
    rev_informer.ready().await;
    let all = |ctx: &Ctx, queue: &WorkQueue<String>| {
        for ds in ctx.daemonsets.state() {
            queue.add(key_of(ds.as_ref()));
        }
    };
    all(&ctx, &queue);
    let feeder = {
        let queue = queue.clone();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = ds_changes.recv() => match change {
                        Ok(Change::Applied(ds) | Change::Deleted(ds)) => queue.add(key_of(ds.as_ref())),
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                    change = pod_changes.recv() => match change {
                        Ok(Change::Applied(pod) | Change::Deleted(pod)) => {
                            if let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "DaemonSet") {
                                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                                queue.add(format!("{ns}/{}", owner.name));
                            }
                        }
                        Ok(Change::Resync) | Err(_) => all(&ctx, &queue),
                    },
                    // A node's labels, taints or presence decide which daemons it runs.
                    change = node_changes.recv() => match change {
                        Ok(_) | Err(_) => all(&ctx, &queue),
                    },
                }
            }
        })
    };
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => break,
            key = queue.next() => match key { Some(k) => k, None => break },
        };
        reconcile(&queue, key.clone(), CONTROLLER, sync(&ctx, &key)).await;
    }
    queue.shut_down();
    feeder.abort();
}

/// One sync of one DaemonSet. Returns when to look again, if a timer is needed.
async fn sync(ctx: &Ctx, key: &str) -> kube::Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let Some(ds) = ctx.daemonsets.get(&ObjectRef::new(name).within(ns)) else {
        ctx.expectations.lock().remove(key);
        return Ok(None);
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(spec) = ds.spec.clone() else {
        return Ok(None);
    };
    let now = ctx.clock.now();
    let hash = pod_template_hash(
        &spec.template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    ensure_revision(ctx, &ds, ns, &hash).await?;

    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| controller_of(&p.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in owned.iter().filter(|p| is_active(p)) {
        if let Some(node) = target_node(pod) {
            by_node.entry(node).or_default().push(pod.clone());
        }
    }
    let nodes = ctx.nodes.state();

    if expectations_satisfied(ctx, key, &owned, now) {
        let mut create_on = Vec::new();
        let mut delete = Vec::new();
        for node in &nodes {
            let node_name = node.metadata.name.clone().unwrap_or_default();
            let (should_run, should_continue) = node_should_run(node, &ds);
            let pods = by_node.get(&node_name).cloned().unwrap_or_default();
            if should_run && pods.is_empty() {
                create_on.push(node_name);
            } else if should_continue && !pods.is_empty() {
                // Failed daemon pods are replaced; of several running, the oldest stays.
                let (failed, mut running): (Vec<_>, Vec<_>) =
                    pods.into_iter().partition(|p| phase(p) == Some("Failed"));
                delete.extend(failed);
                running.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                delete.extend(running.into_iter().skip(1));
            } else if !should_continue {
                delete.extend(pods);
            }
        }
        // A node that no longer exists keeps no daemon pod.
        for (node, pods) in &by_node {
            if !nodes
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(node))
            {
                delete.extend(pods.iter().cloned());
            }
        }
        if delete.is_empty() {
            delete.extend(rolling_update_victims(&ds, &hash, &by_node, &nodes, now));
        }
        create_pods(ctx, &ds, ns, key, &hash, create_on).await;
        delete_pods(ctx, &ds, ns, key, delete, now).await;
    }
    update_status(ctx, &ds, ns, name, &hash, &by_node, &nodes, now).await
}

/// Record the template in a ControllerRevision `<ds>-<hash>` (revision = the highest so far + 1)
/// unless one holds it already.
async fn ensure_revision(ctx: &Ctx, ds: &DaemonSet, ns: &str, hash: &str) -> kube::Result<()> {
    let ds_name = ds.metadata.name.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let name = format!("{ds_name}-{hash}");
    let owned: Vec<Arc<ControllerRevision>> = ctx
        .revisions
        .state()
        .into_iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns))
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    if owned
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some(&name))
    {
        return Ok(());
    }
    let revision = owned.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    let mut template =
        serde_json::to_value(ds.spec.as_ref().map(|s| &s.template)).unwrap_or_else(|_| json!({}));
    template["$patch"] = json!("replace");
    let mut labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    let object = ControllerRevision {
        metadata: kube::api::ObjectMeta {
            name: Some(name),
            namespace: Some(ns.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref(ds)]),
            ..Default::default()
        },
        data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
            json!({"spec": {"template": template}}),
        )),
        revision,
    };
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn expectations_satisfied(ctx: &Ctx, key: &str, owned: &[Arc<Pod>], now: DateTime<Utc>) -> bool {
    let mut exp = ctx.expectations.lock();
    let entry = exp.entry(key.to_string()).or_default();
    let names: HashSet<String> = owned
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let live: HashSet<String> = owned
        .iter()
        .filter(|p| is_active(p))
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    entry.creates.retain(|n| !names.contains(n));
    entry.deletes.retain(|u| live.contains(u));
    let expired = entry.since.is_some_and(|s| {
        now - s > chrono::Duration::from_std(EXPECTATIONS_TIMEOUT).unwrap_or_default()
    });
    if expired {
        *entry = Expectation::default();
    }
    entry.creates.is_empty() && entry.deletes.is_empty()
}

/// `maxUnavailable` of the RollingUpdate strategy against `desired` nodes (a percentage rounds
/// up, as upstream's `GetScaledValueFromIntOrPercent(..., true)`), at least 1.
fn max_unavailable(ds: &DaemonSet, desired: usize) -> usize {
    let value = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let n = match value {
        IntOrString::Int(i) => i.max(0) as usize,
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<usize>().ok())
            .map(|p| p.saturating_mul(desired).div_ceil(100))
            .unwrap_or(1),
    };
    n.max(1)
}

/// Old-revision pods a RollingUpdate deletes now: unavailable ones first, then available ones
/// while fewer than `maxUnavailable` daemon pods are unavailable.
fn rolling_update_victims(
    ds: &DaemonSet,
    hash: &str,
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    nodes: &[Arc<Node>],
    now: DateTime<Utc>,
) -> Vec<Arc<Pod>> {
    let spec = ds.spec.clone().unwrap_or_default();
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    if !rolling {
        return Vec::new();
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let old = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL))
            .is_none_or(|h| h != hash)
    };
    let mut desired = 0;
    let mut unavailable = 0;
    let mut old_available = Vec::new();
    let mut victims = Vec::new();
    for node in nodes {
        if !node_should_run(node, ds).0 {
            continue;
        }
        desired += 1;
        let name = node.metadata.name.clone().unwrap_or_default();
        let pods = by_node.get(&name).cloned().unwrap_or_default();
        let available = pods.iter().any(|p| is_available(p, min_ready, now));
        if !available {
            unavailable += 1;
        }
        for pod in pods.iter().filter(|p| old(p)) {
            if is_available(pod, min_ready, now) {
                old_available.push(pod.clone());
            } else {
                victims.push(pod.clone());
            }
        }
    }
    let budget = max_unavailable(ds, desired).saturating_sub(unavailable);
    victims.extend(old_available.into_iter().take(budget));
    victims
}

async fn create_pods(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    ns: &str,
    key: &str,
    hash: &str,
    nodes: Vec<String>,
) {
    if nodes.is_empty() {
        return;
    }
    let Some(spec) = ds.spec.as_ref() else { return };
    let mut template = with_daemon_tolerations(&spec.template);
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.into(),
        ds.metadata.generation.unwrap_or(1).to_string(),
    );
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    ctx.expectations
        .lock()
        .entry(key.to_string())
        .or_default()
        .since = Some(ctx.clock.now());
    let pods: Vec<Pod> = nodes
        .iter()
        .take(BURST_REPLICAS)
        .map(|n| pod_for_node(ds, &template, n))
        .collect();
    super::podcontrol::create_pods(&api, &ctx.recorder, &reference(ds.as_ref()), pods, |name| {
        ctx.expectations
            .lock()
            .entry(key.to_string())
            .or_default()
            .creates
            .insert(name.to_string());
    })
    .await;
}

async fn delete_pods(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    ns: &str,
    key: &str,
    victims: Vec<Arc<Pod>>,
    now: DateTime<Utc>,
) {
    if victims.is_empty() {
        return;
    }
    {
        let mut exp = ctx.expectations.lock();
        let entry = exp.entry(key.to_string()).or_default();
        entry
            .deletes
            .extend(victims.iter().filter_map(|p| p.metadata.uid.clone()));
        entry.since = Some(now);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let owner = reference(ds.as_ref());
    for pod in victims {
        let name = pod.metadata.name.clone().unwrap_or_default();
        super::podcontrol::delete_pod(&api, &ctx.recorder, &owner, &name).await;
    }
}

/// Write the DaemonSet's status when its counts changed; look again in a second while ready
/// pods wait out minReadySeconds.
#[allow(clippy::too_many_arguments)]
async fn update_status(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    ns: &str,
    name: &str,
    hash: &str,
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    nodes: &[Arc<Node>],
    now: DateTime<Utc>,
) -> kube::Result<Option<Duration>> {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    let mut waiting = false;
    for node in nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let (should_run, _) = node_should_run(node, ds);
        let pods = by_node.get(&node_name).cloned().unwrap_or_default();
        let scheduled: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .collect();
        if should_run {
            desired += 1;
            if let Some(pod) = scheduled.first() {
                current += 1;
                if ready_since(pod).is_some() {
                    ready += 1;
                    if is_available(pod, min_ready, now) {
                        available += 1;
                    } else {
                        waiting = true;
                    }
                }
                let current_hash = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_HASH_LABEL));
                if current_hash.is_some_and(|h| h == hash) {
                    updated += 1;
                }
            }
        } else if !scheduled.is_empty() {
            misscheduled += 1;
        }
    }
    let old = ds.status.clone().unwrap_or_default();
    let status = DaemonSetStatus {
        current_number_scheduled: current,
        desired_number_scheduled: desired,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: (available > 0).then_some(available),
        number_unavailable: (desired - available > 0).then_some(desired - available),
        updated_number_scheduled: (updated > 0).then_some(updated),
        observed_generation: ds.metadata.generation,
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    if status != old {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
        let mut object = (**ds).clone();
        object.status = Some(status);
        match api
            .replace_status(name, &PostParams::default(), &object)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                return Ok(Some(Duration::ZERO))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(waiting.then_some(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "uid": "ds-uid", "generation": 1},
            "spec": spec,
        }))
        .unwrap()
    }

    fn node(name: &str, extra: serde_json::Value) -> Node {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}});
        if let (Some(o), Some(e)) = (n.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(n).unwrap()
    }

    fn simple(pod_spec: serde_json::Value) -> DaemonSet {
        let mut spec = pod_spec;
        spec["containers"] = json!([{"name": "c", "image": "pause"}]);
        ds(json!({
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec},
        }))
    }

    #[test]
    fn a_node_runs_the_daemon_when_its_selector_affinity_and_taints_allow() {
        let plain = node("n1", json!({}));
        assert_eq!(node_should_run(&plain, &simple(json!({}))), (true, true));
        // nodeSelector.
        let picky = simple(json!({"nodeSelector": {"disk": "ssd"}}));
        assert_eq!(node_should_run(&plain, &picky), (false, false));
        // The daemon tolerations: a cordoned, not-ready node still runs it.
        let cordoned = node(
            "n2",
            json!({"spec": {"taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
        );
        assert_eq!(node_should_run(&cordoned, &simple(json!({}))), (true, true));
        // An untolerated NoSchedule taint: no new pod, but one there may stay.
        let tainted = node(
            "n3",
            json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(node_should_run(&tainted, &simple(json!({}))), (false, true));
        // An untolerated NoExecute taint: the pod goes.
        let evicting = node(
            "n4",
            json!({"spec": {"taints": [{"key": "dedicated", "effect": "NoExecute"}]}}),
        );
        assert_eq!(
            node_should_run(&evicting, &simple(json!({}))),
            (false, false)
        );
        let tolerant = simple(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(node_should_run(&evicting, &tolerant), (true, true));
        // The template's nodeName pins one node.
        let pinned = simple(json!({"nodeName": "n9"}));
        assert_eq!(node_should_run(&plain, &pinned), (false, false));
    }

    #[test]
    fn daemon_pods_get_the_daemon_tolerations_and_an_affinity_for_their_node() {
        let d = simple(json!({"hostNetwork": true,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}));
        let template = with_daemon_tolerations(&d.spec.as_ref().unwrap().template);
        let pod = pod_for_node(&d, &template, "node-2");
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["generateName"], "kube-proxy-");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]})
        );
        let keys: Vec<&str> = v["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["key"].as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
                "node.kubernetes.io/disk-pressure",
                "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure",
                "node.kubernetes.io/unschedulable",
                "node.kubernetes.io/network-unavailable",
            ]
        );
        assert_eq!(target_node(&pod).as_deref(), Some("node-2"));
        // Adding them again adds nothing.
        let twice = with_daemon_tolerations(&template);
        assert_eq!(twice.spec.unwrap().tolerations.unwrap().len(), keys.len());
    }

    #[test]
    fn max_unavailable_scales_percentages_up() {
        let with = |v: serde_json::Value| {
            let mut d = simple(json!({}));
            d.spec.as_mut().unwrap().update_strategy = serde_json::from_value(
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": v}}),
            )
            .ok();
            d
        };
        assert_eq!(max_unavailable(&with(json!(1)), 10), 1);
        assert_eq!(max_unavailable(&with(json!("25%")), 10), 3);
        assert_eq!(max_unavailable(&with(json!("10%")), 3), 1);
        assert_eq!(max_unavailable(&with(json!(0)), 3), 1);
    }
}

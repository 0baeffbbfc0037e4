//! The ReplicaSet controller: keeps the number of active pods that a ReplicaSet owns equal to its
//! `spec.replicas`, adopting and releasing pods by selector, and reports status.
//!
//! As upstream: pods are created in slow-start batches (1, 2, 4, ... up to 500 per sync) from the
//! template with generateName `<rs>-` and a controller ownerReference; surplus pods are deleted
//! preferring unscheduled, pending, not-ready, doubled-up, recently-ready, restarting and newer
//! pods; "expectations" keep a sync from acting again before the cache has seen its own writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{reference, Recorder};
use crate::runtime::{controller_of, key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "replicaset-controller";

/// Most pods one sync creates or deletes (upstream `burstReplicas`).
const BURST_REPLICAS: usize = 500;
/// How long expectations may stay unmet before a sync acts anyway (upstream 5 min).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether a pod counts toward its ReplicaSet: not finished, not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The time the pod's Ready condition turned True, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<DateTime<Utc>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        cond.last_transition_time
            .as_ref()
            .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    )
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => since + chrono::Duration::seconds(min_ready_seconds as i64) <= now,
    }
}

/// The order upstream deletes surplus pods in: the first should go first.
fn deletion_rank(pod: &Pod, doubled_up: usize) -> impl Ord {
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let ready = ready_since(pod);
    let restarts: i32 = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0);
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0);
    (
        assigned,
        phase,
        ready.is_some(),
        std::cmp::Reverse(doubled_up),
        std::cmp::Reverse(ready.map(|t| t.timestamp()).unwrap_or(0)),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

/// Which pods to delete to shed `count`, best candidates first.
pub fn pods_to_delete(pods: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(Arc<Pod>, usize)> = pods
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let doubled = node.and_then(|n| per_node.get(&n).copied()).unwrap_or(0);
            (p.clone(), doubled)
        })
        .collect();
    ranked.sort_by(|(a, da), (b, db)| deletion_rank(a, *da).cmp(&deletion_rank(b, *db)));
    ranked.into_iter().take(count).map(|(p, _)| p).collect()
}

/// Writes a sync made that the cache has not shown yet.
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
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
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
    let (rs_informer, mut rs_changes) = informers.subscribe_all::<ReplicaSet>();
    let (pod_informer, mut pod_changes) = informers.subscribe_all::<Pod>();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::core(
            client.clone(),
            clock.clone(),
            "replicaset-controller",
            &host,
        ),
        client,
        clock: clock.clone(),
        replicasets: rs_informer.store(),
        pods: pod_informer.store(),
        expectations: Mutex::new(HashMap::new()),
    });
    let queue = WorkQueue::new(clock);
    rs_informer.ready().await;
    pod_informer.ready().await;
    for rs in ctx.replicasets.state() {
        queue.add(key_of(rs.as_ref()));
    }
    // Feed the queue from both informers.
    let feeder = {
        let queue = queue.clone();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = rs_changes.recv() => match change {
                        Ok(Change::Applied(rs) | Change::Deleted(rs)) => queue.add(key_of(rs.as_ref())),
                        Ok(Change::Resync) | Err(_) => for rs in ctx.replicasets.state() { queue.add(key_of(rs.as_ref())) },
                    },
                    change = pod_changes.recv() => match change {
                        Ok(Change::Applied(pod) | Change::Deleted(pod)) => for key in owners_to_sync(&ctx, &pod) { queue.add(key) },
                        Ok(Change::Resync) | Err(_) => for rs in ctx.replicasets.state() { queue.add(key_of(rs.as_ref())) },
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

/// The ReplicaSets a pod change concerns: its controller, or for an orphan every ReplicaSet in
/// its namespace whose selector matches (adoption).
fn owners_to_sync(ctx: &Ctx, pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_of(&pod.metadata) {
        if owner.kind == "ReplicaSet" {
            return vec![format!("{ns}/{}", owner.name)];
        }
        return Vec::new();
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    ctx.replicasets
        .state()
        .iter()
        .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|rs| {
            rs.spec.as_ref().is_some_and(|s| {
                !crate::labels::is_empty(&s.selector)
                    && crate::labels::matches(&s.selector, &labels)
            })
        })
        .map(|rs| key_of(rs.as_ref()))
        .collect()
}

fn owner_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.metadata.name.clone().unwrap_or_default(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// One sync of one ReplicaSet. Returns when to look again, if a timer is needed.
async fn sync(ctx: &Ctx, key: &str) -> kube::Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let Some(rs) = ctx.replicasets.get(&ObjectRef::new(name).within(ns)) else {
        ctx.expectations.lock().remove(key);
        return Ok(None);
    };
    let spec = rs.spec.clone().unwrap_or_default();
    let now = ctx.clock.now();

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let owned = claim_pods(ctx, &rs, ns, &pods_api).await?;
    let active: Vec<Arc<Pod>> = owned.iter().filter(|p| is_active(p)).cloned().collect();

    let satisfied = expectations_satisfied(ctx, key, &owned, &active, now);
    let deleting = rs.metadata.deletion_timestamp.is_some();
    if satisfied && !deleting {
        let want = spec.replicas.unwrap_or(1).max(0) as usize;
        if active.len() < want {
            let missing = (want - active.len()).min(BURST_REPLICAS);
            create_pods(ctx, &rs, ns, key, missing).await;
        } else if active.len() > want {
            let surplus = (active.len() - want).min(BURST_REPLICAS);
            delete_pods(ctx, &rs, key, &pods_api, &active, surplus, now).await;
        }
    }

    update_status(ctx, &rs, ns, name, &active, now).await
}

/// Claims pods: ours, plus orphans that match (adopt); releases ours that no longer match.
/// Returns the pods this ReplicaSet owns afterwards.
async fn claim_pods(
    ctx: &Ctx,
    rs: &Arc<ReplicaSet>,
    ns: &str,
    pods_api: &Api<Pod>,
) -> kube::Result<Vec<Arc<Pod>>> {
    let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
    let selector = rs.spec.clone().unwrap_or_default().selector;
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    for pod in ctx.pods.state() {
        if pod.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let matches =
            !crate::labels::is_empty(&selector) && crate::labels::matches(&selector, &labels);
        match controller_of(&pod.metadata) {
            Some(r) if r.uid == rs_uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    release(pods_api, &pod, &rs_uid).await?;
                }
            }
            Some(_) => {}
            None if matches
                && !deleting
                && is_active(&pod)
                && pod.metadata.deletion_timestamp.is_none() =>
            {
                let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
                refs.push(owner_ref(rs));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                match pods_api
                    .patch(&pod_name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(adopted) => owned.push(Arc::new(adopted)),
                    Err(e) => tracing::debug!(pod = %pod_name, cause = %e, "cannot adopt pod"),
                }
            }
            None => {}
        }
    }
    Ok(owned)
}

/// Expectations: whether the cache shows the last sync's writes (or they waited too long).
fn expectations_satisfied(
    ctx: &Ctx,
    key: &str,
    owned: &[Arc<Pod>],
    active: &[Arc<Pod>],
    now: DateTime<Utc>,
) -> bool {
    let mut exp = ctx.expectations.lock();
    let entry = exp.entry(key.to_string()).or_default();
    let names: HashSet<String> = owned
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let live_uids: HashSet<String> = active
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    entry.creates.retain(|n| !names.contains(n));
    entry.deletes.retain(|u| live_uids.contains(u));
    let expired = entry.since.is_some_and(|s| {
        now - s > chrono::Duration::from_std(EXPECTATIONS_TIMEOUT).unwrap_or_default()
    });
    if expired {
        *entry = Expectation::default();
    }
    entry.creates.is_empty() && entry.deletes.is_empty()
}

/// Deletes `surplus` of the active pods, best candidates first, expecting their deletion.
async fn delete_pods(
    ctx: &Ctx,
    rs: &Arc<ReplicaSet>,
    key: &str,
    pods_api: &Api<Pod>,
    active: &[Arc<Pod>],
    surplus: usize,
    now: DateTime<Utc>,
) {
    let victims = pods_to_delete(active, surplus);
    {
        let mut exp = ctx.expectations.lock();
        let entry = exp.entry(key.to_string()).or_default();
        entry
            .deletes
            .extend(victims.iter().filter_map(|p| p.metadata.uid.clone()));
        entry.since = Some(now);
    }
    let owner = reference(rs.as_ref());
    for pod in victims {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        super::podcontrol::delete_pod(pods_api, &ctx.recorder, &owner, &pod_name).await;
    }
}

/// Writes the ReplicaSet's status when its counts changed. Asks to look again in a second while
/// ready pods wait out minReadySeconds, and at once when the write conflicted.
async fn update_status(
    ctx: &Ctx,
    rs: &Arc<ReplicaSet>,
    ns: &str,
    name: &str,
    active: &[Arc<Pod>],
    now: DateTime<Utc>,
) -> kube::Result<Option<Duration>> {
    let spec = rs.spec.clone().unwrap_or_default();
    let mut requeue = None;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| ready_since(p).is_some()).count();
    let available = active
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    if ready > available && min_ready > 0 {
        requeue = Some(Duration::from_secs(1));
    }
    let mut status = rs.status.clone().unwrap_or_default();
    let new_status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rs.metadata.generation,
        conditions: status.conditions.take(),
        terminating_replicas: None,
    };
    let old_status = rs.status.clone().unwrap_or_default();
    if !same_status(&old_status, &new_status) {
        let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
        let mut updated = (**rs).clone();
        updated.status = Some(new_status);
        match rs_api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                return Ok(Some(Duration::ZERO))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(requeue)
}

fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    a.replicas == b.replicas
        && a.fully_labeled_replicas.unwrap_or(0) == b.fully_labeled_replicas.unwrap_or(0)
        && a.ready_replicas.unwrap_or(0) == b.ready_replicas.unwrap_or(0)
        && a.available_replicas.unwrap_or(0) == b.available_replicas.unwrap_or(0)
        && a.observed_generation == b.observed_generation
}

async fn release(pods_api: &Api<Pod>, pod: &Pod, owner_uid: &str) -> kube::Result<()> {
    let refs: Vec<OwnerReference> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
    let name = pod.metadata.name.clone().unwrap_or_default();
    match pods_api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pod a ReplicaSet creates from its template.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut pod = Pod {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                rs.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: rs.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    if pod.metadata.labels.as_ref().is_some_and(BTreeMap::is_empty) {
        pod.metadata.labels = None;
    }
    pod
}

/// Create `count` pods in slow-start batches of 1, 2, 4, ...; stop at the first failing batch.
async fn create_pods(ctx: &Ctx, rs: &Arc<ReplicaSet>, ns: &str, key: &str, count: usize) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let template = pod_from_template(rs);
    {
        let mut exp = ctx.expectations.lock();
        exp.entry(key.to_string()).or_default().since = Some(ctx.clock.now());
    }
    let pods = vec![template; count];
    super::podcontrol::create_pods(&api, &ctx.recorder, &reference(rs.as_ref()), pods, |name| {
        ctx.expectations
            .lock()
            .entry(key.to_string())
            .or_default()
            .creates
            .insert(name.to_string());
    })
    .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str) -> Arc<Pod> {
        let mut conditions = vec![];
        if ready {
            conditions.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}));
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": phase, "conditions": conditions},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn surplus_pods_go_unscheduled_first_then_pending_then_not_ready_then_newest() {
        let pods = vec![
            pod(
                "running-ready-old",
                Some("n1"),
                "Running",
                true,
                "2026-01-01T00:00:00Z",
            ),
            pod(
                "running-ready-new",
                Some("n2"),
                "Running",
                true,
                "2026-01-01T00:05:00Z",
            ),
            pod(
                "running-unready",
                Some("n3"),
                "Running",
                false,
                "2026-01-01T00:00:00Z",
            ),
            pod(
                "pending",
                Some("n4"),
                "Pending",
                false,
                "2026-01-01T00:00:00Z",
            ),
            pod(
                "unscheduled",
                None,
                "Pending",
                false,
                "2026-01-01T00:00:00Z",
            ),
        ];
        let order: Vec<String> = pods_to_delete(&pods, 5)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "running-unready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("p", Some("n"), "Running", true, "2026-01-01T00:00:00Z");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(is_available(&p, 0, t("2026-01-01T00:00:00Z")));
        assert!(!is_available(&p, 10, t("2026-01-01T00:00:05Z")));
        assert!(is_available(&p, 10, t("2026-01-01T00:00:10Z")));
    }

    #[test]
    fn pods_from_templates_carry_the_controller_reference() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u-1"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        }))
        .unwrap();
        let pod = pod_from_template(&rs);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.uid.as_str(),
                owner.controller,
                owner.block_owner_deletion
            ),
            ("ReplicaSet", "u-1", Some(true), Some(true))
        );
    }
}

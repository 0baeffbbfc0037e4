//! The Deployment controller loop: a thin I/O shell around `deployment_logic::plan_sync`, which
//! decides every ReplicaSet write, status update and event of one upstream sync.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use super::deployment_logic::{self as logic, Action, CreateConflict};
use crate::clock::{format_time, Clock};
use crate::events::{reference, EventType, Recorder};
use crate::runtime::{controller_of, key_of, reconcile, split_key, Change, Informers, WorkQueue};

struct Ctx {
    client: Client,
    clock: Clock,
    recorder: Recorder,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    /// The resourceVersion of this controller's last write to each Deployment. A sync that
    /// would start from an older cached copy waits for the cache instead (the write's watch
    /// event queues the key again): planning from a copy that misses our own write would lose
    /// that write's condition to a conflict.
    written: parking_lot::Mutex<HashMap<String, u64>>,
}

/// Run the controller until `shutdown`.
pub async fn run(
    client: Client,
    clock: Clock,
    host: String,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let deployments = informers.all::<Deployment>();
    let replicasets = informers.all::<ReplicaSet>();
    let pods = informers.all::<Pod>();
    let mut d_changes = deployments.subscribe();
    let mut rs_changes = replicasets.subscribe();
    let mut pod_changes = pods.subscribe();
    deployments.ready().await;
    replicasets.ready().await;
    pods.ready().await;
    let ctx = Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), logic::COMPONENT, &host),
        client,
        clock: clock.clone(),
        deployments: deployments.store(),
        replicasets: replicasets.store(),
        pods: pods.store(),
        written: Default::default(),
    };
    let queue = WorkQueue::new(clock);
    enqueue_all(&ctx, &queue);
    loop {
        drain(
            &ctx,
            &queue,
            &mut d_changes,
            &mut rs_changes,
            &mut pod_changes,
        );
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = d_changes.recv() => { route_deployment(&ctx, &queue, c.ok()); continue }
            c = rs_changes.recv() => { route_replicaset(&ctx, &queue, c.ok()); continue }
            c = pod_changes.recv() => { route_pod(&ctx, &queue, c.ok()); continue }
            key = queue.next() => match key { Some(k) => k, None => return },
        };
        reconcile(&queue, key.clone(), logic::COMPONENT, sync(&ctx, &key)).await;
    }
}

fn enqueue_all(ctx: &Ctx, queue: &WorkQueue<String>) {
    for d in ctx.deployments.state() {
        queue.add(key_of(d.as_ref()));
    }
}

fn drain(
    ctx: &Ctx,
    queue: &WorkQueue<String>,
    d: &mut tokio::sync::broadcast::Receiver<Change<Deployment>>,
    rs: &mut tokio::sync::broadcast::Receiver<Change<ReplicaSet>>,
    pods: &mut tokio::sync::broadcast::Receiver<Change<Pod>>,
) {
    loop {
        let mut any = false;
        match d.try_recv() {
            Ok(c) => {
                any = true;
                route_deployment(ctx, queue, Some(c))
            }
            Err(TryRecvError::Lagged(_)) => enqueue_all(ctx, queue),
            Err(_) => {}
        }
        match rs.try_recv() {
            Ok(c) => {
                any = true;
                route_replicaset(ctx, queue, Some(c))
            }
            Err(TryRecvError::Lagged(_)) => enqueue_all(ctx, queue),
            Err(_) => {}
        }
        match pods.try_recv() {
            Ok(c) => {
                any = true;
                route_pod(ctx, queue, Some(c))
            }
            Err(TryRecvError::Lagged(_)) => enqueue_all(ctx, queue),
            Err(_) => {}
        }
        if !any {
            return;
        }
    }
}

fn route_deployment(ctx: &Ctx, queue: &WorkQueue<String>, change: Option<Change<Deployment>>) {
    match change {
        Some(Change::Applied(d) | Change::Deleted(d)) => queue.add(key_of(d.as_ref())),
        _ => enqueue_all(ctx, queue),
    }
}

/// The Deployment that controls (or could adopt) a ReplicaSet.
fn route_replicaset(ctx: &Ctx, queue: &WorkQueue<String>, change: Option<Change<ReplicaSet>>) {
    let rs = match change {
        Some(Change::Applied(rs) | Change::Deleted(rs)) => rs,
        _ => return enqueue_all(ctx, queue),
    };
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    match controller_of(&rs.metadata) {
        Some(owner) if owner.kind == "Deployment" => queue.add(format!("{ns}/{}", owner.name)),
        Some(_) => {}
        None => {
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            for d in ctx.deployments.state() {
                if d.metadata.namespace.as_deref() == Some(ns.as_str())
                    && d.spec.as_ref().is_some_and(|s| {
                        !crate::labels::is_empty(&s.selector)
                            && crate::labels::matches(&s.selector, &labels)
                    })
                {
                    queue.add(key_of(d.as_ref()));
                }
            }
        }
    }
}

/// A pod's change matters to its ReplicaSet's Deployment (Recreate waits for old pods to stop).
fn route_pod(ctx: &Ctx, queue: &WorkQueue<String>, change: Option<Change<Pod>>) {
    let pod = match change {
        Some(Change::Deleted(p)) => p,
        Some(Change::Applied(p))
            if p.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|ph| ph == "Succeeded" || ph == "Failed") =>
        {
            p
        }
        Some(_) => return,
        None => return enqueue_all(ctx, queue),
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet") {
        if let Some(rs) = ctx
            .replicasets
            .get(&ObjectRef::new(&owner.name).within(&ns))
        {
            if let Some(d) = controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") {
                queue.add(format!("{ns}/{}", d.name));
            }
        }
    }
}

/// The ReplicaSets a Deployment controls, adopting matching orphans.
async fn claim_replica_sets(ctx: &Ctx, d: &Deployment) -> kube::Result<Vec<ReplicaSet>> {
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let mut owned = Vec::new();
    for rs in ctx.replicasets.state() {
        if rs.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        match controller_of(&rs.metadata) {
            Some(r) if r.uid == uid => owned.push((*rs).clone()),
            Some(_) => {}
            None => {
                let labels = rs.metadata.labels.clone().unwrap_or_default();
                if d.metadata.deletion_timestamp.is_none()
                    && rs.metadata.deletion_timestamp.is_none()
                    && !crate::labels::is_empty(&selector)
                    && crate::labels::matches(&selector, &labels)
                {
                    let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(logic::controller_ref(d));
                    let patch =
                        json!({"metadata": {"ownerReferences": refs, "uid": rs.metadata.uid}});
                    let name = rs.metadata.name.clone().unwrap_or_default();
                    owned.push(
                        api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                            .await?,
                    );
                }
            }
        }
    }
    Ok(owned)
}

fn remember(ctx: &Ctx, key: &str, written: &Deployment) {
    if let Some(rv) = written
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
    {
        ctx.written.lock().insert(key.to_string(), rv);
    }
}

async fn sync(ctx: &Ctx, key: &str) -> kube::Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let Some(d) = ctx.deployments.get(&ObjectRef::new(name).within(ns)) else {
        ctx.written.lock().remove(key);
        return Ok(None);
    };
    let cached: u64 = d
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0);
    if ctx.written.lock().get(key).is_some_and(|w| *w > cached) {
        return Ok(None);
    }
    let rss = claim_replica_sets(ctx, &d).await?;
    let new_rs_name = logic::find_new_replica_set(&d, &rss).and_then(|rs| rs.metadata.name.clone());
    let old_uids: Vec<String> = rss
        .iter()
        .filter(|rs| rs.metadata.name != new_rs_name)
        .filter_map(|rs| rs.metadata.uid.clone())
        .collect();
    let old_pods_running = ctx.pods.state().iter().any(|p| {
        p.metadata.namespace.as_deref() == Some(ns)
            && controller_of(&p.metadata).is_some_and(|o| old_uids.contains(&o.uid))
            && !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
    });
    let now = format_time(ctx.clock.now());
    let plan = logic::plan_sync(&d, &rss, old_pods_running, &now);
    let d_ref = reference(d.as_ref());
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
    let d_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    // Writes to one object in one plan carry the resourceVersion forward.
    let mut versions: HashMap<String, String> = HashMap::new();
    let carry =
        |key: String, meta: &mut kube::api::ObjectMeta, versions: &HashMap<String, String>| {
            if let Some(rv) = versions.get(&key) {
                meta.resource_version = Some(rv.clone());
            }
        };
    let event = |e: &logic::Event| {
        let t = if e.type_ == "Warning" {
            EventType::Warning
        } else {
            EventType::Normal
        };
        (t, e.reason, e.message.clone())
    };
    for action in plan.actions {
        match action {
            Action::CreateReplicaSet(w) => {
                let rs_name = w.replica_set.metadata.name.clone().unwrap_or_default();
                match rs_api.create(&PostParams::default(), &w.replica_set).await {
                    Ok(created) => {
                        versions.insert(
                            format!("rs/{rs_name}"),
                            created
                                .metadata
                                .resource_version
                                .clone()
                                .unwrap_or_default(),
                        );
                        if let Some(e) = &w.event {
                            let (t, reason, msg) = event(e);
                            ctx.recorder.record(&d_ref, t, reason, "", &msg).await;
                        }
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        let existing = rs_api.get(&rs_name).await?;
                        if let CreateConflict::BumpCollisionCount(bumped) =
                            logic::resolve_create_conflict(&d, &existing)
                        {
                            d_api
                                .replace_status(name, &PostParams::default(), bumped.as_ref())
                                .await?;
                        }
                        return Ok(Some(Duration::ZERO));
                    }
                    Err(e) => {
                        let msg = match &e {
                            kube::Error::Api(s) => s.message.clone(),
                            other => other.to_string(),
                        };
                        let (status, ev) = logic::create_failed(&d, &rs_name, &msg, &now);
                        let (t, reason, text) = event(&ev);
                        ctx.recorder.record(&d_ref, t, reason, "", &text).await;
                        if let Some(status) = status {
                            d_api
                                .replace_status(name, &PostParams::default(), &status)
                                .await?;
                        }
                        return Err(e);
                    }
                }
            }
            Action::UpdateReplicaSet(mut w) => {
                let rs_name = w.replica_set.metadata.name.clone().unwrap_or_default();
                carry(
                    format!("rs/{rs_name}"),
                    &mut w.replica_set.metadata,
                    &versions,
                );
                let written = rs_api
                    .replace(&rs_name, &PostParams::default(), &w.replica_set)
                    .await?;
                versions.insert(
                    format!("rs/{rs_name}"),
                    written
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default(),
                );
                if let Some(e) = &w.event {
                    let (t, reason, msg) = event(e);
                    ctx.recorder.record(&d_ref, t, reason, "", &msg).await;
                }
            }
            Action::DeleteReplicaSet { name: rs_name } => {
                match rs_api.delete(&rs_name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Action::UpdateDeploymentStatus(mut next) => {
                carry("deploy".into(), &mut next.metadata, &versions);
                let written = d_api
                    .replace_status(name, &PostParams::default(), &next)
                    .await?;
                remember(ctx, key, &written);
                versions.insert(
                    "deploy".into(),
                    written
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default(),
                );
            }
            Action::UpdateDeployment(mut next) => {
                carry("deploy".into(), &mut next.metadata, &versions);
                let written = d_api.replace(name, &PostParams::default(), &next).await?;
                remember(ctx, key, &written);
                versions.insert(
                    "deploy".into(),
                    written
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default(),
                );
            }
            Action::RecordEvent(e) => {
                let (t, reason, msg) = event(&e);
                ctx.recorder.record(&d_ref, t, reason, "", &msg).await;
            }
        }
    }
    if let Some(err) = plan.error {
        tracing::debug!(deployment = %key, error = %err, "sync reported an error; retrying");
        return Ok(Some(Duration::from_secs(1)));
    }
    Ok(plan
        .requeue_after_seconds
        .map(|s| Duration::from_secs_f64(s.max(0.0))))
}

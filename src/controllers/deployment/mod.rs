//! The Deployment controller (upstream `pkg/controller/deployment`). This file is its control
//! loop: a thin I/O shell around [`plan::plan_sync`], which decides every ReplicaSet write, status
//! update and event of one upstream sync. The submodules are pure (no API, store, clock or event
//! recorder): `plan` (the plan and its actions, upstream `syncDeployment`), `sync` (the new
//! ReplicaSet, scaling, clean-up, status), `rolling`, `recreate`, `rollback`, `progress`
//! (conditions, the progress deadline) and `util` (defaults, revisions, annotations, hashing).

pub mod plan;
pub mod progress;
mod recreate;
mod rollback;
mod rolling;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod util;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use self::plan::{
    create_failed, plan_sync, resolve_create_conflict, Action, CreateConflict, Event,
    ReplicaSetWrite,
};
use self::sync::controller_ref;
use self::util::find_new_replica_set;
use crate::clock::{format_time, Clock};
use crate::events::{reference, EventType, Recorder};
use crate::runtime::{controller_of, key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The event source component of the deployment controller.
pub const COMPONENT: &str = "deployment-controller";

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
    let (deployments, mut d_changes) = informers.subscribe_all::<Deployment>();
    let (replicasets, mut rs_changes) = informers.subscribe_all::<ReplicaSet>();
    let (pods, mut pod_changes) = informers.subscribe_all::<Pod>();
    deployments.ready().await;
    replicasets.ready().await;
    pods.ready().await;
    let ctx = Ctx {
        recorder: Recorder::core(client.clone(), clock.clone(), COMPONENT, &host),
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
        reconcile(&queue, key.clone(), COMPONENT, sync(&ctx, &key)).await;
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
        let d_any = route_one(ctx, queue, d, route_deployment);
        let rs_any = route_one(ctx, queue, rs, route_replicaset);
        let pods_any = route_one(ctx, queue, pods, route_pod);
        if !(d_any || rs_any || pods_any) {
            return;
        }
    }
}

/// Routes one change waiting in `changes`, if any (true then); a receiver that lagged behind
/// queues every Deployment instead.
fn route_one<K>(
    ctx: &Ctx,
    queue: &WorkQueue<String>,
    changes: &mut tokio::sync::broadcast::Receiver<Change<K>>,
    route: fn(&Ctx, &WorkQueue<String>, Option<Change<K>>),
) -> bool {
    match changes.try_recv() {
        Ok(c) => {
            route(ctx, queue, Some(c));
            true
        }
        Err(TryRecvError::Lagged(_)) => {
            enqueue_all(ctx, queue);
            false
        }
        Err(_) => false,
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
                    refs.push(controller_ref(d));
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
    let old_pods_running = old_pods_running(ctx, ns, &d, &rss);
    let now = format_time(ctx.clock.now());
    let plan = plan_sync(&d, &rss, old_pods_running, &now);
    let mut writer = Writer {
        ctx,
        key,
        name,
        d: &d,
        d_ref: reference(d.as_ref()),
        rs_api: Api::namespaced(ctx.client.clone(), ns),
        d_api: Api::namespaced(ctx.client.clone(), ns),
        versions: HashMap::new(),
        now: &now,
    };
    for action in plan.actions {
        if let Some(after) = writer.execute(action).await? {
            return Ok(Some(after));
        }
    }
    if let Some(err) = plan.error {
        tracing::debug!(deployment = %key, error = %err, "sync reported an error; retrying");
        return Ok(Some(Duration::from_secs(1)));
    }
    Ok(plan
        .requeue_after_seconds
        .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()))
}

/// Whether a pod of a ReplicaSet other than the new one is still in a non-terminal phase (the
/// Recreate strategy waits for those to go away).
fn old_pods_running(ctx: &Ctx, ns: &str, d: &Deployment, rss: &[ReplicaSet]) -> bool {
    let new_rs_name = find_new_replica_set(d, rss).and_then(|rs| rs.metadata.name.clone());
    let old_uids: Vec<String> = rss
        .iter()
        .filter(|rs| rs.metadata.name != new_rs_name)
        .filter_map(|rs| rs.metadata.uid.clone())
        .collect();
    ctx.pods.state().iter().any(|p| {
        p.metadata.namespace.as_deref() == Some(ns)
            && controller_of(&p.metadata).is_some_and(|o| old_uids.contains(&o.uid))
            && !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
    })
}

/// Executes one plan's actions against the apiserver, in order.
struct Writer<'a> {
    ctx: &'a Ctx,
    key: &'a str,
    /// The Deployment's name.
    name: &'a str,
    d: &'a Deployment,
    d_ref: ObjectReference,
    rs_api: Api<ReplicaSet>,
    d_api: Api<Deployment>,
    /// Writes to one object in one plan carry the resourceVersion forward.
    versions: HashMap<String, String>,
    now: &'a str,
}

impl Writer<'_> {
    /// Performs one action. `Some` ends the sync early (sync again after that long).
    async fn execute(&mut self, action: Action) -> kube::Result<Option<Duration>> {
        match action {
            Action::CreateReplicaSet(w) => return self.create_replica_set(&w).await,
            Action::UpdateReplicaSet(mut w) => {
                let rs_name = w.replica_set.metadata.name.clone().unwrap_or_default();
                carry(
                    format!("rs/{rs_name}"),
                    &mut w.replica_set.metadata,
                    &self.versions,
                );
                let written = self
                    .rs_api
                    .replace(&rs_name, &PostParams::default(), &w.replica_set)
                    .await?;
                self.versions
                    .insert(format!("rs/{rs_name}"), resource_version(&written.metadata));
                if let Some(e) = &w.event {
                    self.record(e).await;
                }
            }
            Action::DeleteReplicaSet { name: rs_name } => {
                match self
                    .rs_api
                    .delete(&rs_name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Action::UpdateDeploymentStatus(next) => self.write_deployment(next, true).await?,
            Action::UpdateDeployment(next) => self.write_deployment(next, false).await?,
            Action::RecordEvent(e) => self.record(&e).await,
        }
        Ok(None)
    }

    /// PUTs the Deployment's status subresource (`status`) or the Deployment itself, carrying the
    /// resourceVersion of the plan's previous write to it and remembering the one written.
    async fn write_deployment(&mut self, mut next: Deployment, status: bool) -> kube::Result<()> {
        carry("deploy".into(), &mut next.metadata, &self.versions);
        let params = PostParams::default();
        let written = if status {
            self.d_api.replace_status(self.name, &params, &next).await?
        } else {
            self.d_api.replace(self.name, &params, &next).await?
        };
        remember(self.ctx, self.key, &written);
        self.versions
            .insert("deploy".into(), resource_version(&written.metadata));
        Ok(())
    }

    /// POSTs the new ReplicaSet. On AlreadyExists, bumps collisionCount if the name collided and
    /// syncs again at once; on any other error, records the failure (event and, with a progress
    /// deadline, the Progressing condition).
    async fn create_replica_set(&mut self, w: &ReplicaSetWrite) -> kube::Result<Option<Duration>> {
        let (d, name) = (self.d, self.name);
        let rs_name = w.replica_set.metadata.name.clone().unwrap_or_default();
        match self
            .rs_api
            .create(&PostParams::default(), &w.replica_set)
            .await
        {
            Ok(created) => {
                self.versions
                    .insert(format!("rs/{rs_name}"), resource_version(&created.metadata));
                if let Some(e) = &w.event {
                    self.record(e).await;
                }
                Ok(None)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = self.rs_api.get(&rs_name).await?;
                if let CreateConflict::BumpCollisionCount(bumped) =
                    resolve_create_conflict(d, &existing)
                {
                    self.d_api
                        .replace_status(name, &PostParams::default(), bumped.as_ref())
                        .await?;
                }
                Ok(Some(Duration::ZERO))
            }
            Err(e) => {
                let msg = match &e {
                    kube::Error::Api(s) => s.message.clone(),
                    other => other.to_string(),
                };
                let (status, ev) = create_failed(d, &rs_name, &msg, self.now);
                self.record(&ev).await;
                if let Some(status) = status {
                    self.d_api
                        .replace_status(name, &PostParams::default(), &status)
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// Records a planned event on the Deployment.
    async fn record(&self, e: &Event) {
        let t = if e.type_ == "Warning" {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.ctx
            .recorder
            .record(&self.d_ref, t, e.reason, "", &e.message)
            .await;
    }
}

/// Sets the resourceVersion of the plan's previous write to the same object, if any.
fn carry(key: String, meta: &mut kube::api::ObjectMeta, versions: &HashMap<String, String>) {
    if let Some(rv) = versions.get(&key) {
        meta.resource_version = Some(rv.clone());
    }
}

fn resource_version(meta: &kube::api::ObjectMeta) -> String {
    meta.resource_version.clone().unwrap_or_default()
}

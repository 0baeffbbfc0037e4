//! The garbage collector: deletes dependents whose owners are gone, and carries out the
//! `foregroundDeletion` and `orphan` finalizers that delete propagation policies leave on owners.
//!
//! Owners and dependents are the kinds the reference serves with ownerReferences: Deployments,
//! ReplicaSets, DaemonSets and their ControllerRevisions, Jobs, Pods, Nodes (mirror pods), Services and their EndpointSlices. Before deleting a dependent whose owner is missing
//! from the cache, the owner is looked up live, as upstream does, so a cache that lags never
//! deletes a dependent of an owner that exists.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::runtime::{Change, Informers};

/// One object the collector tracks, owner or dependent.
#[derive(Clone, Debug)]
struct Item {
    kind: &'static str,
    meta: ObjectMeta,
}

impl Item {
    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> Option<&str> {
        self.meta.namespace.as_deref()
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.meta.finalizers.iter().flatten().any(|x| x == f)
    }

    fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }
}

struct Caches {
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    daemonsets: Store<DaemonSet>,
    revisions: Store<ControllerRevision>,
    jobs: Store<Job>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    services: Store<Service>,
    endpointslices: Store<EndpointSlice>,
}

impl Caches {
    fn items(&self) -> Vec<Item> {
        fn collect<K: Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            kind: &'static str,
        ) -> Vec<Item> {
            store
                .state()
                .iter()
                .map(|o| Item {
                    kind,
                    meta: o.meta().clone(),
                })
                .collect()
        }
        let mut all = collect(&self.deployments, "Deployment");
        all.extend(collect(&self.replicasets, "ReplicaSet"));
        all.extend(collect(&self.daemonsets, "DaemonSet"));
        all.extend(collect(&self.revisions, "ControllerRevision"));
        all.extend(collect(&self.jobs, "Job"));
        all.extend(collect(&self.pods, "Pod"));
        all.extend(collect(&self.nodes, "Node"));
        all.extend(collect(&self.services, "Service"));
        all.extend(collect(&self.endpointslices, "EndpointSlice"));
        all
    }
}

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "garbage-collector-controller";

/// Run the collector until `shutdown`.
pub async fn run(client: Client, clock: Clock, informers: &Informers, shutdown: CancellationToken) {
    let (deployments, mut d) = informers.subscribe_all::<Deployment>();
    let (replicasets, mut r) = informers.subscribe_all::<ReplicaSet>();
    let (daemonsets, mut ds) = informers.subscribe_all::<DaemonSet>();
    let (revisions, mut cr) = informers.subscribe_all::<ControllerRevision>();
    let (jobs, mut j) = informers.subscribe_all::<Job>();
    let (pods, mut p) = informers.subscribe_all::<Pod>();
    let (nodes, mut n) = informers.subscribe_all::<Node>();
    let (services, mut s) = informers.subscribe_all::<Service>();
    let (endpointslices, mut e) = informers.subscribe_all::<EndpointSlice>();
    deployments.ready().await;
    replicasets.ready().await;
    daemonsets.ready().await;
    revisions.ready().await;
    jobs.ready().await;
    pods.ready().await;
    nodes.ready().await;
    services.ready().await;
    endpointslices.ready().await;
    let caches = Caches {
        deployments: deployments.store(),
        replicasets: replicasets.store(),
        daemonsets: daemonsets.store(),
        revisions: revisions.store(),
        jobs: jobs.store(),
        pods: pods.store(),
        nodes: nodes.store(),
        services: services.store(),
        endpointslices: endpointslices.store(),
    };
    loop {
        collect(&client, &caches).await;
        // Wait for any change (a full pass is cheap at the scale of specs), or a periodic resync.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = d.recv() => drop(c.map(ignore)),
            c = r.recv() => drop(c.map(ignore)),
            c = ds.recv() => drop(c.map(ignore)),
            c = cr.recv() => drop(c.map(ignore)),
            c = j.recv() => drop(c.map(ignore)),
            c = p.recv() => drop(c.map(ignore)),
            c = n.recv() => drop(c.map(ignore)),
            c = s.recv() => drop(c.map(ignore)),
            c = e.recv() => drop(c.map(ignore)),
            _ = clock.sleep(Duration::from_secs(30)) => {}
        }
        // Coalesce a burst of changes into one pass.
        while d.try_recv().is_ok()
            || r.try_recv().is_ok()
            || ds.try_recv().is_ok()
            || cr.try_recv().is_ok()
            || j.try_recv().is_ok()
            || p.try_recv().is_ok()
            || n.try_recv().is_ok()
            || s.try_recv().is_ok()
            || e.try_recv().is_ok()
        {}
    }
}

fn ignore<K>(_: Change<K>) {}

async fn collect(client: &Client, caches: &Caches) {
    let items = caches.items();
    let by_uid: HashMap<&str, &Item> = items.iter().map(|i| (i.uid(), i)).collect();
    let mut dependents_of: HashMap<&str, Vec<&Item>> = HashMap::new();
    for item in &items {
        for r in item.meta.owner_references.iter().flatten() {
            dependents_of.entry(r.uid.as_str()).or_default().push(item);
        }
    }

    // Owners being deleted with a propagation finalizer.
    for owner in items.iter().filter(|i| i.deleting()) {
        let dependents = dependents_of.get(owner.uid()).cloned().unwrap_or_default();
        if owner.has_finalizer("orphan") {
            for dep in &dependents {
                remove_owner_refs(client, dep, &[owner.uid()]).await;
            }
            remove_finalizer(client, owner, "orphan").await;
        } else if owner.has_finalizer("foregroundDeletion") {
            let blocking: Vec<&&Item> = dependents
                .iter()
                .filter(|d| {
                    d.meta
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.uid == owner.uid() && r.block_owner_deletion == Some(true))
                })
                .collect();
            for dep in &blocking {
                if !dep.deleting() {
                    delete(client, dep, PropagationPolicy::Foreground).await;
                }
            }
            if blocking.is_empty() {
                remove_finalizer(client, owner, "foregroundDeletion").await;
            }
        }
    }

    // Dependents whose owners are all gone are deleted; dangling references are dropped.
    for dep in &items {
        let refs: Vec<&OwnerReference> = dep.meta.owner_references.iter().flatten().collect();
        if refs.is_empty() || dep.deleting() {
            continue;
        }
        let mut dangling = Vec::new();
        let mut alive = 0;
        let mut foreground_owner = false;
        for r in &refs {
            match by_uid.get(r.uid.as_str()) {
                Some(owner) => {
                    alive += 1;
                    if owner.deleting()
                        && owner.has_finalizer("foregroundDeletion")
                        && r.block_owner_deletion == Some(true)
                    {
                        foreground_owner = true;
                    }
                }
                None => {
                    if owner_absent(client, dep, r).await {
                        dangling.push(r.uid.as_str());
                    } else {
                        alive += 1;
                    }
                }
            }
        }
        if dangling.is_empty() || foreground_owner {
            continue;
        }
        if alive == 0 {
            delete(client, dep, PropagationPolicy::Background).await;
        } else {
            remove_owner_refs(client, dep, &dangling).await;
        }
    }
}

/// Whether the owner an ownerReference names is really gone (404, or another object with the
/// same name but a different uid).
async fn owner_absent(client: &Client, dep: &Item, r: &OwnerReference) -> bool {
    // Owners of kinds the reference does not serve are never collected against.
    let Some(api) = api_for(client, &r.kind, dep.namespace()) else {
        return false;
    };
    match api.get_opt(&r.name).await {
        Ok(Some(owner)) => owner.metadata.uid.as_deref() != Some(r.uid.as_str()),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The API of one kind the collector tracks, in the namespace of an object of it (the
/// namespace is ignored for cluster-scoped kinds).
fn api_for(client: &Client, kind: &str, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
    fn api<K: kube::Resource<DynamicType = ()>>(
        client: &Client,
        namespace: Option<&str>,
        namespaced: bool,
    ) -> Api<DynamicObject> {
        let resource = ApiResource::erase::<K>(&());
        match namespace {
            Some(ns) if namespaced => Api::namespaced_with(client.clone(), ns, &resource),
            _ => Api::all_with(client.clone(), &resource),
        }
    }
    Some(match kind {
        "Deployment" => api::<Deployment>(client, namespace, true),
        "ReplicaSet" => api::<ReplicaSet>(client, namespace, true),
        "DaemonSet" => api::<DaemonSet>(client, namespace, true),
        "ControllerRevision" => api::<ControllerRevision>(client, namespace, true),
        "Job" => api::<Job>(client, namespace, true),
        "Pod" => api::<Pod>(client, namespace, true),
        "Node" => api::<Node>(client, namespace, false),
        "Service" => api::<Service>(client, namespace, true),
        "EndpointSlice" => api::<EndpointSlice>(client, namespace, true),
        _ => return None,
    })
}

fn params(item: &Item, policy: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: item.meta.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    }
}

async fn delete(client: &Client, item: &Item, policy: PropagationPolicy) {
    let Some(api) = api_for(client, item.kind, item.namespace()) else {
        return;
    };
    match api.delete(item.name(), &params(item, policy)).await {
        Ok(_) => tracing::debug!(kind = item.kind, name = item.name(), "garbage collected"),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => {
            tracing::warn!(kind = item.kind, name = item.name(), cause = %e, "cannot delete a dependent")
        }
    }
}

async fn patch_meta(client: &Client, item: &Item, patch: serde_json::Value) {
    let Some(api) = api_for(client, item.kind, item.namespace()) else {
        return;
    };
    let result = api
        .patch(item.name(), &PatchParams::default(), &Patch::Merge(patch))
        .await;
    if let Err(e) = result {
        tracing::debug!(kind = item.kind, name = item.name(), cause = %e, "cannot patch metadata");
    }
}

async fn remove_owner_refs(client: &Client, item: &Item, uids: &[&str]) {
    let refs: Vec<&OwnerReference> = item
        .meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| !uids.contains(&r.uid.as_str()))
        .collect();
    let refs = if refs.is_empty() {
        serde_json::Value::Null
    } else {
        json!(refs)
    };
    patch_meta(client, item, json!({"metadata": {"ownerReferences": refs, "resourceVersion": item.meta.resource_version}})).await;
}

async fn remove_finalizer(client: &Client, item: &Item, finalizer: &str) {
    let rest: Vec<&String> = item
        .meta
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let rest = if rest.is_empty() {
        serde_json::Value::Null
    } else {
        json!(rest)
    };
    patch_meta(
        client,
        item,
        json!({"metadata": {"finalizers": rest, "resourceVersion": item.meta.resource_version}}),
    )
    .await;
}

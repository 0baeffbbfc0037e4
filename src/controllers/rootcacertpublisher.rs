//! The root CA certificate publisher, as upstream's
//! `pkg/controller/certificates/rootcacertpublisher`: every namespace has a ConfigMap
//! `kube-root-ca.crt` whose `ca.crt` is the cluster's CA bundle, with upstream's
//! `kubernetes.io/description` annotation. It is made when a namespace appears, made again when
//! deleted, and put back when its data or annotation is changed. A namespace being deleted
//! refuses the create, and is left alone.
//!
//! The CA bundle is the controller-manager's `--root-ca-file` when given; otherwise the one the
//! apiserver publishes in `kube-system/extension-apiserver-authentication` (`client-ca-file`),
//! read over the API like everything else this loop knows, so the controller-manager needs no
//! file from the apiserver's machine. (Upstream falls back to the CA its kubeconfig trusts; the
//! reference cluster serves plain HTTP, so its kubeconfigs trust none.)

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::k8s::serviceaccount::{
    AUTHENTICATION_CONFIGMAP, CLIENT_CA_KEY, DESCRIPTION_ANNOTATION, ROOT_CA_CONFIGMAP,
    ROOT_CA_DESCRIPTION, ROOT_CA_KEY,
};
use crate::runtime::{reconcile, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "root-ca-certificate-publisher-controller";

/// How often the CA bundle is looked for in the apiserver's ConfigMap until it is there.
const CA_RETRY: Duration = Duration::from_secs(1);

struct Ctx {
    client: Client,
    config_maps: Store<ConfigMap>,
    root_ca: String,
}

/// Run the controller until `shutdown`, publishing `root_ca` (the `--root-ca-file`'s
/// contents), or, when `None`, the CA the apiserver publishes.
pub async fn run(
    client: Client,
    clock: Clock,
    root_ca: Option<String>,
    informers: &Informers,
    shutdown: CancellationToken,
) {
    let root_ca = match root_ca {
        Some(ca) => ca,
        None => match published_ca(&client, &clock, &shutdown).await {
            Some(ca) => ca,
            None => return,
        },
    };
    let (namespaces, mut ns_changes) = informers.subscribe_all::<Namespace>();
    let (config_maps, mut cm_changes) = informers.subscribe_all::<ConfigMap>();
    namespaces.ready().await;
    config_maps.ready().await;
    let ctx = Ctx {
        client,
        config_maps: config_maps.store(),
        root_ca,
    };
    let queue = WorkQueue::new(clock);
    let all = |queue: &WorkQueue<String>| {
        for ns in namespaces.store().state() {
            queue.add(ns.metadata.name.clone().unwrap_or_default());
        }
    };
    all(&queue);
    loop {
        loop {
            match ns_changes.try_recv() {
                Ok(change) => namespace_changed(&change, &queue),
                Err(TryRecvError::Lagged(_)) => all(&queue),
                Err(_) => break,
            }
        }
        loop {
            match cm_changes.try_recv() {
                Ok(change) => config_map_changed(&change, &queue),
                Err(TryRecvError::Lagged(_)) => all(&queue),
                Err(_) => break,
            }
        }
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = ns_changes.recv() => { match c { Ok(c) => namespace_changed(&c, &queue), Err(_) => all(&queue) } continue }
            c = cm_changes.recv() => { match c { Ok(c) => config_map_changed(&c, &queue), Err(_) => all(&queue) } continue }
            key = queue.next() => match key { Some(k) => k, None => return },
        };
        let synced = async { sync(&ctx, &key).await.map(|()| None) };
        reconcile(&queue, key.clone(), CONTROLLER, synced).await;
    }
}

/// The CA bundle the apiserver publishes, waited for (until `shutdown`) if it is not there yet.
async fn published_ca(
    client: &Client,
    clock: &Clock,
    shutdown: &CancellationToken,
) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    loop {
        match api.get_opt(AUTHENTICATION_CONFIGMAP).await {
            Ok(Some(cm)) => {
                if let Some(ca) = cm.data.as_ref().and_then(|d| d.get(CLIENT_CA_KEY)) {
                    return Some(ca.clone());
                }
                tracing::debug!(
                    "kube-system/{AUTHENTICATION_CONFIGMAP} has no {CLIENT_CA_KEY} yet"
                );
            }
            Ok(None) => {
                tracing::debug!("kube-system/{AUTHENTICATION_CONFIGMAP} does not exist yet")
            }
            Err(e) => tracing::debug!(cause = %e, "cannot read the cluster's CA"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = clock.sleep(CA_RETRY) => {}
        }
    }
}

/// A namespace was added or changed: sync it, unless it is being deleted (upstream syncs a
/// namespace on updates only while it is active).
fn namespace_changed(change: &Change<Namespace>, queue: &WorkQueue<String>) {
    if let Change::Applied(ns) = change {
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Terminating") {
            queue.add(ns.metadata.name.clone().unwrap_or_default());
        }
    }
}

/// A ConfigMap changed or went: sync its namespace if it is the CA bundle's.
fn config_map_changed(change: &Change<ConfigMap>, queue: &WorkQueue<String>) {
    if let Change::Applied(cm) | Change::Deleted(cm) = change {
        if cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIGMAP) {
            queue.add(cm.metadata.namespace.clone().unwrap_or_default());
        }
    }
}

/// The data `kube-root-ca.crt` holds.
fn wanted_data(root_ca: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ROOT_CA_KEY.to_string(), root_ca.to_string())])
}

/// Whether a `kube-root-ca.crt` holds the bundle and is described, as upstream checks it.
fn is_current(cm: &ConfigMap, root_ca: &str) -> bool {
    cm.data.as_ref() == Some(&wanted_data(root_ca))
        && cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty())
}

/// Whether a create was refused because the namespace is gone or being deleted (nothing to
/// retry).
fn namespace_refuses(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) if s.code == 404 => true,
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")),
        _ => false,
    }
}

async fn sync(ctx: &Ctx, namespace: &str) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let current = ctx
        .config_maps
        .get(&ObjectRef::new(ROOT_CA_CONFIGMAP).within(namespace));
    let Some(current) = current else {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(ROOT_CA_CONFIGMAP.into()),
                annotations: Some(BTreeMap::from([(
                    DESCRIPTION_ANNOTATION.to_string(),
                    ROOT_CA_DESCRIPTION.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(wanted_data(&ctx.root_ca)),
            ..Default::default()
        };
        return match api.create(&PostParams::default(), &cm).await {
            Ok(_) => Ok(()),
            // The cache had not seen it yet; the watch brings it next.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) if namespace_refuses(&e) => Ok(()),
            Err(e) => Err(e),
        };
    };
    if is_current(&current, &ctx.root_ca) {
        return Ok(());
    }
    let mut cm = (*current).clone();
    cm.data = Some(wanted_data(&ctx.root_ca));
    cm.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            DESCRIPTION_ANNOTATION.to_string(),
            ROOT_CA_DESCRIPTION.to_string(),
        );
    match api
        .replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_current_with_its_data_and_a_description() {
        let mut cm = ConfigMap {
            data: Some(wanted_data("CA")),
            ..Default::default()
        };
        assert!(!is_current(&cm, "CA"), "no description");
        cm.metadata.annotations = Some(BTreeMap::from([(
            DESCRIPTION_ANNOTATION.to_string(),
            "anything".to_string(),
        )]));
        assert!(is_current(&cm, "CA"));
        assert!(!is_current(&cm, "another CA"));
        cm.data.as_mut().unwrap().insert("extra".into(), "x".into());
        assert!(!is_current(&cm, "CA"), "extra keys go");
    }
}

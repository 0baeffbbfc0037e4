//! The service account controller: every active namespace has a `default` ServiceAccount.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::runtime::Informers;

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "serviceaccount-controller";

/// Run the controller until `shutdown`.
pub async fn run(client: Client, clock: Clock, informers: &Informers, shutdown: CancellationToken) {
    let (namespaces, mut ns_changes) = informers.subscribe_all::<Namespace>();
    let (accounts, mut sa_changes) = informers.subscribe_all::<ServiceAccount>();
    namespaces.ready().await;
    accounts.ready().await;
    loop {
        for ns in namespaces.store().state() {
            let name = ns.metadata.name.clone().unwrap_or_default();
            let active = ns.metadata.deletion_timestamp.is_none()
                && ns
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("Active")
                    == "Active";
            if !active
                || accounts
                    .store()
                    .get(&ObjectRef::new("default").within(&name))
                    .is_some()
            {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some("default".into()),
                    namespace: Some(name.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match Api::<ServiceAccount>::namespaced(client.clone(), &name)
                .create(&PostParams::default(), &sa)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => {}
                Err(e) => {
                    tracing::debug!(namespace = %name, cause = %e, "cannot create the default service account")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ns_changes.recv() => {}
            _ = sa_changes.recv() => {}
            _ = clock.sleep(Duration::from_secs(30)) => {}
        }
    }
}

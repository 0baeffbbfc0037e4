//! The endpoints controller: for every Service with a selector, an Endpoints object of the same
//! name listing the selected pods' IPs, ready pods under `addresses` and the others under
//! `notReadyAddresses`, with the Service's ports resolved against each pod's container ports.
//! Which pods count and how ports resolve are the rules it shares with the EndpointSlice
//! controller (`endpointutil`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use tokio_util::sync::CancellationToken;

use super::endpointutil::{
    find_port, pod_ips, selector_of, selects, should_pod_be_in_endpoints, should_set_hostname,
};
use crate::clock::Clock;
use crate::runtime::{key_of, reconcile, split_key, Change, Informers, WorkQueue};

/// The controller's name, as kube-controller-manager names it (logs, health checks).
pub const CONTROLLER: &str = "endpoints-controller";

/// The Endpoints subsets for a Service and the pods it selects (pure, as upstream repacks them:
/// pods grouped by identical resolved ports, addresses sorted by IP).
pub fn subsets_for(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.clone().unwrap_or_default();
    let mut groups: BTreeMap<
        Vec<(String, i32, String)>,
        (Vec<EndpointAddress>, Vec<EndpointAddress>),
    > = BTreeMap::new();
    for pod in pods {
        // Terminating pods stay only when the Service publishes not-ready addresses.
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ips(pod).first().map(|ip| ip.to_string()) else {
            continue;
        };
        let resolved: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|p| {
                find_port(pod, p).map(|n| {
                    (
                        p.name.clone().unwrap_or_default(),
                        n,
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    )
                })
            })
            .collect();
        if resolved.len() != ports.len() && !ports.is_empty() {
            continue;
        }
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(super::endpointutil::pod_reference(pod)),
            hostname: should_set_hostname(pod, service)
                .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
                .flatten(),
        };
        let entry = groups.entry(resolved).or_default();
        if crate::k8s::pod_is_ready(pod) || publish_not_ready {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

struct Ctx {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Run the controller until `shutdown`.
pub async fn run(client: Client, clock: Clock, informers: &Informers, shutdown: CancellationToken) {
    let (services, mut svc_changes) = informers.subscribe_all::<Service>();
    let (pods, mut pod_changes) = informers.subscribe_all::<Pod>();
    let endpoints = informers.all::<Endpoints>();
    services.ready().await;
    pods.ready().await;
    endpoints.ready().await;
    let ctx = Ctx {
        client,
        services: services.store(),
        pods: pods.store(),
        endpoints: endpoints.store(),
    };
    let queue = WorkQueue::new(clock);
    for s in ctx.services.state() {
        queue.add(key_of(s.as_ref()));
    }
    loop {
        // Route changes to the services they concern; then sync what is queued.
        loop {
            match svc_changes.try_recv() {
                Ok(Change::Applied(s) | Change::Deleted(s)) => queue.add(key_of(s.as_ref())),
                Ok(Change::Resync)
                | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => all(&ctx, &queue),
                Err(_) => break,
            }
        }
        loop {
            match pod_changes.try_recv() {
                Ok(Change::Applied(p) | Change::Deleted(p)) => services_of(&ctx, &p, &queue),
                Ok(Change::Resync)
                | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => all(&ctx, &queue),
                Err(_) => break,
            }
        }
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = svc_changes.recv() => { if let Ok(Change::Applied(s) | Change::Deleted(s)) = c { queue.add(key_of(s.as_ref())) } else { all(&ctx, &queue) } continue }
            c = pod_changes.recv() => { if let Ok(Change::Applied(p) | Change::Deleted(p)) = c { services_of(&ctx, &p, &queue) } else { all(&ctx, &queue) } continue }
            key = queue.next() => match key { Some(k) => k, None => return },
        };
        let synced = async { sync(&ctx, &key).await.map(|()| None) };
        reconcile(&queue, key.clone(), CONTROLLER, synced).await;
    }
}

fn all(ctx: &Ctx, queue: &WorkQueue<String>) {
    for s in ctx.services.state() {
        queue.add(key_of(s.as_ref()));
    }
}

fn services_of(ctx: &Ctx, pod: &Pod, queue: &WorkQueue<String>) {
    for s in ctx.services.state() {
        if selects(&s, pod) {
            queue.add(key_of(s.as_ref()));
        }
    }
}

async fn sync(ctx: &Ctx, key: &str) -> kube::Result<()> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or_default();
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), ns);
    let Some(service) = ctx.services.get(&ObjectRef::new(name).within(ns)) else {
        // The service is gone: its Endpoints go with it.
        return match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        };
    };
    if selector_of(&service).is_none() {
        return Ok(()); // Endpoints of selector-less services belong to their users.
    }
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| selects(&service, p))
        .collect();
    let subsets = subsets_for(&service, &pods);
    let existing = ctx.endpoints.get(&ObjectRef::new(name).within(ns));
    let labels = service.metadata.labels.clone();
    match existing {
        Some(current)
            if current.subsets.clone().unwrap_or_default() == subsets
                && current.metadata.labels == labels =>
        {
            Ok(())
        }
        Some(current) => {
            let mut next = (*current).clone();
            next.subsets = (!subsets.is_empty()).then_some(subsets);
            next.metadata.labels = labels;
            api.replace(name, &PostParams::default(), &next)
                .await
                .map(|_| ())
        }
        None => {
            let endpoints = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(ns.into()),
                    labels,
                    ..Default::default()
                },
                subsets: (!subsets.is_empty()).then_some(subsets),
            };
            match api.create(&PostParams::default(), &endpoints).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ready_pods_are_addresses_and_the_rest_not_ready_addresses() {
        let svc: Service = serde_json::from_value(
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
        )
        .unwrap();
        let pod = |name: &str, ip: &str, ready: bool| {
            Arc::new(serde_json::from_value::<Pod>(json!({"metadata": {"name": name, "namespace": "ns", "uid": name},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
                "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})).unwrap())
        };
        let subsets = subsets_for(
            &svc,
            &[
                pod("b", "127.0.0.3", true),
                pod("a", "127.0.0.2", true),
                pod("c", "127.0.0.4", false),
            ],
        );
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        let ips: Vec<&str> = s
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ips, ["127.0.0.2", "127.0.0.3"]);
        assert_eq!(s.not_ready_addresses.as_ref().unwrap()[0].ip, "127.0.0.4");
        assert_eq!(
            s.ports.as_ref().unwrap()[0].port,
            8080,
            "named target ports resolve to the container port"
        );
    }

    #[test]
    fn terminating_pods_leave_unless_not_ready_addresses_are_published() {
        let svc = |publish: bool| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"},
                "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": publish, "ports": [{"port": 80}]}}))
            .unwrap()
        };
        let terminating = Arc::new(
            serde_json::from_value::<Pod>(json!({"metadata": {"name": "t", "namespace": "ns", "deletionTimestamp": "2025-01-01T00:00:00Z"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
                "status": {"podIP": "127.0.0.9", "conditions": [{"type": "Ready", "status": "True"}]}}))
            .unwrap(),
        );
        assert!(subsets_for(&svc(false), std::slice::from_ref(&terminating)).is_empty());
        let published = subsets_for(&svc(true), &[terminating]);
        assert_eq!(published[0].addresses.as_ref().unwrap()[0].ip, "127.0.0.9");
    }
}

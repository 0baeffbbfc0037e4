//! The controller-manager: its control loops, and the leader election that makes only one
//! replica run them. Each loop is an API client: it watches through informers and writes through
//! the apiserver, never the store.
//!
//! - `deployment`: Deployment -> ReplicaSets (its loop, and its pure decisions split as upstream's
//!   `sync`, `rolling`, `recreate`, `rollback`, `progress` and `util`).
//! - `replicaset`: ReplicaSet -> Pods.
//! - `daemonset`: DaemonSet -> a pod per eligible node (and ControllerRevisions).
//! - `job`: Job -> pods run to completion; `ttlafterfinished`: finished Jobs deleted after
//!   their TTL.
//! - `garbagecollector`: ownerReferences, propagation policies.
//! - `endpoints`: Service -> Endpoints.
//! - `endpointslice`: Service -> EndpointSlices.
//! - `endpointutil`: the rules those two share (which pods are endpoints, ports, hostnames).
//! - `namespace`: empties a namespace being deleted (pods first), then releases it.
//! - `nodelifecycle`: node health, taints, taint-based eviction.
//! - `serviceaccount`: the `default` ServiceAccount of every namespace.
//! - `rootcacertpublisher`: the `kube-root-ca.crt` ConfigMap (the cluster's CA) in every
//!   namespace.
//! - `podcontrol`: how those controllers create (slow start) and delete pods, with events.
//! - `podgc`: the pod garbage collector (orphaned, terminated and stuck terminating pods).

pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointutil;
pub mod garbagecollector;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod podcontrol;
pub mod podgc;
pub mod replicaset;
pub mod rootcacertpublisher;
pub mod serviceaccount;
pub mod ttlafterfinished;

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::leader::{LeaderElector, LeaseConfig};
use crate::runtime::{supervise, Health, Informers};

/// The component name controller-manager leader election events carry.
pub const COMPONENT: &str = "kube-controller-manager";

/// Settings of one controller-manager replica.
#[derive(Clone, Debug)]
pub struct ControllerManagerConfig {
    /// Leader election (kube-system/kube-controller-manager).
    pub lease: LeaseConfig,
    /// Node lifecycle timing.
    pub node_lifecycle: nodelifecycle::NodeLifecycleConfig,
    /// The pod garbage collector's settings (`--terminated-pod-gc-threshold`).
    pub pod_gc: podgc::PodGcConfig,
    /// The CA bundle the root CA publisher puts in every namespace (the contents of
    /// `--root-ca-file`); `None`: the one the apiserver publishes.
    pub root_ca: Option<String>,
    /// The health checks of this replica's control loops (its `/healthz`).
    pub health: Health,
}

impl ControllerManagerConfig {
    /// Upstream defaults with a fresh identity.
    pub fn new() -> Self {
        Self {
            lease: LeaseConfig::new(COMPONENT, crate::leader::new_identity()),
            node_lifecycle: Default::default(),
            pod_gc: Default::default(),
            root_ca: None,
            health: Health::new(),
        }
    }
}

impl Default for ControllerManagerConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Run one controller-manager replica until `shutdown`: campaign for the lease, and run every
/// control loop while leading.
pub async fn run(
    client: Client,
    clock: Clock,
    config: ControllerManagerConfig,
    shutdown: CancellationToken,
) {
    // kube-controller-manager does not set ReleaseOnCancel: a replica told to stop leaves its
    // Lease to expire, and the next leader takes over a lease duration later.
    let lease = LeaseConfig {
        release_on_cancel: false,
        ..config.lease.clone()
    };
    let elector = LeaderElector::new(client.clone(), clock.clone(), lease, COMPONENT);
    elector
        .run(shutdown, move |leading| {
            let client = client.clone();
            let clock = clock.clone();
            let config = config.clone();
            async move {
                // Controller-manager events carry no host, as upstream's.
                let host = String::new();
                // Each loop is supervised: one that dies is restarted, and health says so
                // meanwhile; the others go on.
                let (c, k, h, l) = (&client, &clock, &host, &leading);
                let health = &config.health;
                // One watch per resource for all the loops, for as long as this replica leads.
                let informers = Informers::new(client.clone(), leading.clone());
                let i = &informers;
                tokio::join!(
                    supervise(deployment::COMPONENT, health, k, l, |run| {
                        deployment::run(c.clone(), k.clone(), h.clone(), i, run)
                    }),
                    supervise(replicaset::CONTROLLER, health, k, l, |run| {
                        replicaset::run(c.clone(), k.clone(), h.clone(), i, run)
                    }),
                    supervise(daemonset::CONTROLLER, health, k, l, |run| {
                        daemonset::run(c.clone(), k.clone(), h.clone(), i, run)
                    }),
                    supervise(job::CONTROLLER, health, k, l, |run| {
                        job::run(c.clone(), k.clone(), h.clone(), i, run)
                    }),
                    supervise(ttlafterfinished::CONTROLLER, health, k, l, |run| {
                        ttlafterfinished::run(c.clone(), k.clone(), i, run)
                    }),
                    supervise(garbagecollector::CONTROLLER, health, k, l, |run| {
                        garbagecollector::run(c.clone(), k.clone(), i, run)
                    }),
                    supervise(endpoints::CONTROLLER, health, k, l, |run| {
                        endpoints::run(c.clone(), k.clone(), i, run)
                    }),
                    supervise(endpointslice::CONTROLLER, health, k, l, |run| {
                        endpointslice::run(c.clone(), k.clone(), h.clone(), i, run)
                    }),
                    supervise(namespace::CONTROLLER, health, k, l, |run| {
                        namespace::run(c.clone(), k.clone(), i, run)
                    }),
                    supervise(nodelifecycle::CONTROLLER, health, k, l, |run| {
                        let lifecycle = config.node_lifecycle.clone();
                        nodelifecycle::run(c.clone(), k.clone(), h.clone(), lifecycle, i, run)
                    }),
                    supervise(serviceaccount::CONTROLLER, health, k, l, |run| {
                        serviceaccount::run(c.clone(), k.clone(), i, run)
                    }),
                    supervise(podgc::CONTROLLER, health, k, l, |run| {
                        podgc::run(c.clone(), k.clone(), config.pod_gc.clone(), i, run)
                    }),
                    supervise(rootcacertpublisher::CONTROLLER, health, k, l, |run| {
                        let root_ca = config.root_ca.clone();
                        rootcacertpublisher::run(c.clone(), k.clone(), root_ca, i, run)
                    }),
                );
            }
        })
        .await;
}

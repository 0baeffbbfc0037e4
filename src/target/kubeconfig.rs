//! The kubeconfig target: any real cluster reached through a kubeconfig. Each scenario gets a
//! namespace of its own, deleted afterwards (kept, on request, when the scenario failed). Time
//! runs at wall speed (or at the speed a `kubespec up --time-scale` cluster runs, when told) and
//! the cluster cannot be faulted: this target has no [`Capability`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, DeleteParams, ListParams};

use super::{Capability, Cluster, Fault, Result, ScenarioInfo, Target, Topology};
use crate::clock::Clock;
use crate::cluster::kubeconfig::Connection;

/// A real cluster.
pub struct Kubeconfig {
    connection: Connection,
    ready_nodes: usize,
    time_scale: f64,
    /// Whether the cluster shows its control plane as pods in kube-system.
    control_plane_pods: bool,
}

impl Kubeconfig {
    /// Connect to the cluster of `path` (see [`crate::cluster::kubeconfig::locate`]) in
    /// `context`, and count its Ready nodes. `time_scale` is how fast the cluster's clock runs
    /// (1 for any real cluster).
    ///
    /// # Errors
    /// The cluster cannot be reached (the error names the file, context and server).
    pub async fn connect(
        path: Option<PathBuf>,
        context: Option<String>,
        time_scale: f64,
    ) -> Result<Self> {
        let connection = crate::cluster::kubeconfig::connect(
            path.as_deref(),
            context.as_deref(),
            Duration::from_secs(15),
        )
        .await?;
        let nodes = Api::<Node>::all(connection.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|source| super::Error::Api {
                what: format!("list the nodes of {}", connection.server),
                source,
            })?;
        let ready_nodes = nodes
            .items
            .iter()
            .filter(|n| crate::k8s::node_is_ready(n))
            .count();
        // kubeadm, kind and minikube label the control plane's mirror pods so; managed clusters
        // keep their control plane out of sight.
        let control_plane_pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(
            connection.client.clone(),
            "kube-system",
        )
        .list(&ListParams::default().labels("tier=control-plane").limit(1))
        .await
        .is_ok_and(|pods| !pods.items.is_empty());
        Ok(Self {
            connection,
            ready_nodes,
            time_scale,
            control_plane_pods,
        })
    }

    /// The cluster's address and version, for the run's header.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, context {}, kubeconfig {})",
            self.connection.server,
            self.connection.version,
            self.connection.context,
            self.connection.path.display()
        )
    }
}

#[async_trait::async_trait(?Send)]
impl Target for Kubeconfig {
    fn name(&self) -> &'static str {
        "kubeconfig"
    }

    /// Only what the cluster shows by itself: its control plane as pods, where it has them.
    fn capabilities(&self) -> BTreeSet<Capability> {
        let mut capabilities = BTreeSet::new();
        if self.control_plane_pods {
            capabilities.insert(Capability::ControlPlanePods);
        }
        capabilities
    }

    fn unsupported(&self, topology: &Topology) -> Option<String> {
        if topology.is_shaped() {
            return Some(format!(
                "needs capability {}: the kubeconfig target cannot choose node sizes or control-plane replicas",
                Capability::Topology
            ));
        }
        match topology.nodes {
            Some(n) if n > self.ready_nodes => Some(format!(
                "needs {n} Ready nodes; the cluster at {} has {}",
                self.connection.server, self.ready_nodes
            )),
            _ => None,
        }
    }

    fn time_scale(&self) -> f64 {
        self.time_scale
    }

    async fn provision(
        &self,
        scenario: &ScenarioInfo,
        _topology: &Topology,
    ) -> Result<Box<dyn Cluster>> {
        let namespace = super::namespace_for(&scenario.name);
        let client = self.connection.client.clone();
        super::create_namespace(
            &client,
            &namespace,
            &[("kubespec.io/scenario", "true")],
            Duration::from_secs(60),
        )
        .await?;
        Ok(Box::new(KubeconfigCluster {
            client,
            namespace,
            clock: Clock::new(self.time_scale),
            server: self.connection.server.clone(),
        }))
    }
}

struct KubeconfigCluster {
    client: kube::Client,
    namespace: String,
    clock: Clock,
    server: String,
}

#[async_trait::async_trait(?Send)]
impl Cluster for KubeconfigCluster {
    fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn describe(&self) -> String {
        format!("the cluster at {}", self.server)
    }

    async fn fault(&self, fault: &Fault) -> Result<String> {
        Err(super::Error::Unsupported {
            target: "kubeconfig",
            what: format!(
                "{} (capability {})",
                describe_fault(fault),
                fault.capability()
            ),
        })
    }

    async fn teardown(self: Box<Self>, keep: bool) -> Result<Option<String>> {
        if keep {
            return Ok(Some(format!(
                "kept the namespace {} for inspection (delete it with `kubectl delete namespace {}`)",
                self.namespace, self.namespace
            )));
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        match namespaces
            .delete(&self.namespace, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(source) => Err(super::Error::Api {
                what: format!("delete the namespace {}", self.namespace),
                source,
            }),
        }
    }
}

fn describe_fault(fault: &Fault) -> String {
    match fault {
        Fault::KillLeader(c) => format!("kill the leading {c}"),
        Fault::StopLeader(c) => format!("stop the leading {c}"),
        Fault::StopKubelet(n) => format!("stop the kubelet of {n}"),
        Fault::KillKubelet(n) => format!("kill the kubelet of {n}"),
        Fault::RestartKubelet(n) => format!("restart the kubelet of {n}"),
        Fault::AddNode { name, .. } => format!("add a node {name}"),
        Fault::ImageAvailable { image, .. } => format!("change whether {image} can be pulled"),
        Fault::StaticPod { node, .. } => format!("put a static pod on {node}"),
        Fault::DisconnectNode(n) => format!("cut {n} off the network"),
        Fault::ReconnectNode(n) => format!("connect {n} to the network again"),
        Fault::PauseNode(n) => format!("freeze {n}"),
        Fault::ResumeNode(n) => format!("thaw {n}"),
    }
}

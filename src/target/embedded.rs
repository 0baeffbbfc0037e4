//! The embedded target: a fresh reference cluster per scenario, in this process, on loopback,
//! on an accelerated clock, with the topology the scenario asks for. It can do every
//! [`Capability`] but [`Capability::PartitionNode`] and [`Capability::PauseNode`].

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Capability, Cluster, Fault, Result, ScenarioInfo, Target, Topology};
use crate::clock::Clock;
use crate::cluster::{ClusterConfig, RunningCluster};

/// The most nodes a scenario may ask of the embedded target.
pub const MAX_NODES: usize = 50;
/// The most replicas of a control-plane component.
pub const MAX_REPLICAS: usize = 5;

/// Settings of the embedded target.
#[derive(Clone, Debug)]
pub struct Embedded {
    /// Cluster seconds per wall second.
    pub time_scale: f64,
    /// The user's image models for the simulated runtime.
    pub image_models: Vec<crate::kubelet::runtime::models::ImageModel>,
}

impl Embedded {
    /// The embedded target at `time_scale`.
    pub fn new(time_scale: f64) -> Self {
        Self {
            time_scale,
            image_models: Vec::new(),
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Target for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    /// Everything but cutting a node off the network or freezing it: the embedded cluster's
    /// components share one process and its loopback.
    fn capabilities(&self) -> BTreeSet<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| !matches!(c, Capability::PartitionNode | Capability::PauseNode))
            .collect()
    }

    fn unsupported(&self, topology: &Topology) -> Option<String> {
        topology.beyond(self.name(), MAX_NODES, MAX_REPLICAS)
    }

    fn time_scale(&self) -> f64 {
        self.time_scale
    }

    async fn provision(
        &self,
        scenario: &ScenarioInfo,
        topology: &Topology,
    ) -> Result<Box<dyn Cluster>> {
        let static_pods = tempfile::Builder::new()
            .prefix("kubespec-static-pods-")
            .tempdir()
            .map_err(|source| super::Error::Io {
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let defaults = ClusterConfig::default();
        let config = ClusterConfig {
            time_scale: self.time_scale,
            nodes: topology.nodes.unwrap_or(1),
            node_cpu: topology
                .node_cpu
                .clone()
                .unwrap_or(defaults.node_cpu.clone()),
            node_memory: topology
                .node_memory
                .clone()
                .unwrap_or(defaults.node_memory.clone()),
            controller_managers: topology.controller_managers.unwrap_or(1),
            schedulers: topology.schedulers.unwrap_or(1),
            image_models: self.image_models.clone(),
            static_pod_dir: Some(static_pods.path().to_path_buf()),
            ready_timeout: Duration::from_secs(30),
            ..defaults
        };
        let cluster = RunningCluster::start(config).await?;
        let namespace = super::namespace_for(&scenario.name);
        let client = cluster.client()?;
        super::create_namespace(
            &client,
            &namespace,
            &[("kubespec.io/scenario", "true")],
            Duration::from_secs(30),
        )
        .await?;
        Ok(Box::new(EmbeddedCluster {
            cluster,
            client,
            namespace,
            static_pods,
        }))
    }
}

struct EmbeddedCluster {
    cluster: RunningCluster,
    client: kube::Client,
    namespace: String,
    static_pods: tempfile::TempDir,
}

#[async_trait::async_trait(?Send)]
impl Cluster for EmbeddedCluster {
    fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn clock(&self) -> &Clock {
        self.cluster.clock()
    }

    fn describe(&self) -> String {
        format!(
            "the embedded reference cluster at {} (time scale {})",
            self.cluster.url(),
            self.cluster.clock().scale()
        )
    }

    async fn fault(&self, fault: &Fault) -> Result<String> {
        Ok(match fault {
            Fault::KillLeader(c) => {
                let who = self.cluster.kill_leader(*c).await?;
                format!("killed the leading {c} {who}")
            }
            Fault::StopLeader(c) => {
                let who = self.cluster.stop_leader(*c).await?;
                format!("stopped the leading {c} {who}")
            }
            Fault::StopKubelet(node) => {
                self.cluster.stop_kubelet(node).await?;
                format!("stopped the kubelet of {node}")
            }
            Fault::KillKubelet(node) => {
                self.cluster.kill_kubelet(node).await?;
                format!("killed the kubelet of {node}")
            }
            Fault::RestartKubelet(node) => {
                self.cluster.restart_kubelet(node).await?;
                format!("restarted the kubelet of {node}")
            }
            Fault::AddNode { name, cpu, memory } => {
                self.cluster
                    .add_node(name, cpu.as_deref(), memory.as_deref())?;
                format!("added node {name}")
            }
            Fault::ImageAvailable { image, available } => {
                self.cluster
                    .registry()
                    .set_available(image, *available)
                    .map_err(|e| super::Error::Unsupported {
                        target: "embedded",
                        what: format!("change the availability of {image:?}: {e}"),
                    })?;
                format!(
                    "{image} is {} in the registry",
                    if *available {
                        "available"
                    } else {
                        "unavailable"
                    }
                )
            }
            Fault::StaticPod {
                node,
                file,
                manifest,
            } => {
                if !self.cluster.node_names(false).contains(node) {
                    return Err(crate::cluster::Error::NoSuchNode(node.clone()).into());
                }
                let dir = self.static_pods.path().join(node);
                let path = dir.join(file);
                std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&path, manifest))
                    .map_err(|source| super::Error::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                format!("wrote the static pod manifest {file} on {node}")
            }
            Fault::DisconnectNode(_)
            | Fault::ReconnectNode(_)
            | Fault::PauseNode(_)
            | Fault::ResumeNode(_) => {
                return Err(super::Error::Unsupported {
                    target: "embedded",
                    what:
                        "cut a node off the network or freeze it (its components share one process)"
                            .into(),
                })
            }
        })
    }

    async fn teardown(self: Box<Self>, _keep: bool) -> Result<Option<String>> {
        self.cluster.stop(Duration::from_secs(10)).await?;
        Ok(None)
    }
}

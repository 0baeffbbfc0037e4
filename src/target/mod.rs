//! Targets: where a scenario's cluster comes from, and what that cluster can be made to do.
//!
//! A [`Target`] provisions one [`Cluster`] per scenario: the embedded target starts a fresh
//! reference cluster with the scenario's [`Topology`]; the kubeconfig target hands out a fresh
//! namespace of a real cluster. What only some targets can do (accelerated time, killing a
//! leader, stopping a node, ...) is a [`Capability`]; a scenario that needs one its target lacks
//! is skipped with that reason, never run and passed.
//!
//! Steps reach a cluster only through the Kubernetes API ([`Cluster::client`]) and the faults
//! declared here. This module must not know about Gherkin or the harness.

pub mod containers;
pub mod embedded;
pub mod kubeconfig;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::clock::Clock;
pub use crate::cluster::Elected;

/// Errors provisioning, faulting or tearing down a target's cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    /// The external cluster could not be reached.
    #[error(transparent)]
    Kubeconfig(#[from] crate::cluster::kubeconfig::Error),
    /// The containers target failed (Docker, the image, a container).
    #[error(transparent)]
    Containers(Box<containers::Error>),
    /// A request to the cluster failed.
    #[error("cannot {what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The target cannot do this.
    #[error("the {target} target cannot {what}")]
    Unsupported {
        /// The target.
        target: &'static str,
        /// What was asked.
        what: String,
    },
    /// Waiting for the cluster timed out.
    #[error("{0}")]
    Timeout(String),
    /// A local file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something only some targets can do. Scenarios declare what they need with the tag
/// `@needs:<name>` (the kebab-case names below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Cluster time runs faster than wall time, so minutes of back-off take seconds.
    AcceleratedTime,
    /// Choose the number and size of nodes and of control-plane replicas.
    Topology,
    /// Kill the leading controller-manager or scheduler (abruptly).
    KillLeader,
    /// Stop the leading controller-manager or scheduler (gracefully).
    StopLeader,
    /// Stop, kill or restart a node's kubelet.
    StopNode,
    /// Add a node to the cluster.
    AddNode,
    /// Make an image unavailable in the registry nodes pull from.
    ImageUnavailable,
    /// Put static pod manifests on a node.
    StaticPods,
    /// Cut a node off the network and connect it again.
    PartitionNode,
    /// Freeze a whole node (its kubelet, kube-proxy and pods) and thaw it again.
    PauseNode,
    /// The control plane's components show as pods in `kube-system` (mirror pods labelled
    /// `tier: control-plane`, kube-proxy's DaemonSet), as on a kubeadm, kind or minikube cluster.
    ControlPlanePods,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 11] = [
        Self::AcceleratedTime,
        Self::Topology,
        Self::KillLeader,
        Self::StopLeader,
        Self::StopNode,
        Self::AddNode,
        Self::ImageUnavailable,
        Self::StaticPods,
        Self::PartitionNode,
        Self::PauseNode,
        Self::ControlPlanePods,
    ];

    /// The tag name (`accelerated-time`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::AcceleratedTime => "accelerated-time",
            Self::Topology => "topology",
            Self::KillLeader => "kill-leader",
            Self::StopLeader => "stop-leader",
            Self::StopNode => "stop-node",
            Self::AddNode => "add-node",
            Self::ImageUnavailable => "image-unavailable",
            Self::StaticPods => "static-pods",
            Self::PartitionNode => "partition-node",
            Self::PauseNode => "pause-node",
            Self::ControlPlanePods => "control-plane-pods",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown capability {s:?}; known: {}",
                    Self::ALL.map(Capability::name).join(", ")
                )
            })
    }
}

/// What a scenario asks of its cluster's shape. `None` fields take the target's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// How many nodes.
    pub nodes: Option<usize>,
    /// Each node's CPU capacity (`"4"`).
    pub node_cpu: Option<String>,
    /// Each node's memory capacity (`"8Gi"`).
    pub node_memory: Option<String>,
    /// Controller-manager replicas.
    pub controller_managers: Option<usize>,
    /// Scheduler replicas.
    pub schedulers: Option<usize>,
}

impl Topology {
    /// Why a target that runs at most `max_nodes` nodes and `max_replicas` replicas of each
    /// control-plane component cannot give this topology (`None` when it can).
    pub fn beyond(&self, target: &str, max_nodes: usize, max_replicas: usize) -> Option<String> {
        if self.nodes.is_some_and(|n| n > max_nodes) {
            return Some(format!(
                "the {target} target runs at most {max_nodes} nodes"
            ));
        }
        for (what, n) in [
            ("controller-manager", self.controller_managers),
            ("scheduler", self.schedulers),
        ] {
            if n.is_some_and(|n| n > max_replicas) {
                return Some(format!(
                    "the {target} target runs at most {max_replicas} {what} replicas"
                ));
            }
        }
        None
    }

    /// Whether the scenario asks for more than "some nodes": sizes or replica counts.
    pub fn is_shaped(&self) -> bool {
        self.node_cpu.is_some()
            || self.node_memory.is_some()
            || self.controller_managers.is_some()
            || self.schedulers.is_some()
    }
}

/// A fault or change a step asks a cluster to undergo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Kill the leading replica of a component.
    KillLeader(Elected),
    /// Stop the leading replica of a component gracefully.
    StopLeader(Elected),
    /// Stop a node's kubelet.
    StopKubelet(String),
    /// Kill a node's kubelet.
    KillKubelet(String),
    /// Start a node's kubelet again.
    RestartKubelet(String),
    /// Add a node.
    AddNode {
        /// Its name.
        name: String,
        /// CPU capacity (the cluster's default if `None`).
        cpu: Option<String>,
        /// Memory capacity.
        memory: Option<String>,
    },
    /// Withdraw an image from the registry (or bring it back).
    ImageAvailable {
        /// The image reference.
        image: String,
        /// Whether it can be pulled.
        available: bool,
    },
    /// Put a static pod manifest on a node.
    StaticPod {
        /// The node.
        node: String,
        /// The manifest file's name.
        file: String,
        /// The manifest.
        manifest: String,
    },
    /// Cut a node (its kubelet and everything on it) off the cluster's network.
    DisconnectNode(String),
    /// Connect a cut-off node again.
    ReconnectNode(String),
    /// Freeze a node: every process on it stops where it is (`docker pause`).
    PauseNode(String),
    /// Thaw a frozen node.
    ResumeNode(String),
}

impl Fault {
    /// The capability a target needs for this fault.
    pub fn capability(&self) -> Capability {
        match self {
            Self::KillLeader(_) => Capability::KillLeader,
            Self::StopLeader(_) => Capability::StopLeader,
            Self::StopKubelet(_) | Self::KillKubelet(_) | Self::RestartKubelet(_) => {
                Capability::StopNode
            }
            Self::AddNode { .. } => Capability::AddNode,
            Self::ImageAvailable { .. } => Capability::ImageUnavailable,
            Self::StaticPod { .. } => Capability::StaticPods,
            Self::DisconnectNode(_) | Self::ReconnectNode(_) => Capability::PartitionNode,
            Self::PauseNode(_) | Self::ResumeNode(_) => Capability::PauseNode,
        }
    }
}

/// What a target knows of the scenario it provisions for.
#[derive(Clone, Debug)]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// Where it is (`features/x.feature:12`).
    pub location: String,
}

/// Where scenarios run.
#[async_trait::async_trait(?Send)]
pub trait Target {
    /// The target's name (`embedded`, `kubeconfig`).
    fn name(&self) -> &'static str;
    /// What it can do.
    fn capabilities(&self) -> BTreeSet<Capability>;
    /// Why it cannot give a scenario `topology` (`None` when it can).
    fn unsupported(&self, topology: &Topology) -> Option<String>;
    /// Cluster seconds per wall second.
    fn time_scale(&self) -> f64;
    /// A cluster (or a part of one) for one scenario, ready for its first step.
    async fn provision(
        &self,
        scenario: &ScenarioInfo,
        topology: &Topology,
    ) -> Result<Box<dyn Cluster>>;
}

/// One scenario's cluster.
#[async_trait::async_trait(?Send)]
pub trait Cluster {
    /// A client for it.
    fn client(&self) -> kube::Client;
    /// The scenario's namespace (created for it).
    fn namespace(&self) -> &str;
    /// Its cluster clock.
    fn clock(&self) -> &Clock;
    /// Where it is, for messages (`embedded reference cluster at http://127.0.0.1:1234`).
    fn describe(&self) -> String;
    /// Undergo a fault; returns what happened (e.g. the identity of the leader killed).
    async fn fault(&self, fault: &Fault) -> Result<String>;
    /// Tear it down; `keep` asks to leave the scenario's objects for inspection where the
    /// target can. Returns a note for the user (e.g. where the objects were kept).
    async fn teardown(self: Box<Self>, keep: bool) -> Result<Option<String>>;
}

/// `n` random lowercase letters and digits, without vowels (no words by chance) nor look-alikes.
pub(crate) fn random_name(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A DNS-1123 label for a scenario's namespace: `ks-<slug of the name>-<5 random>`.
pub fn namespace_for(scenario: &str) -> String {
    let mut slug = String::new();
    for c in scenario.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let suffix = random_name(5);
    if slug.is_empty() {
        format!("ks-{suffix}")
    } else {
        format!("ks-{slug}-{suffix}")
    }
}

/// Create `namespace` and wait (at most `timeout` of wall time) for its `default`
/// ServiceAccount and its `kube-root-ca.crt` ConfigMap, as upstream's e2e framework does before
/// a test's first pod (without them a pod is refused, or waits on a FailedMount).
pub(crate) async fn create_namespace(
    client: &kube::Client,
    namespace: &str,
    labels: &[(&str, &str)],
    timeout: std::time::Duration,
) -> Result<()> {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    use kube::api::{Api, PostParams};

    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.to_string());
    ns.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|source| Error::Api {
            what: format!("create the namespace {namespace}"),
            source,
        })?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account =
        kube::runtime::wait::await_condition(accounts, "default", |sa: Option<&ServiceAccount>| {
            sa.is_some()
        });
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let root_ca = kube::runtime::wait::await_condition(
        config_maps,
        "kube-root-ca.crt",
        |cm: Option<&ConfigMap>| cm.is_some(),
    );
    let both = async {
        account.await?;
        root_ca.await
    };
    match tokio::time::timeout(timeout, both).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Timeout(format!(
            "waiting for the default ServiceAccount and kube-root-ca.crt of {namespace}: {e}"
        ))),
        Err(_) => Err(Error::Timeout(format!(
            "the namespace {namespace} got no default ServiceAccount or no kube-root-ca.crt ConfigMap within {timeout:?}: is the controller-manager running?"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip_their_tag_names() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>().unwrap(), c);
        }
        let err = "fly".parse::<Capability>().unwrap_err();
        assert!(err.contains("accelerated-time"), "{err}");
    }

    #[test]
    fn namespaces_are_dns_labels() {
        let ns =
            namespace_for("Liveness failure: restart & CrashLoopBackOff (with back-off gaps)!");
        assert!(ns.len() <= 63, "{ns}");
        assert!(
            ns.starts_with("ks-liveness-failure-restart-crashloop"),
            "{ns}"
        );
        assert!(ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(!ns.contains("--"), "{ns}");
        assert_ne!(namespace_for("x"), namespace_for("x"));
    }
}
